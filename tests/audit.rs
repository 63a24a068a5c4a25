//! The tamper-evident audit end to end: `sluice stdio` around a real stdio server
//! (tests/peers/stdio_server.py) with a keyed audit file and a checkpoint; then the file is
//! edited the way someone with write access but without the key would (a `redact` verdict
//! turned into `forward`, every seal recomputed as the plain SHA-256 chain of old), cut at the
//! end, and written to by a second sluice, and `sluice audit verify` and start-up catch each.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{dir, AWS};
use serde_json::Value;

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

fn stdio_cmd(config: &Path, received: &Path) -> Command {
    let server = format!("{}/stdio_server.py", common::peers());
    let mut c = sluice();
    c.args(["stdio", "--mode", "redact", "--config"])
        .arg(config)
        .args(["--", "python3", &server])
        .arg(received);
    c
}

/// `sluice audit verify FILE ARGS...`: (exit code, stdout).
fn verify(file: &Path, args: &[&Path]) -> (i32, String) {
    let out: Output = sluice()
        .args(["audit", "verify"])
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), said)
}

fn sha256_hex(b: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A sealed line's text without its seal (`,"mac":"..."` or `,"hash":"..."` at the end).
fn unsealed(line: &str) -> String {
    let at = line
        .rfind(",\"mac\":\"")
        .or_else(|| line.rfind(",\"hash\":\""))
        .unwrap();
    format!("{}}}", &line[..at])
}

/// Every seal from line `from` (0-based) on recomputed as a plain SHA-256 chain under
/// `field`, each row's `prev` the seal before it: what rewriting the file takes without the
/// key.
fn rechain(lines: &[String], from: usize, field: &str) -> String {
    let mut prev = match from {
        0 => "0".repeat(64),
        _ => {
            let l = &lines[from - 1];
            l[l.len() - 66..l.len() - 2].to_string()
        }
    };
    let mut out: Vec<String> = lines[..from].to_vec();
    for l in &lines[from..] {
        let mut v: Value = serde_json::from_str(&unsealed(l)).unwrap();
        v["prev"] = prev.clone().into();
        let body = v.to_string();
        let seal = sha256_hex(body.as_bytes());
        out.push(format!(
            "{},\"{field}\":\"{seal}\"}}",
            &body[..body.len() - 1]
        ));
        prev = seal;
    }
    out.join("\n") + "\n"
}

struct Files {
    config: PathBuf,
    received: PathBuf,
    audit: PathBuf,
    key: PathBuf,
    checkpoint: PathBuf,
}

fn setup() -> Files {
    let d = dir("audit-mac");
    let _ = std::fs::remove_file(d.join("audit.jsonl"));
    let _ = std::fs::remove_file(d.join("audit.checkpoint"));
    let key = d.join("audit.key");
    // Fabricated: 64 hex digits, as `openssl rand -hex 32` writes them.
    std::fs::write(&key, format!("{}\n", "5eed".repeat(16))).unwrap();
    let config = d.join("sluice.toml");
    std::fs::write(
        &config,
        "[audit]\npath = \"audit.jsonl\"\nall = true\nkey_file = \"audit.key\"\n\
         checkpoint = \"audit.checkpoint\"\ncheckpoint_interval = \"200ms\"\n",
    )
    .unwrap();
    Files {
        config,
        received: d.join("received.jsonl"),
        audit: d.join("audit.jsonl"),
        key,
        checkpoint: d.join("audit.checkpoint"),
    }
}

/// Runs a session through `sluice stdio`: a clean call, a secret in the arguments (redacted),
/// a secret in a result (redacted). While it runs, a second sluice on the same audit file is
/// refused. Returns the audit file's lines.
fn session(f: &Files) -> Vec<String> {
    let mut child = stdio_cmd(&f.config, &f.received)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut call = |line: String| -> Value {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut out = String::new();
        stdout.read_line(&mut out).unwrap();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"))
    };
    call(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#.into());
    let echoed = call(format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"key {AWS}"}}}}}}"#
    ));
    assert_eq!(
        echoed["result"]["content"][0]["text"],
        "echo: key [REDACTED:aws.access-key-id]"
    );
    call(
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"leak","arguments":{}}}"#
            .into(),
    );

    // Two writers would break the chain: the second is refused before it starts its server.
    let second = stdio_cmd(&f.config, &f.received)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains("audit.jsonl") && err.contains("another process"),
        "{err}"
    );

    drop(stdin);
    assert_eq!(
        child.wait().unwrap().code(),
        Some(3),
        "the server's exit code"
    );
    let text = std::fs::read_to_string(&f.audit).unwrap();
    assert!(!text.contains(AWS), "no secret in the audit");
    assert!(!text.contains("5eed5eed"), "no key in the audit");
    text.lines().map(String::from).collect()
}

