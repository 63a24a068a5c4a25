//! `sluice serve` between the official Python MCP SDK client and server over Streamable HTTP
//! (JSON and SSE answers), in each mode; and the proxy's own error answers on a raw socket.

mod common;
use common::{closed_port, free_port, peers, python_client, python_server, wait_for, Kill, AWS};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn sluice_serve(upstream_port: u16, mode: &str, extra: &[&str]) -> (Kill, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "serve",
            "--upstream",
            &format!("http://127.0.0.1:{upstream_port}"),
        ])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--mode",
            mode,
            "--threads",
            "2",
        ])
        .args(extra)
        .stderr(std::fs::File::create(serve_log(port)).unwrap())
        .spawn()
        .unwrap();
    wait_for(port);
    (Kill(child), port)
}

/// Where the `sluice serve` listening on `port` writes its log (read back when a test fails).
fn serve_log(port: u16) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sluice-sdk-http-serve-{port}.log"))
}

fn run(answers: &str, mode: &str) -> (serde_json::Value, String) {
    run_with(answers, mode, &[])
}

/// `run` with more arguments for sdk_http_server.py (`gzip`).
fn run_with(answers: &str, mode: &str, server_args: &[&str]) -> (serde_json::Value, String) {
    let received = std::env::temp_dir().join(format!(
        "sluice-http-{answers}-{mode}-{}-{}.log",
        server_args.join("-"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&received);
    let up = free_port();
    let mut args = vec![
        received.display().to_string(),
        up.to_string(),
        answers.to_string(),
    ];
    args.extend(server_args.iter().map(|a| a.to_string()));
    let _server = python_server("sdk_http_server.py", &args, up);
    let (_proxy, port) = sluice_serve(up, mode, &[]);
    (
        python_client(
            "sdk_http_client.py",
            &format!("http://127.0.0.1:{port}/mcp"),
        ),
        std::fs::read_to_string(&received).unwrap_or_default(),
    )
}

#[test]
fn python_sdk_over_streamable_http_sse_and_json_answers() {
    for answers in ["sse", "json"] {
        let (r, got) = run(answers, "redact");
        assert_eq!(r["tools"], serde_json::json!(["echo", "leak"]), "{answers}");
        assert_eq!(r["clean"]["text"], "echo: hello");
        assert_eq!(
            r["secret_argument"]["text"],
            "echo: key [REDACTED:aws.access-key-id]"
        );
        assert_eq!(
            r["secret_result"]["text"],
            "aws_access_key_id=[REDACTED:aws.access-key-id]"
        );
        assert_eq!(
            got, "hello\nkey [REDACTED:aws.access-key-id]\n",
            "{answers}"
        );

        let (b, got) = run(answers, "block");
        assert_eq!(b["clean"]["text"], "echo: hello");
        assert!(b["secret_argument"]["error"]
            .as_str()
            .unwrap()
            .contains("aws.access-key-id"));
        assert!(b["secret_result"]["error"]
            .as_str()
            .unwrap()
            .contains("aws.access-key-id"));
        assert_eq!(
            got, "hello\n",
            "blocked call never reached the server ({answers})"
        );
    }
    let (m, got) = run("sse", "monitor");
    assert_eq!(
        m["secret_result"]["text"],
        format!("aws_access_key_id={AWS}")
    );
    assert_eq!(got, format!("hello\nkey {AWS}\n"));
}

/// A server behind gzip middleware that compresses whatever the client allows (JSON and SSE
/// answers alike) works through sluice as it does directly: sluice asks upstream for identity,
/// so it can read, and redact, what comes back.
#[test]
fn python_sdk_behind_gzip_middleware() {
    for answers in ["sse", "json"] {
        // The middleware really compresses when asked to.
        let up = free_port();
        let log =
            std::env::temp_dir().join(format!("sluice-gzip-probe-{}.log", std::process::id()));
        let _server = python_server(
            "sdk_http_server.py",
            &[
                log.display().to_string(),
                up.to_string(),
                answers.to_string(),
                "gzip".to_string(),
            ],
            up,
        );
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}"#;
        let mut s = TcpStream::connect(("127.0.0.1", up)).unwrap();
        write!(
            s,
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{up}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nAccept-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{init}",
            init.len()
        )
        .unwrap();
        let mut resp = Vec::new();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let _ = s.read_to_end(&mut resp);
        let head = String::from_utf8_lossy(&resp).to_ascii_lowercase();
        assert!(
            head.contains("content-encoding: gzip"),
            "{answers}: {head:.300}"
        );
        drop(_server);

        let (r, got) = run_with(answers, "redact", &["gzip"]);
        assert_eq!(r["tools"], serde_json::json!(["echo", "leak"]), "{answers}");
        assert_eq!(r["clean"]["text"], "echo: hello", "{answers}");
        assert_eq!(
            r["secret_result"]["text"], "aws_access_key_id=[REDACTED:aws.access-key-id]",
            "{answers}"
        );
        assert_eq!(
            got, "hello\nkey [REDACTED:aws.access-key-id]\n",
            "{answers}"
        );
    }
}

fn post(port: u16, body: &[u8]) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    if let Err(e) = s.read_to_end(&mut resp) {
        let log = std::fs::read_to_string(serve_log(port)).unwrap_or_default();
        panic!(
            "reading the answer: {e} (read {} bytes)\nsluice serve's log:\n{log}",
            resp.len()
        );
    }
    let text = String::from_utf8_lossy(&resp);
    let status: u16 = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn proxy_errors_are_json_rpc_with_the_right_status() {
    let (_held, dead) = closed_port(); // nothing listens there
    let (_proxy, port) = sluice_serve(dead, "block", &["--max-body", "1000"]);
    let (status, body) = post(port, br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], -32002);
    let (status, body) = post(port, b"{not json");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], -32700);
    let (status, _) = post(port, &vec![b' '; 5000]);
    assert_eq!(status, 413);
    // A blocked request is answered by sluice itself, upstream down or not.
    let (status, body) = post(port, format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"x","arguments":{{"k":"{AWS}"}}}}}}"#).as_bytes());
    assert_eq!(status, 200);
    assert_eq!(body["id"], 7);
    assert_eq!(body["error"]["code"], -32001);
}

