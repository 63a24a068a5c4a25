//! `sluice scan`: files or stdin. Files of JSON-RPC messages (one per line) are inspected
//! message by message, with JSON pointers; anything else is scanned as text, in chunks, with
//! memory bounded whatever the file size.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sluice_engine::scan::Match;
use sluice_engine::{Action, CompiledRules, Direction, Inspector, Policy, Scope};

use super::report::{sarif, Format, Row};
use crate::rules_args::{random_salt, RulesArgs};

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  sluice scan traffic.jsonl\n  sluice scan --format sarif src/ > sluice.sarif\n  cat dump.txt | sluice scan -\n\n\
Exit codes: 0 clean, 1 something was found, 2 an error (a file could not be read, a line was not valid JSON)."
)]
pub struct Args {
    /// Files or directories to scan; `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    rules: RulesArgs,
    /// Salt for fingerprints, to correlate findings across runs (default: random per run).
    #[arg(long)]
    salt: Option<String>,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
}

const CHUNK: usize = 1 << 20;

struct Ctx {
    rules: Arc<CompiledRules>,
    insp: Inspector,
    policy: Policy,
    format: Format,
    rows: Vec<Row>,
    found: usize,
    errors: usize,
    progress: Option<ProgressBar>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rules = args.rules.compile()?;
    let mut policy = Policy::with_mode(Action::Monitor);
    policy.salt = args
        .salt
        .map(String::into_bytes)
        .unwrap_or_else(random_salt);
    let files = expand(&args.paths)?;
    let total: u64 = files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let progress =
        (!args.no_progress && std::io::stderr().is_terminal() && total > 8 << 20).then(|| {
            let pb = ProgressBar::new(total);
            pb.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            pb
        });
    let mut ctx = Ctx {
        insp: Inspector::new(rules.clone())?,
        rules,
        policy,
        format: args.format,
        rows: Vec::new(),
        found: 0,
        errors: 0,
        progress,
    };
    for f in &files {
        if let Err(e) = scan_path(&mut ctx, f) {
            eprintln!("sluice: {}: {e:#}", display(f));
            ctx.errors += 1;
        }
    }
    if let Some(pb) = &ctx.progress {
        pb.finish_and_clear();
    }
    if ctx.format == Format::Sarif {
        let doc = sarif(&ctx.rows, &ctx.rules);
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    if ctx.format == Format::Text {
        eprintln!(
            "sluice: {} finding(s) in {} file(s){}",
            ctx.found,
            files.len(),
            if ctx.errors > 0 {
                format!(", {} error(s)", ctx.errors)
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::from(if ctx.errors > 0 {
        2
    } else if ctx.found > 0 {
        1
    } else {
        0
    }))
}

fn display(p: &Path) -> String {
    if p == Path::new("-") {
        "<stdin>".into()
    } else {
        p.display().to_string()
    }
}

fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p == Path::new("-") {
            out.push(p.clone());
            continue;
        }
        let meta = std::fs::metadata(p).with_context(|| format!("{}", p.display()))?;
        if meta.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                let mut entries: Vec<_> = std::fs::read_dir(&dir)
                    .with_context(|| format!("{}", dir.display()))?
                    .filter_map(Result::ok)
                    .collect();
                entries.sort_by_key(|e| e.path());
                for e in entries {
                    let ft = e.file_type()?;
                    if ft.is_dir() {
                        stack.push(e.path());
                    } else if ft.is_file() {
                        out.push(e.path());
                    }
                }
            }
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn scan_path(ctx: &mut Ctx, path: &Path) -> anyhow::Result<()> {
    let name = display(path);
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(path).context("cannot open")?)
    };
    let mut reader = BufReader::with_capacity(CHUNK, reader);
    let head = reader.fill_buf()?;
    if looks_like_jsonrpc_lines(head) {
        scan_messages(ctx, &name, reader)
    } else {
        scan_text(ctx, &name, reader)
    }
}

fn looks_like_jsonrpc_lines(head: &[u8]) -> bool {
    let first = head
        .split(|b| *b == b'\n')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty());
    match first {
        Some(l) if l.starts_with(b"{") => serde_json::from_slice::<serde_json::Value>(l)
            .map(|v| v.get("jsonrpc").is_some())
            .unwrap_or(false),
        _ => false,
    }
}

/// Who sent a message, guessed from its method, for files that do not say: client calls and
/// everything else (responses, server notifications) as the server's.
pub fn guess_direction(method: Option<&str>) -> Direction {
    match method {
        Some(m)
            if m == "initialize"
                || m.starts_with("tools/")
                || m.starts_with("resources/")
                || m.starts_with("prompts/")
                || m.starts_with("completion/")
                || m == "notifications/initialized"
                || m == "notifications/cancelled"
                || m == "notifications/roots/list_changed" =>
        {
            Direction::ClientToServer
        }
        _ => Direction::ServerToClient,
    }
}

