//! Audit rows: one JSON line per inspected message that found something (or per message, if
//! asked), and one per gateway event (auth failure, denial, approval, reload, pin change).
//! Rule ids, pointers and salted fingerprints; never the matched text.
//!
//! Rows are hash-chained: each carries `seq`, the previous row's hash as `prev`, and its own
//! `hash`, the SHA-256 of the row's text without the hash field. `sluice audit verify`
//! recomputes the chain, so an edited, removed or reordered row shows.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use sluice_engine::sse::StreamedFinding;
use sluice_engine::{Direction, Inspection};

/// Who a message belongs to, where the transport knows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// The client's address (HTTP) or `stdio`.
    pub client: Option<&'a str>,
    /// `Mcp-Session-Id`, when the protocol has sessions.
    pub session: Option<&'a str>,
    /// The authenticated client's name, when clients are configured.
    pub identity: Option<&'a str>,
}

struct Sink {
    out: Box<dyn Write + Send>,
    seq: u64,
    prev: String,
}

/// The audit trail: hash-chained JSON rows written to one sink, serialised by a lock.
pub struct AuditLog {
    sink: Mutex<Sink>,
    every_message: bool,
}

/// The `prev` of a chain's first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl AuditLog {
    /// A trail written to `out`, starting a new chain (`seq` 1, `prev` [`GENESIS`]). With
    /// `every_message`, [`AuditLog::record`] writes a row for clean messages too.
    pub fn new(out: Box<dyn Write + Send>, every_message: bool) -> Self {
        AuditLog {
            sink: Mutex::new(Sink {
                out,
                seq: 0,
                prev: GENESIS.to_string(),
            }),
            every_message,
        }
    }

    /// Appends to `path` (`-` is stdout), continuing the chain of the rows already there.
    pub fn open(path: &std::path::Path, every_message: bool) -> std::io::Result<AuditLog> {
        if path.as_os_str() == "-" {
            return Ok(AuditLog::new(Box::new(std::io::stdout()), every_message));
        }
        let (seq, prev) = chain::tail(path)?;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AuditLog {
            sink: Mutex::new(Sink {
                out: Box::new(out),
                seq,
                prev,
            }),
            every_message,
        })
    }

    /// Records an inspected message: who and when, its kind, method and tool, the verdict,
    /// findings (rule ids, pointers, fingerprints), its size in bytes and the inspection time in
    /// microseconds. Skipped when clean, unless the trail records every message.
    pub fn record(
        &self,
        transport: &str,
        origin: Origin<'_>,
        dir: Direction,
        size: usize,
        took: Duration,
        inspection: &Inspection,
    ) {
        if inspection.findings.is_empty() && !self.every_message {
            return;
        }
        let info = inspection.info();
        let findings: Vec<_> = inspection.findings.iter().map(|f| f.to_json()).collect();
        let mut row = who_and_when(transport, origin, dir);
        row.extend(json_fields(json!({
            "kind": info.map(|i| i.kind.as_str()),
            "method": info.and_then(|i| i.method.as_deref()),
            "tool": info.and_then(|i| i.tool.as_deref()),
            "verdict": inspection.verdict.name(),
            "findings": findings,
            "bytes": size,
            "inspect_us": took.as_secs_f64() * 1e6,
        })));
        self.write(&row.into());
    }

    /// A message that could not be inspected.
    pub fn error(
        &self,
        transport: &str,
        origin: Origin<'_>,
        dir: Direction,
        size: usize,
        error: &str,
        forwarded: bool,
    ) {
        let mut row = who_and_when(transport, origin, dir);
        row.extend(json_fields(json!({
            "error": error,
            "forwarded": forwarded,
            "bytes": size,
        })));
        self.write(&row.into());
    }

    /// A server-sent event too large to hold whole, scanned as it streamed by: its findings
    /// (rule and action; the event could not be rewritten, so no pointer or span) and whether
    /// the stream was cut off at it, for a finding or because the stream ended inside it.
    pub fn streamed(
        &self,
        transport: &str,
        origin: Origin<'_>,
        dir: Direction,
        size: usize,
        findings: &[StreamedFinding],
        aborted: bool,
    ) {
        if findings.is_empty() && !aborted && !self.every_message {
            return;
        }
        let found: Vec<_> = findings
            .iter()
            .map(|f| json!({"rule": f.rule_id, "action": f.action.as_str()}))
            .collect();
        let mut row = who_and_when(transport, origin, dir);
        row.extend(json_fields(json!({
            "kind": "event-over-cap",
            "verdict": if aborted { "block" } else { "forward" },
            "aborted": aborted,
            "findings": found,
            "bytes": size,
        })));
        self.write(&row.into());
    }

    /// A gateway event: `kind` (auth, denied, approval, reload, pin, ...) and its fields.
    pub fn event(
        &self,
        kind: &str,
        transport: &str,
        origin: Origin<'_>,
        fields: serde_json::Value,
    ) {
        let mut row = json_fields(json!({
            "time": rfc3339(SystemTime::now()),
            "event": kind,
            "transport": transport,
            "client": origin.client,
            "identity": origin.identity,
            "session": origin.session,
        }));
        row.extend(json_fields(fields));
        self.write(&row.into());
    }

    fn write(&self, row: &serde_json::Value) {
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let mut row = row.clone();
        if let Some(m) = row.as_object_mut() {
            m.insert("seq".into(), (sink.seq + 1).into());
            m.insert("prev".into(), sink.prev.clone().into());
        }
        let (line, hash) = chain::seal(&row.to_string());
        // An audit sink that fails must not take the traffic down with it; stderr says so.
        if writeln!(sink.out, "{line}")
            .and_then(|_| sink.out.flush())
            .is_err()
        {
            eprintln!("sluice: cannot write an audit row");
            return;
        }
        sink.seq += 1;
        sink.prev = hash;
    }
}

