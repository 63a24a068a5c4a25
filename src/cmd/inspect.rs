//! `sluice inspect`: JSON-RPC messages one per line on stdin; exactly what sluice would
//! forward, one per line, on stdout; findings as JSON lines to `--report`.

use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use sluice_engine::{Action, Direction, Inspector, Policy, RedactStrategy, Verdict};

use crate::rules_args::{random_salt, RulesArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Each rule's own action (secrets and PII redacted, injection and exfiltration blocked).
    Rules,
    Block,
    Redact,
    Monitor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dir {
    /// Messages the client sends (tool calls and their arguments).
    #[value(alias = "client-to-server")]
    Request,
    /// Messages the server sends (results, tool lists, notifications).
    #[value(alias = "server-to-client")]
    Response,
    /// Guess from each message's method.
    Auto,
}

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  sluice inspect --mode redact --direction response < results.jsonl > forwarded.jsonl\n  \
sluice inspect --mode block --direction request --report findings.jsonl < calls.jsonl\n\n\
A blocked request or response is replaced by a JSON-RPC error with the same id; a blocked \
notification is dropped (nothing is written for it). A line that is not valid JSON is not \
forwarded (fail closed) unless --fail-open; it is reported on stderr and the exit code is 2."
)]
pub struct Args {
    /// What to do with findings.
    #[arg(long, value_enum, default_value_t = Mode::Rules)]
    mode: Mode,
    /// Who sent the messages.
    #[arg(long, value_enum, default_value_t = Dir::Auto)]
    direction: Dir,
    /// Write one JSON line per finding (and per failed line) to this file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// How redacted spans are written.
    #[arg(long, value_name = "mask|partial|hash", default_value = "mask")]
    redaction: RedactStrategy,
    /// Forward lines that cannot be inspected instead of dropping them.
    #[arg(long)]
    fail_open: bool,
    /// Salt for fingerprints and hash markers (default: random per run).
    #[arg(long)]
    salt: Option<String>,
    #[command(flatten)]
    rules: RulesArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rules = args.rules.compile()?;
    let mut insp = Inspector::new(rules)?;
    let mut policy = policy_for(args.mode);
    policy.redaction = args.redaction;
    policy.fail_open = args.fail_open;
    policy.salt = args
        .salt
        .map(String::into_bytes)
        .unwrap_or_else(random_salt);
    let mut report = match &args.report {
        Some(p) => Some(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => None,
    };
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut line = Vec::new();
    let (mut n, mut failed) = (0usize, 0usize);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        n += 1;
        let msg = line.trim_ascii_end();
        if msg.trim_ascii().is_empty() {
            continue;
        }
        let dir = match args.direction {
            Dir::Request => Direction::ClientToServer,
            Dir::Response => Direction::ServerToClient,
            Dir::Auto => guess(msg),
        };
        match insp.inspect(msg, dir, None, &policy) {
            Ok(res) => {
                match &res.verdict {
                    Verdict::Forward => write_line(&mut out, msg)?,
                    Verdict::Redacted(b) => write_line(&mut out, b)?,
                    Verdict::Block { response: Some(b) } => write_line(&mut out, b)?,
                    Verdict::Block { response: None } => {}
                }
                if let Some(r) = report.as_mut() {
                    let info = res.info();
                    for f in &res.findings {
                        let mut row = json!({
                            "line": n,
                            "direction": dir.as_str(),
                            "kind": info.map(|i| i.kind.as_str()),
                            "method": info.and_then(|i| i.method.as_deref()),
                            "tool": info.and_then(|i| i.tool.as_deref()),
                            "verdict": res.verdict.name(),
                        });
                        if let (Some(row), serde_json::Value::Object(finding)) =
                            (row.as_object_mut(), f.to_json())
                        {
                            row.extend(finding);
                        }
                        writeln!(r, "{row}")?;
                    }
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("sluice: line {n}: {e}");
                // Never a message whose decoded views pass the budget, as in serve and stdio.
                let forward = policy.fail_open && e.may_fail_open();
                if forward {
                    write_line(&mut out, msg)?;
                }
                if let Some(r) = report.as_mut() {
                    writeln!(
                        r,
                        "{}",
                        json!({"line": n, "error": e.to_string(), "forwarded": forward})
                    )?;
                }
            }
        }
    }
    out.flush()?;
    if let Some(r) = report.as_mut() {
        r.flush()?;
    }
    Ok(if failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn policy_for(mode: Mode) -> Policy {
    match mode {
        Mode::Rules => Policy::default(),
        Mode::Block => Policy::with_mode(Action::Block),
        Mode::Redact => Policy::with_mode(Action::Redact),
        Mode::Monitor => Policy::with_mode(Action::Monitor),
    }
}

fn write_line(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.write_all(b"\n")?;
    // Downstream may be a live peer: every message goes out as soon as it is decided.
    out.flush()
}

fn guess(msg: &[u8]) -> Direction {
    super::scan::guess_direction(super::scan::method_of(msg).as_deref())
}