#[test]
fn a_keyed_audit_catches_a_rewritten_verdict_a_cut_tail_and_a_second_writer() {
    let f = setup();
    let lines = session(&f);
    assert!(lines.len() >= 6, "{lines:?}");
    assert!(lines.iter().all(|l| l.contains("\"mac\":\"")), "{lines:?}");
    let checkpoint: Value =
        serde_json::from_str(&std::fs::read_to_string(&f.checkpoint).unwrap()).unwrap();
    assert_eq!(
        checkpoint["seq"],
        lines.len() as u64,
        "written at shutdown: {checkpoint}"
    );
    let key_args = [Path::new("--key-file"), &f.key];
    let with_cp = [
        Path::new("--key-file"),
        &f.key,
        Path::new("--checkpoint"),
        &f.checkpoint,
    ];

    // Intact: verified with the key and the checkpoint.
    let (code, said) = verify(&f.audit, &with_cp);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("MAC chain intact") && said.contains("reaches checkpoint"),
        "{said}"
    );
    assert!(!said.contains("warning"), "{said}");
    // Without the key the rows cannot be checked, and verify says what it needs.
    let (code, said) = verify(&f.audit, &[]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains(":1:") && said.contains("--key-file"),
        "{said}"
    );

    // A `redact` verdict turned into `forward`, and the chain recomputed the old way.
    let n = lines
        .iter()
        .position(|l| l.contains("\"verdict\":\"redact\""))
        .expect("a redacted message's row");
    let mut edited = lines.clone();
    edited[n] = edited[n].replace("\"verdict\":\"redact\"", "\"verdict\":\"forward\"");
    let forged = f.audit.with_file_name("forged.jsonl");
    std::fs::write(&forged, rechain(&edited, 0, "hash")).unwrap();
    // Under the old, unkeyed check it passes: that is what the key is for; verify warns.
    let (code, said) = verify(&forged, &[]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("warning: this chain is unkeyed") && said.contains("accidental damage"),
        "{said}"
    );
    let (code, said) = verify(&forged, &key_args);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains(":1:") && said.contains("plain SHA-256"),
        "{said}"
    );
    // Rows before the edit kept, the rest resealed under `mac`: the edited row is named.
    std::fs::write(&forged, rechain(&edited, n, "mac")).unwrap();
    let (code, said) = verify(&forged, &key_args);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains(&format!(":{}:", n + 1)) && said.contains("MAC does not match"),
        "{said}"
    );
    // A row removed from the middle.
    let mut removed = lines.clone();
    removed.remove(2);
    std::fs::write(&forged, removed.join("\n") + "\n").unwrap();
    let (code, said) = verify(&forged, &key_args);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains(":3:") && said.contains("chain breaks"),
        "{said}"
    );

    // The last two rows cut: an intact, shorter chain, which only the checkpoint exposes.
    let keep = lines.len() - 2;
    std::fs::write(&f.audit, lines[..keep].join("\n") + "\n").unwrap();
    let (code, said) = verify(&f.audit, &key_args);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("without --checkpoint"), "{said}");
    let (code, said) = verify(&f.audit, &with_cp);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains(&format!("ends at row {keep}")) && said.contains("cut from the end"),
        "{said}"
    );
    // ... and sluice will not start on it: continuing would hide the cut.
    let restart = stdio_cmd(&f.config, &f.received)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&restart.stderr);
    assert_eq!(restart.status.code(), Some(2), "{err}");
    assert!(err.contains("rows were cut from the end"), "{err}");
}

/// `sluice serve` on `toml` (`PORT` replaced by a free port, written in `d`), its stderr in
/// `d/sluice.stderr`; (the process, its port).
fn serve(d: &Path, toml: &str) -> (common::Kill, u16) {
    let port = common::free_port();
    let config = d.join("sluice.toml");
    std::fs::write(&config, toml.replace("PORT", &port.to_string())).unwrap();
    let child = sluice()
        .args(["serve", "--threads", "2", "--config"])
        .arg(&config)
        .stderr(std::fs::File::create(d.join("sluice.stderr")).unwrap())
        .spawn()
        .unwrap();
    let child = common::Kill(child);
    common::wait_for(port);
    (child, port)
}

