//! The chain under each kind of tampering, with and without a key; checkpoints; opening a
//! file (lock, key, checkpoint); times.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::chain::{self, Seal};
use super::checkpoint::{Checkpoint, Shortfall};
use super::*;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Fabricated keys, long enough.
const KEY: &[u8] = b"fabricated-audit-key-for-tests-0123456789";
const OTHER_KEY: &[u8] = b"another-fabricated-audit-key-9876543210";

fn mac(key: &[u8]) -> Seal {
    Seal::Mac(AuditKey::from_bytes(key, "test").unwrap())
}

fn events(log: &AuditLog, n: usize) {
    for i in 0..n {
        log.event(
            "denied",
            "http",
            Origin::default(),
            json!({"control": "rate", "verdict": "redact", "n": i}),
        );
    }
}

/// `n` rows sealed with `seal`, as the file's text.
fn rows(seal: Seal, n: usize) -> String {
    let buf = Buf::default();
    events(&AuditLog::with_seal(Box::new(buf.clone()), true, seal), n);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    text
}

fn join(ls: &[&str]) -> String {
    ls.join("\n") + "\n"
}

/// What someone who can write the file but lacks the key does after editing row `from`
/// (0-based): recomputes every seal from there on, with `tag` as the seal function, under
/// the field `field`, each row's `prev` set to the seal before it.
fn rechain(text: &str, from: usize, field: &str, tag: impl Fn(&[u8]) -> String) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut prev = match from {
        0 => GENESIS.to_string(),
        _ => chain::unseal(lines[from - 1]).unwrap().tag,
    };
    let mut out: Vec<String> = lines[..from].iter().map(|l| l.to_string()).collect();
    for l in &lines[from..] {
        let mut v: serde_json::Value =
            serde_json::from_str(&chain::unseal(l).unwrap().text).unwrap();
        v["prev"] = prev.clone().into();
        let body = v.to_string();
        let t = tag(body.as_bytes());
        out.push(format!(
            "{},\"{field}\":\"{t}\"}}",
            body.strip_suffix('}').unwrap()
        ));
        prev = t;
    }
    out.join("\n") + "\n"
}

fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn verify(text: &str, seal: &Seal) -> Result<chain::Verified, chain::Broken> {
    chain::verify(text.as_bytes(), seal, None)
}

#[test]
fn unkeyed_rows_are_chained_tampering_shows_and_a_rewrite_does_not() {
    let text = rows(Seal::Hash, 4);
    let v = verify(&text, &Seal::Hash).unwrap();
    assert_eq!((v.rows, v.first_seq, v.last_seq), (4, 1, 4));
    assert_eq!(v.warning(), Some(chain::UNKEYED_WARNING));
    assert!(chain::UNKEYED_WARNING.contains("accidental damage"));
    let lines: Vec<&str> = text.lines().collect();
    let edited = text.replacen("\"n\":2", "\"n\":9", 1);
    let broken = verify(&edited, &Seal::Hash).unwrap_err();
    assert_eq!(broken.line, 3);
    assert!(broken.why.contains("edited"), "{}", broken.why);
    let removed = join(&[lines[0], lines[1], lines[3]]);
    assert_eq!(verify(&removed, &Seal::Hash).unwrap_err().line, 3);
    let swapped = join(&[lines[0], lines[2], lines[1], lines[3]]);
    assert_eq!(verify(&swapped, &Seal::Hash).unwrap_err().line, 2);
    // The first row removed: the next does not start the chain; the report says so.
    let v = verify(&join(&lines[1..]), &Seal::Hash).unwrap();
    assert_eq!(v.first_seq, 2);
    // Why the warning: an edit with the hashes recomputed verifies.
    let forged = rechain(&edited, 2, "hash", sha256);
    assert_eq!(verify(&forged, &Seal::Hash).unwrap().rows, 4);
}

