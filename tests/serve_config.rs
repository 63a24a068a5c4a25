//! `sluice serve --config`: TLS on the front end with ALPN (h2 and http/1.1), https upstreams
//! trusted through `ca_file`, several upstreams routed by path prefix, per-scope policy, and
//! the official Python SDK client and server at the ends.

mod common;
use common::{
    dir, free_port, free_udp_port, pki, python_client, python_server, wait_for, Kill, AWS,
};

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rustls::pki_types::{CertificateDer, ServerName};

fn serve_with_config(d: &Path, name: &str, toml: &str) -> Kill {
    let cfg = d.join(name);
    std::fs::write(&cfg, toml).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    Kill(
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--threads", "2", "--config"])
            .arg(&cfg)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// SDK client -> sluice B (plain, two upstreams by prefix, arguments blocked) -> either
/// sluice A over HTTPS (trusted through ca_file) -> SDK server, or the SDK server directly.
#[test]
fn sdk_through_prefix_routes_an_https_upstream_and_per_scope_policy() {
    let d = dir("chain");
    let p = pki(&d);
    let received = d.join("received.log");
    let up = free_port();
    let _server = python_server(
        "sdk_http_server.py",
        &[
            received.display().to_string(),
            up.to_string(),
            "sse".to_string(),
        ],
        up,
    );
    let a = free_port();
    let _a = serve_with_config(
        &d,
        "a.toml",
        &format!(
            r#"
[listen]
address = "127.0.0.1:{a}"
tls = {{ cert = "cert.pem", key = "key.pem" }}
[policy]
mode = "redact"
[[upstream]]
url = "http://127.0.0.1:{up}/mcp"
"#
        ),
    );
    wait_for(a);
    let b = free_port();
    let _b = serve_with_config(
        &d,
        "b.toml",
        &format!(
            r#"
[listen]
address = "127.0.0.1:{b}"
[policy]
mode = "redact"
[policy.scopes]
arguments = "block"
[[upstream]]
url = "https://localhost:{a}/mcp"
prefix = "/secure"
ca_file = "ca.pem"
[[upstream]]
url = "http://127.0.0.1:{up}/mcp"
prefix = "/plain"
"#
        ),
    );
    wait_for(b);
    assert!(p.ca.exists());
    for prefix in ["/secure", "/plain"] {
        let r = python_client(
            "sdk_http_client.py",
            &format!("http://127.0.0.1:{b}{prefix}"),
        );
        assert_eq!(r["tools"], serde_json::json!(["echo", "leak"]), "{prefix}");
        assert_eq!(r["clean"]["text"], "echo: hello", "{prefix}");
        let err = r["secret_argument"]["error"].as_str().unwrap_or_default();
        assert!(err.contains("aws.access-key-id"), "{prefix}: {r}");
        assert_eq!(
            r["secret_result"]["text"], "aws_access_key_id=[REDACTED:aws.access-key-id]",
            "{prefix}"
        );
    }
    let got = std::fs::read_to_string(&received).unwrap_or_default();
    assert_eq!(
        got, "hello\nhello\n",
        "blocked arguments never reached the server"
    );
    // No route for other paths.
    let mut s = TcpStream::connect(("127.0.0.1", b)).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "POST /elsewhere HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}

fn tls_client(ca: &Path, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).unwrap();
    let der = pem_to_der(&pem);
    roots.add(CertificateDer::from(der)).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(pem);
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// A tool call with a secret over TLS, once with ALPN h2 and once with http/1.1, against
/// sluice in front of the in-process replay server (which echoes arguments back).
#[test]
fn tls_front_end_negotiates_h2_and_http11_by_alpn() {
    let d = dir("alpn");
    let p = pki(&d);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let server = sluice_proxy::replay::ReplayServer::new(Default::default());
        let (up, serve) = server
            .clone()
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        tokio::spawn(serve);
        let port = free_port();
        let _proxy = Kill(
            Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(["serve", "--threads", "2", "--mode", "redact"])
                .args(["--upstream", &format!("http://{up}/mcp")])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .arg("--tls-cert")
                .arg(&p.cert)
                .arg("--tls-key")
                .arg(&p.key)
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for(port);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"echo","arguments":{{"note":"key {AWS}"}}}}}}"#
        );
        for alpn in [&b"h2"[..], b"http/1.1"] {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let tls = tls_client(&p.ca, alpn)
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn), "ALPN");
            let io = hyper_util::rt::TokioIo::new(tls);
            let req = hyper::Request::post(format!("https://localhost:{port}/mcp"))
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(Full::new(Bytes::from(body.clone())))
                .unwrap();
            let resp = if alpn == b"h2" {
                let (mut send, conn) =
                    hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                        .await
                        .unwrap();
                tokio::spawn(conn);
                send.send_request(req).await.unwrap()
            } else {
                let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
                tokio::spawn(conn);
                send.send_request(req).await.unwrap()
            };
            assert_eq!(resp.status(), 200);
            let text =
                String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec())
                    .unwrap();
            assert!(text.contains("[REDACTED:aws.access-key-id]"), "{text}");
            assert!(!text.contains(AWS), "{text}");
        }
        let seen = server.take_received();
        assert_eq!(seen.len(), 2);
        assert!(seen
            .iter()
            .all(|b| !String::from_utf8_lossy(b).contains(AWS)));
    });
}

