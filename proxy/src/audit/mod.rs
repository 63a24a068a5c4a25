//! Audit rows: one JSON line per inspected message that found something (or per message, if
//! asked), and one per gateway event (auth failure, denial, approval, reload, pin change).
//! Rule ids, pointers and salted fingerprints; never the matched text, never a session id
//! (a keyed digest of it), never a name a rule matched ([`withheld`]).
//!
//! Rows are chained ([`chain`]): each carries `seq`, the previous row's seal as `prev`, and
//! its own seal, an HMAC-SHA-256 under the audit key ([`key`]) or, without a key, a plain
//! SHA-256. `sluice audit verify` recomputes the chain, so an edited, removed or reordered row
//! shows; the [`checkpoint`] file, rewritten every interval and at shutdown, shows rows cut
//! from the end. One process writes a file: [`AuditLog::open`] locks it.
//!
//! Every row is bounded ([`bound`]: strings clipped at 256 bytes, lists at 32 items, a row at
//! 64 KiB), whatever the client or the upstream sent. A row that cannot be written (a full
//! disk) leaves no torn line, and the trail refuses traffic until it can write again
//! ([`AuditLog::writable`]; the `audit-gap` row counts what was lost).

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use sluice_engine::sse::StreamedFinding;
use sluice_engine::{Direction, Inspection};

pub mod bound;
pub mod chain;
pub mod checkpoint;
pub mod key;
mod lock;
mod open;
mod ticker;
pub mod withheld;
mod write;

pub use chain::{Seal, SealKind, GENESIS};
pub use checkpoint::Checkpoint;
pub use key::{AuditKey, KeyError};
pub use open::{AuditError, AuditOptions, CheckpointOptions};
pub use withheld::{Matched, WITHHELD};

/// Who a message belongs to, where the transport knows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// The client's address (HTTP) or `stdio`.
    pub client: Option<&'a str>,
    /// `Mcp-Session-Id`, when the protocol has sessions (written as its digest,
    /// [`withheld::session_digest`]).
    pub session: Option<&'a str>,
    /// The authenticated client's name, when clients are configured.
    pub identity: Option<&'a str>,
}

struct Sink {
    out: Box<dyn Write + Send>,
    seq: u64,
    prev: String,
    /// Rows lost since the last write that failed, until a row is written again.
    gap: Option<write::Gap>,
}

/// What the writers and the checkpoint thread share.
struct Shared {
    sink: Mutex<Sink>,
    /// Set while the last write failed: lets [`AuditLog::writable`] answer without the lock.
    failing: AtomicBool,
    seal: Seal,
    every_message: bool,
    /// The audit file, to sync before a checkpoint vouches for its rows.
    file: Option<File>,
    checkpoint: Option<CheckpointState>,
}

struct CheckpointState {
    path: PathBuf,
    /// The `seq` of the last checkpoint written; the lock also keeps two writers of the
    /// checkpoint apart.
    written: Mutex<Option<u64>>,
}

/// The audit trail: chained JSON rows written to one sink, serialised by a lock, with the
/// chain's head checkpointed every interval and when dropped.
pub struct AuditLog {
    shared: Arc<Shared>,
    ticker: Option<ticker::Ticker>,
}

impl AuditLog {
    /// A trail written to `out`, starting a new chain (`seq` 1, `prev` [`GENESIS`]) sealed
    /// with plain SHA-256. With `every_message`, [`AuditLog::record`] writes a row for clean
    /// messages too.
    pub fn new(out: Box<dyn Write + Send>, every_message: bool) -> Self {
        AuditLog::with_seal(out, every_message, Seal::Hash)
    }

    /// A trail written to `out`, starting a new chain sealed with `seal`.
    pub fn with_seal(out: Box<dyn Write + Send>, every_message: bool, seal: Seal) -> Self {
        AuditLog {
            shared: Arc::new(Shared {
                sink: Mutex::new(Sink {
                    out,
                    seq: 0,
                    prev: GENESIS.to_string(),
                    gap: None,
                }),
                failing: AtomicBool::new(false),
                seal,
                every_message,
                file: None,
                checkpoint: None,
            }),
            ticker: None,
        }
    }

    /// Writes the checkpoint now if rows were written since the last one (at shutdown; the
    /// trail also does it every interval and when dropped). Without a checkpoint configured,
    /// does nothing. Errors: syncing the audit file or writing the checkpoint failed.
    pub fn checkpoint(&self) -> std::io::Result<()> {
        self.shared.checkpoint()
    }

