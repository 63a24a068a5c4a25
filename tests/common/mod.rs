//! Helpers the end-to-end tests share: child processes that die with the test, free ports,
//! waiting for a listener, the peer scripts' folder.
#![allow(dead_code)] // each test file uses its own subset

use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

pub const AWS: &str = "AKIAQX7ZR2M4KD5T6WYB"; // fabricated

/// Kills and reaps the child when dropped, so a failing test leaves no process behind.
pub struct Kill(pub Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for(port: u16) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "nothing listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn peers() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers")
}
