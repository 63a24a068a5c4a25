//! The checkpoint: the chain's head (the last row's `seq` and seal) in a file of its own, so
//! that rows cut from the end of the audit file show. One JSON object:
//! `{"seq":N,"head":"<64 hex>","time":"<RFC 3339>","mac":"<64 hex>"}`; `mac` (present when
//! the chain is keyed) is HMAC-SHA-256 over `sluice-audit-checkpoint/1\n{seq}\n{head}\n{time}`,
//! so that someone without the key cannot write a checkpoint for an earlier row (the prefix
//! keeps it from ever equalling a row's MAC, whose text starts with `{`).
//!
//! The file is replaced atomically: written to `FILE.tmp` beside it, synced, renamed over
//! (rename(2) is atomic within a file system), so a reader sees the old or the new checkpoint,
//! never a part of one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::chain::{Seal, Verified};

/// A chain head at some moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The last row's `seq`: the rows the chain held, counted from its first.
    pub seq: u64,
    /// That row's seal.
    pub head: String,
    /// When the checkpoint was written, RFC 3339 UTC.
    pub time: String,
    /// The checkpoint's own MAC, when the chain is keyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// A checkpoint that cannot be used, or a file that does not reach it.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file cannot be read, or is not a checkpoint.
    #[error("checkpoint {}: {message}", path.display())]
    Unreadable {
        /// The checkpoint file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Its MAC is missing or does not verify under the key.
    #[error("checkpoint {}: {message}", path.display())]
    Forged {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// How an audit file falls short of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortfall {
    /// The file ends before the checkpoint's row: rows were cut from the end.
    Truncated {
        /// The file's last `seq` (0: no rows).
        last: u64,
    },
    /// The checkpoint's row is there with another seal: the file was rewritten at or before
    /// it.
    Rewritten {
        /// The row's line.
        line: usize,
    },
    /// The file starts after the checkpoint's row (rotated): it cannot be checked here.
    Before {
        /// The file's first `seq`.
        first: u64,
    },
}

impl Checkpoint {
    /// The checkpoint of the row `seq` sealed `head`, written now, with its MAC when `seal`
    /// has a key.
    pub fn new(seq: u64, head: String, seal: &Seal) -> Checkpoint {
        let time = super::rfc3339(SystemTime::now());
        let mac = match seal {
            Seal::Mac(_) => Some(seal.tag(signed(seq, &head, &time).as_bytes())),
            Seal::Hash => None,
        };
        Checkpoint {
            seq,
            head,
            time,
            mac,
        }
    }

    /// The checkpoint in `path`; `Ok(None)` when there is no such file. Errors:
    /// [`CheckpointError::Unreadable`].
    pub fn read(path: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
        let unreadable = |message: String| CheckpointError::Unreadable {
            path: path.to_path_buf(),
            message,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unreadable(format!("cannot read it: {e}"))),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| unreadable(format!("not a sluice audit checkpoint: {e}")))
    }

    /// Replaces the file at `path` with this checkpoint, atomically (see the module docs).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = path.with_file_name(tmp_name);
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(serde_json::to_string(self)?.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced; a file system that
        // cannot sync a directory still has the rename, just not yet on disk.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Whether the checkpoint is sealed under `seal`'s key (a checkpoint of an unkeyed chain
    /// has no MAC to check). Errors: [`CheckpointError::Forged`], naming `path`.
    pub fn check(&self, seal: &Seal, path: &Path) -> Result<(), CheckpointError> {
        let forged = |message: &str| CheckpointError::Forged {
            path: path.to_path_buf(),
            message: message.to_string(),
        };
        if let Seal::Hash = seal {
            return Ok(());
        }
        let Some(mac) = &self.mac else {
            return Err(forged(
                "it has no MAC: it was not written by sluice with the key",
            ));
        };
        if !seal.check(signed(self.seq, &self.head, &self.time).as_bytes(), mac) {
            return Err(forged(
                "its MAC does not match: it was altered, or written with another key",
            ));
        }
        Ok(())
    }

    /// How the verified file `v` falls short of this checkpoint, if it does (rows after the
    /// checkpoint's are fine: it is at most one interval old). `v` must have been verified
    /// with `mark` = this checkpoint's `seq`.
    pub fn shortfall(&self, v: &Verified) -> Option<Shortfall> {
        if v.last_seq < self.seq {
            return Some(Shortfall::Truncated { last: v.last_seq });
        }
        if self.seq == 0 {
            return None;
        }
        match &v.marked {
            Some(m) if m.tag == self.head => None,
            Some(m) => Some(Shortfall::Rewritten { line: m.line }),
            // Only a file starting after the checkpoint's row lacks it.
            None => Some(Shortfall::Before { first: v.first_seq }),
        }
    }
}

/// The text a checkpoint's MAC covers.
fn signed(seq: u64, head: &str, time: &str) -> String {
    format!("sluice-audit-checkpoint/1\n{seq}\n{head}\n{time}")
}