#[test]
fn broken_config_and_tls_files_are_named() {
    let d = dir("broken");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--upstream", "http://127.0.0.1:1/mcp"])
        .arg("--tls-cert")
        .arg(d.join("missing.pem"))
        .arg("--tls-key")
        .arg(d.join("missing-key.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.pem"), "{err}");

    let cfg = d.join("typo.toml");
    std::fs::write(
        &cfg,
        "[[upstream]]\nurl = \"http://127.0.0.1:1/mcp\"\n\n[policy.rules]\n\"aws.acess-key-id\" = \"block\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("aws.acess-key-id"), "{err}");
}

fn raw(port: u16, request: &str, wait: Duration) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Origin (DNS-rebinding defence), MCP-Protocol-Version, and clients that send too slowly:
/// each refused with its own status, none of them stopping a well-behaved client.
#[test]
fn transport_checks_and_slow_clients() {
    let d = dir("checks");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let server = sluice_proxy::replay::ReplayServer::new(Default::default());
    let (up, serve) = rt
        .block_on(server.clone().bind(SocketAddr::from(([127, 0, 0, 1], 0))))
        .unwrap();
    rt.spawn(serve);
    let port = free_port();
    let _proxy = serve_with_config(
        &d,
        "checks.toml",
        &format!(
            r#"
[listen]
address = "127.0.0.1:{port}"
[limits]
client_header_timeout = "1s"
client_body_timeout = "1s"
[http]
allowed_origins = ["https://app.example"]
[[upstream]]
url = "http://{up}/mcp"
"#
        ),
    );
    wait_for(port);
    let body =
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
    let post = |extra: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let w = Duration::from_secs(5);
    assert!(raw(port, &post(""), w).starts_with("HTTP/1.1 200"));
    assert!(raw(port, &post("Origin: https://app.example\r\n"), w).starts_with("HTTP/1.1 200"));
    assert!(raw(port, &post("Origin: http://localhost:5173\r\n"), w).starts_with("HTTP/1.1 200"));
    let evil = raw(port, &post("Origin: https://evil.example\r\n"), w);
    assert!(evil.starts_with("HTTP/1.1 403"), "{evil}");
    assert!(evil.contains("-32600"), "{evil}");
    let v = raw(port, &post("MCP-Protocol-Version: 2025-06-18\r\n"), w);
    assert!(v.starts_with("HTTP/1.1 200"), "{v}");
    let v = raw(port, &post("MCP-Protocol-Version: 2031-01-01\r\n"), w);
    assert!(
        v.starts_with("HTTP/1.1 400") && v.contains("2031-01-01"),
        "{v}"
    );
    // A compressed (or otherwise encoded) request body is refused, not forwarded unread.
    for coding in ["gzip", "br", "identity, zstd"] {
        let e = raw(port, &post(&format!("Content-Encoding: {coding}\r\n")), w);
        assert!(e.starts_with("HTTP/1.1 415") && e.contains("-32600"), "{e}");
    }
    let id = raw(port, &post("Content-Encoding: identity\r\n"), w);
    assert!(id.starts_with("HTTP/1.1 200"), "{id}");

    // Headers that never finish: the connection is dropped after client_header_timeout.
    let t = Instant::now();
    let slow = raw(port, "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n", w);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(!slow.contains("200"), "{slow}");
    // A body that never finishes: 408 after client_body_timeout.
    let t = Instant::now();
    let slow = raw(
        port,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"",
        w,
    );
    assert!(slow.starts_with("HTTP/1.1 408"), "{slow}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    // Still serving.
    assert!(raw(port, &post(""), w).starts_with("HTTP/1.1 200"));
    assert_eq!(
        server.take_received().len(),
        6,
        "only the accepted calls arrived"
    );
}

/// An upstream that answers every request with `status_line`, these headers and this body.
fn fixed_upstream(answer: String) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            let _ = s.write_all(answer.as_bytes());
        }
    });
    port
}

