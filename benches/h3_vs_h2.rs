//! Inspected tool calls over HTTP/3 (QUIC) against HTTP/2 (TLS), both to the same in-process
//! sluice and upstream on loopback: one connection per protocol carrying CONCURRENT streams,
//! requests per second and latency percentiles; then a fixed rate for the tail.
//! `cargo bench --bench h3_vs_h2`; SLUICE_BENCH_SECS sets each run's duration (default 5).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use sluice_engine::corpus::synth::{benign_text, Rng};
use sluice_engine::{CompiledRules, Policy, Pool, Ruleset};
use sluice_proxy::config::{HttpChecks, Limits, UpstreamConfig};
use sluice_proxy::http::{tls, HttpProxy};
use sluice_proxy::replay::ReplayServer;

#[path = "support/load.rs"]
mod load;
use load::{summarize, Run};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENT: usize = 32;

fn call(size: usize) -> Bytes {
    let mut text = String::new();
    benign_text(&mut Rng::new(7), size, &mut text);
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}}
        }))
        .unwrap(),
    )
}

fn request(port: u16) -> hyper::Request<()> {
    hyper::Request::post(format!("https://localhost:{port}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(())
        .unwrap()
}

#[derive(Clone)]
enum Client {
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
    H3(h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>),
}

impl Client {
    async fn call(&mut self, port: u16, body: &Bytes) {
        match self {
            Client::H2(s) => {
                let req = request(port).map(|()| Full::new(body.clone()));
                let resp = s.send_request(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                resp.into_body().collect().await.unwrap();
            }
            Client::H3(s) => {
                let mut stream = s.send_request(request(port)).await.unwrap();
                stream.send_data(body.clone()).await.unwrap();
                stream.finish().await.unwrap();
                let resp = stream.recv_response().await.unwrap();
                assert_eq!(resp.status(), 200);
                while let Some(mut chunk) = stream.recv_data().await.unwrap() {
                    chunk.advance(chunk.remaining());
                }
            }
        }
    }
}

fn client_tls(ca: &[u8], alpn: &[u8]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca.to_vec()))
        .unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    cfg
}

async fn h2_client(addr: SocketAddr, ca: &[u8]) -> Client {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client_tls(ca, b"h2")))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    Client::H2(send)
}

async fn h3_client(addr: SocketAddr, ca: &[u8]) -> Client {
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(client_tls(ca, b"h3")).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    let conn = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
    let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(conn))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
        drop(endpoint);
    });
    Client::H3(send)
}

async fn closed(client: Client, port: u16, body: Bytes, dur: Duration) -> Run {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let (mut c, body) = (client.clone(), body.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while start.elapsed() < dur {
                    let t = Instant::now();
                    c.call(port, &body).await;
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

async fn fixed_rate(client: Client, port: u16, body: Bytes, dur: Duration, rate: u64) -> Run {
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let total = (dur.as_secs_f64() * rate as f64) as u64;
    let start = Instant::now() + Duration::from_millis(20);
    let tasks: Vec<_> = (0..CONCURRENT as u64)
        .map(|j| {
            let (mut c, body) = (client.clone(), body.clone());
            tokio::spawn(async move {
                let (mut lat, mut k, mut prev_done) = (Vec::new(), j, start);
                while k < total {
                    let from = load::wait_turn(start, interval, k, prev_done).await;
                    c.call(port, &body).await;
                    prev_done = Instant::now();
                    lat.push(prev_done - from);
                    k += CONCURRENT as u64;
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
        return;
    }
    let secs: u64 = std::env::var("SLUICE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dur = Duration::from_secs(secs);
    let dir = std::env::temp_dir().join(format!("sluice-h3-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let ca = cert.der().to_vec();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = ReplayServer::new(Default::default());
    let (up, serve) = rt
        .block_on(server.bind(SocketAddr::from(([127, 0, 0, 1], 0))))
        .unwrap();
    rt.spawn(serve);
    let rules = CompiledRules::compile(Ruleset::embedded_default()).unwrap();
    let proxy = HttpProxy {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        allowed_hosts: Vec::new(),
        tls: Some(tls::server_config(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap()),
        upstreams: vec![UpstreamConfig {
            url: format!("http://{up}/mcp"),
            prefix: None,
            ca_file: None,
            ..Default::default()
        }
        .check()
        .unwrap()],
        pool: Arc::new(Pool::new(rules, 2).unwrap()),
        policy: Arc::new(Policy::default()),
        audit: None,
        limits: Limits::default(),
        checks: HttpChecks::default(),
        http3: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        gateway: Default::default(),
        runtime: Default::default(),
        metrics: Default::default(),
    };
    let bound = rt.block_on(proxy.bind_all()).unwrap();
    let (tcp, udp) = (bound.tcp, bound.http3.unwrap());
    rt.spawn(bound.serve);

    println!(
        "HTTP/3 vs HTTP/2 through sluice (TLS, one connection, {CONCURRENT} concurrent streams, {secs} s per run, loopback, client and upstream on the same machine)"
    );
    println!(
        "{:<6} {:<7} {:>9} {:>9} {:>9} | {:>9} {:>9} at 1000/s",
        "size", "proto", "req/s", "p50", "p99", "p50", "p99"
    );
    let us = load::us;
    for (name, size) in [("1 KB", 1024), ("64 KB", 64 << 10)] {
        let body = call(size);
        for proto in ["HTTP/2", "HTTP/3"] {
            let client = rt.block_on(async {
                if proto == "HTTP/2" {
                    h2_client(tcp, &ca).await
                } else {
                    h3_client(udp, &ca).await
                }
            });
            let port = if proto == "HTTP/2" {
                tcp.port()
            } else {
                udp.port()
            };
            rt.block_on(closed(
                client.clone(),
                port,
                body.clone(),
                Duration::from_millis(500),
            ));
            let c = rt.block_on(closed(client.clone(), port, body.clone(), dur));
            let rate = if size > 4096 { 200 } else { 1000 };
            let o = rt.block_on(fixed_rate(client, port, body.clone(), dur, rate));
            println!(
                "{name:<6} {proto:<7} {:>9.0} {:>9} {:>9} | {:>9} {:>9} (at {rate}/s)",
                c.rps,
                us(c.p50),
                us(c.p99),
                us(o.p50),
                us(o.p99)
            );
        }
    }
}