/// `t` in UTC as RFC 3339 with milliseconds, e.g. `2026-11-22T01:02:03.456Z` (the `time`
/// crate). Times before 1970 read as 1970; times past year 9999 as its last millisecond.
pub fn rfc3339(t: SystemTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let at = time::OffsetDateTime::UNIX_EPOCH
        .checked_add(time::Duration::try_from(since).unwrap_or(time::Duration::MAX))
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc());
    // Formatting a UTC date within years 0..=9999 with this description cannot fail.
    at.format(FORMAT).unwrap_or_default()
}

/// The fields every row starts with: when, over what, from whom, which way.
fn who_and_when(
    transport: &str,
    origin: Origin<'_>,
    dir: Direction,
) -> serde_json::Map<String, serde_json::Value> {
    json_fields(json!({
        "time": rfc3339(SystemTime::now()),
        "transport": transport,
        "client": origin.client,
        "identity": origin.identity,
        "session": origin.session,
        "direction": dir.as_str(),
    }))
}

pub mod chain {
    //! The hash chain: sealing a row and verifying a file of rows.

    use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
    use std::path::Path;

    use sha2::{Digest, Sha256};

    const SUFFIX_LEN: usize = r#","hash":""}"#.len() + 64;

    /// The line to write for a row's JSON text (an object), and its hash.
    pub fn seal(text: &str) -> (String, String) {
        let hash = hex::encode(Sha256::digest(text.as_bytes()));
        let body = text.strip_suffix('}').unwrap_or(text);
        let sep = if body.ends_with('{') { "" } else { "," };
        (format!("{body}{sep}\"hash\":\"{hash}\"}}"), hash)
    }

    /// Splits a sealed line into the hashed text and the hash it claims.
    fn unseal(line: &str) -> Option<(String, &str)> {
        if line.len() < SUFFIX_LEN + 1 {
            return None;
        }
        let (body, tail) = line.split_at(line.len() - SUFFIX_LEN);
        let hash = tail.strip_prefix(",\"hash\":\"")?.strip_suffix("\"}")?;
        hex::decode_to_slice(hash, &mut [0u8; 32]).ok()?;
        Some((format!("{body}}}"), hash))
    }

