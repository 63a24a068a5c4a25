//! Opening an audit file to append to: the lock, then what the file already holds checked
//! against the key and the checkpoint, so that sluice never continues a chain it could not
//! vouch for (a restart must not paper over rows cut from the end by checkpointing the
//! shorter file).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::chain::{self, Seal, SealKind, Unsealed};
use super::checkpoint::{Checkpoint, CheckpointError};
use super::{lock, ticker, AuditLog, CheckpointState, Shared, Sink, GENESIS};

/// How to write an audit file.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// A row for every message, not only those with findings.
    pub every_message: bool,
    /// How rows are sealed.
    pub seal: Seal,
    /// Where and how often the chain's head is checkpointed; none when `None`.
    pub checkpoint: Option<CheckpointOptions>,
}

/// `[audit] checkpoint` and `checkpoint_interval`.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// The checkpoint file.
    pub path: PathBuf,
    /// How often it is rewritten (when rows were written since).
    pub interval: Duration,
}

/// Why an audit file cannot be opened for writing. Messages name the file and what to do;
/// never the key.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file cannot be opened or read.
    #[error("audit file {}: {source}", path.display())]
    Io {
        /// The audit file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the file's lock.
    #[error("audit file {}: another process (another sluice?) is writing it; two writers would break its chain, so give each sluice its own audit file", path.display())]
    Locked {
        /// The audit file.
        path: PathBuf,
    },
    /// What the file holds cannot be continued: a torn last row, another seal, another key.
    #[error("audit file {}: {message}", path.display())]
    Tail {
        /// The audit file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The checkpoint is unreadable, cannot be written, or is not sealed with the key.
    #[error("{0}")]
    Checkpoint(#[from] CheckpointError),
    /// The file falls short of its checkpoint.
    #[error("audit file {} {message}; verify it (`sluice audit verify FILE --checkpoint CHECKPOINT` with the key), then move the file and the checkpoint aside to start a new chain", path.display())]
    Short {
        /// The audit file.
        path: PathBuf,
        /// How.
        message: String,
    },
    /// `checkpoint` with rows on stdout, which start a new chain at every start.
    #[error("[audit] checkpoint needs rows in a file, not on stdout")]
    StdoutCheckpoint,
}

/// A row near the end of the file.
struct TailRow {
    seq: u64,
    row: Unsealed,
}

impl AuditLog {
    /// Appends to `path` (`-` is stdout, a new chain each time), continuing the chain of the
    /// rows already there. Takes the file's lock first; then the last row must carry `seal`'s
    /// kind of seal and, under a key, verify; and the file must reach the checkpoint, if one
    /// exists. Writes a checkpoint at once and every interval after. Errors: see
    /// [`AuditError`].
    pub fn open(path: &Path, opts: AuditOptions) -> Result<AuditLog, AuditError> {
        if path.as_os_str() == "-" {
            if opts.checkpoint.is_some() {
                return Err(AuditError::StdoutCheckpoint);
            }
            let out = Box::new(std::io::stdout());
            return Ok(AuditLog::with_seal(out, opts.every_message, opts.seal));
        }
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        // Before reading the tail: another writer could append after we read it.
        if !lock::try_lock(&file).map_err(io)? {
            return Err(AuditError::Locked {
                path: path.to_path_buf(),
            });
        }
        let tail = tail_rows(&mut file).map_err(io)?;
        let last = tail.last().map(|t| (t.seq, t.row.tag.clone()));
        check_last_row(path, &tail, &opts.seal)?;
        if let Some(c) = &opts.checkpoint {
            check_checkpoint(path, &c.path, &tail, &opts.seal)?;
        }
        let (seq, prev) = last.unwrap_or_else(|| (0, GENESIS.to_string()));
        let sync = file.try_clone().map_err(io)?;
        let shared = Arc::new(Shared {
            sink: Mutex::new(Sink {
                out: Box::new(file),
                seq,
                prev,
                gap: None,
            }),
            failing: AtomicBool::new(false),
            seal: opts.seal,
            every_message: opts.every_message,
            file: Some(sync),
            checkpoint: opts.checkpoint.as_ref().map(|c| CheckpointState {
                path: c.path.clone(),
                written: Mutex::new(None),
            }),
        });
        let mut log = AuditLog {
            shared: shared.clone(),
            ticker: None,
        };
        if let Some(c) = &opts.checkpoint {
            let cp_error = |e: std::io::Error| {
                AuditError::Checkpoint(CheckpointError::Unreadable {
                    path: c.path.clone(),
                    message: format!("cannot write it: {e}"),
                })
            };
            shared.checkpoint().map_err(cp_error)?;
            let job = move || shared.checkpoint_or_say();
            log.ticker = Some(
                ticker::Ticker::start("sluice-audit-checkpoint", c.interval, job).map_err(io)?,
            );
        }
        Ok(log)
    }
}

/// The last row must be one this trail can continue: sealed the same way, and under a key,
/// with this key.
fn check_last_row(path: &Path, tail: &[TailRow], seal: &Seal) -> Result<(), AuditError> {
    let Some(last) = tail.last() else {
        return Ok(());
    };
    let message = match (seal.kind(), last.row.kind) {
        (SealKind::Mac, SealKind::Hash) => {
            "holds an unkeyed (plain hash) chain, which a keyed chain cannot continue: verify it (`sluice audit verify FILE`), then move it aside to start a keyed chain"
        }
        (SealKind::Hash, SealKind::Mac) => {
            "holds a keyed (MAC) chain: configure its key ([audit] key_file or key_env) to continue it, or move the file aside"
        }
        (SealKind::Mac, SealKind::Mac) if !seal.check(last.row.text.as_bytes(), &last.row.tag) => {
            "its last row's MAC does not match the configured key: it was written with another key, or altered (`sluice audit verify FILE --key-file KEY` finds the first bad row)"
        }
        _ => return Ok(()),
    };
    Err(AuditError::Tail {
        path: path.to_path_buf(),
        message: message.to_string(),
    })
}

/// An existing checkpoint must be sealed with the key, and the file must reach its row with
/// the same seal (checked when that row is among the last 64 KiB or more read; the rest is
/// `sluice audit verify`'s to check).
fn check_checkpoint(
    path: &Path,
    cp_path: &Path,
    tail: &[TailRow],
    seal: &Seal,
) -> Result<(), AuditError> {
    let Some(cp) = Checkpoint::read(cp_path)? else {
        return Ok(());
    };
    cp.check(seal, cp_path)?;
    let last = tail.last().map_or(0, |t| t.seq);
    let short = |message: String| AuditError::Short {
        path: path.to_path_buf(),
        message,
    };
    if last < cp.seq {
        return Err(short(format!(
            "ends at row {last} but checkpoint {} (written {}) records row {}: rows were cut from the end (or the file was replaced)",
            cp_path.display(),
            cp.time,
            cp.seq
        )));
    }
    match tail.iter().find(|t| t.seq == cp.seq) {
        Some(t) if t.row.tag != cp.head => Err(short(format!(
            "row {} differs from checkpoint {}: the file was rewritten",
            cp.seq,
            cp_path.display()
        ))),
        _ => Ok(()),
    }
}

/// The sealed rows at the end of the file, oldest first: at least the last whole row (the
/// window read grows from 64 KiB until it holds one). A last row that is not sealed (torn by
/// a crash, or not an audit row) is an error: appending after it would chain from the wrong
/// row.
fn tail_rows(file: &mut File) -> std::io::Result<Vec<TailRow>> {
    let len = file.metadata()?.len();
    let mut window: u64 = 65_536;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        file.by_ref().take(len - start).read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf);
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if start > 0 {
            // The window's first line may start mid-row; if it is the only one, read more.
            if lines.len() <= 1 {
                window = window.saturating_mul(4);
                continue;
            }
            lines.remove(0);
        }
        let Some(last) = lines.last() else {
            return Ok(Vec::new());
        };
        let parse = |l: &str| {
            let row = chain::unseal(l)?;
            let (seq, _) = chain::seq_and_prev(&row.text).ok()?;
            Some(TailRow { seq, row })
        };
        if parse(last).is_none() {
            return Err(std::io::Error::other(
                "the last row is not a sealed audit row (torn by a crash, or not an audit file); move the file aside to start a new chain",
            ));
        }
        return Ok(lines.into_iter().filter_map(parse).collect());
    }
}
