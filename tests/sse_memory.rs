//! Memory of `sluice serve` per open SSE stream, the bound the README documents: an HTTP/1.1
//! client holding a streamed answer open, with its upstream connection waiting for the next
//! event, costs the proxy at most 64 KiB of resident memory.

mod common;
use common::{dir, free_port, serve_toml, wait_for};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The documented bound (README, "Reliability"): 64 KiB per open stream.
const BOUND: u64 = 64 * 1024;

/// An upstream that answers every POST with an SSE stream of one event and then holds it open.
fn holding_upstream(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                // The request is small and has a body: wait for the end of its JSON.
                while !got.ends_with(b"}}") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let event =
                    b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n";
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
                let mut out = head.as_bytes().to_vec();
                out.extend_from_slice(format!("{:x}\r\n", event.len()).as_bytes());
                out.extend_from_slice(event);
                out.extend_from_slice(b"\r\n");
                if s.write_all(&out).await.is_err() {
                    return;
                }
                // Hold the stream open until the proxy closes it.
                let _ = s.read(&mut buf).await;
            });
        }
    });
    addr
}

const CALL: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"wait","arguments":{}}}"#;

/// Opens one streamed answer through the proxy and waits for its first event.
fn open_stream(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{CALL}",
        CALL.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("notifications/progress") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stream closed before its first event");
        got.extend_from_slice(&buf[..n]);
    }
    s
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn an_open_sse_stream_costs_at_most_64_kib() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let up = holding_upstream(&rt);
    let port = free_port();
    let proxy = serve_toml(
        &dir("sse_memory").join("sluice.toml"),
        &format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\n[[upstream]]\nurl = \"http://{up}/mcp\"\n"
        ),
    );
    wait_for(port);
    let pid = proxy.0.id();
    // The first streams warm up what every stream shares (threads' caches, pools); the cost
    // of one more stream is what the next thousand add.
    let (warm, more) = (200, 1000);
    let mut streams: Vec<TcpStream> = (0..warm).map(|_| open_stream(port)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_bytes(pid);
    streams.extend((0..more).map(|_| open_stream(port)));
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_bytes(pid);
    let per_stream = after.saturating_sub(before) / more as u64;
    eprintln!("resident memory per open SSE stream: {per_stream} bytes");
    assert!(
        per_stream <= BOUND,
        "an open SSE stream costs {per_stream} bytes of resident memory, over {BOUND}"
    );
    drop(streams);
}
