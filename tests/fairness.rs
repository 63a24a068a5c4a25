//! One client flooding `sluice serve` with large, expensive messages does not stall another
//! client's small calls: small messages are inspected where they are read, and large ones
//! wait for the scan workers in their client's turn.

mod common;
use common::{dir, free_port, serve_toml, wait_for};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn post(port: u16, path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends `request` from `source` (a loopback address: each is a different client to sluice)
/// and returns the answer's status line.
async fn call(source: [u8; 4], port: u16, request: &[u8]) -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    let mut s = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    s.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let end = answer
        .iter()
        .position(|&b| b == b'\r')
        .unwrap_or(answer.len());
    String::from_utf8_lossy(&answer[..end]).into_owned()
}

/// A runtime for the flooding client and its upstream. They stand for other machines: on this
/// 2-core box they run at nice 10, so what the small calls measure is sluice's scheduling of its
/// own work, not the load generator's 4 MiB reads, writes and echoes taking the cores.
fn elsewhere() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(|| {
            // SAFETY: lowers the calling thread's priority only.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
            }
        })
        .enable_all()
        .build()
        .unwrap()
}

/// Small calls measured, one every 10 ms or so.
const CALLS: usize = 300;

#[test]
fn a_flood_of_large_messages_does_not_stall_small_calls() {
    // 4 MiB: scanned by the workers, in the flooding client's turn.
    flood("fairness", 4 << 20, 4);
}

#[test]
fn a_flood_of_small_expensive_messages_does_not_stall_small_calls() {
    // Under the inline size: scanned where they are read until the client has spent its
    // inline budget, then by the workers.
    flood("fairness-small", 15 << 10, 16);
}

/// Floods sluice with `senders` concurrent streams of `bytes`-sized messages made of a
/// credential keyword from one client, and checks another client's small calls.
fn flood(name: &str, bytes: usize, senders: usize) {
    // One flood at a time: two would measure each other.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // Two upstreams, as two machines would be: the flood's echo of 4 MiB bodies runs at nice 10
    // beside the flooding client, the small calls' upstream at normal priority.
    let upstream = |rt: &tokio::runtime::Runtime| {
        let server = sluice_proxy::replay::ReplayServer::new(Default::default());
        let (addr, serve) = rt
            .block_on(server.bind(SocketAddr::from(([127, 0, 0, 1], 0))))
            .unwrap();
        rt.spawn(serve);
        addr
    };
    let upstream_rt = tokio::runtime::Runtime::new().unwrap();
    let flood_rt = elsewhere();
    let (up, flood_up) = (upstream(&upstream_rt), upstream(&flood_rt));
    let d = dir(name);
    let port = free_port();
    let _proxy = serve_toml(
        &d.join("sluice.toml"),
        &format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\n[[upstream]]\nurl = \"http://{up}/mcp\"\n[[upstream]]\nprefix = \"/flood\"\nurl = \"http://{flood_up}/mcp\"\n"
        ),
    );
    wait_for(port);

    // A credential keyword, again and again: the most expensive text to confirm.
    let text = "password=".repeat(bytes / 9);
    let big = Arc::new(post(
        port,
        "/flood",
        &format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{text}"}}}}}}"#
        ),
    ));
    let small = post(
        port,
        "/mcp",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}"#,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let flooded = Arc::new(AtomicUsize::new(0));
    for _ in 0..senders {
        let (big, stop, flooded) = (big.clone(), stop.clone(), flooded.clone());
        flood_rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                call([127, 0, 0, 2], port, &big).await;
                flooded.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    std::thread::sleep(Duration::from_secs(1));

    let victim_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut took: Vec<Duration> = victim_rt.block_on(async {
        let mut took = Vec::new();
        for _ in 0..CALLS {
            let t = Instant::now();
            let status = call([127, 0, 0, 1], port, &small).await;
            took.push(t.elapsed());
            assert_eq!(status, "HTTP/1.1 200 OK");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        took
    });
    stop.store(true, Ordering::Relaxed);
    took.sort();
    let (p50, p99) = (took[CALLS / 2], took[CALLS * 99 / 100 - 1]);
    let flood = flooded.load(Ordering::Relaxed);
    eprintln!("small calls under a flood of {bytes}-byte messages: p50 {p50:?}, p99 {p99:?}, max {:?}; large messages answered meanwhile: {flood}", took[CALLS - 1]);
    assert!(flood >= 1, "the flood never got through");
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?} (p50 {p50:?})");
    drop(flood_rt);
}