#[test]
fn a_keyed_chain_finds_edits_reorders_removals_and_rewrites_without_the_key() {
    let key = mac(KEY);
    let text = rows(key.clone(), 5);
    assert!(text.contains("\"mac\":\"") && !text.contains("\"hash\":\""));
    let v = verify(&text, &key).unwrap();
    assert_eq!((v.rows, v.last_seq, v.keyed), (5, 5, true));
    assert_eq!(v.warning(), None);
    let lines: Vec<&str> = text.lines().collect();
    let fails_at = |t: &str, line: usize, why: &str| {
        let b = verify(t, &key).unwrap_err();
        assert_eq!(b.line, line, "{}", b.why);
        assert!(b.why.contains(why), "{}", b.why);
    };
    // A verdict changed.
    let edited = text.replacen("\"n\":2", "\"n\":7", 1);
    fails_at(&edited, 3, "MAC does not match");
    // Reordered, removed in the middle, a row repeated.
    fails_at(
        &join(&[lines[0], lines[2], lines[1], lines[3]]),
        2,
        "chain breaks",
    );
    fails_at(
        &join(&[lines[0], lines[1], lines[3], lines[4]]),
        3,
        "chain breaks",
    );
    fails_at(
        &join(&[lines[0], lines[1], lines[1], lines[2]]),
        3,
        "chain breaks",
    );
    // The edit with the chain recomputed the old way (plain SHA-256 `hash` fields)...
    fails_at(&rechain(&edited, 0, "hash", sha256), 1, "plain SHA-256");
    // ... or from the edited row on, under `mac`, with SHA-256 or a key of the attacker's.
    fails_at(&rechain(&edited, 2, "mac", sha256), 3, "MAC does not match");
    let theirs = mac(OTHER_KEY);
    fails_at(
        &rechain(&edited, 2, "mac", |b| theirs.tag(b)),
        3,
        "MAC does not match",
    );
    // The whole file under another key: the first row already fails.
    fails_at(&rows(mac(OTHER_KEY), 2), 1, "MAC does not match");
    // Verified without the key: the rows say they need it.
    let b = verify(&text, &Seal::Hash).unwrap_err();
    assert_eq!(b.line, 1);
    assert!(b.why.contains("--key-file"), "{}", b.why);
}

