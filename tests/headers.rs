//! Request headers under inspection, end to end: `sluice serve` in front of an upstream that
//! records the heads it receives. A key id in an `Mcp-Param-*` header that mirrors no argument,
//! or in a configured custom header (30 KB of it), is blocked, redacted or recorded as the
//! policy says; credentials meant for the upstream pass; an oversized head gets 431.

mod common;
use common::{dir, free_port, serve_toml, wait_for, Kill};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

/// Fabricated for these tests: an AWS-shaped access key id.
const KEY: &str = "AKIAZ4QH7RW2N6XJ3TPV";

const CALL: &str =
    r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;

/// An HTTP/1.1 upstream that keeps each request head it receives and answers
/// every request with an empty tool result.
fn recording_upstream() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let kept = heads.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s);
            let (mut head, mut len) = (String::new(), 0usize);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            kept.lock().unwrap().push(head);
            let out = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#;
            let _ = r.get_mut().write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{out}",
                    out.len()
                )
                .as_bytes(),
            );
        }
    });
    (port, heads)
}

struct Proxy {
    _child: Kill,
    port: u16,
    audit: std::path::PathBuf,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start(name: &str, mode: &str, http: &str) -> Proxy {
        let (up, heads) = recording_upstream();
        let d = dir(&format!("headers-{name}"));
        let audit = d.join("audit.jsonl");
        let _ = std::fs::remove_file(&audit);
        let port = free_port();
        let child = serve_toml(
            &d.join("sluice.toml"),
            &format!(
                "[listen]\naddress = \"127.0.0.1:{port}\"\n[policy]\nmode = \"{mode}\"\n[audit]\npath = \"audit.jsonl\"\n[http]\n{http}\n[[upstream]]\nurl = \"http://127.0.0.1:{up}/mcp\"\n"
            ),
        );
        wait_for(port);
        Proxy {
            _child: child,
            port,
            audit,
            heads,
        }
    }

    /// POSTs the call with these extra header lines; (status, answer body).
    fn call(&self, extra: &[(&str, String)]) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut req = format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.port,
            CALL.len()
        );
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(CALL);
        s.write_all(req.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer[9..12].parse().unwrap();
        let body = answer.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    }

    /// The heads the upstream received since the last call to this.
    fn received(&self) -> Vec<String> {
        std::mem::take(&mut *self.heads.lock().unwrap())
    }

    /// The audit's `headers` rows.
    fn header_rows(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.audit).unwrap_or_default();
        assert!(!text.contains(KEY), "no secret in the audit");
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == "headers")
            .collect()
    }
}

/// Until the audit row is written (the writer is asynchronous).
fn rows_after(p: &Proxy, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..100 {
        let rows = p.header_rows();
        if rows.len() >= n {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    p.header_rows()
}

/// The value of header `name` in a received head.
fn value(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("{name} forwarded: {head}"))
}

fn b64(s: &str) -> String {
    format!(
        "=?base64?{}?=",
        base64::engine::general_purpose::STANDARD.encode(s)
    )
}

/// 30 KB of ordinary text with the key in the middle.
fn big_note() -> String {
    let pad = "lorem ipsum dolor sit amet ".repeat(555);
    format!("{pad}deploy with {KEY} today {pad}")
}

fn blocked(status: u16, body: &str) {
    assert_eq!(
        status, 200,
        "a block answers 200 like a blocked body: {body}"
    );
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["error"]["code"], -32001, "{body}");
    assert_eq!(v["id"], 7, "the request's id");
    assert_eq!(v["error"]["data"]["rules"][0], "aws.access-key-id");
    assert!(!body.contains(KEY));
}

