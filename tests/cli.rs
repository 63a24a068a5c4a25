//! The built `sluice` binary, end to end: exit codes, output formats, errors.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const AWS: &str = "AKIAQX7ZR2M4KD5T6WYB"; // fabricated

fn sluice(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn tmp(name: &str, content: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn scan_exit_codes_and_positions() {
    let clean = tmp("clean.txt", b"nothing to see\nhere\n");
    let out = sluice(&["scan", clean.to_str().unwrap()], b"");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dirty = tmp("dirty.txt", format!("line one\nkey = {AWS}\n").as_bytes());
    let out = sluice(&["scan", dirty.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("dirty.txt:2:7: aws.access-key-id"),
        "{stdout}"
    );
    assert!(!stdout.contains(AWS));

    let out = sluice(&["scan", "/nonexistent/file"], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn scan_jsonrpc_lines_gives_pointers_and_sarif() {
    let msgs = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"x\",\"arguments\":{{\"k\":\"{AWS}\"}}}}}}\n{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{}}}}\n"
    );
    let f = tmp("traffic.jsonl", msgs.as_bytes());
    let out = sluice(&["scan", "--format", "json", f.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let row: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(row["pointer"], "/params/arguments/k");
    assert_eq!(row["line"], 1);
    assert_eq!(row["method"], "tools/call");

    let out = sluice(&["scan", "--format", "sarif", f.to_str().unwrap()], b"");
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        sarif["runs"][0]["results"][0]["ruleId"],
        "aws.access-key-id"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(AWS));
}

#[test]
fn scan_reads_stdin() {
    let out = sluice(&["scan", "-"], format!("x {AWS}\n").as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("<stdin>:1:3"));
}

#[test]
fn inspect_writes_what_would_be_forwarded() {
    let input = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\"k={AWS}\"}}]}}}}\n\
         {{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\"fine\"}}]}}}}\n\
         not json\n"
    );
    let report = std::env::temp_dir().join(format!("sluice-report-{}.jsonl", std::process::id()));
    let out = sluice(
        &[
            "inspect",
            "--mode",
            "redact",
            "--direction",
            "response",
            "--report",
            report.to_str().unwrap(),
        ],
        input.as_bytes(),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "a malformed line makes the exit code 2"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].contains("k=[REDACTED:aws.access-key-id]"));
    assert_eq!(
        lines[1],
        input.lines().nth(1).unwrap(),
        "clean line byte-identical"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3: malformed JSON"));
    let rep = std::fs::read_to_string(&report).unwrap();
    assert!(rep.contains("\"rule\":\"aws.access-key-id\""));
    assert!(rep.contains("\"error\""));
    assert!(!rep.contains(AWS));

    let out = sluice(
        &["inspect", "--mode", "block", "--direction", "request"],
        input.lines().next().unwrap().as_bytes(),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], -32001);
    assert_eq!(v["id"], 1);
}

#[test]
fn broken_rules_file_is_reported_with_file_line_and_rule() {
    let rules = tmp(
        "broken.toml",
        b"[[rule]]\nid = \"ok.one\"\nname = \"one\"\ncategory = \"secret\"\npattern = 'abc\\d+'\n\n[[rule]]\nid = \"bad.two\"\nname = \"two\"\ncategory = \"secret\"\npattern = '(unclosed'\n",
    );
    let out = sluice(&["scan", "--rules", rules.to_str().unwrap(), "-"], b"x");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("broken.toml:11: rule `bad.two`"), "{err}");
}

#[test]
fn custom_rules_extend_the_default() {
    let rules = tmp(
        "extra.toml",
        b"[[rule]]\nid = \"acme.token\"\nname = \"Acme token\"\ncategory = \"secret\"\npattern = '''\\b(acme_[a-z0-9]{16})\\b'''\nexamples = [\"acme_0123456789abcdef\"]\nnegative_examples = [\"acme_short\"]\n",
    );
    let out = sluice(
        &["scan", "--add-rules", rules.to_str().unwrap(), "-"],
        format!("acme_0123456789abcdef {AWS}").as_bytes(),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("acme.token"), "{stdout}");
    assert!(stdout.contains("aws.access-key-id"), "{stdout}");
}

#[test]
fn demo_runs_and_reports_labels() {
    let out = sluice(&["demo", "--once", "--listen", "127.0.0.1:0"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("precision 1.00, recall 1.00"), "{stdout}");
    assert!(
        stdout.contains("passed byte-identical: 13 of 13"),
        "{stdout}"
    );
    assert!(stdout.contains("the server never saw it"), "{stdout}");
    assert!(
        stdout.contains("removed: add"),
        "the poisoned tool: {stdout}"
    );
    assert!(stdout.contains("[REDACTED:stripe.secret-key]"), "{stdout}");
    // Fabricated secrets of the demo corpus never reach the other side, so never the table.
    for secret in [
        "AKIAHBRPOIGF3CBFNOBM",
        "sk_live_diH7YFjS1on43XkMtECqOxSF2O3G",
        "4111 1111 1111 1111",
    ] {
        assert!(!stdout.contains(secret), "{secret} in {stdout}");
    }
}

/// Without --once the proxy keeps serving in front of the demo server until SIGINT.
#[test]
fn demo_keeps_serving_until_interrupted() {
    use std::io::{BufRead, BufReader, Read};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("Ctrl-C to stop") {
            break;
        }
    }
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"note":"key {AWS}"}}}}}}"#
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("[REDACTED:aws.access-key-id]"), "{answer}");
    assert!(!answer.contains(AWS), "{answer}");
    // The audit row of that call is echoed, without the key.
    let row = lines.next().unwrap().unwrap();
    assert!(
        row.contains("aws.access-key-id") && !row.contains(AWS),
        "{row}"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// The generator is deterministic and its output is a labelled corpus `bench` scores; the
/// bench reports per-category quality, throughput against the regex baseline, and rule costs.
#[test]
fn corpus_generate_and_bench() {
    let a = sluice(
        &["corpus", "generate", "--benign", "40", "--seed", "3"],
        b"",
    );
    let b = sluice(
        &["corpus", "generate", "--benign", "40", "--seed", "3"],
        b"",
    );
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout, "same seed, same bytes");
    let corpus = tmp("labelled.jsonl", &a.stdout);
    let out = sluice(
        &[
            "bench",
            "--corpus",
            corpus.to_str().unwrap(),
            "--seconds",
            "0.2",
            "--json",
            "--leave-one-out",
            "1",
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for cat in ["secret", "pii", "injection", "exfiltration"] {
        assert!(
            r["categories"][cat]["recall"].as_f64().unwrap() >= 0.95,
            "{cat}: {r}"
        );
        assert!(
            r["categories"][cat]["precision"].as_f64().unwrap() >= 0.95,
            "{cat}: {r}"
        );
    }
    assert!(r["throughput"]["mb_per_s"].as_f64().unwrap() > 0.0);
    assert!(r["speedup_vs_regex"].as_f64().unwrap() > 0.0);
    assert!(r["cost"].as_array().unwrap().len() >= 10);

    // A rule that fires on everything shows up as false alarms, named.
    let noisy = tmp(
        "noisy.toml",
        br#"[[rule]]
id = "ours.the-word-the"
name = "The word the"
category = "pii"
severity = "low"
pattern = '''\bthe\b'''
examples = ["the"]
"#,
    );
    let out = sluice(
        &[
            "bench",
            "--add-rules",
            noisy.to_str().unwrap(),
            "--corpus",
            corpus.to_str().unwrap(),
            "--seconds",
            "0.1",
            "--no-cost",
        ],
        b"",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ours.the-word-the"), "{text}");
    assert!(text.contains("false alarms"), "{text}");

    let sized = sluice(&["corpus", "generate", "--size", "300KB"], b"");
    assert!(sized.stdout.len() >= 300_000 && sized.stdout.len() < 400_000);
}

fn rule_file(name: &str, id: &str, pattern: &str, extra: &str) -> std::path::PathBuf {
    tmp(
        name,
        format!(
            "[[rule]]\nid = \"{id}\"\nname = \"{id}\"\ncategory = \"secret\"\nseverity = \"high\"\npattern = '''{pattern}'''\n{extra}\n"
        )
        .as_bytes(),
    )
}

/// `sluice check` rejects, naming the rule and the reason: `.*`, a negative example that
/// matches, a pattern Hyperscan cannot compile, a pattern that halves throughput; and passes
/// a good rule.
#[test]
fn check_rejects_bad_rules_with_their_reason() {
    let run = |file: &std::path::Path| {
        let out = sluice(
            &[
                "check",
                "--rules",
                file.to_str().unwrap(),
                "--fuzz-seconds",
                "1",
            ],
            b"",
        );
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, text) = run(&rule_file(
        "dotstar.toml",
        "ours.dot-star",
        ".*",
        "examples = [\"x\"]",
    ));
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("ours.dot-star") && text.contains("empty string"),
        "{text}"
    );

    let (code, text) = run(&rule_file(
        "negative.toml",
        "ours.tok",
        r"tok_[a-z0-9]{12}",
        "examples = [\"tok_abcdef123456\"]\nnegative_examples = [\"tok_zzzzzz999999\"]",
    ));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FAIL ours.tok [negative-example]"), "{text}");

    let (code, text) = run(&rule_file(
        "hyperscan.toml",
        "ours.too-large",
        r"key_(?:[a-z]{1,200}[0-9]{1,200}){1,50}",
        "examples = [\"key_abc123\"]",
    ));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAIL ours.too-large [compile]") && text.contains("Hyperscan"),
        "{text}"
    );

    let (code, text) = run(&rule_file(
        "slow.toml",
        "ours.digits",
        // A one-letter lead and a long wildcard gap: Hyperscan keeps a gap open at every
        // vowel (tens of times the whole default database's scan time).
        r"(?i)(?:a|e|o)[^\n]{0,80}\d{3}[ -]?\d{4}[ -]?\d{4}",
        "examples = [\"call 555 1234 5678\"]",
    ));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FAIL ours.digits [cost]"), "{text}");
    assert!(text.contains("slower"), "{text}");

    let (code, text) = run(&rule_file(
        "good.toml",
        "ours.deploy-key",
        r"\bacme_dk_[A-Za-z0-9]{32}\b",
        "examples = [\"ACME_KEY=acme_dk_Zx8Qw2Er4Ty6Ui8Op0As2Df4Gh6Jk8Lz\"]\nnegative_examples = [\"acme_dk_short\"]",
    ));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("all checks pass"), "{text}");
}

