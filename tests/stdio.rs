//! `sluice stdio` around a real stdio server process (tests/peers/stdio_server.py): what the
//! server received, what the client got, stderr passed through, exit code passed on.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const AWS: &str = "AKIAQX7ZR2M4KD5T6WYB"; // fabricated

#[test]
fn stdio_wrapper_inspects_both_directions() {
    let dir = std::env::temp_dir().join(format!("sluice-stdio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let received = dir.join("received.jsonl");
    let audit = dir.join("audit.jsonl");
    let server = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/stdio_server.py");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["stdio", "--mode", "redact", "--audit"])
        .arg(&audit)
        .args(["--", "python3", server])
        .arg(&received)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut call = |line: &str| -> serde_json::Value {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut out = String::new();
        stdout.read_line(&mut out).unwrap();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"))
    };

    let init = call(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "test-stdio");

    // A clean call and its result pass byte for byte.
    let clean = call(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}"#,
    );
    assert_eq!(clean["result"]["content"][0]["text"], "echo: hello");

    // A secret in the arguments is redacted before the server sees it.
    let echoed = call(&format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"key {AWS}"}}}}}}"#
    ));
    assert_eq!(
        echoed["result"]["content"][0]["text"],
        "echo: key [REDACTED:aws.access-key-id]"
    );

    // A secret in a result is redacted before the client sees it.
    let leak = call(
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"leak","arguments":{}}}"#,
    );
    assert_eq!(
        leak["result"]["content"][0]["text"],
        "config: aws_access_key_id=[REDACTED:aws.access-key-id]"
    );

    // The poisoned tool description: --mode redact rewrites every finding, so the hidden
    // instruction reaches the client as markers.
    let tools = call(r#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#);
    let desc = tools["result"]["tools"][1]["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(desc.contains("[REDACTED:"), "{desc}");
    assert!(!desc.contains("<IMPORTANT>"), "{desc}");

    // Malformed JSON from the client: answered by sluice, never forwarded.
    let bad = call("{not json");
    assert_eq!(bad["error"]["code"], -32700);

    drop(stdin);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "the server's exit code");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string_lossy(&mut err);
    assert!(
        err.contains("server: bye"),
        "server stderr passes through: {err}"
    );

    let got = std::fs::read_to_string(&received).unwrap();
    assert!(!got.contains(AWS), "the server never saw the key");
    assert!(
        !got.contains("not json"),
        "malformed input is not forwarded"
    );
    assert_eq!(got.lines().count(), 5);
    let audit = std::fs::read_to_string(&audit).unwrap();
    assert!(audit.contains("\"rule\":\"aws.access-key-id\""));
    assert!(audit.contains("\"client\":\"stdio\""));
    assert!(!audit.contains(AWS));
}

trait ReadLossy {
    fn read_to_string_lossy(&mut self, out: &mut String);
}

impl<R: std::io::Read> ReadLossy for R {
    fn read_to_string_lossy(&mut self, out: &mut String) {
        let mut buf = Vec::new();
        let _ = self.read_to_end(&mut buf);
        out.push_str(&String::from_utf8_lossy(&buf));
    }
}

fn spawn(mode: &str, received: &std::path::Path) -> std::process::Child {
    let server = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/stdio_server.py");
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["stdio", "--mode", mode, "--", "python3", server])
        .arg(received)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn blocked_request_never_reaches_the_server() {
    let received =
        std::env::temp_dir().join(format!("sluice-stdio-block-{}.jsonl", std::process::id()));
    let mut child = spawn("block", &received);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":"x1","method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{AWS}"}}}}}}"#).unwrap();
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":"x2","method":"tools/call","params":{{"name":"echo","arguments":{{"text":"fine"}}}}}}"#).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["id"], "x1");
    assert_eq!(lines[0]["error"]["data"]["rules"][0], "aws.access-key-id");
    assert_eq!(lines[1]["result"]["content"][0]["text"], "echo: fine");
    let got = std::fs::read_to_string(&received).unwrap();
    assert_eq!(
        got.lines().count(),
        1,
        "only the clean call reached the server"
    );
    assert!(!got.contains(AWS));
}

#[test]
fn sigterm_is_forwarded_and_the_exit_code_follows_the_server() {
    let received =
        std::env::temp_dir().join(format!("sluice-stdio-sig-{}.jsonl", std::process::id()));
    let mut child = spawn("monitor", &received);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // One round trip proves the server is up before the signal.
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list"}}"#).unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("tools"));
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status:?}");
    drop(stdin);
}