#[test]
fn block_mode_refuses_headers_with_a_key_and_leaves_credentials_alone() {
    let p = Proxy::start(
        "block",
        "block",
        "scan_headers = [\"x-note\"]\nscan_headers_action = \"policy\"",
    );
    // Ordinary call first: it reaches the upstream.
    let (status, body) = p.call(&[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(p.received().len(), 1);

    // An Mcp-Param header that mirrors no argument, plain and base64-encoded, and spelt with
    // underscores (CGI and WSGI servers read it as the same header).
    for v in [KEY.to_string(), b64(&format!("clé {KEY}"))] {
        let (status, body) = p.call(&[("Mcp-Param-Foo", v)]);
        blocked(status, &body);
    }
    let (status, body) = p.call(&[("Mcp_Param_Foo", KEY.to_string())]);
    blocked(status, &body);
    // A configured custom header, 30 KB of it.
    let (status, body) = p.call(&[("X-Note", big_note())]);
    blocked(status, &body);
    assert!(
        p.received().is_empty(),
        "nothing blocked reached the upstream"
    );
    let rows = rows_after(&p, 4);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["outcome"], "blocked");
    assert_eq!(rows[0]["headers"][0], "mcp-param-foo");
    assert_eq!(rows[2]["headers"][0], "mcp_param_foo");
    assert_eq!(rows[3]["headers"][0], "x-note");
    assert_eq!(rows[3]["rules"][0], "aws.access-key-id");

    // Credentials meant for the upstream pass as they are, and an unlisted header too.
    let auth = [
        ("Authorization", format!("Bearer {KEY}")),
        ("X-Api-Key", KEY.to_string()),
        ("X-Other", KEY.to_string()),
    ];
    let (status, body) = p.call(&auth);
    assert_eq!(status, 200, "{body}");
    let heads = p.received();
    assert_eq!(heads.len(), 1);
    assert_eq!(value(&heads[0], "authorization"), format!("Bearer {KEY}"));
    assert_eq!(value(&heads[0], "x-api-key"), KEY);
    assert_eq!(value(&heads[0], "x-other"), KEY);
}

#[test]
fn redact_mode_forwards_the_headers_redacted() {
    let p = Proxy::start(
        "redact",
        "redact",
        "scan_headers = [\"x-note\"]\nscan_headers_action = \"policy\"",
    );
    let (status, body) = p.call(&[
        ("Mcp-Param-Foo", KEY.to_string()),
        ("Mcp-Param-Bar", b64(&format!("clé {KEY}"))),
        ("X-Note", big_note()),
        ("Mcp-Param-City", "Paris".to_string()),
    ]);
    assert_eq!(status, 200, "{body}");
    let heads = p.received();
    assert_eq!(heads.len(), 1, "forwarded");
    let head = &heads[0];
    assert!(!head.contains(KEY), "{head}");
    assert!(value(head, "mcp-param-foo").contains("REDACTED"));
    // Non-ASCII stays in the draft's encoding, with the marker inside.
    let bar = value(head, "mcp-param-bar");
    let enc = bar
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
        .unwrap();
    let dec = base64::engine::general_purpose::STANDARD
        .decode(enc)
        .unwrap();
    let dec = String::from_utf8(dec).unwrap();
    assert!(dec.starts_with("clé ") && dec.contains("REDACTED"), "{dec}");
    let note = value(head, "x-note");
    assert!(note.starts_with("lorem ipsum") && note.contains("REDACTED"));
    assert_eq!(
        value(head, "mcp-param-city"),
        "Paris",
        "a clean header is untouched"
    );
    let rows = rows_after(&p, 1);
    assert_eq!(rows[0]["outcome"], "redacted");
    let names: Vec<&str> = rows[0]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(names, ["mcp-param-bar", "mcp-param-foo", "x-note"]);
}

#[test]
fn monitor_records_and_forwards_and_oversized_heads_get_431() {
    // Default [http]: every non-credential header is scanned, custom ones monitor-only.
    let p = Proxy::start("monitor", "block", "max_header_bytes = \"48KiB\"");
    let (status, body) = p.call(&[("X-Note", big_note())]);
    assert_eq!(status, 200, "{body}");
    let heads = p.received();
    assert_eq!(heads.len(), 1);
    // Header values lose surrounding spaces on the wire (RFC 9110 section 5.5).
    assert!(
        value(&heads[0], "x-note") == big_note().trim(),
        "forwarded as is"
    );
    let rows = rows_after(&p, 1);
    assert_eq!(rows[0]["outcome"], "recorded");
    assert_eq!(rows[0]["headers"][0], "x-note");

    // Mcp-* headers follow the policy (block) even here.
    let (status, body) = p.call(&[("Mcp-Param-Foo", KEY.to_string())]);
    blocked(status, &body);

    // Two 30 KB headers are over 48 KiB.
    let (status, body) = p.call(&[("X-Note", big_note()), ("X-More", big_note())]);
    assert_eq!(status, 431, "{body}");
    assert!(body.contains("over the 49152-byte limit"), "{body}");
    assert!(p.received().is_empty());
}

#[test]
fn monitor_mode_forwards_mcp_headers_and_records_them() {
    let p = Proxy::start("monitor-mode", "monitor", "");
    let (status, body) = p.call(&[("Mcp-Param-Foo", KEY.to_string())]);
    assert_eq!(status, 200, "{body}");
    let heads = p.received();
    assert_eq!(value(&heads[0], "mcp-param-foo"), KEY);
    let rows = rows_after(&p, 1);
    assert_eq!(rows[0]["outcome"], "recorded");
    assert_eq!(rows[0]["headers"][0], "mcp-param-foo");
}

/// Sends `head` (and `body`) as one HTTP/1.1 request; the answer's status.
fn raw_status(port: u16, head: &str, body: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(
        format!(
            "{head}Host: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)[9..12].parse().unwrap()
}

/// The transport checks' refusals reach nothing upstream and each leaves a `denied` row with
/// control `request` (and a count in `sluice_denials_total`), like a gateway control's.
#[test]
fn transport_refusals_are_audited() {
    let p = Proxy::start("refusals", "redact", "");
    let post = "POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\n";
    let pad = "x".repeat(70 * 1024);
    let cases = [
        (format!("{post}X-Pad: {pad}\r\n"), CALL, 431),
        (format!("{post}Content-Encoding: gzip\r\n"), CALL, 415),
        (
            format!("{post}MCP-Protocol-Version: 1999-01-01\r\n"),
            CALL,
            400,
        ),
        ("GET /mcp HTTP/1.1\r\n".to_string(), "hello", 400),
        ("DELETE /mcp HTTP/1.1\r\n".to_string(), CALL, 400),
    ];
    for (head, body, status) in &cases {
        assert_eq!(raw_status(p.port, head, body), *status, "{head:.60}");
    }
    assert!(
        p.received().is_empty(),
        "a refused request reached the upstream"
    );
    let denied = |text: &str| {
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == "denied" && v["control"] == "request")
            .count()
    };
    let mut rows = 0;
    for _ in 0..100 {
        rows = denied(&std::fs::read_to_string(&p.audit).unwrap_or_default());
        if rows >= cases.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(rows, cases.len(), "one denied row per refusal");
}
