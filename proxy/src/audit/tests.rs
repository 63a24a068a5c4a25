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

/// The rows written to `buf`, parsed; each also checked against [`bound::MAX_ROW`].
fn parsed(buf: &Buf) -> Vec<serde_json::Value> {
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|l| {
            assert!(l.len() <= bound::MAX_ROW, "row of {} bytes", l.len());
            serde_json::from_str(l).unwrap()
        })
        .collect()
}

fn text_of(buf: &Buf) -> String {
    String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
}

/// A fabricated token shape, inspected by the real engine.
fn inspect(msg: &[u8]) -> Inspection {
    use sluice_engine::{Action, CompiledRules, Inspector, Policy, Ruleset};
    let rules = "[[rule]]\nid = \"test-token\"\nname = \"Test token\"\ncategory = \"secret\"\n\
                 pattern = 'tkn_[a-z0-9]{12}'\n";
    let rules = CompiledRules::compile(Ruleset::from_toml(rules, "t.toml").unwrap()).unwrap();
    let policy = Policy::with_mode(Action::Redact);
    Inspector::new(rules)
        .unwrap()
        .inspect(msg, Direction::ClientToServer, None, &policy)
        .unwrap()
}

#[test]
fn clipping_cuts_on_a_char_boundary_and_says_how_long_the_text_was() {
    let euros = "€".repeat(200); // 600 bytes, 3 per char
    let clipped = bound::clip(&euros);
    assert_eq!(
        clipped,
        format!("{}…(truncated, 600 bytes)", "€".repeat(85))
    );
    assert_eq!(bound::clip("short"), "short");
    let exact = "a".repeat(bound::MAX_TEXT);
    assert_eq!(bound::clip(&exact), exact);
}

/// A megabyte tool name, a long key and a hundred secrets (one of them a key name): the row
/// stays small, says what it cut, names no secret, and the chain verifies.
#[test]
fn a_huge_message_gives_a_bounded_row() {
    let tool = "t".repeat(1 << 20);
    let long_key = "k".repeat(1000);
    let mut args = vec![r#""tkn_keyname00001":"tkn_valuename001""#.to_string()];
    args.extend((0..100).map(|i| format!(r#""a{i}":"tkn_abcdef12{i:04}""#)));
    args.push(format!(r#""{long_key}":"tkn_zzzzzz999999""#));
    let msg = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{{{}}}}}}}"#,
        args.join(",")
    );
    let found = inspect(msg.as_bytes());
    assert_eq!(found.findings.len(), 103);
    let buf = Buf::default();
    let log = AuditLog::with_seal(Box::new(buf.clone()), false, mac(KEY));
    log.record(
        "http",
        Origin::default(),
        Direction::ClientToServer,
        msg.len(),
        Duration::ZERO,
        &found,
    );
    let text = text_of(&buf);
    assert!(text.len() < 48 * 1024, "row of {} bytes", text.len());
    let row = &parsed(&buf)[0];
    let shown = row["tool"].as_str().unwrap();
    assert!(shown.ends_with("…(truncated, 1048576 bytes)"), "{shown}");
    assert_eq!(row["findings"].as_array().unwrap().len(), bound::MAX_LIST);
    assert_eq!(row["findings_omitted"], 103 - bound::MAX_LIST);
    assert_eq!(row["omitted_rules"], json!(["test-token"]));
    let secrets = ["abcdef12", "keyname0", "valuename0"];
    assert!(!secrets.iter().any(|s| text.contains(s)), "{text}");
    // A key a rule matched is `*` in the pointers of what lies under it.
    assert!(
        text.contains(r#""pointer":"/params/arguments/*""#),
        "{text}"
    );
    assert_eq!(verify(&text, &mac(KEY)).unwrap().rows, 1);
    // The long key's pointer, among the omitted findings above, is clipped too.
    let only_long = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"x","arguments":{{"{long_key}":"tkn_zzzzzz999999"}}}}}}"#
    );
    let found = inspect(only_long.as_bytes());
    log.record(
        "http",
        Origin::default(),
        Direction::ClientToServer,
        only_long.len(),
        Duration::ZERO,
        &found,
    );
    let pointer = parsed(&buf)[1]["findings"][0]["pointer"].clone();
    assert!(
        pointer
            .as_str()
            .unwrap()
            .ends_with("…(truncated, 1018 bytes)"),
        "{pointer}"
    );
}