/// Error statuses pass with their headers (the client needs `WWW-Authenticate` to log in),
/// even when the body is not JSON-RPC; an error body that carries a secret is withheld.
#[test]
fn upstream_error_answers_pass_through_unless_they_leak() {
    let d = dir("errors");
    let body = r#"{"error":"invalid_token","error_description":"token expired"}"#;
    let up = fixed_upstream(format!(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer resource_metadata=\"http://x/.well-known/oauth-protected-resource\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    let leaky = format!("<html><pre>Traceback: AWS_ACCESS_KEY_ID={AWS}</pre></html>");
    let up2 = fixed_upstream(format!(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{leaky}",
        leaky.len()
    ));
    let port = free_port();
    let _proxy = serve_with_config(
        &d,
        "errors.toml",
        &format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\n[[upstream]]\nurl = \"http://127.0.0.1:{up}/mcp\"\n[[upstream]]\nurl = \"http://127.0.0.1:{up2}/leaky\"\n"
        ),
    );
    wait_for(port);
    let req = |path: &str| {
        format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 46\r\nConnection: close\r\n\r\n{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}}")
    };
    let a = raw(port, &req("/mcp"), Duration::from_secs(5));
    assert!(a.starts_with("HTTP/1.1 401"), "{a}");
    assert!(
        a.to_ascii_lowercase()
            .contains("www-authenticate: bearer resource_metadata"),
        "{a}"
    );
    assert!(a.ends_with(body), "{a}");
    let b = raw(port, &req("/leaky"), Duration::from_secs(5));
    assert!(b.starts_with("HTTP/1.1 500"), "{b}");
    assert!(b.contains("application/json"), "{b}");
    assert!(!b.contains(AWS), "{b}");
    assert!(b.contains("aws.access-key-id"), "{b}");
}