/// The 1.x SDK's interpreter, in the venv `make test` creates.
fn mcp1_python() -> String {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/target/venv-mcp1/bin/python");
    assert!(
        std::path::Path::new(p).exists(),
        "{p} is missing: run `make test`, which creates it with the mcp 1.x SDK"
    );
    p.to_string()
}

#[test]
fn session_based_sdk_2025_protocol_through_sluice() {
    // Streamable HTTP with sessions, then the legacy HTTP+SSE transport (GET /sse, whose
    // `endpoint` event names where to POST; every answer rides the GET stream).
    for (transport, path) in [("streamable-http", "/mcp"), ("sse", "/sse")] {
        session_based_sdk(transport, path);
    }
}

fn session_based_sdk(transport: &str, path: &str) {
    let py = mcp1_python();
    let received = std::env::temp_dir().join(format!(
        "sluice-sdk1-{transport}-{}.log",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&received);
    let up = free_port();
    let _server = Kill(
        Command::new(&py)
            .arg(format!("{}/sdk1_http.py", peers()))
            .arg("server")
            .arg(&received)
            .arg(up.to_string())
            .arg(transport)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(up);
    let audit = std::env::temp_dir().join(format!(
        "sluice-sdk1-{transport}-{}.audit",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&audit);
    let (_proxy, port) = sluice_serve(up, "redact", &["--audit", audit.to_str().unwrap()]);
    let out = Command::new(&py)
        .arg(format!("{}/sdk1_http.py", peers()))
        .arg("client")
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .arg(transport)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["protocol"].as_str().unwrap().starts_with("2025-"), "{r}");
    assert_eq!(r["session"], true, "Mcp-Session-Id made it through");
    assert_eq!(r["clean"]["text"], "echo: hello");
    assert_eq!(
        r["secret_argument"]["text"],
        "echo: key [REDACTED:aws.access-key-id]"
    );
    assert_eq!(
        r["secret_result"]["text"],
        "aws_access_key_id=[REDACTED:aws.access-key-id]"
    );
    // Log notifications ride the same SSE answer and are inspected too.
    assert_eq!(
        r["logs"],
        serde_json::json!(["echoing hello", "echoing key [REDACTED:aws.access-key-id]"])
    );
    let got = std::fs::read_to_string(&received).unwrap();
    assert_eq!(got, "hello\nkey [REDACTED:aws.access-key-id]\n");
    let audit = std::fs::read_to_string(&audit).unwrap();
    assert!(audit.contains("\"client\":\"127.0.0.1:"), "{audit}");
    if transport == "streamable-http" {
        assert!(
            audit.contains("\"session\":\""),
            "the session is audited (as a digest of its id): {audit}"
        );
    }
    assert!(!audit.contains(AWS));
}

#[test]
fn mirrored_mcp_param_headers_are_redacted_with_their_arguments() {
    let up = free_port();
    let _server = python_server("echo_headers_server.py", &[up.to_string()], up);
    let (_proxy, port) = sluice_serve(up, "redact", &[]);
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"deploy","arguments":{{"region":"eu-west-1","key":"{AWS}"}}}}}}"#
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nMcp-Method: tools/call\r\nMcp-Name: deploy\r\nMcp-Param-Region: eu-west-1\r\nMcp-Param-Key: {AWS}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let json = resp.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let seen: serde_json::Value =
        serde_json::from_str(v["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(seen["arguments"]["key"], "[REDACTED:aws.access-key-id]");
    assert_eq!(
        seen["headers"]["mcp-param-key"],
        "[REDACTED:aws.access-key-id]"
    );
    assert_eq!(seen["headers"]["mcp-param-region"], "eu-west-1");
    assert!(!resp.contains(AWS));
}

/// 2026-07-28 with the SDK at both ends: the client mirrors `x-mcp-header` arguments into
/// Mcp-Param-* headers and the server refuses a header that disagrees with the body (-32020).
/// The secret call succeeds with the argument redacted, so sluice rewrote the header too.
#[test]
fn sdk_mirrored_param_headers_follow_a_redacted_argument() {
    let received = std::env::temp_dir().join(format!("sluice-param-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&received);
    let up = free_port();
    let _server = python_server(
        "sdk_param_server.py",
        &[received.display().to_string(), up.to_string()],
        up,
    );
    let (_proxy, port) = sluice_serve(up, "redact", &[]);
    let r = python_client(
        "sdk_param_client.py",
        &format!("http://127.0.0.1:{port}/mcp"),
    );
    assert_eq!(r["clean"]["text"], "deployed to eu-west-1: routine", "{r}");
    assert_eq!(
        r["secret"]["text"], "deployed to eu-west-1: key [REDACTED:aws.access-key-id]",
        "{r}"
    );
    let got = std::fs::read_to_string(&received).unwrap();
    assert_eq!(
        got,
        "eu-west-1 routine\neu-west-1 key [REDACTED:aws.access-key-id]\n"
    );
}

/// The SDK test server (mcp 1.x FastMCP, sessions, SSE answers with log notifications) behind
/// sluice's HTTP/3 front end, driven by aioquic's HTTP/3 client: initialize, initialized, a
/// tool call whose argument carries a secret, and a tool whose result does.
#[test]
fn sdk_server_over_http3() {
    let py = mcp1_python();
    let d = common::dir("sdk-h3");
    let p = common::pki(&d);
    let received = d.join("received.log");
    let _ = std::fs::remove_file(&received);
    let up = free_port();
    let _server = Kill(
        Command::new(&py)
            .arg(format!("{}/sdk1_http.py", peers()))
            .arg("server")
            .arg(&received)
            .arg(up.to_string())
            .arg("streamable-http")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(up);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_proxy, _) = sluice_serve(
        up,
        "redact",
        &[
            "--http3",
            &format!("127.0.0.1:{udp}"),
            "--tls-cert",
            p.cert.to_str().unwrap(),
            "--tls-key",
            p.key.to_str().unwrap(),
        ],
    );
    let call = |id: u32, tool: &str, args: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
        )
    };
    let out = Command::new("python3")
        .arg(format!("{}/h3_client.py", peers()))
        .arg(format!("https://localhost:{udp}/mcp"))
        .arg(&p.ca)
        .arg(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"h3","version":"1"}}}"#)
        .arg(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .arg(call(2, "echo", &format!(r#"{{"text":"key {AWS}"}}"#)))
        .arg(call(3, "leak", "{}"))
        .arg(call(4, "echo", r#"{"text":"hello"}"#))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "h3 client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r[0]["status"], 200, "{r}");
    assert!(r[0]["headers"]["mcp-session-id"].is_string(), "{r}");
    assert_eq!(r[1]["status"], 202, "{r}");
    let body = |i: usize| r[i]["body"].as_str().unwrap().to_string();
    assert!(
        body(2).contains("echo: key [REDACTED:aws.access-key-id]"),
        "{r}"
    );
    assert!(
        body(2).contains("echoing key [REDACTED:aws.access-key-id]"),
        "the log notification too: {r}"
    );
    assert!(body(3).contains("[REDACTED:aws.access-key-id]"), "{r}");
    assert!(body(4).contains("echo: hello"), "{r}");
    assert!(!r.to_string().contains(AWS), "{r}");
    let got = std::fs::read_to_string(&received).unwrap();
    assert_eq!(got, "key [REDACTED:aws.access-key-id]\nhello\n");
}