    /// A chain that does not verify: the 1-based line and what is wrong there.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Broken {
        /// The line, counted from 1.
        pub line: usize,
        /// What is wrong there (`hash`, `prev`, `seq`, not JSON...).
        pub why: String,
    }

    /// What a verified file holds.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Verified {
        /// Rows in the file.
        pub rows: u64,
        /// The last row's hash: keep it elsewhere to detect rows cut from the end later.
        pub head: String,
        /// The first row's `seq` (1 unless the file was rotated).
        pub first_seq: u64,
    }

    /// Recomputes the chain of an audit file: every row's hash, its `prev` against the row
    /// before, and `seq` increasing by one. Errors: the first row that does not verify.
    pub fn verify(r: impl Read) -> Result<Verified, Broken> {
        let mut prev: Option<(u64, String)> = None;
        let mut first_seq = 0;
        let mut rows = 0;
        for (i, line) in BufReader::new(r).lines().enumerate() {
            let n = i + 1;
            let broken = |why: String| Broken { line: n, why };
            let line = line.map_err(|e| broken(format!("unreadable: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            let (text, hash) =
                unseal(&line).ok_or_else(|| broken("no hash at the end of the row".into()))?;
            if hex::encode(Sha256::digest(text.as_bytes())) != hash {
                return Err(broken(
                    "the row was edited: its hash does not match its content".into(),
                ));
            }
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| broken(format!("not a JSON row: {e}")))?;
            let seq = v
                .get("seq")
                .and_then(|s| s.as_u64())
                .ok_or_else(|| broken("no seq".into()))?;
            let claimed = v
                .get("prev")
                .and_then(|s| s.as_str())
                .ok_or_else(|| broken("no prev".into()))?;
            match &prev {
                None => {
                    first_seq = seq;
                    if seq == 1 && claimed != super::GENESIS {
                        return Err(broken("the first row does not start the chain".into()));
                    }
                }
                Some((pseq, phash)) => {
                    if claimed != phash {
                        return Err(broken(format!(
                            "the chain breaks: this row follows a row other than line {} (a row was removed, reordered or inserted)",
                            n - 1
                        )));
                    }
                    if seq != pseq + 1 {
                        return Err(broken(format!("seq {seq} follows seq {pseq}")));
                    }
                }
            }
            prev = Some((seq, hash.to_string()));
            rows += 1;
        }
        let head = prev
            .map(|(_, h)| h)
            .unwrap_or_else(|| super::GENESIS.to_string());
        Ok(Verified {
            rows,
            head,
            first_seq,
        })
    }

    /// Whether a row with this hash is in the file (for `verify --head`).
    pub fn contains_hash(r: impl Read, hash: &str) -> bool {
        BufReader::new(r)
            .lines()
            .map_while(Result::ok)
            .any(|l| unseal(&l).is_some_and(|(_, h)| h == hash))
    }

    /// The `seq` and hash of a file's last row, to continue its chain (empty or missing
    /// file: the chain starts).
    pub fn tail(path: &Path) -> std::io::Result<(u64, String)> {
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((0, super::GENESIS.to_string()))
            }
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        // Rows are small; the last 64 KiB hold the last one.
        f.seek(SeekFrom::Start(len.saturating_sub(65_536)))?;
        let mut buf = String::new();
        f.read_to_string(&mut buf).ok();
        let Some(last) = buf.lines().rev().find(|l| !l.trim().is_empty()) else {
            return Ok((0, super::GENESIS.to_string()));
        };
        let parsed = unseal(last).and_then(|(text, hash)| {
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            Some((v.get("seq")?.as_u64()?, hash.to_string()))
        });
        parsed.ok_or_else(|| {
            std::io::Error::other(format!(
                "{}: the last row is not a sealed audit row; move the file aside to start a new chain",
                path.display()
            ))
        })
    }
}

fn json_fields(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rows_are_chained_and_tampering_shows() {
        let buf = Buf::default();
        let log = AuditLog::new(Box::new(buf.clone()), true);
        for i in 0..4 {
            log.event(
                "denied",
                "http",
                Origin::default(),
                json!({"control": "rate", "n": i}),
            );
        }
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let v = chain::verify(text.as_bytes()).unwrap();
        assert_eq!((v.rows, v.first_seq), (4, 1));
        let lines: Vec<&str> = text.lines().collect();
        let join = |ls: &[&str]| ls.join("\n") + "\n";
        // Edited.
        let edited = text.replacen("\"n\":2", "\"n\":9", 1);
        assert_eq!(chain::verify(edited.as_bytes()).unwrap_err().line, 3);
        // Removed.
        let removed = join(&[lines[0], lines[1], lines[3]]);
        assert_eq!(chain::verify(removed.as_bytes()).unwrap_err().line, 3);
        // Reordered.
        let swapped = join(&[lines[0], lines[2], lines[1], lines[3]]);
        assert_eq!(chain::verify(swapped.as_bytes()).unwrap_err().line, 2);
        // The first row removed: the next does not start the chain.
        let head_cut = join(&lines[1..]);
        let v = chain::verify(head_cut.as_bytes()).unwrap();
        assert_eq!(
            v.first_seq, 2,
            "a rotated file starts past 1; the report says so"
        );
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
}
