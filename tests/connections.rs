//! Connection hygiene of `sluice serve`: idle sockets cannot lock clients out. A connection
//! that sends nothing is closed after the header timeout, a keep-alive connection after the
//! idle timeout; when every slot is taken the longest-idle connection makes room; one address
//! can be capped. The admin listener is bounded too (a hard cap, timeouts, a Host check).

mod common;
use common::{dir, free_port, serve_toml, wait_for, Kill};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn serve(name: &str, limits: &str, up: SocketAddr) -> (Kill, u16) {
    let d = dir(name);
    let port = free_port();
    let child = serve_toml(
        &d.join("sluice.toml"),
        &format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\n[limits]\n{limits}\n[[upstream]]\nurl = \"http://{up}/mcp\"\n"
        ),
    );
    wait_for(port);
    (child, port)
}

const CALL: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;

fn request(port: u16, connection: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n{CALL}",
        CALL.len()
    )
}

/// Sends one request on a fresh connection and reads the whole answer.
fn call(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request(port, "close").as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// How long until the server closes `s` (reads until EOF or a reset), at most `limit`.
fn closed_after(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) if t.elapsed() < limit => return Some(t.elapsed()),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

fn replay_upstream(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let server = sluice_proxy::replay::ReplayServer::new(Default::default());
    let (up, serve) = rt
        .block_on(server.bind(SocketAddr::from(([127, 0, 0, 1], 0))))
        .unwrap();
    rt.spawn(serve);
    up
}

#[test]
fn idle_connections_cannot_lock_clients_out() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = replay_upstream(&rt);
    let (_proxy, port) = serve(
        "conns-idle",
        "max_connections = 8\nclient_header_timeout = \"2s\"\nclient_idle_timeout = \"3s\"",
        up,
    );
    // More silent connections than there are slots, then an ordinary call.
    let idle: Vec<TcpStream> = (0..24)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let answer = call(port);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "answered after {:?} behind idle connections",
        t.elapsed()
    );
    drop(idle);

    // A connection that never sends a byte is closed after the header timeout.
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let took =
        closed_after(&mut silent, Duration::from_secs(8)).expect("silent connection kept open");
    assert!(
        took > Duration::from_millis(1500) && took < Duration::from_secs(4),
        "{took:?}"
    );

    // A keep-alive HTTP/1.1 connection is served twice, then closed when its next request's
    // headers do not come within the header timeout (2 s, shorter than the idle timeout).
    let mut kept = TcpStream::connect(("127.0.0.1", port)).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..2 {
        kept.write_all(request(port, "keep-alive").as_bytes())
            .unwrap();
        let mut buf = [0u8; 8192];
        let n = kept.read(&mut buf).unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        std::thread::sleep(Duration::from_millis(1500));
    }
    let took = closed_after(&mut kept, Duration::from_secs(8)).expect("idle keep-alive kept open");
    assert!(
        took > Duration::from_millis(200) && took < Duration::from_secs(2),
        "closed {took:?} after the last answer plus 1.5 s"
    );
}

/// HTTP/2 has no header timeout between streams: the idle timeout closes a connection with
/// no open stream, and not while one is open.
#[test]
fn idle_http2_connections_are_closed() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = replay_upstream(&rt);
    let (_proxy, port) = serve(
        "conns-h2",
        "client_header_timeout = \"1s\"\nclient_idle_timeout = \"3s\"",
        up,
    );
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        let conn = tokio::spawn(conn);
        for _ in 0..2 {
            let req = hyper::Request::post(format!("http://127.0.0.1:{port}/mcp"))
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(Full::new(Bytes::from(CALL)))
                .unwrap();
            let resp = send.send_request(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.into_body().collect().await.unwrap();
            // Longer than the header timeout: an HTTP/2 connection is not closed by it.
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        let t = Instant::now();
        tokio::time::timeout(Duration::from_secs(8), conn)
            .await
            .expect("idle HTTP/2 connection kept open")
            .unwrap()
            .ok();
        let took = t.elapsed();
        assert!(
            took > Duration::from_millis(1000) && took < Duration::from_secs(3),
            "closed {took:?} after the last answer plus 1.5 s"
        );
    });
}

#[test]
fn one_address_can_be_capped() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = replay_upstream(&rt);
    let (_proxy, port) = serve("conns-cap", "max_connections_per_client = 3", up);
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut over = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = over.write_all(request(port, "close").as_bytes());
    let took = closed_after(&mut over, Duration::from_secs(5)).expect("over the cap kept open");
    assert!(took < Duration::from_secs(1), "{took:?}");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let answer = call(port);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// An HTTP/2 client that opens no flow-control window can never take its answer: its
