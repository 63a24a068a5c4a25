//! Helpers the end-to-end tests share: child processes that die with the test, free ports,
//! waiting for a listener, the peer scripts' folder.
#![allow(dead_code)] // each test file uses its own subset

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
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

/// A loopback TCP port that refuses connections for as long as the returned socket lives: it is
/// bound but never listens, so no other process can take it meanwhile (a port from
/// [`free_port`] is free only until someone else binds it).
pub fn closed_port() -> (std::os::fd::OwnedFd, u16) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a fresh descriptor that the OwnedFd then owns.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let bound = libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len);
        assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
        let mut got_len = len;
        let named = libc::getsockname(
            fd,
            (&mut addr as *mut libc::sockaddr_in).cast(),
            &mut got_len,
        );
        assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
        (owned, u16::from_be(addr.sin_port))
    }
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `toml` to `cfg` and starts `sluice serve --threads 2` on it (stderr discarded);
/// the caller waits for its ports.
pub fn serve_toml(cfg: &Path, toml: &str) -> Kill {
    std::fs::write(cfg, toml).unwrap();
    Kill(
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--threads", "2", "--config"])
            .arg(cfg)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

pub fn wait_for(port: u16) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            // A cold start compiles the Hyperscan databases of every rule (seconds on a busy
            // 2-core machine) before it listens; later starts load them from the cache.
            t.elapsed() < Duration::from_secs(120),
            "nothing listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn peers() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers")
}

/// Starts a Python peer server from tests/peers with these arguments, listening on `port`.
pub fn python_server(script: &str, args: &[String], port: u16) -> Kill {
    let child = std::process::Command::new("python3")
        .arg(format!("{}/{script}", peers()))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let k = Kill(child);
    wait_for(port);
    k
}

/// Runs a Python peer client from tests/peers against `url`; it prints one JSON object.
pub fn python_client(script: &str, url: &str) -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .arg(format!("{}/{script}", peers()))
        .arg(url)
        .current_dir(peers())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sluice-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A fresh CA and a certificate for localhost and 127.0.0.1 signed by it.
pub fn pki(d: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "sluice test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let p = Pki {
        ca: d.join("ca.pem"),
        cert: d.join("cert.pem"),
        key: d.join("key.pem"),
    };
    std::fs::write(&p.ca, ca.pem()).unwrap();
    std::fs::write(&p.cert, leaf.pem()).unwrap();
    std::fs::write(&p.key, key.serialize_pem()).unwrap();
    p
}

/// A client key from `sluice keys new NAME`: (the key, its SHA-256 in hex).
pub fn new_key(name: &str) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["keys", "new", name])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let key = text
        .split_whitespace()
        .find(|w| w.starts_with("sk_sluice_"))
        .unwrap()
        .to_string();
    let hash = text
        .lines()
        .find_map(|l| l.strip_prefix("key_sha256 = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    (key, hash)
}