/// POSTs `body` with `Mcp-Session-Id: session` over HTTP/1.1; (status, whole answer).
fn post(port: u16, session: &str, body: &str) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: {session}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, text)
}

fn tools_call(id: u64, tool: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
    )
}

/// What an attack on the rows found (issue 15), against a real `sluice serve` whose
/// allowlist refuses every tool but `add`: a fabricated GitHub token as the tool name and
/// another as the `Mcp-Session-Id` never reach the file; a 2 MiB tool name gives a row of a
/// few hundred bytes; the rows verify under the key.
#[test]
fn audit_rows_are_bounded_and_hold_no_client_secret() {
    let d = dir("audit-bounds");
    let audit = d.join("audit.jsonl");
    let _ = std::fs::remove_file(&audit);
    let key = d.join("audit.key");
    std::fs::write(&key, format!("{}\n", "b0a7".repeat(16))).unwrap();
    let (_closed, upstream) = common::closed_port();
    let (_sluice, port) = serve(
        &d,
        &format!(
            "[listen]\naddress = \"127.0.0.1:PORT\"\n[policy]\nmode = \"redact\"\n\
             [audit]\npath = \"audit.jsonl\"\nkey_file = \"audit.key\"\nall = true\n\
             [[upstream]]\nurl = \"http://127.0.0.1:{upstream}/mcp\"\ntools = [\"add\"]\n"
        ),
    );
    // Fabricated, in the shape `github.pat-classic` matches.
    let tool_secret = "ghp_Q7vK2mX9pL4wR8tY1nB6cZ3sD5fH0jG2aE7u";
    let session_secret = "ghp_W3eR5tY7uI9oP1aS3dF5gH7jK9lZ2xC4vB6n";
    let (status, answer) = post(port, session_secret, &tools_call(1, tool_secret));
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("not available to this client"), "{answer}");
    let huge = "x".repeat(2 << 20);
    let (status, _) = post(port, "s-2", &tools_call(2, &huge));
    assert_eq!(status, 200);

    let text = std::fs::read_to_string(&audit).unwrap();
    for secret in [
        tool_secret,
        session_secret,
        &tool_secret[4..],
        &session_secret[4..],
    ] {
        assert!(
            !text.contains(secret),
            "{secret} in the audit file:\n{text}"
        );
    }
    assert!(text.len() < 16 * 1024, "{} bytes of rows", text.len());
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let denied: Vec<&Value> = rows.iter().filter(|r| r["event"] == "denied").collect();
    assert_eq!(denied.len(), 2, "{text}");
    assert_eq!(denied[0]["tool"], "(withheld: matched a rule)");
    assert_eq!(denied[0]["session"].as_str().unwrap().len(), 32);
    let clipped = denied[1]["tool"].as_str().unwrap();
    assert!(
        clipped.ends_with("…(truncated, 2097152 bytes)"),
        "{clipped}"
    );
    assert!(text.lines().all(|l| l.len() < 2048), "{text}");
    let (code, said) = verify(&audit, &[Path::new("--key-file"), &key]);
    assert_eq!(code, 0, "{said}");
}

/// An audit file that cannot be written (the kernel's always-full device: every write fails
/// with ENOSPC): requests are refused with 503, never forwarded unaudited.
#[test]
fn requests_are_refused_while_the_audit_file_cannot_be_written() {
    let d = dir("audit-full");
    let (_closed, upstream) = common::closed_port();
    let (_sluice, port) = serve(
        &d,
        &format!(
            "[listen]\naddress = \"127.0.0.1:PORT\"\n[audit]\npath = \"/dev/full\"\nall = true\n\
             [[upstream]]\nurl = \"http://127.0.0.1:{upstream}/mcp\"\n"
        ),
    );
    for id in [1, 2] {
        let (status, answer) = post(port, "s-1", &tools_call(id, "add"));
        assert_eq!(status, 503, "{answer}");
        assert!(answer.contains("cannot write its audit trail"), "{answer}");
    }
    let said = std::fs::read_to_string(d.join("sluice.stderr")).unwrap();
    assert!(said.contains("cannot write the audit trail"), "{said}");
}
