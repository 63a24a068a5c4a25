//! Load benchmark of the HTTP proxy: requests per second and latency of clean tool calls
//! (1 KB and 64 KB of arguments, echoed back by the upstream, so both directions are
//! inspected), straight to a local upstream and through sluice, on real sockets.
//!
//! Three paths: direct, through sluice, and through sluice with per-message gateway controls
//! configured (tool tags, an argument constraint, a sequence rule, an upstream rate limit).
//! Two measurements per size:
//! - closed loop: CONNS connections send back to back for the duration: throughput, p50, p99;
//! - open loop: a fixed rate (2,000/s for 1 KB, 200/s for 64 KB), latency counted from each request's
//!   scheduled start (so a stall is not hidden by the sender waiting): p50 and p99, and what
//!   the proxy adds at each.
//!
//! Everything runs on this machine, load generator included, so the proxy competes with its
//! client and upstream for the cores. `cargo bench --bench proxy_load`; SLUICE_BENCH_SECS sets
//! the duration of each run (default 5), SLUICE_BENCH_INLINE_MAX the largest message scanned on
//! the I/O thread (default 16 KiB; 0 sends every message to the scan workers).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use sluice_engine::corpus::synth::{benign_text, Rng};
use sluice_engine::{CompiledRules, Policy, Pool, Ruleset};
use sluice_proxy::config::{HttpChecks, Limits, UpstreamConfig};
use sluice_proxy::http::HttpProxy;
use sluice_proxy::replay::ReplayServer;

// The allocator the sluice binary ships with.
#[path = "support/load.rs"]
mod load;
use load::{summarize, Run};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONNS: usize = 32;

fn call(size: usize) -> Bytes {
    let mut text = String::new();
    benign_text(&mut Rng::new(7), size, &mut text);
    let v = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}}
    });
    Bytes::from(serde_json::to_vec(&v).unwrap())
}

async fn connect(addr: SocketAddr) -> http1::SendRequest<Full<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (send, conn) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    send
}

async fn one(send: &mut http1::SendRequest<Full<Bytes>>, body: &Bytes) {
    let req = hyper::Request::post("/mcp")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(Full::new(body.clone()))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200, "the benchmark's calls are clean");
    resp.into_body().collect().await.unwrap();
}

