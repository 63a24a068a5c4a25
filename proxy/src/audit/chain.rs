//! The chain: sealing a row and verifying a file of rows.
//!
//! A row is one JSON object on one line. It carries `seq` (1, 2, ... across restarts) and
//! `prev`, the seal of the row before ([`GENESIS`] for row 1), and ends with its seal, over the
//! row's text without the seal field (the object closed after `prev`):
//!
//! - `"mac":"<64 hex>"`: HMAC-SHA-256 (RFC 2104) under the audit key. Without the key nobody
//!   can make a row that verifies, so an edited, inserted, removed or reordered row shows.
//! - `"hash":"<64 hex>"`: plain SHA-256, when no key is configured (and in files written
//!   before keys existed). It finds accidental damage only: whoever can write the file can
//!   edit a row and recompute every hash after it.

use std::io::{BufRead, BufReader, Read};

use sha2::{Digest, Sha256};

use super::key::AuditKey;

/// The `prev` of a chain's first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Which seal a row carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealKind {
    /// `hash`: plain SHA-256.
    Hash,
    /// `mac`: HMAC-SHA-256 under the audit key.
    Mac,
}

impl SealKind {
    /// The seal's field name in a row.
    pub fn field(self) -> &'static str {
        match self {
            SealKind::Hash => "hash",
            SealKind::Mac => "mac",
        }
    }
}

/// How rows are sealed (and checked).
#[derive(Debug, Clone)]
pub enum Seal {
    /// Plain SHA-256: no key configured.
    Hash,
    /// HMAC-SHA-256 under this key.
    Mac(AuditKey),
}

impl Seal {
    /// The kind of seal this writes.
    pub fn kind(&self) -> SealKind {
        match self {
            Seal::Hash => SealKind::Hash,
            Seal::Mac(_) => SealKind::Mac,
        }
    }

    /// The seal of `data`, 64 hex digits.
    pub fn tag(&self, data: &[u8]) -> String {
        match self {
            Seal::Hash => hex::encode(Sha256::digest(data)),
            Seal::Mac(key) => key.sign(data),
        }
    }

    /// Whether `tag` is the seal of `data` (in constant time under a key).
    pub fn check(&self, data: &[u8], tag: &str) -> bool {
        match self {
            Seal::Hash => hex::encode(Sha256::digest(data)) == tag,
            Seal::Mac(key) => key.verify(data, tag),
        }
    }

    /// The line to write for a row's JSON text (an object with at least one field), and its
    /// seal.
    pub fn seal(&self, text: &str) -> (String, String) {
        let tag = self.tag(text.as_bytes());
        let body = text.strip_suffix('}').unwrap_or(text);
        let field = self.kind().field();
        (format!("{body},\"{field}\":\"{tag}\"}}"), tag)
    }
}

/// A sealed line taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsealed {
    /// The sealed text: the row without its seal field.
    pub text: String,
    /// The seal it claims, 64 hex digits.
    pub tag: String,
    /// Which seal.
    pub kind: SealKind,
}

/// Splits a sealed line into the sealed text and the seal it claims; `None` when the line
/// does not end with a seal field.
pub fn unseal(line: &str) -> Option<Unsealed> {
    let line = line.trim_end();
    let tag_start = line.len().checked_sub(64 + 2)?;
    let (head, tail) = line.split_at_checked(tag_start)?;
    let tag = tail.strip_suffix("\"}")?;
    hex::decode_to_slice(tag, &mut [0u8; 32]).ok()?;
    for kind in [SealKind::Mac, SealKind::Hash] {
        if let Some(body) = head.strip_suffix(&format!(",\"{}\":\"", kind.field())) {
            return Some(Unsealed {
                text: format!("{body}}}"),
                tag: tag.to_string(),
                kind,
            });
        }
    }
    None
}

/// A chain that does not verify: the 1-based line and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The line, counted from 1.
    pub line: usize,
    /// What is wrong there.
    pub why: String,
}

/// A row the verifier was asked to remember (the checkpoint's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    /// Its line, counted from 1.
    pub line: usize,
    /// Its seal.
    pub tag: String,
}

/// What a verified file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Rows in the file.
    pub rows: u64,
    /// The last row's seal ([`GENESIS`] when empty): kept elsewhere, it shows rows cut from
    /// the end later.
    pub head: String,
    /// The first row's `seq` (1 unless the file was rotated; 0 when empty).
    pub first_seq: u64,
    /// The last row's `seq` (0 when empty).
    pub last_seq: u64,
    /// Whether the rows were checked under a key.
    pub keyed: bool,
    /// The row whose `seq` was asked for, if the file has it.
    pub marked: Option<Marked>,
}