/// A success of a type other than JSON or SSE is read whole and inspected as text (an old
/// TypeScript SDK parses `text/plain; x=application/json` as JSON-RPC); two Content-Type
/// headers leave it to the client which one counts, so the answer is refused; a clean
/// `202 Accepted` in plain text (the legacy transport) passes as it is.
#[test]
fn answers_of_other_types_are_inspected_and_ambiguous_ones_refused() {
    let d = dir("other_types");
    let leaky = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{"note":"{AWS}"}}}}"#);
    let fixed = |head: &str, body: &str| {
        fixed_upstream(format!(
            "HTTP/1.1 {head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
    };
    let plain = fixed(
        "200 OK\r\nContent-Type: text/plain; x=application/json",
        &leaky,
    );
    let untyped = fixed("200 OK", &leaky);
    let twice = fixed(
        "200 OK\r\nContent-Type: text/plain\r\nContent-Type: application/json",
        r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
    );
    let accepted = fixed("202 Accepted\r\nContent-Type: text/plain", "Accepted");
    let port = free_port();
    let mut toml = format!("[listen]\naddress = \"127.0.0.1:{port}\"\n");
    for (up, path) in [
        (plain, "plain"),
        (untyped, "untyped"),
        (twice, "twice"),
        (accepted, "accepted"),
    ] {
        toml.push_str(&format!(
            "[[upstream]]\nurl = \"http://127.0.0.1:{up}/{path}\"\n"
        ));
    }
    let _proxy = serve_with_config(&d, "types.toml", &toml);
    wait_for(port);
    let req = |path: &str| {
        format!("POST /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 46\r\nConnection: close\r\n\r\n{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}}")
    };
    for path in ["plain", "untyped"] {
        let a = raw(port, &req(path), Duration::from_secs(5));
        assert!(!a.contains(AWS), "{path}: {a}");
        assert!(a.contains("aws.access-key-id"), "{path}: {a}");
    }
    let a = raw(port, &req("twice"), Duration::from_secs(5));
    assert!(a.starts_with("HTTP/1.1 502"), "{a}");
    assert!(a.contains("Content-Type headers"), "{a}");
    let a = raw(port, &req("accepted"), Duration::from_secs(5));
    assert!(a.starts_with("HTTP/1.1 202"), "{a}");
    assert!(a.ends_with("\r\n\r\nAccepted"), "{a}");
}

/// An upstream that answers one request slowly and reports, on the returned channel, when it
/// notices that sluice has gone away: `sse` streams a first event then keep-alives, otherwise
/// it never answers.
fn watching_upstream(sse: bool) -> (u16, std::sync::mpsc::Receiver<Instant>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let Ok((mut s, _)) = l.accept() else { return };
        let mut buf = [0u8; 65536];
        let _ = s.read(&mut buf);
        if sse {
            let first = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n";
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n{first}");
            for _ in 0..200 {
                std::thread::sleep(Duration::from_millis(50));
                if s.write_all(b": keep-alive\n\n").is_err() {
                    let _ = tx.send(Instant::now());
                    return;
                }
            }
        } else {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            if let Ok(0) = s.read(&mut buf) {
                let _ = tx.send(Instant::now());
            }
        }
    });
    (port, rx)
}

/// A client that goes away cancels its upstream request: for an SSE answer mid-stream (the
/// 2026-07-28 cancellation), and for a JSON answer not yet sent.
#[test]
fn client_disconnect_cancels_the_upstream_request() {
    use std::io::{Read, Write};
    for sse in [true, false] {
        let (up, gone) = watching_upstream(sse);
        let port = free_port();
        let _proxy = Kill(
            Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(["serve", "--threads", "2"])
                .args(["--upstream", &format!("http://127.0.0.1:{up}/mcp")])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for(port);
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow","arguments":{}}}"#;
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        if sse {
            // The first event arrives before the stream ends: events are not buffered.
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&got).contains("notifications/progress") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "stream ended early");
                got.extend_from_slice(&buf[..n]);
            }
        } else {
            std::thread::sleep(Duration::from_millis(300));
        }
        let closed = Instant::now();
        drop(s);
        let noticed = gone
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("upstream request not cancelled (sse: {sse})"));
        assert!(noticed.duration_since(closed) < Duration::from_secs(3));
    }
}

/// `sluice serve` with TLS and HTTP/3 in front of `upstream` (a URL); returns the process and
/// the TCP and UDP ports, once the TCP port listens.
fn sluice_h3(upstream: &str, mode: &str, p: &common::Pki) -> (Kill, u16, u16) {
    let (tcp, udp) = (free_port(), free_udp_port());
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--threads", "2", "--mode", mode])
        .args(["--upstream", upstream])
        .args(["--listen", &format!("127.0.0.1:{tcp}")])
        .args(["--http3", &format!("127.0.0.1:{udp}")])
        .arg("--tls-cert")
        .arg(&p.cert)
        .arg("--tls-key")
        .arg(&p.key)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(tcp);
    (Kill(child), tcp, udp)
}