/// `--config` gives stdio the same per-direction, per-category and per-rule policy as serve:
/// here arguments with findings are blocked, results redacted, tool descriptions blocked
/// (the poisoned tool leaves the list), and one rule only monitored.
#[test]
fn config_policy_per_direction() {
    let dir = std::env::temp_dir().join(format!("sluice-stdio-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let received = dir.join("received.jsonl");
    let audit = dir.join("audit.jsonl");
    let cfg = dir.join("sluice.toml");
    std::fs::write(
        &cfg,
        "[policy]\nmode = \"redact\"\n[policy.scopes]\narguments = \"block\"\ndescriptions = \"block\"\n[policy.rules]\n\"pii.email\" = \"monitor\"\n[audit]\npath = \"audit.jsonl\"\n",
    )
    .unwrap();
    let mut wrapped = Wrapped::start(&cfg, &received);
    let mut call = |line: &str| wrapped.call(line);
    let blocked = call(&format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"key {AWS}"}}}}}}"#
    ));
    assert_eq!(blocked["error"]["code"], -32001, "{blocked}");
    let email = call(
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"text":"mail jane.doe@example.com"}}}"#,
    );
    assert_eq!(
        email["result"]["content"][0]["text"], "echo: mail jane.doe@example.com",
        "monitored rule passes: {email}"
    );
    let leak = call(
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"leak","arguments":{}}}"#,
    );
    assert_eq!(
        leak["result"]["content"][0]["text"],
        "config: aws_access_key_id=[REDACTED:aws.access-key-id]"
    );
    let tools = call(r#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#);
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 1, "the poisoned tool is removed: {tools}");
    wrapped.finish();
    let got = std::fs::read_to_string(&received).unwrap();
    assert!(!got.contains(AWS), "{got}");
    let rows = std::fs::read_to_string(&audit).unwrap();
    assert!(
        rows.contains("pii.email") && rows.contains("\"monitor\""),
        "{rows}"
    );
    assert!(
        !rows.contains(AWS) && !rows.contains("jane.doe@example.com"),
        "{rows}"
    );
}

/// The gateway controls that apply without an HTTP identity, on the stdio wrapper: argument
/// constraints, a secret in an answer tainting the session for external tools, tool pins.
/// Refused calls are answered by sluice with their id and never reach the server.
#[test]
fn gateway_controls_apply_to_stdio() {
    let dir = std::env::temp_dir().join(format!("sluice-stdio-gw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let received = dir.join("received.jsonl");
    let _ = std::fs::remove_file(dir.join("pins.json"));
    let cfg = dir.join("sluice.toml");
    std::fs::write(
        &cfg,
        "[pins]\npath = \"pins.json\"\n[audit]\npath = \"audit.jsonl\"\n[[tool]]\nname = \"echo\"\ntags = [\"sends-external\"]\narguments.text = { max_length = 20 }\n[[sequence]]\nafter = \"finding:secret\"\ndeny = \"sends-external\"\n",
    )
    .unwrap();
    let mut wrapped = Wrapped::start(&cfg, &received);
    let mut call = |line: &str| wrapped.call(line);
    let echo = |id: u32, text: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{text}"}}}}}}"#
        )
    };
    let tools = call(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    assert_eq!(tools["result"]["tools"][0]["name"], "echo", "{tools}");
    // The engine took the poisoned `add` out of the list: calling it by name is refused too.
    let poisoned = call(
        r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"add","arguments":{}}}"#,
    );
    assert_eq!(poisoned["id"], 9, "{poisoned}");
    assert!(
        poisoned["error"]["message"]
            .as_str()
            .unwrap()
            .contains("removed from the tool list"),
        "{poisoned}"
    );
    let ok = call(&echo(2, "hello"));
    assert_eq!(ok["result"]["content"][0]["text"], "echo: hello", "{ok}");
    let long = call(&echo(3, "a message far longer than twenty"));
    assert_eq!(long["id"], 3, "{long}");
    assert_eq!(long["error"]["code"], -32003, "{long}");
    assert!(long["error"]["message"]
        .as_str()
        .unwrap()
        .contains("longer than 20"));
    let leak = call(
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"leak","arguments":{}}}"#,
    );
    assert!(leak["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("REDACTED"));
    let after = call(&echo(5, "hello again"));
    assert_eq!(after["id"], 5, "{after}");
    assert!(
        after["error"]["message"]
            .as_str()
            .unwrap()
            .contains("after finding:secret"),
        "{after}"
    );
    wrapped.finish();
    let got = std::fs::read_to_string(&received).unwrap();
    assert!(got.contains("hello") && !got.contains("far longer") && !got.contains("hello again"));
    assert!(
        !got.contains("\"id\": 9") && !got.contains("\"id\":9"),
        "{got}"
    );
    let pins: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pins.json")).unwrap()).unwrap();
    let (server_key, tools) = pins.as_object().unwrap().iter().next().unwrap();
    assert!(server_key.starts_with("stdio:python3"), "{server_key}");
    assert!(tools.get("echo").is_some(), "{pins}");
}

/// `sluice stdio --config CFG -- python3 stdio_server.py RECEIVED`, driven line by line.
struct Wrapped {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Wrapped {
    fn start(cfg: &std::path::Path, received: &std::path::Path) -> Wrapped {
        let server = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/stdio_server.py");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["stdio", "--config"])
            .arg(cfg)
            .args(["--", "python3", server])
            .arg(received)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Wrapped {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends one line and reads the one answer.
    fn call(&mut self, line: &str) -> serde_json::Value {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut out = String::new();
        self.stdout.read_line(&mut out).unwrap();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"))
    }

    /// Closes the client side and waits for the wrapper to exit.
    fn finish(mut self) {
        drop(self.stdin.take());
        self.child.wait().unwrap();
    }
}
