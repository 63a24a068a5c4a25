//! Appending a row: bounded, chained, sealed and written whole, or not at all.
//!
//! A write that fails (a full disk: ENOSPC, a quota, an I/O error) leaves no torn row: the
//! file is cut back to where the row began, so the chain stays whole and the next row
//! continues it. The trail is then *failing*: [`AuditLog::writable`] says so, and the
//! exchange refuses new requests until a row can be written again (fail closed: no decision
//! without its row). Rows that could not be written are counted, and the first row written
//! after is an `audit-gap` row saying how many were lost, how many requests were refused
//! meanwhile, since when and why.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::bound::{bound_row, short_form, MAX_ROW};
use super::{json_fields, rfc3339, AuditLog, Shared, Sink};

/// Rows that could not be written since the trail last wrote one.
#[derive(Debug, Default)]
pub(super) struct Gap {
    /// Rows lost.
    lost: u64,
    /// Requests refused because the trail could not write.
    refused: u64,
    /// When the first write failed, RFC 3339.
    since: String,
    /// Why it failed.
    error: String,
}

impl AuditLog {
    /// Whether rows can be written: true unless the last write failed and a retry now (the
    /// `audit-gap` row) fails too. A caller that gets false refuses its request, which is
    /// counted in that row once it is written.
    pub fn writable(&self) -> bool {
        let s = &self.shared;
        if !s.failing.load(Ordering::Acquire) {
            return true;
        }
        let mut sink = s.sink.lock().unwrap_or_else(|e| e.into_inner());
        if s.close_gap(&mut sink) {
            return true;
        }
        if let Some(gap) = &mut sink.gap {
            gap.refused += 1;
        }
        false
    }
}

impl Shared {
    /// Appends `row`; false when it could not be written (counted, and said once on stderr).
    pub(super) fn write(&self, row: Map<String, Value>) -> bool {
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if !self.close_gap(&mut sink) {
            if let Some(gap) = &mut sink.gap {
                gap.lost += 1;
            }
            return false;
        }
        match self.append(&mut sink, row) {
            Ok(()) => true,
            Err(e) => {
                self.open_gap(&mut sink, &e);
                false
            }
        }
    }

    /// Writes the `audit-gap` row if rows were lost; true when none were or it is written.
    fn close_gap(&self, sink: &mut Sink) -> bool {
        let Some(gap) = sink.gap.take() else {
            return true;
        };
        let row = json_fields(json!({
            "time": rfc3339(SystemTime::now()),
            "event": "audit-gap",
            "lost": gap.lost,
            "refused": gap.refused,
            "since": gap.since,
            "error": gap.error,
        }));
        if self.append(sink, row).is_err() {
            sink.gap = Some(gap);
            return false;
        }
        self.failing.store(false, Ordering::Release);
        eprintln!(
            "sluice: the audit trail is written again; {} rows were lost and {} requests refused since {} (see its audit-gap row)",
            gap.lost, gap.refused, gap.since
        );
        true
    }

    /// Marks the trail failing after `e`, counting the row that was lost.
    fn open_gap(&self, sink: &mut Sink, e: &std::io::Error) {
        sink.gap = Some(Gap {
            lost: 1,
            refused: 0,
            since: rfc3339(SystemTime::now()),
            error: e.to_string(),
        });
        self.failing.store(true, Ordering::Release);
        eprintln!(
            "sluice: cannot write the audit trail ({e}); refusing requests until it can be written"
        );
    }

    /// Seals `row` as the next in the chain and writes it whole; on an error the file is
    /// cut back to where the row began, and the chain does not move.
    fn append(&self, sink: &mut Sink, mut row: Map<String, Value>) -> std::io::Result<()> {
        bound_row(&mut row);
        row.insert("seq".into(), (sink.seq + 1).into());
        row.insert("prev".into(), sink.prev.clone().into());
        let text = serde_json::to_string(&row).map_err(std::io::Error::other)?;
        let (mut line, mut tag) = self.seal.seal(&text);
        if line.len() > MAX_ROW {
            let short = short_form(&row, line.len());
            let text = serde_json::to_string(&short).map_err(std::io::Error::other)?;
            (line, tag) = self.seal.seal(&text);
        }
        line.push('\n');
        let start = match &self.file {
            Some(f) => Some(f.metadata()?.len()),
            None => None,
        };
        let written = sink
            .out
            .write_all(line.as_bytes())
            .and_then(|_| sink.out.flush());
        if let Err(e) = written {
            if let (Some(f), Some(start)) = (&self.file, start) {
                cut_back(f, start);
            }
            return Err(e);
        }
        sink.seq += 1;
        sink.prev = tag;
        Ok(())
    }
}

/// Cuts `f` back to `start` bytes if a failed write left part of a row after it: a short
/// write on a full disk, which the next row must not chain after.
fn cut_back(f: &std::fs::File, start: u64) {
    let grown = f.metadata().map_or(true, |m| m.len() > start);
    if !grown {
        return;
    }
    if let Err(e) = f.set_len(start) {
        eprintln!(
            "sluice: cannot remove a partly written audit row ({e}); `sluice audit verify` will stop at it"
        );
    }
}