/// HTTP/3 with a real client nobody here wrote (aioquic's H3Connection): tool calls through
/// sluice over QUIC to the replay server, JSON and SSE answers, redact and block; and the TCP
/// front end advertising HTTP/3 with Alt-Svc.
#[test]
fn http3_front_end_with_aioquic() {
    let d = dir("h3");
    let p = pki(&d);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let note = format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"level":"info","data":"deploying with {AWS}"}}}}"#
    );
    let mut answers = std::collections::HashMap::new();
    answers.insert(
        "9".to_string(),
        sluice_proxy::replay::Answer {
            before: vec![note.into_bytes()],
            response:
                br#"{"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":"done"}]}}"#
                    .to_vec(),
        },
    );
    let server = sluice_proxy::replay::ReplayServer::new(answers);
    let (up, serve) = rt
        .block_on(server.clone().bind(SocketAddr::from(([127, 0, 0, 1], 0))))
        .unwrap();
    rt.spawn(serve);
    let call = |id: u32, text: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"note":"{text}"}}}}}}"#
        )
    };
    for mode in ["redact", "block", "monitor"] {
        let (_proxy, _tcp, udp) = sluice_h3(&format!("http://{up}/mcp"), mode, &p);
        server.take_received();
        let out = Command::new("python3")
            .arg(format!("{}/h3_client.py", common::peers()))
            .arg(format!("https://localhost:{udp}/mcp"))
            .arg(&p.ca)
            .arg(call(3, &format!("key {AWS}")))
            .arg(call(4, "hello"))
            .arg(call(9, "stream"))
            .arg(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"h3","version":"1"}}}"#)
            .arg(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .arg("GET")
            .arg("DELETE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "h3 client: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let body = |i: usize| r[i]["body"].as_str().unwrap().to_string();
        assert_eq!(r[1]["status"], 200, "{r}");
        assert!(body(1).contains(r#"{\"note\":\"hello\"}"#), "{r}");
        let seen: Vec<String> = server
            .take_received()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert_eq!(r[2]["headers"]["content-type"], "text/event-stream", "{r}");
        // Session header set on initialize, 202 for a notification, and the upstream's own
        // answers to GET (405 here) and DELETE (200) pass through.
        assert_eq!(
            r[3]["headers"]["mcp-session-id"], "sluice-demo-session",
            "{r}"
        );
        assert_eq!(r[4]["status"], 202, "{r}");
        assert_eq!(r[5]["status"], 405, "{r}");
        assert_eq!(r[6]["status"], 200, "{r}");
        match mode {
            "redact" => {
                assert!(body(0).contains("[REDACTED:aws.access-key-id]"), "{r}");
                assert!(body(2).contains("[REDACTED:aws.access-key-id]"), "{r}");
                assert!(body(2).contains("done"), "{r}");
                assert!(!r.to_string().contains(AWS), "{r}");
                assert!(seen.iter().all(|s| !s.contains(AWS)), "{seen:?}");
                assert_eq!(seen.len(), 5, "{seen:?}");
            }
            "block" => {
                assert!(body(0).contains("-32001"), "{r}");
                assert!(!r.to_string().contains(AWS), "{r}");
                assert!(seen.iter().all(|s| !s.contains(AWS)), "{seen:?}");
                assert_eq!(
                    seen.len(),
                    4,
                    "the blocked call never reached the server: {seen:?}"
                );
            }
            _ => {
                assert!(body(0).contains(AWS), "monitor forwards: {r}");
                assert_eq!(seen.len(), 5, "{seen:?}");
            }
        }
    }

    // The TCP front end advertises HTTP/3.
    let (_proxy, tcp, udp) = sluice_h3(&format!("http://{up}/mcp"), "rules", &p);
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", tcp))
            .await
            .unwrap();
        let tls = tls_client(&p.ca, b"http/1.1")
            .connect(ServerName::try_from("localhost").unwrap(), stream)
            .await
            .unwrap();
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::post(format!("https://localhost:{tcp}/mcp"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(call(5, "hi"))))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        let alt = resp
            .headers()
            .get("alt-svc")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(alt, format!("h3=\":{udp}\"; ma=86400"));
    });
}

/// Over HTTP/3 too, a client that resets its request stream mid-answer cancels the upstream
/// request.
#[test]
fn http3_stream_reset_cancels_the_upstream_request() {
    let d = dir("h3-cancel");
    let p = pki(&d);
    let (up, gone) = watching_upstream(true);
    let (_proxy, _tcp, udp) = sluice_h3(&format!("http://127.0.0.1:{up}/mcp"), "rules", &p);
    let body =
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow","arguments":{}}}"#;
    let out = Command::new("python3")
        .arg(format!("{}/h3_client.py", common::peers()))
        .arg(format!("https://localhost:{udp}/mcp"))
        .arg(&p.ca)
        .arg(format!("CANCEL:{body}"))
        .output()
        .unwrap();
    let reset = Instant::now();
    assert!(
        out.status.success(),
        "h3 client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        r[0]["body"]
            .as_str()
            .unwrap()
            .contains("notifications/progress"),
        "the first event arrived before the stream ended: {r}"
    );
    let noticed = gone
        .recv_timeout(Duration::from_secs(5))
        .expect("upstream request not cancelled after the HTTP/3 stream reset");
    assert!(noticed < reset + Duration::from_secs(3));
}