/// connection is closed after the send timeout, and before that it makes room for a new
/// client when every slot is taken.
#[test]
fn answers_nobody_takes_do_not_hold_slots() {
    use bytes::Bytes;
    use http_body_util::Full;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = replay_upstream(&rt);
    let (_proxy, port) = serve(
        "conns-untaken",
        "max_connections = 4\nclient_send_timeout = \"3s\"",
        up,
    );
    let stalled = rt.block_on(async {
        let mut conns = Vec::new();
        let mut answers = Vec::new();
        for _ in 0..4 {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let (mut send, conn) =
                hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .initial_stream_window_size(0)
                    .handshake(hyper_util::rt::TokioIo::new(tcp))
                    .await
                    .unwrap();
            conns.push(tokio::spawn(conn));
            let req = hyper::Request::post(format!("http://127.0.0.1:{port}/mcp"))
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(Full::new(Bytes::from(CALL)))
                .unwrap();
            let resp = send.send_request(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            // Kept, never read: its body cannot be sent through a window of 0.
            answers.push((send, resp));
        }
        (conns, answers)
    });
    let t = Instant::now();
    let answer = call(port);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "answered after {:?} with every slot held by an untaken answer",
        t.elapsed()
    );
    let (conns, _answers) = stalled;
    rt.block_on(async {
        for conn in conns {
            tokio::time::timeout(Duration::from_secs(6), conn)
                .await
                .expect("a connection whose answer is never taken kept open")
                .unwrap()
                .ok();
        }
    });
}

/// Slowloris without end: connections that trickle header lines and reopen when closed. The
/// ones evicted for new clients are dropped at once, not after the header timeout, so an
/// ordinary client keeps getting in.
#[test]
fn sustained_slowloris_leaves_room_for_others() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = replay_upstream(&rt);
    let (_proxy, port) = serve(
        "conns-slowloris",
        "max_connections = 4\nclient_header_timeout = \"20s\"",
        up,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let attackers: Vec<_> = (0..12)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                        continue;
                    };
                    let mut line: &[u8] = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n";
                    while !stop.load(Ordering::Relaxed) && s.write_all(line).is_ok() {
                        line = b"X-Slow: y\r\n";
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        let answer = call(port);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        slowest = slowest.max(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.join().unwrap();
    }
    assert!(
        slowest < Duration::from_secs(3),
        "slowest answer {slowest:?} among connections trickling headers"
    );
}
/// `sluice serve` with an admin listener: (client port, admin port).
fn serve_admin(name: &str, config: &str, up: SocketAddr) -> (Kill, u16, u16) {
    let d = dir(name);
    let (port, admin) = (free_port(), free_port());
    let child = serve_toml(
        &d.join("sluice.toml"),
        &format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\nallowed_hosts = [\"ops.example\"]\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n{config}\n[[upstream]]\nurl = \"http://{up}/mcp\"\n"
        ),
    );
    wait_for(port);
    wait_for(admin);
    (child, port, admin)
}