    /// Records an inspected message (a method or tool name with a finding in it shown as
    /// [`WITHHELD`]): who and when, its kind, method and tool, the verdict, findings (rule
    /// ids, pointers, fingerprints; at most [`bound::MAX_LIST`], the rest counted), its size in
    /// bytes and the inspection time in microseconds. Skipped when clean, unless the trail
    /// records every message.
    pub fn record(
        &self,
        transport: &str,
        origin: Origin<'_>,
        dir: Direction,
        size: usize,
        took: Duration,
        inspection: &Inspection,
    ) {
        if inspection.findings.is_empty() && !self.shared.every_message {
            return;
        }
        let info = inspection.info();
        // A method or tool name that holds a finding is itself matched text: never written.
        let pointers = inspection.findings.iter().map(|f| f.pointer.as_str());
        let matched = Matched::in_message(pointers, 0);
        let mut row = self.who_and_when(transport, origin, dir);
        let shown = bound::cap_findings(&inspection.findings, |f| &f.rule_id, &mut row);
        let findings: Vec<_> = shown.iter().map(|f| f.to_json()).collect();
        row.extend(json_fields(json!({
            "kind": info.map(|i| i.kind.as_str()),
            "method": matched.method(info.and_then(|i| i.method.as_deref())),
            "tool": matched.tool(info.and_then(|i| i.tool.as_deref())),
            "verdict": inspection.verdict.name(),
            "findings": findings,
            "bytes": size,
            "inspect_us": took.as_secs_f64() * 1e6,
        })));
        self.shared.write(row);
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
        let mut row = self.who_and_when(transport, origin, dir);
        row.extend(json_fields(json!({
            "error": error,
            "forwarded": forwarded,
            "bytes": size,
        })));
        self.shared.write(row);
    }

    /// A server-sent event too large to hold whole, scanned as it streamed by: its findings
    /// (rule and action; the event could not be rewritten, so no pointer or span; at most
    /// [`bound::MAX_LIST`], the rest counted) and whether the stream was cut off at it, for a
    /// finding or because the stream ended inside it.
    pub fn streamed(
        &self,
        transport: &str,
        origin: Origin<'_>,
        dir: Direction,
        size: usize,
        findings: &[StreamedFinding],
        aborted: bool,
    ) {
        if findings.is_empty() && !aborted && !self.shared.every_message {
            return;
        }
        let mut row = self.who_and_when(transport, origin, dir);
        let shown = bound::cap_findings(findings, |f| f.rule_id.as_str(), &mut row);
        let found: Vec<_> = shown
            .iter()
            .map(|f| json!({"rule": f.rule_id, "action": f.action.as_str()}))
            .collect();
        row.extend(json_fields(json!({
            "kind": "event-over-cap",
            "verdict": if aborted { "block" } else { "forward" },
            "aborted": aborted,
            "findings": found,
            "bytes": size,
        })));
        self.shared.write(row);
    }

    /// A gateway event: `kind` (auth, denied, approval, reload, pin, ...) and its fields.
    /// Strings are clipped and lists capped like every row's ([`bound`]); a caller that
    /// puts client text in `fields` withholds what a rule matched in it ([`Matched`]).
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
        }));
        row.extend(self.origin_fields(origin));
        row.extend(json_fields(fields));
        self.shared.write(row);
    }

    /// The fields every message row starts with: when, over what, from whom, which way.
    fn who_and_when(
        &self,
        transport: &str,
        origin: Origin<'_>,
        dir: Direction,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut row = json_fields(json!({
            "time": rfc3339(SystemTime::now()),
            "transport": transport,
        }));
        row.extend(self.origin_fields(origin));
        row.insert("direction".into(), dir.as_str().into());
        row
    }

    /// `client`, `identity` and the session's digest (never the id: a bearer credential).
    fn origin_fields(&self, origin: Origin<'_>) -> serde_json::Map<String, serde_json::Value> {
        let session = origin
            .session
            .map(|id| withheld::session_digest(&self.shared.seal, id));
        json_fields(json!({
            "client": origin.client,
            "identity": origin.identity,
            "session": session,
        }))
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Stop the clock first, so the last checkpoint is this one.
        self.ticker.take();
        self.shared.checkpoint_or_say();
    }
}

impl Shared {
    fn checkpoint(&self) -> std::io::Result<()> {
        let Some(cp) = &self.checkpoint else {
            return Ok(());
        };
        let mut written = cp.written.lock().unwrap_or_else(|e| e.into_inner());
        let (seq, head) = {
            let sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
            (sink.seq, sink.prev.clone())
        };
        if *written == Some(seq) {
            return Ok(());
        }
        // The rows the checkpoint vouches for must be on disk before it is, or a crash
        // would look like truncation.
        if let Some(f) = &self.file {
            f.sync_data()?;
        }
        Checkpoint::new(seq, head, &self.seal).write(&cp.path)?;
        *written = Some(seq);
        Ok(())
    }

    /// [`Shared::checkpoint`], a failure said on stderr (the traffic goes on).
    fn checkpoint_or_say(&self) {
        if let Err(e) = self.checkpoint() {
            let path = self
                .checkpoint
                .as_ref()
                .map(|c| c.path.display().to_string());
            eprintln!(
                "sluice: cannot write the audit checkpoint {}: {e}",
                path.unwrap_or_default()
            );
        }
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

fn json_fields(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests;