/// An upstream that answers every request with a JSON-RPC result and sends each request's
/// bytes (headers and body) on the channel.
fn capturing_upstream() -> (u16, std::sync::mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = vec![0u8; 65536];
            let n = s.read(&mut buf).unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
            let body = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, rx)
}

/// Named clients with keys from `sluice keys new`: 401 with a Bearer challenge without a key
/// or with a wrong one; with the right one the call goes through, its key is not forwarded
/// upstream (the upstream's own token from bearer_file is), and audit rows name the client
/// (never the key).
#[test]
fn client_keys_authenticate_and_are_not_forwarded() {
    let d = dir("keys");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["keys", "new", "alice"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let key = text
        .split_whitespace()
        .find(|w| w.starts_with("sk_sluice_"))
        .unwrap()
        .to_string();
    let toml_lines = &text[text.find("[[client]]").unwrap()..];
    let (up, requests) = capturing_upstream();
    let port = free_port();
    let audit = d.join("audit.jsonl");
    std::fs::write(d.join("upstream.token"), "up-token-0123456789\n").unwrap();
    let _proxy = serve_with_config(
        &d,
        "keys.toml",
        &format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\n[audit]\npath = \"audit.jsonl\"\nall = true\n[[upstream]]\nurl = \"http://127.0.0.1:{up}/mcp\"\nbearer_file = \"upstream.token\"\n\n{toml_lines}\n"
        ),
    );
    wait_for(port);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let post = |auth: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let w = Duration::from_secs(5);
    let none = raw(port, &post(""), w);
    assert!(none.starts_with("HTTP/1.1 401"), "{none}");
    assert!(
        none.to_ascii_lowercase()
            .contains("www-authenticate: bearer realm=\"sluice\""),
        "{none}"
    );
    let wrong = raw(
        port,
        &post("Authorization: Bearer sk_sluice_not-a-key\r\n"),
        w,
    );
    assert!(
        wrong.starts_with("HTTP/1.1 401") && wrong.contains("invalid_token"),
        "{wrong}"
    );
    assert!(requests.try_recv().is_err(), "nothing reached the upstream");
    let ok = raw(port, &post(&format!("Authorization: Bearer {key}\r\n")), w);
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let forwarded = requests.recv_timeout(w).unwrap();
    // The upstream gets sluice's own credential for it, never the client's key.
    assert!(!forwarded.contains(&key), "{forwarded}");
    assert!(
        forwarded
            .to_ascii_lowercase()
            .contains("authorization: bearer up-token-0123456789"),
        "{forwarded}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let rows = std::fs::read_to_string(&audit).unwrap();
    assert!(rows.contains("\"identity\":\"alice\""), "{rows}");
    assert!(!rows.contains(&key), "{rows}");
}

/// The DNS-rebinding defence and path normalisation from outside: a rebound name in `Host`
/// (with its matching `Origin`), an `Origin` that only starts like a loopback address, and
/// dot segments (plain and percent-encoded) that would climb out of a route's prefix, and
/// what other servers read as dot segments (`..;`, `%252e`, overlong UTF-8) are refused before anything reaches the upstream, each with an audit row and a count in
/// /metrics; loopback names, configured names and in-prefix paths are served, the latter
/// normalised on their way upstream.
#[test]
fn rebinding_hosts_and_dot_segments_are_refused() {
    let d = dir("rebinding");
    let (up, requests) = capturing_upstream();
    let port = free_port();
    let admin = free_port();
    let _proxy = serve_with_config(
        &d,
        "rebinding.toml",
        &format!(
            r#"
[listen]
address = "127.0.0.1:{port}"
allowed_hosts = ["mcp.example.com"]
[audit]
path = "audit.jsonl"
[admin]
listen = "127.0.0.1:{admin}"
[[upstream]]
url = "http://127.0.0.1:{up}/mcp"
prefix = "/a"
"#
        ),
    );
    wait_for(port);
    wait_for(admin);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let post = |path: &str, host: &str, origin: &str| {
        let origin = if origin.is_empty() {
            String::new()
        } else {
            format!("Origin: {origin}\r\n")
        };
        let answer = raw(
            port,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
            Duration::from_secs(5),
        );
        let status: u16 = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, answer)
    };
    let local = format!("127.0.0.1:{port}");
    let forwarded = |want: &str| {
        let got = requests.recv_timeout(Duration::from_secs(5)).unwrap();
        let line = got.lines().next().unwrap_or("").to_string();
        assert_eq!(line, format!("POST {want} HTTP/1.1"), "{got}");
    };

    // (a) A page at evil.example whose name now resolves to 127.0.0.1.
    let evil = format!("evil.example:{port}");
    let (s, a) = post("/a", &evil, &format!("http://{evil}"));
    assert_eq!(s, 403, "{a}");
    assert!(a.contains("-32600") && a.contains("allowed_hosts"), "{a}");
    // (b) An origin that only starts like a loopback address.
    let (s, a) = post("/a", &local, "http://127.0.0.1.evil.example");
    assert_eq!(s, 403, "{a}");
    // (c) Dot segments out of /a, as they are and percent-encoded.
    let (s, a) = post("/a/../b", &local, "");
    assert_eq!(s, 400, "{a}");
    let (s, a) = post("/a/%2e%2e/admin", &local, "");
    assert_eq!(s, 400, "{a}");
    let (s, a) = post("/a/%2F..%2Fadmin", &local, "");
    assert_eq!(s, 400, "{a}");
    // (d) What other servers resolve as a dot segment: path parameters on `..` (Tomcat,
    // Jetty), double encoding, overlong UTF-8.
    for (path, why) in [
        ("/a/..;/mcp", "dot segment with ;parameters"),
        ("/a/%2e%2e;/mcp", "dot segment with ;parameters"),
        ("/a/..%3b/mcp", "dot segment with ;parameters"),
        ("/a/%252e%252e/mcp", "double percent-encoded"),
        ("/a/%c0%ae%c0%ae/mcp", "not UTF-8"),
    ] {
        let (s, a) = post(path, &local, "");
        assert_eq!(s, 400, "{path}: {a}");
        assert!(a.contains(why), "{path}: {a}");
    }
    assert!(
        requests.try_recv().is_err(),
        "a refused request reached the upstream"
    );

    // Served: loopback hosts and origins, the configured name (any case, trailing dot), and a
    // path that stays under /a, normalised.
    let (s, a) = post("/a", &local, "");
    assert_eq!(s, 200, "{a}");
    forwarded("/mcp");
    let (s, a) = post("/a", &format!("localhost:{port}"), "http://localhost:5173");
    assert_eq!(s, 200, "{a}");
    forwarded("/mcp");
    let (s, a) = post("/a/x", &format!("[::1]:{port}"), "http://[::1]:8080");
    assert_eq!(s, 200, "{a}");
    forwarded("/mcp/x");
    let name = format!("MCP.Example.COM.:{port}");
    let (s, a) = post("/a/%7Eme/./y/../z", &name, "https://mcp.example.com");
    assert_eq!(s, 200, "{a}");
    forwarded("/mcp/~me/z");

    std::thread::sleep(Duration::from_millis(200));
    let rows = std::fs::read_to_string(d.join("audit.jsonl")).unwrap();
    let denied: Vec<serde_json::Value> = rows
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "denied")
        .collect();
    let controls: Vec<&str> = denied
        .iter()
        .map(|r| r["control"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        controls,
        ["host", "origin"]
            .into_iter()
            .chain(["path"; 8])
            .collect::<Vec<_>>(),
        "{rows}"
    );
    let metrics = raw(
        admin,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    for (control, n) in [("host", 1), ("origin", 1), ("path", 8)] {
        let line = format!("sluice_denials_total{{control=\"{control}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
}