/// One GET on the admin port with this `Host`, on a fresh connection: (status, answer).
fn admin_get(admin: u16, path: &str, host: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", admin)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // A connection over the cap is closed at once: the write may fail, the status is then 0.
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// The admin listener's connections are bounded like the client listener's: half a request
/// line is closed after the header timeout, an idle keep-alive connection after the idle
/// timeout, and past `[admin] max_connections` a new connection is closed at once.
#[test]
fn admin_connections_are_bounded() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = replay_upstream(&rt);
    let (_proxy, _, admin) = serve_admin(
        "conns-admin",
        "max_connections = 3\n[limits]\nclient_header_timeout = \"2s\"\nclient_idle_timeout = \"3s\"",
        up,
    );
    // wait_for's probe connections hold a slot until the server has seen them close.
    std::thread::sleep(Duration::from_millis(300));
    // Three connections that send half a request line fill the slots ...
    let opened = Instant::now();
    let mut half: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", admin)).unwrap();
            s.write_all(b"GET /metr").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // ... so a fourth is closed at once, not queued behind them.
    let mut over = TcpStream::connect(("127.0.0.1", admin)).unwrap();
    let _ = over
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{admin}\r\n\r\n").as_bytes());
    let took = closed_after(&mut over, Duration::from_secs(5)).expect("over the cap kept open");
    assert!(took < Duration::from_millis(500), "{took:?}");
    let mut rest = [0u8; 64];
    assert!(
        !matches!(over.read(&mut rest), Ok(n) if n > 0),
        "a connection over the cap was answered"
    );
    // The half requests are closed after the header timeout (2 s from their opening).
    for s in &mut half {
        let left = Duration::from_secs(6).saturating_sub(opened.elapsed());
        closed_after(s, left).expect("half a request line kept open");
        let took = opened.elapsed();
        assert!(
            took > Duration::from_millis(1500) && took < Duration::from_secs(4),
            "{took:?}"
        );
    }
    // Their slots are free again.
    let (status, answer) = admin_get(admin, "/healthz", &format!("127.0.0.1:{admin}"));
    assert_eq!(status, 200, "{answer}");

    // A keep-alive connection is served twice, then closed when idle for the idle timeout;
    // between requests the header timeout (shorter) also applies, so wait less than it.
    let mut kept = TcpStream::connect(("127.0.0.1", admin)).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..2 {
        write!(
            kept,
            "GET /readyz HTTP/1.1\r\nHost: localhost:{admin}\r\n\r\n"
        )
        .unwrap();
        let mut buf = [0u8; 4096];
        let n = kept.read(&mut buf).unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        std::thread::sleep(Duration::from_millis(1200));
    }
    let took = closed_after(&mut kept, Duration::from_secs(8)).expect("idle keep-alive kept open");
    assert!(
        took < Duration::from_secs(2),
        "closed {took:?} after the last answer plus 1.2 s"
    );
}

