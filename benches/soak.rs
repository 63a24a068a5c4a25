//! Soak of `sluice serve`: the release binary as its own process, with the embedded default
//! rules and default limits, in front of a local echo upstream, driven for
//! `SLUICE_SOAK_SECS` (default 600) as fast as CONNS connections sending back to back can go
//! (the highest rate this machine allows with client, upstream and proxy sharing its cores).
//!
//! Every call is a 1 KB `tools/call`; one in ten carries a fabricated credential taken from
//! the default rules' own positive examples (only those a calibration pass shows sluice
//! blocks or redacts in tool-call arguments). The upstream echoes the arguments back, so each
//! call is inspected in both directions.
//!
//! Every `SLUICE_SOAK_REPORT` seconds (default 60) and at the end it prints calls per second,
//! p50 and p99 latency, the proxy's resident memory (VmRSS), and the counts that must stay
//! zero: errors (a transport failure or a status other than 200), leaks (a credential that
//! came back) and clean calls that came back changed. `make bench` runs it; it asserts
//! nothing, it reports.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sluice_engine::corpus::synth::{benign_text, Rng};
use sluice_engine::{Action, Category, Ruleset};
use sluice_proxy::replay::ReplayServer;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONNS: usize = 32;
/// One call in this many carries a credential.
const SECRET_EVERY: u64 = 10;
const CALL_BYTES: usize = 1024;

/// A prepared call: its body, and the credential it carries (if any).
struct Call {
    body: Bytes,
    text: String,
    secret: Option<String>,
}

fn call(id: u64, text: String, secret: Option<String>) -> Call {
    let v = serde_json::json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}}
    });
    Call {
        body: Bytes::from(serde_json::to_vec(&v).unwrap()),
        text,
        secret,
    }
}

fn benign(seed: u64, len: usize) -> String {
    let mut text = String::new();
    benign_text(&mut Rng::new(seed), len, &mut text);
    text
}

/// What came back for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A clean call echoed unchanged.
    Clean,
    /// A clean call that came back changed (a false alarm).
    Changed,
    /// A credential call blocked or with the credential removed.
    Acted,
    /// A credential call whose credential came back.
    Leaked,
    /// No answer, or a status other than 200.
    Error,
}

/// The text the echo upstream sent back, as the client received it; `None` for a JSON-RPC
/// error (a blocked call).
fn echoed(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let args = v.pointer("/result/content/0/text")?.as_str()?;
    let args: Value = serde_json::from_str(args).ok()?;
    Some(args.get("text")?.as_str()?.to_string())
}

fn judge(c: &Call, status: u16, body: &[u8]) -> Outcome {
    if status != 200 {
        return Outcome::Error;
    }
    let back = echoed(body);
    match (&c.secret, back) {
        (None, Some(t)) if t == c.text => Outcome::Clean,
        (None, _) => Outcome::Changed,
        (Some(s), Some(t)) if t.contains(s.as_str()) => Outcome::Leaked,
        (Some(_), _) => Outcome::Acted,
    }
}

async fn connect(addr: SocketAddr) -> Option<http1::SendRequest<Full<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    tcp.set_nodelay(true).ok()?;
    let (send, conn) = http1::handshake(TokioIo::new(tcp)).await.ok()?;
    tokio::spawn(conn);
    Some(send)
}

/// Sends one call on `send` (reconnecting first when it is closed) and judges the answer.
async fn one(
    addr: SocketAddr,
    send: &mut Option<http1::SendRequest<Full<Bytes>>>,
    c: &Call,
) -> Outcome {
    if send.as_ref().is_none_or(|s| s.is_closed()) {
        *send = connect(addr).await;
    }
    let Some(s) = send.as_mut() else {
        return Outcome::Error;
    };
    let req = hyper::Request::post("/mcp")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(Full::new(c.body.clone()))
        .unwrap();
    let Ok(resp) = s.send_request(req).await else {
        *send = None;
        return Outcome::Error;
    };
    let status = resp.status().as_u16();
    match resp.into_body().collect().await {
        Ok(body) => judge(c, status, &body.to_bytes()),
        Err(_) => {
            *send = None;
            Outcome::Error
        }
    }
}

/// The counts and latencies of one reporting window.
#[derive(Default)]
struct Window {
    lat_us: Vec<u32>,
    counts: [u64; 5],
}

