//! The official Python MCP SDK (mcp 2.x: `MCPServer` and `mcp.Client`, installed by
//! `make test`) through `sluice stdio`, in each mode: what the server received and what the
//! client got.

use std::process::Command;

const AWS: &str = "AKIAQX7ZR2M4KD5T6WYB"; // fabricated

fn run(mode: &str) -> (serde_json::Value, String) {
    let peers = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers");
    let received =
        std::env::temp_dir().join(format!("sluice-sdk-{mode}-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&received);
    let out = Command::new("python3")
        .arg(format!("{peers}/sdk_stdio_client.py"))
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .arg(mode)
        .arg(format!("{peers}/sdk_server.py"))
        .arg(&received)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the SDK client failed (run `make test`, which installs the mcp SDK): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_slice(&out.stdout).unwrap();
    (v, std::fs::read_to_string(&received).unwrap_or_default())
}

#[test]
fn python_sdk_through_sluice_stdio_in_each_mode() {
    let (redact, got) = run("redact");
    assert_eq!(redact["tools"], serde_json::json!(["echo", "leak"]));
    assert_eq!(redact["clean"]["text"], "echo: hello");
    assert_eq!(
        redact["secret_argument"]["text"],
        "echo: key [REDACTED:aws.access-key-id]"
    );
    assert_eq!(
        redact["secret_result"]["text"],
        "aws_access_key_id=[REDACTED:aws.access-key-id]"
    );
    assert_eq!(got, "hello\nkey [REDACTED:aws.access-key-id]\n");

    let (block, got) = run("block");
    assert_eq!(block["clean"]["text"], "echo: hello");
    assert!(block["secret_argument"]["error"]
        .as_str()
        .unwrap()
        .contains("aws.access-key-id"));
    assert!(block["secret_result"]["error"]
        .as_str()
        .unwrap()
        .contains("aws.access-key-id"));
    assert_eq!(got, "hello\n", "the blocked call never reached the server");

    let (monitor, got) = run("monitor");
    assert_eq!(
        monitor["secret_argument"]["text"],
        format!("echo: key {AWS}")
    );
    assert_eq!(got, format!("hello\nkey {AWS}\n"));
}
