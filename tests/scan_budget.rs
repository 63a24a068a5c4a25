//! `[limits] scan_timeout` through a real `sluice serve`: a call whose inspection outlasts it
//! is refused (even with `fail_open`) with a JSON-RPC error and an audit row, and never reaches
//! the upstream; a small call in the same budget passes.

mod common;
use common::{dir, free_port, serve_toml, wait_for, AWS};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An upstream that answers every request with one small tool result; counts the requests.
fn upstream() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            counter.fetch_add(1, Ordering::SeqCst);
            let body =
                r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}

fn post(port: u16, body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn call(text: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "save", "arguments": {"text": text}}
    })
    .to_string()
}

#[test]
fn a_call_past_scan_timeout_is_refused_and_audited() {
    let d = dir("scan-budget");
    let (up, seen) = upstream();
    let port = free_port();
    let _proxy = serve_toml(
        &d.join("budget.toml"),
        &format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\n[policy]\nfail_open = true\n[limits]\nscan_timeout = \"1ms\"\n[audit]\npath = \"audit.jsonl\"\n[[upstream]]\nurl = \"http://127.0.0.1:{up}/mcp\"\n"
        ),
    );
    wait_for(port);

    let small = post(port, &call("hello"));
    assert!(small.starts_with("HTTP/1.1 200"), "{small}");
    assert!(small.contains(r#""text":"ok""#), "{small}");
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    // 8 MiB of prose with a fabricated key at the end: parsing alone outlasts 1 ms.
    let big = format!(
        "{} {AWS}",
        "the quick brown fox jumps over the lazy dog ".repeat((8 << 20) / 44)
    );
    let refused = post(port, &call(&big));
    assert!(refused.starts_with("HTTP/1.1 400"), "{}", &refused[..200]);
    assert!(refused.contains("time budget of 1ms"), "{refused}");
    assert!(refused.contains("-32603"), "{refused}");
    assert!(
        refused.contains(r#""id":1"#),
        "the refusal answers the call: {refused}"
    );
    assert!(!refused.contains(AWS), "{refused}");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "forwarded despite the budget"
    );

    let audit = std::fs::read_to_string(d.join("audit.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = rows
        .iter()
        .find(|r| {
            r["error"]
                .as_str()
                .is_some_and(|e| e.contains("time budget"))
        })
        .unwrap_or_else(|| panic!("no audit row for the refusal: {audit}"));
    assert_eq!(row["forwarded"], false, "{row}");
    assert!(row["bytes"].as_u64().unwrap() > 8 << 20, "{row}");
    assert!(!audit.contains(AWS));
}