impl Window {
    fn add(&mut self, o: Outcome, lat: Duration) {
        self.lat_us
            .push(lat.as_micros().min(u32::MAX as u128) as u32);
        self.counts[o as usize] += 1;
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_string();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn report(label: &str, w: &mut Window, secs: f64, rss: u64) {
    w.lat_us.sort_unstable();
    let at = |q: f64| {
        w.lat_us
            .get(((w.lat_us.len().max(1) - 1) as f64 * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    let [clean, changed, acted, leaked, errors] = w.counts;
    println!(
        "{label:>9} {:>9.0} {:>8} {:>8} {:>9} | {clean:>9} {acted:>8} {errors:>6} {leaked:>6} {changed:>8}",
        w.lat_us.len() as f64 / secs,
        format!("{} µs", at(0.5)),
        format!("{} µs", at(0.99)),
        format!("{:.1} MB", rss as f64 / 1024.0),
    );
}

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_proxy(upstream: SocketAddr) -> (Proxy, SocketAddr) {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("sluice-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("soak.toml");
    std::fs::write(
        &cfg,
        format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\n[[upstream]]\nurl = \"http://{upstream}/mcp\"\n"
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proxy = Proxy(child);
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "sluice did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (proxy, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The default rules' positive credential examples that sluice blocks or redacts in a
/// tool call's arguments, found by sending each once.
async fn calibrate(addr: SocketAddr) -> (Vec<String>, usize) {
    let examples: Vec<String> = Ruleset::embedded_default()
        .rules
        .iter()
        .filter(|r| r.category == Category::Secret && r.action != Action::Monitor)
        .flat_map(|r| r.examples.iter().take(1).cloned())
        .collect();
    let tried = examples.len();
    let mut send = None;
    let mut kept = Vec::new();
    for (i, ex) in examples.into_iter().enumerate() {
        let text = format!(
            "{} {ex} {}",
            benign(i as u64, 200),
            benign(i as u64 + 1, 200)
        );
        let c = call(i as u64, text, Some(ex.clone()));
        if one(addr, &mut send, &c).await == Outcome::Acted {
            kept.push(ex);
        }
    }
    (kept, tried)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let secs = env("SLUICE_SOAK_SECS", 600);
    let every = env("SLUICE_SOAK_REPORT", 60).max(1);

    let upstream_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = ReplayServer::new(Default::default());
    let (up, serve) = upstream_rt
        .block_on(server.clone().bind(SocketAddr::from(([127, 0, 0, 1], 0))))
        .unwrap();
    upstream_rt.spawn(serve);
    let (mut proxy, addr) = start_proxy(up);
    let pid = proxy.0.id();
    let rss_fresh = rss_kib(pid);

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (secrets, tried) = client_rt.block_on(calibrate(addr));
    assert!(!secrets.is_empty(), "no credential example is acted on");
    server.take_received();

    // Prepared calls: 64 clean ones and one per credential example, ids unique per slot.
    let clean: Vec<Call> = (0..64)
        .map(|i| call(i, benign(1000 + i, CALL_BYTES), None))
        .collect();
    let dirty: Vec<Call> = secrets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let half = CALL_BYTES.saturating_sub(s.len()) / 2;
            let text = format!(
                "{} {s} {}",
                benign(i as u64, half),
                benign(i as u64 + 7, half)
            );
            call(10_000 + i as u64, text, Some(s.clone()))
        })
        .collect();
    let calls = Arc::new((clean, dirty));

    let rss_start = rss_kib(pid);
    println!(
        "soak: {secs} s, {CONNS} connections back to back, 1 KB tools/call, 1 in {SECRET_EVERY} with one of {} credentials ({tried} default-rule examples tried), sluice serve pid {pid} (default threads)",
        secrets.len(),
    );
    // Each rule's confirming regex is built the first time the rule hits, so the calibration
    // (one call per rule) grows the proxy's memory before the soak starts.
    println!(
        "RSS: fresh {:.1} MB, after calibration {:.1} MB",
        rss_fresh as f64 / 1024.0,
        rss_start as f64 / 1024.0
    );
    println!(
        "{:>9} {:>9} {:>8} {:>8} {:>9} | {:>9} {:>8} {:>6} {:>6} {:>8}",
        "window", "calls/s", "p50", "p99", "RSS", "clean", "acted", "errors", "leaked", "changed"
    );
    let window = Arc::new(Mutex::new(Window::default()));
    let start = Instant::now();
    let dur = Duration::from_secs(secs);
    let tasks: Vec<_> = (0..CONNS as u64)
        .map(|j| {
            let (calls, window) = (calls.clone(), window.clone());
            client_rt.spawn(async move {
                let mut send = None;
                let mut k = j;
                while start.elapsed() < dur {
                    let (clean, dirty) = &*calls;
                    let c = if k % SECRET_EVERY == 0 {
                        &dirty[(k / SECRET_EVERY) as usize % dirty.len()]
                    } else {
                        &clean[k as usize % clean.len()]
                    };
                    let t = Instant::now();
                    let o = one(addr, &mut send, c).await;
                    window.lock().unwrap().add(o, t.elapsed());
                    k += CONNS as u64;
                }
            })
        })
        .collect();

    let mut total = Window::default();
    let mut last = start;
    let mut n = 0u64;
    while last < start + dur {
        let next = (start + Duration::from_secs(every * (n + 1))).min(start + dur);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        n += 1;
        let mut w = std::mem::take(&mut *window.lock().unwrap());
        server.take_received(); // the upstream keeps every body it gets
        total.lat_us.extend_from_slice(&w.lat_us);
        for (t, c) in total.counts.iter_mut().zip(w.counts) {
            *t += c;
        }
        let label = format!("{} s", (next - start).as_secs());
        report(&label, &mut w, (next - last).as_secs_f64(), rss_kib(pid));
        last = next;
    }
    client_rt.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
    let mut tail = std::mem::take(&mut *window.lock().unwrap());
    total.lat_us.append(&mut tail.lat_us);
    for (t, c) in total.counts.iter_mut().zip(tail.counts) {
        *t += c;
    }
    let rss_end = rss_kib(pid);
    report("all", &mut total, start.elapsed().as_secs_f64(), rss_end);
    let running = matches!(proxy.0.try_wait(), Ok(None));
    println!(
        "RSS: start {:.1} MB, end {:.1} MB; sluice still running at the end: {running}",
        rss_start as f64 / 1024.0,
        rss_end as f64 / 1024.0,
    );
}