async fn closed_loop(addr: SocketAddr, body: Bytes, dur: Duration) -> Run {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONNS)
        .map(|_| {
            let body = body.clone();
            tokio::spawn(async move {
                let mut send = connect(addr).await;
                let mut lat = Vec::new();
                while start.elapsed() < dur {
                    let t = Instant::now();
                    one(&mut send, &body).await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    summarize(all, start.elapsed().as_secs_f64())
}

async fn open_loop(addr: SocketAddr, body: Bytes, dur: Duration, rate: u64) -> Run {
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let total = (dur.as_secs_f64() * rate as f64) as u64;
    let start = Instant::now() + Duration::from_millis(50);
    let tasks: Vec<_> = (0..CONNS as u64)
        .map(|j| {
            let body = body.clone();
            tokio::spawn(async move {
                let mut send = connect(addr).await;
                let mut lat = Vec::new();
                let mut k = j;
                let mut prev_done = start;
                while k < total {
                    let from = load::wait_turn(start, interval, k, prev_done).await;
                    one(&mut send, &body).await;
                    prev_done = Instant::now();
                    lat.push(prev_done - from);
                    k += CONNS as u64;
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    summarize(all, dur.as_secs_f64())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and test discovery
    }
    let secs: u64 = std::env::var("SLUICE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dur = Duration::from_secs(secs);
    let rules = CompiledRules::compile(Ruleset::embedded_default()).unwrap();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let threads = env("SLUICE_BENCH_IO_THREADS", cores);
    let workers = env("SLUICE_BENCH_SCAN_THREADS", cores);
    let inline_max = env(
        "SLUICE_BENCH_INLINE_MAX",
        sluice_engine::pool::DEFAULT_INLINE_MAX,
    );

    let upstream_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = ReplayServer::new(Default::default());
    let (up, serve) = upstream_rt
        .block_on(server.bind(SocketAddr::from(([127, 0, 0, 1], 0))))
        .unwrap();
    upstream_rt.spawn(serve);

    let proxy_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    // The same proxy twice: without gateway controls, and with the per-message ones a call
    // meets (tool entry with tags, argument constraint, a sequence rule, an upstream rate
    // limit high enough never to refuse), which parse every request once more.
    let pool = Arc::new(
        Pool::new(rules, workers)
            .unwrap()
            .with_inline_max(inline_max),
    );
    let gateway_toml = format!(
        "[[upstream]]\nurl = \"http://{up}/mcp\"\nrate = \"10000000/s\"\n[[tool]]\nname = \"echo\"\ntags = [\"reads-secrets\"]\narguments.text = {{ max_length = 1000000 }}\n[[tool]]\nname = \"send_*\"\ntags = [\"sends-external\"]\n[[sequence]]\nafter = \"reads-secrets\"\ndeny = \"sends-external\"\n"
    );
    let gateway_cfg = sluice_proxy::config::Config::from_str(&gateway_toml, "bench").unwrap();
    let mut vias = Vec::new();
    for gateway in [
        sluice_proxy::policy::Gateway::default(),
        sluice_proxy::policy::Gateway::new(&gateway_cfg, None).unwrap(),
    ] {
        let proxy = HttpProxy {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            allowed_hosts: Vec::new(),
            tls: None,
            upstreams: vec![UpstreamConfig {
                url: format!("http://{up}/mcp"),
                prefix: None,
                ca_file: None,
                ..Default::default()
            }
            .check()
            .unwrap()],
            pool: pool.clone(),
            policy: Arc::new(Policy::default()),
            audit: None,
            limits: Limits::default(),
            checks: HttpChecks::default(),
            http3: None,
            gateway: Arc::new(gateway),
            runtime: Default::default(),
            metrics: Default::default(),
        };
        let (via, serve) = proxy_rt.block_on(proxy.bind()).unwrap();
        proxy_rt.spawn(serve);
        vias.push(via);
    }

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "proxy load: {CONNS} connections, {secs} s per run, {threads} proxy I/O threads + {workers} scan workers, client and upstream on the same machine"
    );
    println!(
        "{:<6} {:<8} {:>10} {:>9} {:>9} | {:>6} {:>9} {:>9}",
        "size", "path", "req/s", "p50", "p99", "rate", "p50", "p99"
    );
    let us = load::us;
    for (name, size, rate) in [("1 KB", 1024, 2_000), ("64 KB", 64 * 1024, 200)] {
        let body = call(size);
        let mut open = Vec::new();
        for (path, addr) in [("direct", up), ("sluice", vias[0]), ("+gateway", vias[1])] {
            client_rt.block_on(closed_loop(addr, body.clone(), Duration::from_millis(500)));
            let c = client_rt.block_on(closed_loop(addr, body.clone(), dur));
            let o = client_rt.block_on(open_loop(addr, body.clone(), dur, rate));
            println!(
                "{name:<6} {path:<8} {:>10.0} {:>9} {:>9} | {rate:>6} {:>9} {:>9}",
                c.rps,
                us(c.p50),
                us(c.p99),
                us(o.p50),
                us(o.p99)
            );
            open.push(o);
        }
        println!(
            "{name:<6} added by sluice at {rate}/s: p50 {} p99 {}; with gateway controls: p50 {} p99 {}",
            us(open[1].p50.saturating_sub(open[0].p50)),
            us(open[1].p99.saturating_sub(open[0].p99)),
            us(open[2].p50.saturating_sub(open[0].p50)),
            us(open[2].p99.saturating_sub(open[0].p99))
        );
    }
}
