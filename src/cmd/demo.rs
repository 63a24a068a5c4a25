//! `sluice demo`: an in-process MCP server replaying the labelled demo corpus, sluice in front
//! of it on a real socket, and a client driving the corpus's client side through the proxy.
//! Prints what was forwarded, redacted and blocked (from the proxy's own audit rows), checks
//! the labels, measures the added latency, then leaves the proxy running until Ctrl-C.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use sluice_engine::corpus::{parse, CorpusEntry, DEMO_CORPUS};
use sluice_engine::{Direction, Policy, Pool};
use sluice_proxy::audit::AuditLog;
use sluice_proxy::config::{HttpChecks, Limits, UpstreamConfig};
use sluice_proxy::http::HttpProxy;
use sluice_proxy::replay::ReplayServer;

use crate::demo::client::McpHttpClient;
use crate::demo::script;
use crate::rules_args::{random_salt, RulesArgs};

#[derive(clap::Args)]
#[command(
    after_help = "The demo server replays corpus/demo.jsonl: tool lists, file reads, \
database rows, fetched pages, log notifications on SSE streams, with fabricated secrets, PII, \
prompt injection and exfiltration in both directions. The verdicts shown are the proxy's own \
audit rows. After the run the proxy keeps serving in front of the demo server (whose other \
tools echo their arguments), so you can try your own calls; --once exits instead."
)]
pub struct Args {
    #[command(flatten)]
    rules: RulesArgs,
    /// Exit after the scripted run instead of leaving the proxy running.
    #[arg(long)]
    once: bool,
    /// Where the proxy listens [default: 127.0.0.1:7070, or a free port if that is taken].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

/// Audit rows kept in memory for the table, and echoed to stdout once the script is done.
#[derive(Clone, Default)]
struct Rows {
    buf: Arc<Mutex<Vec<u8>>>,
    echo: Arc<AtomicBool>,
}

impl Write for Rows {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.echo.load(Ordering::Relaxed) {
            std::io::stdout().write_all(b)?;
        } else if let Ok(mut v) = self.buf.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Rows {
    fn take(&self) -> Vec<Value> {
        let bytes = self
            .buf
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        bytes
            .split(|b| *b == b'\n')
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect()
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let rules = args.rules.compile()?;
    println!(
        "sluice demo: {} rules compiled into Hyperscan in {:.0} ms",
        rules.ruleset.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let entries = parse(DEMO_CORPUS, "corpus/demo.jsonl")?;
    let script = script::build(&entries);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = ReplayServer::new(script.answers.clone());
        let (up, up_serve) = server
            .clone()
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await?;
        tokio::spawn(up_serve);
        let rows = Rows::default();
        let audit = Arc::new(AuditLog::new(Box::new(rows.clone()), true));
        let upstream = UpstreamConfig {
            url: format!("http://{up}/mcp"),
            prefix: None,
            ca_file: None,
            ..Default::default()
        }
        .check()
        .map_err(anyhow::Error::msg)?;
        let make_proxy = |listen| -> anyhow::Result<HttpProxy> {
            Ok(HttpProxy {
                listen,
                allowed_hosts: Vec::new(),
                tls: None,
                upstreams: vec![upstream.clone()],
                pool: Arc::new(Pool::new(rules.clone(), 2)?),
                policy: Arc::new(Policy {
                    salt: random_salt(),
                    ..Policy::default()
                }),
                audit: Some(audit.clone()),
                limits: Limits::default(),
                checks: HttpChecks::default(),
                http3: None,
                gateway: Default::default(),
                runtime: Default::default(),
                metrics: Default::default(),
            })
        };
        let wanted = args
            .listen
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7070)));
        let (addr, serve) = match make_proxy(wanted)?.bind().await {
            Ok(x) => x,
            Err(e) if args.listen.is_none() && e.kind() == std::io::ErrorKind::AddrInUse => {
                make_proxy(SocketAddr::from(([127, 0, 0, 1], 0)))?
                    .bind()
                    .await?
            }
            Err(e) => return Err(e).with_context(|| format!("cannot listen on {wanted}")),
        };
        tokio::spawn(serve);
        println!("demo MCP server (in-process, replays corpus/demo.jsonl): http://{up}/mcp");
        println!("sluice in front of it, each rule's own action: http://{addr}/mcp\n");