/// What `sluice audit verify` says of a chain checked without a key.
pub const UNKEYED_WARNING: &str = "this chain is unkeyed (plain SHA-256): it detects accidental \
damage, not an attacker who can rewrite the file, who can edit or remove rows and recompute \
every hash after them. Configure [audit] key_file or key_env (kept where such an attacker \
cannot read it) to chain rows with HMAC-SHA-256.";

impl Verified {
    /// The warning to show with this result: [`UNKEYED_WARNING`] for a chain checked without a
    /// key.
    pub fn warning(&self) -> Option<&'static str> {
        (!self.keyed).then_some(UNKEYED_WARNING)
    }
}

/// Recomputes the chain of an audit file under `seal`: every row's seal, its `prev` against
/// the row before, and `seq` increasing by one. A row sealed another way than `seal` fails
/// (a `hash` row in a keyed file is how a rewrite without the key looks). Remembers the row
/// whose `seq` is `mark`. Errors: the first line that does not verify.
pub fn verify(r: impl Read, seal: &Seal, mark: Option<u64>) -> Result<Verified, Broken> {
    let mut prev: Option<(u64, String)> = None;
    let mut first_seq = 0;
    let mut rows = 0;
    let mut marked = None;
    for (i, line) in BufReader::new(r).lines().enumerate() {
        let n = i + 1;
        let broken = |why: String| Broken { line: n, why };
        let line = line.map_err(|e| broken(format!("unreadable: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let row = unseal(&line).ok_or_else(|| {
            broken("no seal (`mac` or `hash` field) at the end of the row".into())
        })?;
        check_seal(seal, &row).map_err(broken)?;
        let (seq, claimed) = seq_and_prev(&row.text).map_err(broken)?;
        match &prev {
            None => {
                first_seq = seq;
                if seq == 1 && claimed != GENESIS {
                    return Err(broken("the first row does not start the chain".into()));
                }
            }
            Some((pseq, ptag)) => {
                if claimed != *ptag {
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
        if Some(seq) == mark {
            marked = Some(Marked {
                line: n,
                tag: row.tag.clone(),
            });
        }
        prev = Some((seq, row.tag));
        rows += 1;
    }
    let (last_seq, head) = prev.unwrap_or_else(|| (0, GENESIS.to_string()));
    Ok(Verified {
        rows,
        head,
        first_seq,
        last_seq,
        keyed: matches!(seal, Seal::Mac(_)),
        marked,
    })
}

/// Whether the row's seal is of `seal`'s kind and holds.
fn check_seal(seal: &Seal, row: &Unsealed) -> Result<(), String> {
    match (seal.kind(), row.kind) {
        (SealKind::Mac, SealKind::Hash) => Err(
            "the row is sealed with a plain SHA-256 hash, not a MAC: it was written without the key, or rewritten by someone who does not have it"
                .into(),
        ),
        (SealKind::Hash, SealKind::Mac) => Err(
            "the row is sealed with a keyed MAC: verify it with the key (--key-file or --key-env)"
                .into(),
        ),
        (SealKind::Mac, SealKind::Mac) if !seal.check(row.text.as_bytes(), &row.tag) => Err(
            "the MAC does not match the row: the row was edited (or the key is not the one it was written with)"
                .into(),
        ),
        (SealKind::Hash, SealKind::Hash) if !seal.check(row.text.as_bytes(), &row.tag) => {
            Err("the row was edited: its hash does not match its content".into())
        }
        _ => Ok(()),
    }
}

/// A sealed row's `seq` and `prev`.
pub fn seq_and_prev(text: &str) -> Result<(u64, String), String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a JSON row: {e}"))?;
    let seq = v.get("seq").and_then(|s| s.as_u64()).ok_or("no seq")?;
    let prev = v.get("prev").and_then(|s| s.as_str()).ok_or("no prev")?;
    Ok((seq, prev.to_string()))
}

/// Whether a row with this seal is in the file (for `verify --head`).
pub fn contains_tag(r: impl Read, tag: &str) -> bool {
    BufReader::new(r)
        .lines()
        .map_while(Result::ok)
        .any(|l| unseal(&l).is_some_and(|u| u.tag == tag))
}