#[test]
fn inspect_fail_open_still_drops_a_message_past_the_decoding_budget() {
    // Percent-encoded percent signs and doubled backslashes, four levels of each: the decoded
    // views multiply past the budget, and such a message is never forwarded uninspected.
    let unit = "%2525252541\\\\\\\\u0041 ";
    let text = unit.repeat(200_000 / unit.len());
    let line = serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}});
    let out = sluice(&["inspect", "--fail-open"], format!("{line}\n").as_bytes());
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "forwarded past the budget");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not inspected"));
}

#[test]
fn inspect_keeps_big_numbers_and_lone_surrogates_as_sent() {
    // JSON allows both (RFC 8259 sections 6 and 8.2); MCP SDKs accept them.
    let numbers = r#"{"jsonrpc":"2.0","id":1.0,"result":{"content":[],"structuredContent":{"n":123456789012345678901234567890,"e":1e400,"t":-1E-400}}}"#;
    let surrogate = format!(
        r#"{{"jsonrpc":"2.0","id":2,"result":{{"content":[{{"type":"text","text":"\ud800 key={AWS} \udc00"}}]}}}}"#
    );
    let input = format!("{numbers}\n{surrogate}\n");
    let out = sluice(
        &["inspect", "--mode", "redact", "--direction", "response"],
        input.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let redacted = surrogate.replace(AWS, "[REDACTED:aws.access-key-id]");
    assert_eq!(
        lines,
        [numbers, redacted.as_str()],
        "the first byte-identical"
    );

    // A request refused by sluice is answered with its id as sent.
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":1.0,"method":"tools/call","params":{{"name":"x","arguments":{{"k":"{AWS}"}}}}}}"#
    );
    let out = sluice(
        &["inspect", "--mode", "block", "--direction", "request"],
        call.as_bytes(),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with(r#"{"jsonrpc":"2.0","id":1.0,"error""#),
        "{stdout}"
    );
}