pub fn method_of(line: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct M {
        method: Option<String>,
    }
    serde_json::from_slice::<M>(line)
        .ok()
        .and_then(|m| m.method)
}

fn scan_messages(ctx: &mut Ctx, name: &str, mut reader: impl BufRead) -> anyhow::Result<()> {
    let mut line = Vec::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        n += 1;
        if let Some(pb) = &ctx.progress {
            pb.inc(read as u64);
        }
        let msg = line.trim_ascii();
        if msg.is_empty() {
            continue;
        }
        let dir = guess_direction(method_of(msg).as_deref());
        match ctx.insp.inspect(msg, dir, None, &ctx.policy) {
            Ok(res) => {
                let method = res.info().and_then(|i| i.method.clone());
                for f in res.findings {
                    let row = Row {
                        file: name.to_string(),
                        line: n,
                        column: None,
                        pointer: Some(f.pointer),
                        method: method.clone(),
                        rule_id: f.rule_id,
                        category: f.category.as_str(),
                        severity: f.severity,
                        action: None,
                        fingerprint: f.fingerprint,
                    };
                    emit(ctx, row)?;
                }
            }
            Err(e) => {
                eprintln!("sluice: {name}:{n}: {e}");
                ctx.errors += 1;
            }
        }
    }
    Ok(())
}

/// Line numbers for stream offsets, keeping only the newlines a late match can still need.
struct LineIndex {
    dropped: usize,
    newlines: VecDeque<usize>,
}

impl LineIndex {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = self.newlines.partition_point(|&p| p < offset);
        let line = self.dropped + before + 1;
        let col = match before {
            0 => offset + 1, // only exact for the first line; later ones keep their newline
            _ => offset - self.newlines[before - 1],
        };
        (line, col)
    }
}

fn scan_text(ctx: &mut Ctx, name: &str, mut reader: impl Read) -> anyhow::Result<()> {
    let mut stream = ctx.insp.scanner().open_stream(Scope::Results)?;
    let keep = stream.history_cap();
    let mut idx = LineIndex {
        dropped: 0,
        newlines: VecDeque::new(),
    };
    let mut buf = vec![0u8; CHUNK];
    let mut matches: Vec<(Match, String)> = Vec::new();
    let mut pos = 0usize;
    let salt = ctx.policy.salt.clone();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        for p in memchr::memchr_iter(b'\n', &buf[..n]) {
            idx.newlines.push_back(pos + p);
        }
        matches.clear();
        stream.feed_each(&buf[..n], |m, bytes| {
            matches.push((m, sluice_engine::redact::fingerprint(&salt, bytes)))
        })?;
        emit_matches(ctx, name, &mut matches, &idx)?;
        pos += n;
        while idx.newlines.len() > 1 && idx.newlines[1] + keep < pos {
            idx.newlines.pop_front();
            idx.dropped += 1;
        }
        if let Some(pb) = &ctx.progress {
            pb.inc(n as u64);
        }
    }
    matches.clear();
    stream.finish_each(|m, bytes| {
        matches.push((m, sluice_engine::redact::fingerprint(&salt, bytes)))
    })?;
    emit_matches(ctx, name, &mut matches, &idx)
}

fn emit_matches(
    ctx: &mut Ctx,
    name: &str,
    ms: &mut Vec<(Match, String)>,
    idx: &LineIndex,
) -> anyhow::Result<()> {
    // Same dedup as the block path: drop matches contained in a longer one of the same rule.
    ms.sort_by_key(|(m, _)| (m.rule, m.start, std::cmp::Reverse(m.end)));
    let mut kept: Vec<(Match, String)> = Vec::with_capacity(ms.len());
    for (m, fp) in ms.drain(..) {
        if let Some((l, _)) = kept.last() {
            if l.rule == m.rule && m.start >= l.start && m.end <= l.end {
                continue;
            }
        }
        kept.push((m, fp));
    }
    for (m, fingerprint) in kept {
        let r = ctx.rules.rule(m.rule);
        let (line, col) = idx.line_col(m.start);
        let row = Row {
            file: name.to_string(),
            line,
            column: Some(col),
            pointer: None,
            method: None,
            rule_id: r.id.clone(),
            category: r.category.as_str(),
            severity: r.severity,
            action: None,
            fingerprint,
        };
        emit(ctx, row)?;
    }
    Ok(())
}

fn emit(ctx: &mut Ctx, row: Row) -> anyhow::Result<()> {
    ctx.found += 1;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match ctx.format {
        Format::Text => {
            if let Some(pb) = &ctx.progress {
                pb.suspend(|| row.write_text(&mut out))?;
            } else {
                row.write_text(&mut out)?;
            }
        }
        Format::Json => writeln!(out, "{}", row.to_json())?,
        Format::Sarif => ctx.rows.push(row),
    }
    Ok(())
}