        let mut client = McpHttpClient::new(format!("http://{addr}/mcp"));
        let mut report = Report::default();
        println!(
            "{:>3}  {:<5} {:<30} {:<8} {:<38} corpus note",
            "#", "dir", "message", "verdict", "rules"
        );
        for x in &script.exchanges {
            rows.take();
            server.take_received();
            let answer = client.post(x.body.clone()).await?;
            let got_rows = rows.take();
            let received = server.take_received();
            let mut it = got_rows.iter().skip(usize::from(x.synthetic));
            for &i in &x.entries {
                report.entry(i, &entries[i], it.next(), &received, &answer.messages);
            }
        }
        report.summary();
        server.end_script();
        overhead(up, addr).await?;
        if args.once {
            return anyhow::Ok(());
        }
        rows.echo.store(true, Ordering::Relaxed);
        println!(
            "\nsluice keeps running at http://{addr}/mcp in front of the demo server; its other \
tools echo their arguments back. Audit rows of what you send follow below. Try:\n  \
curl -s http://{addr}/mcp -H 'content-type: application/json' \
-H 'accept: application/json, text/event-stream' \\\n    \
-d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\
\"arguments\":{{\"note\":\"key AKIAQX7ZR2M4KD5T6WYB\"}}}}}}'\n\
Ctrl-C to stop."
        );
        let _ = std::io::stdout().flush();
        tokio::signal::ctrl_c().await?;
        println!("sluice demo: stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Default)]
struct Report {
    verdicts: BTreeMap<String, usize>,
    categories: BTreeMap<String, usize>,
    labelled_found: usize,
    unlabelled: usize,
    missed: Vec<String>,
    identical: usize,
    forwarded: usize,
}

impl Report {
    fn entry(
        &mut self,
        i: usize,
        e: &CorpusEntry,
        row: Option<&Value>,
        received: &[Vec<u8>],
        client_got: &[Vec<u8>],
    ) {
        let dir = match e.direction {
            Direction::ClientToServer => "c->s",
            Direction::ServerToClient => "s->c",
        };
        let Some(row) = row else {
            // The request this answers was blocked, so the server never sent it.
            println!(
                "{:>3}  {dir:<5} {:<30} {:<8} {:<38} {}",
                i + 1,
                "(never sent)",
                "-",
                "-",
                e.note
            );
            self.missed.extend(
                e.expected
                    .iter()
                    .map(|x| format!("{}@{}", x.rule, x.pointer)),
            );
            return;
        };
        let s = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or("");
        let verdict = s("verdict").to_string();
        let what = match (s("kind"), s("method"), s("tool")) {
            (k, "", _) => k.to_string(),
            (k, m, "") => format!("{k} {m}"),
            (k, m, t) => format!("{k} {m} {t}"),
        };
        let findings = row
            .get("findings")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut found: Vec<(String, String)> = Vec::new();
        for f in &findings {
            let g = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            *self.categories.entry(g("category")).or_default() += 1;
            found.push((g("rule"), g("pointer")));
        }
        found.sort();
        found.dedup();
        for x in &e.expected {
            if found.contains(&(x.rule.clone(), x.pointer.clone())) {
                self.labelled_found += 1;
            } else {
                self.missed.push(format!("{}@{}", x.rule, x.pointer));
            }
        }
        self.unlabelled += found
            .iter()
            .filter(|(r, p)| !e.expected.iter().any(|x| &x.rule == r && &x.pointer == p))
            .count();
        let mut ids: Vec<&str> = found.iter().map(|(r, _)| r.as_str()).collect();
        ids.dedup();
        println!(
            "{:>3}  {dir:<5} {:<30} {:<8} {:<38} {}",
            i + 1,
            truncate(&what, 30),
            verdict,
            truncate(
                &if ids.is_empty() {
                    "-".into()
                } else {
                    ids.join(",")
                },
                38
            ),
            e.note
        );
        *self.verdicts.entry(verdict.clone()).or_default() += 1;
        let other_side = match e.direction {
            Direction::ClientToServer => received,
            Direction::ServerToClient => client_got,
        };
        let who = match e.direction {
            Direction::ClientToServer => "server received",
            Direction::ServerToClient => "client got",
        };
        match verdict.as_str() {
            "forward" => {
                self.forwarded += 1;
                if other_side.iter().any(|m| m == &e.message) {
                    self.identical += 1;
                } else {
                    println!("       !! {who} something other than the original bytes");
                }
            }
            "redact" => {
                let marker = format!("[REDACTED:{}", ids.first().copied().unwrap_or(""));
                if let Some(text) = other_side
                    .iter()
                    .map(|m| String::from_utf8_lossy(m))
                    .find(|t| t.contains(&marker))
                {
                    println!("       {who}: {}", excerpt(&text, &marker));
                } else if let Some(names) = other_side.iter().find_map(|m| tool_names(m)) {
                    let was = tool_names(&e.message).unwrap_or_default();
                    let gone: Vec<&String> = was.iter().filter(|n| !names.contains(n)).collect();
                    println!(
                        "       {who} {} of {} tools; removed: {}",
                        names.len(),
                        was.len(),
                        gone.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                } else {
                    println!("       {who} a redacted copy (in a base64 blob, re-encoded)");
                }
            }
            "block" => {
                let to_client = client_got
                    .iter()
                    .map(|m| String::from_utf8_lossy(m))
                    .find(|t| t.contains("Blocked by sluice"));
                match (e.direction, to_client) {
                    (Direction::ClientToServer, Some(t)) if received.is_empty() => {
                        println!(
                            "       the server never saw it; client got: {}",
                            excerpt(&t, "\"message\"")
                        )
                    }
                    (_, Some(t)) => println!("       client got: {}", excerpt(&t, "\"message\"")),
                    (_, None) => {
                        println!("       nothing forwarded (a notification has no one to answer)")
                    }
                }
            }
            _ => {}
        }
    }

    fn summary(&self) {
        let v: Vec<String> = self
            .verdicts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let c: Vec<String> = self
            .categories
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        println!("\nverdicts: {}", v.join(", "));
        println!("findings: {}", c.join(", "));
        let (tp, fp, fn_) = (self.labelled_found, self.unlabelled, self.missed.len());
        println!(
            "against the corpus labels: {tp} found at the labelled pointer, {fp} unlabelled, {fn_} missed{} (precision {:.2}, recall {:.2})",
            if self.missed.is_empty() { String::new() } else { format!(": {}", self.missed.join(", ")) },
            tp as f64 / (tp + fp).max(1) as f64,
            tp as f64 / (tp + fn_).max(1) as f64
        );
        println!(
            "clean messages passed byte-identical: {} of {}",
            self.identical, self.forwarded
        );
    }
}

/// Latency of a clean 1 KB tool call straight to the demo server and through sluice, one at
/// a time, so the difference is what the proxy adds.
async fn overhead(up: SocketAddr, proxy: SocketAddr) -> anyhow::Result<()> {
    let text = "lorem ipsum dolor sit amet ".repeat(36);
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{text}"}}}}}}"#
    );
    let times = |n: usize, url: String| {
        let body = body.clone();
        async move {
            let mut c = McpHttpClient::new(url);
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                c.post(body.clone().into_bytes()).await?;
                v.push(t.elapsed());
            }
            v.sort_unstable();
            anyhow::Ok(v)
        }
    };
    times(100, format!("http://{proxy}/mcp")).await?; // warm up
    let n = 1000;
    let direct = times(n, format!("http://{up}/mcp")).await?;
    let through = times(n, format!("http://{proxy}/mcp")).await?;
    let at = |v: &[Duration], q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    println!(
        "latency of a clean 1 KB tool call, {n} in a row: direct p50 {:.0} µs p99 {:.0} µs; through sluice p50 {:.0} µs p99 {:.0} µs (adds {:.0} µs at p50; `make bench` for load figures)",
        at(&direct, 0.5),
        at(&direct, 0.99),
        at(&through, 0.5),
        at(&through, 0.99),
        at(&through, 0.5) - at(&direct, 0.5)
    );
    Ok(())
}

fn tool_names(msg: &[u8]) -> Option<Vec<String>> {
    let v: Value = serde_json::from_slice(msg).ok()?;
    let tools = v.pointer("/result/tools")?.as_array()?;
    Some(
        tools
            .iter()
            .filter_map(|t| t.get("name")?.as_str().map(str::to_owned))
            .collect(),
    )
}

fn excerpt(text: &str, at: &str) -> String {
    let Some(p) = text.find(at) else {
        return truncate(text, 90);
    };
    let from = text[..p].char_indices().rev().nth(30).map_or(0, |(i, _)| i);
    let tail: String = text[p..].chars().take(70).collect();
    format!("…{}{}…", &text[from..p], tail).replace('\n', "\\n")
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