/// With the idle timeout shorter than the header timeout, an idle keep-alive admin connection
/// is closed after the idle timeout; so is one whose client sends requests and never reads the
/// answers (its answers stall, so no header timeout runs), after the idle timeout and a short
/// grace, which frees its slot.
#[test]
fn idle_and_stalled_admin_connections_are_closed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = replay_upstream(&rt);
    let (_proxy, _, admin) = serve_admin(
        "conns-admin-idle",
        "max_connections = 1\n[limits]\nclient_header_timeout = \"30s\"\nclient_idle_timeout = \"1s\"",
        up,
    );
    // wait_for's probe connections hold the slot until the server has seen them close.
    std::thread::sleep(Duration::from_millis(300));
    let mut kept = TcpStream::connect(("127.0.0.1", admin)).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(kept, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = kept.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let took = closed_after(&mut kept, Duration::from_secs(8)).expect("idle keep-alive kept open");
    assert!(
        took > Duration::from_millis(500) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    std::thread::sleep(Duration::from_millis(200));

    // Pipelined /metrics requests, never read: tens of MiB of answers fill the socket buffers.
    let stalled = TcpStream::connect(("127.0.0.1", admin)).unwrap();
    let mut writer = stalled.try_clone().unwrap();
    let started = Instant::now();
    std::thread::spawn(move || {
        let one = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
        for _ in 0..20_000 {
            if writer.write_all(one).is_err() {
                return; // closed by the server, as it should be
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    // The one slot is held ...
    let mut over = TcpStream::connect(("127.0.0.1", admin)).unwrap();
    let took = closed_after(&mut over, Duration::from_secs(5)).expect("over the cap kept open");
    assert!(took < Duration::from_millis(500), "{took:?}");
    // ... until the stalled connection is dropped: idle (1 s) plus the grace (5 s).
    let served = loop {
        let (status, _) = admin_get(admin, "/healthz", "localhost");
        if status == 200 || started.elapsed() > Duration::from_secs(15) {
            break status == 200;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(served, "the stalled connection kept the slot");
    let freed = started.elapsed();
    assert!(
        freed > Duration::from_secs(4) && freed < Duration::from_secs(9),
        "slot freed after {freed:?}"
    );
    drop(stalled);
}

/// A page whose name an attacker re-points at 127.0.0.1 (DNS rebinding) cannot read
/// `/metrics` or the approval queue: `Host: evil.example` gets 403 (what the client listener
/// answers), audited; loopback, the admin address and `[listen] allowed_hosts` are served.
#[test]
fn admin_answers_only_to_its_own_names() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = replay_upstream(&rt);
    let d = dir("conns-admin-hosts");
    let audit = d.join("audit.jsonl");
    let (_proxy, _, admin) = serve_admin(
        "conns-admin-hosts",
        &format!("[audit]\npath = \"{}\"", audit.display()),
        up,
    );
    for path in ["/metrics", "/approvals"] {
        for host in [
            format!("evil.example:{admin}"),
            "127.0.0.1.evil.example".to_string(),
            "localhost.evil.example".to_string(),
        ] {
            let (status, answer) = admin_get(admin, path, &host);
            assert_eq!(status, 403, "{path} {host}: {answer}");
            assert!(answer.contains("allowed_hosts"), "{answer}");
            assert!(!answer.contains("sluice_"), "metrics leaked: {answer}");
        }
    }
    for host in [
        format!("127.0.0.1:{admin}"),
        format!("localhost:{admin}"),
        format!("[::1]:{admin}"),
        "ops.example".to_string(),
    ] {
        let (status, answer) = admin_get(admin, "/metrics", &host);
        assert_eq!(status, 200, "{host}: {answer}");
        assert!(answer.contains("sluice_denials_total"), "{answer}");
    }
    // No key is configured: the approval API is off, whoever asks.
    assert_eq!(admin_get(admin, "/approvals", "localhost").0, 403);
    // Probes answer any name: orchestrators call them by the pod's address.
    let (status, answer) = admin_get(admin, "/healthz", "10.1.2.3:7071");
    assert_eq!(status, 200, "{answer}");
    let (_, metrics) = admin_get(admin, "/metrics", "localhost");
    assert!(
        metrics.contains("sluice_denials_total{control=\"host\"} 6"),
        "{metrics}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let rows = std::fs::read_to_string(&audit).unwrap();
    let denied = rows
        .lines()
        .filter(|l| l.contains("\"event\":\"denied\"") && l.contains("\"transport\":\"admin\""))
        .count();
    assert_eq!(denied, 6, "{rows}");
}

/// An upstream that answers a call whose body mentions `endless` with an SSE stream of 4 KiB
/// events until the proxy goes away, and any other call with a JSON result at once.
fn endless_upstream(rt: &tokio::runtime::Runtime) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                loop {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !got.ends_with(b"}}") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    if !String::from_utf8_lossy(&got).contains("endless") {
                        let body = r#"{"jsonrpc":"2.0","id":2,"result":{"ok":true}}"#;
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
                        if s.write_all(format!("{head}{body}").as_bytes()).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
                    if s.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let filler = "x".repeat(4000);
                    let event = format!("data: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{\"level\":\"info\",\"data\":\"{filler}\"}}}}\n\n");
                    let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                    while s.write_all(chunk.as_bytes()).await.is_ok() {}
                    return;
                }
            });
        }
    });
    addr
}

/// Clients of an HTTPS upstream share one HTTP/2 connection to it. Clients that stop reading
/// their streamed answers hold only their own streams' flow-control windows: every other
/// client's call still goes through, at once, not after `client_send_timeout`.
#[test]
fn clients_that_stop_reading_do_not_stall_a_shared_http2_upstream() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let up = endless_upstream(&rt);
    let d = dir("h2_upstream_window");
    let p = common::pki(&d);
    // Sluice A terminates TLS with ALPN h2 in front of the upstream; sluice B calls A.
    let a = free_port();
    let _a = serve_toml(
        &d.join("a.toml"),
        &format!(
            "[listen]\naddress = \"127.0.0.1:{a}\"\ntls = {{ cert = \"{}\", key = \"{}\" }}\n[[upstream]]\nurl = \"http://{up}/mcp\"\n",
            p.cert.display(),
            p.key.display()
        ),
    );
    let b = free_port();
    let _b = serve_toml(
        &d.join("b.toml"),
        &format!(
            "[listen]\naddress = \"127.0.0.1:{b}\"\n[[upstream]]\nurl = \"https://localhost:{a}/mcp\"\nca_file = \"{}\"\n",
            p.ca.display()
        ),
    );
    wait_for(a);
    wait_for(b);
    let endless = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"endless","arguments":{}}}"#;
    let post = |body: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{b}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // Four clients that ask for a stream and never read it (hyper's default windows let
    // three stall the connection): wait until their socket buffers are full.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(("127.0.0.1", b)).unwrap();
        s.write_all(post(endless).as_bytes()).unwrap();
        stalled.push(s);
    }
    std::thread::sleep(Duration::from_secs(3));
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", b)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let ping =
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ping","arguments":{}}}"#;
    s.write_all(post(ping).as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\"ok\":true") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let took = t.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.contains("\"ok\":true"), "no answer: {answer}");
    assert!(
        took < Duration::from_secs(5),
        "another client's call waited {took:?} behind clients that stopped reading"
    );
    drop(stalled);
}