#[test]
fn a_checkpoint_catches_rows_cut_from_the_end_and_cannot_be_forged() {
    let key = mac(KEY);
    let text = rows(key.clone(), 6);
    let lines: Vec<&str> = text.lines().collect();
    let head4 = chain::unseal(lines[3]).unwrap().tag;
    let cp = Checkpoint::new(4, head4.clone(), &key);
    let here = Path::new("cp.json");
    cp.check(&key, here).unwrap();
    let against = |t: &str| cp.shortfall(&chain::verify(t.as_bytes(), &key, Some(4)).unwrap());
    // Rows after the checkpoint's are fine; the checkpoint's own row is fine.
    assert_eq!(against(&text), None);
    assert_eq!(against(&join(&lines[..4])), None);
    // Cut back before it: an intact, shorter chain that the checkpoint exposes.
    assert_eq!(
        against(&join(&lines[..3])),
        Some(Shortfall::Truncated { last: 3 })
    );
    assert_eq!(against(""), Some(Shortfall::Truncated { last: 0 }));
    // Another chain with the same key (a rewrite by someone who had it): row 4 differs.
    let edited = text.replacen("\"n\":3", "\"n\":8", 1);
    let other = rechain(&edited, 3, "mac", |b| key.tag(b));
    assert!(verify(&other, &key).is_ok());
    assert_eq!(against(&other), Some(Shortfall::Rewritten { line: 4 }));
    // A checkpoint moved back to row 2 without the key: no MAC, or the wrong one.
    let head2 = chain::unseal(lines[1]).unwrap().tag;
    let mut forged = Checkpoint::new(2, head2.clone(), &Seal::Hash);
    let err = forged.check(&key, here).unwrap_err().to_string();
    assert!(
        err.contains("has no MAC") && err.contains("cp.json"),
        "{err}"
    );
    forged = Checkpoint::new(2, head2, &mac(OTHER_KEY));
    let err = forged.check(&key, here).unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
    let mut moved = cp.clone();
    moved.seq = 2;
    assert!(
        moved.check(&key, here).is_err(),
        "the MAC covers the row number"
    );
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sluice-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn options(seal: Seal, checkpoint: &Path, interval: Duration) -> AuditOptions {
    AuditOptions {
        every_message: true,
        seal,
        checkpoint: Some(CheckpointOptions {
            path: checkpoint.to_path_buf(),
            interval,
        }),
    }
}

#[test]
fn opening_takes_the_lock_and_checks_the_key_and_the_checkpoint() {
    let d = tmp("open");
    let (file, cp) = (d.join("audit.jsonl"), d.join("audit.checkpoint"));
    let hour = Duration::from_secs(3600);
    let log = AuditLog::open(&file, options(mac(KEY), &cp, hour)).unwrap();
    events(&log, 3);
    // A second writer is refused while the first holds the file.
    let err = AuditLog::open(&file, options(mac(KEY), &cp, hour))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("another process"), "{err}");
    drop(log);
    let written = Checkpoint::read(&cp).unwrap().unwrap();
    assert_eq!(written.seq, 3, "written when the trail was dropped");
    assert!(!d.join("audit.checkpoint.tmp").exists());
    // Reopened: the chain continues across the restart and still verifies.
    let log = AuditLog::open(&file, options(mac(KEY), &cp, hour)).unwrap();
    events(&log, 2);
    log.checkpoint().unwrap();
    assert_eq!(Checkpoint::read(&cp).unwrap().unwrap().seq, 5);
    drop(log);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(verify(&text, &mac(KEY)).unwrap().rows, 5);
    // Another key, or none, cannot continue it.
    let refusal = |seal: Seal| {
        AuditLog::open(&file, options(seal, &cp, hour))
            .err()
            .unwrap()
            .to_string()
    };
    assert!(refusal(mac(OTHER_KEY)).contains("does not match the configured key"));
    assert!(refusal(Seal::Hash).contains("holds a keyed (MAC) chain"));
    // Rows cut from the end: sluice refuses to continue (and so to overwrite the checkpoint).
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&file, join(&lines[..3])).unwrap();
    let err = refusal(mac(KEY));
    assert!(
        err.contains("ends at row 3") && err.contains("records row 5"),
        "{err}"
    );
    assert_eq!(Checkpoint::read(&cp).unwrap().unwrap().seq, 5, "kept");
    // The whole file deleted: the same.
    std::fs::remove_file(&file).unwrap();
    assert!(refusal(mac(KEY)).contains("ends at row 0"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_keyed_trail_refuses_to_continue_an_unkeyed_file() {
    let d = tmp("upgrade");
    let file = d.join("audit.jsonl");
    std::fs::write(&file, rows(Seal::Hash, 2)).unwrap();
    let opts = AuditOptions {
        every_message: true,
        seal: mac(KEY),
        checkpoint: None,
    };
    let err = AuditLog::open(&file, opts).err().unwrap().to_string();
    assert!(err.contains("unkeyed (plain hash) chain"), "{err}");
    // Old files keep working unkeyed.
    let opts = AuditOptions {
        every_message: true,
        seal: Seal::Hash,
        checkpoint: None,
    };
    events(&AuditLog::open(&file, opts).unwrap(), 1);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(verify(&text, &Seal::Hash).unwrap().rows, 3);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_checkpoint_follows_the_rows_every_interval() {
    let d = tmp("tick");
    let (file, cp) = (d.join("audit.jsonl"), d.join("cp"));
    let log = AuditLog::open(&file, options(mac(KEY), &cp, Duration::from_millis(50))).unwrap();
    assert_eq!(
        Checkpoint::read(&cp).unwrap().unwrap().seq,
        0,
        "written at once"
    );
    events(&log, 2);
    let t = Instant::now();
    while Checkpoint::read(&cp).unwrap().unwrap().seq != 2 {
        assert!(t.elapsed() < Duration::from_secs(10), "no checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = Checkpoint::read(&cp).unwrap().unwrap();
    got.check(&mac(KEY), &cp).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let v = chain::verify(text.as_bytes(), &mac(KEY), Some(2)).unwrap();
    assert_eq!(got.shortfall(&v), None);
    drop(log);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_checkpoint_needs_rows_in_a_file() {
    let opts = options(Seal::Hash, Path::new("cp"), Duration::from_secs(1));
    let err = AuditLog::open(Path::new("-"), opts).err().unwrap();
    assert!(matches!(err, AuditError::StdoutCheckpoint), "{err}");
}

#[test]
fn formats_utc_times() {
    let t = UNIX_EPOCH + Duration::from_millis(1_763_773_323_456);
    assert_eq!(rfc3339(t), "2025-11-22T01:02:03.456Z");
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    // Leap day, end of a year, sub-millisecond digits cut (not rounded).
    let t = UNIX_EPOCH + Duration::from_nanos(951_782_399_999_999_999);
    assert_eq!(rfc3339(t), "2000-02-28T23:59:59.999Z");
    let t = UNIX_EPOCH + Duration::from_secs(951_868_800);
    assert_eq!(rfc3339(t), "2000-03-01T00:00:00.000Z");
    let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
    assert_eq!(rfc3339(t), "2099-12-31T23:59:59.000Z");
    // Out of range clocks do not panic.
    assert_eq!(
        rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
        "1970-01-01T00:00:00.000Z"
    );
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::from_secs(400_000_000_000)),
        "9999-12-31T23:59:59.999Z"
    );
}