/// Fields that JSON escaping makes six times longer than their clipped length: the row is
/// written in its short form, under the cap, and the chain goes on.
#[test]
fn a_row_still_over_the_cap_is_written_short() {
    let buf = Buf::default();
    let log = AuditLog::with_seal(Box::new(buf.clone()), true, Seal::Hash);
    let noise = "\u{1}".repeat(4096);
    let mut fields = serde_json::Map::new();
    for c in 'a'..='z' {
        fields.insert(c.to_string(), noise.clone().into());
    }
    fields.insert("names".into(), vec![noise.clone(); 100].into());
    fields.insert("control".into(), "catalog".into());
    log.event("denied", "http", Origin::default(), fields.into());
    events(&log, 1);
    let rows = parsed(&buf);
    assert_eq!(rows[0]["event"], "denied");
    assert_eq!(rows[0]["control"], "catalog");
    assert!(rows[0]["cut"].as_u64().unwrap() > bound::MAX_ROW as u64);
    assert!(rows[0].get("a").is_none() && rows[0].get("names").is_none());
    assert_eq!(verify(&text_of(&buf), &Seal::Hash).unwrap().rows, 2);
    // Lists under the cap's size are capped at MAX_LIST, the rest counted.
    log.event(
        "filtered",
        "http",
        Origin::default(),
        json!({"hidden_by_catalog": vec!["x"; 40]}),
    );
    let row = &parsed(&buf)[2];
    assert_eq!(row["hidden_by_catalog"].as_array().unwrap().len(), 32);
    assert_eq!(row["hidden_by_catalog_omitted"], 8);
}

/// `Mcp-Session-Id` is a bearer credential: rows carry the documented keyed digest of it.
#[test]
fn a_session_id_is_written_as_its_digest() {
    let id = "sess-fabricated-3f9a7c21d4e8b6a0";
    let origin = Origin {
        session: Some(id),
        ..Origin::default()
    };
    let buf = Buf::default();
    let log = AuditLog::with_seal(Box::new(buf.clone()), true, mac(KEY));
    log.event("denied", "http", origin, json!({}));
    log.error(
        "http",
        origin,
        Direction::ClientToServer,
        1,
        "bad JSON",
        false,
    );
    let rows = parsed(&buf);
    assert!(!text_of(&buf).contains("fabricated-3f9a"));
    // As README says to compute it: HMAC-SHA-256 under the key's text.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, KEY);
    let want = hex::encode(ring::hmac::sign(
        &key,
        format!("mcp-session-id:{id}").as_bytes(),
    ));
    assert_eq!(rows[0]["session"], want[..32]);
    assert_eq!(
        rows[1]["session"], rows[0]["session"],
        "one session, one value"
    );
    // Unkeyed: plain SHA-256.
    let buf = Buf::default();
    AuditLog::new(Box::new(buf.clone()), true).event("denied", "http", origin, json!({}));
    let want = sha256(format!("mcp-session-id:{id}").as_bytes());
    assert_eq!(parsed(&buf)[0]["session"], want[..32]);
}

/// A disk that fills: a short write, then ENOSPC, on the real audit file.
struct Full {
    file: File,
    full: Arc<std::sync::atomic::AtomicBool>,
}

impl Write for Full {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if !self.full.load(std::sync::atomic::Ordering::SeqCst) {
            return self.file.write(b);
        }
        if b.len() > 1 {
            return self.file.write(&b[..b.len() / 2]);
        }
        Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// While the disk is full no torn row stays in the file and the trail says it cannot write;
/// once it can, an `audit-gap` row counts what was lost and the chain verifies throughout.
#[test]
fn a_full_disk_leaves_no_torn_row_and_the_gap_is_recorded() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let d = tmp("full");
    let path = d.join("audit.jsonl");
    let opts = AuditOptions {
        every_message: true,
        seal: mac(KEY),
        checkpoint: None,
    };
    let log = AuditLog::open(&path, opts).unwrap();
    events(&log, 2);
    let full = Arc::new(AtomicBool::new(true));
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    log.shared.sink.lock().unwrap().out = Box::new(Full {
        file,
        full: full.clone(),
    });
    events(&log, 3);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(verify(&text, &mac(KEY)).unwrap().rows, 2, "no torn row");
    assert!(!log.writable());
    assert!(!log.writable());
    full.store(false, Ordering::SeqCst);
    assert!(log.writable());
    events(&log, 1);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(verify(&text, &mac(KEY)).unwrap().rows, 4);
    let gap: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
    assert_eq!(gap["event"], "audit-gap");
    assert_eq!(
        (gap["lost"].as_u64(), gap["refused"].as_u64()),
        (Some(3), Some(2))
    );
    assert!(
        gap["error"].as_str().unwrap().contains("No space left"),
        "{gap}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// The kernel's always-full device: every write fails with ENOSPC.
#[test]
fn a_trail_on_a_full_device_is_not_writable() {
    let opts = AuditOptions {
        every_message: true,
        seal: Seal::Hash,
        checkpoint: None,
    };
    let log = AuditLog::open(Path::new("/dev/full"), opts).unwrap();
    assert!(log.writable(), "nothing failed yet");
    events(&log, 1);
    assert!(!log.writable());
}
