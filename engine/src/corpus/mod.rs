//! Labelled JSON-RPC traffic: one JSON object per line with the direction, the message as
//! sent, and what is expected in it: findings by rule id and JSON pointer, or sensitive values
//! by category (and optional type) that must not be forwarded.

pub mod generate;
pub mod score;
pub mod synth;
pub mod values;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::mcp::Direction;
use crate::rules::Category;

#[derive(Debug, Deserialize)]
pub struct CorpusLine {
    pub direction: String,
    /// What the line is; `source` (where a labelled example comes from) is read as the note.
    #[serde(default, alias = "source")]
    pub note: String,
    /// The message exactly as written in the file (never re-serialized).
    pub message: Box<RawValue>,
    #[serde(default)]
    pub expected: Vec<serde_json::Value>,
}

/// A finding expected of one rule on the string at a JSON pointer.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Expected {
    pub rule: String,
    pub pointer: String,
}

/// A sensitive value, labelled by category and optionally by type (`CREDIT_CARD`, a source
/// scanner's rule name): found when it no longer appears in any string of what sluice would
/// forward (redacted, or the message blocked). Labels of data written by others.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ValueLabel {
    pub category: Category,
    pub value: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// One `expected` item: `{"rule", "pointer"}` or `{"category", "value", "type"?}`.
fn parse_label(v: serde_json::Value) -> Result<Result<Expected, ValueLabel>, String> {
    let is_value = v.get("value").is_some() || v.get("category").is_some();
    if is_value {
        serde_json::from_value(v)
            .map(Err)
            .map_err(|e| format!("label by value: {e} (expected {{\"category\": \"secret|pii|injection|exfiltration\", \"value\": \"...\", \"type\": \"...\"}})"))
    } else {
        serde_json::from_value(v)
            .map(Ok)
            .map_err(|e| format!("label by rule: {e} (expected {{\"rule\": \"id\", \"pointer\": \"/json/pointer\"}})"))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct CorpusError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

pub struct CorpusEntry {
    pub line: usize,
    pub direction: Direction,
    pub note: String,
    pub message: Vec<u8>,
    pub expected: Vec<Expected>,
    /// Labels by value; a line may hold both kinds.
    pub values: Vec<ValueLabel>,
}

impl CorpusEntry {
    /// Labelled `[]`: nothing in it may be changed or reported.
    pub fn is_clean(&self) -> bool {
        self.expected.is_empty() && self.values.is_empty()
    }
}

pub fn parse_direction(s: &str) -> Option<Direction> {
    match s {
        "client-to-server" | "request" | "c2s" => Some(Direction::ClientToServer),
        "server-to-client" | "response" | "s2c" => Some(Direction::ServerToClient),
        _ => None,
    }
}

/// Parses a corpus file's text.
pub fn parse(text: &str, file: &str) -> Result<Vec<CorpusEntry>, CorpusError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| CorpusError {
            file: file.to_string(),
            line: i + 1,
            message,
        };
        let l: CorpusLine =
            serde_json::from_str(line).map_err(|e| err(format!("not a corpus line: {e}")))?;
        let direction = parse_direction(&l.direction).ok_or_else(|| {
            err(format!(
                "unknown direction `{}` (expected client-to-server or server-to-client)",
                l.direction
            ))
        })?;
        let (mut expected, mut values) = (Vec::new(), Vec::new());
        for label in l.expected {
            match parse_label(label).map_err(err)? {
                Ok(e) => expected.push(e),
                Err(v) => values.push(v),
            }
        }
        out.push(CorpusEntry {
            line: i + 1,
            direction,
            note: l.note,
            message: l.message.get().as_bytes().to_vec(),
            expected,
            values,
        });
    }
    Ok(out)
}

/// The demo corpus bundled with sluice.
pub const DEMO_CORPUS: &str = include_str!("../../../corpus/demo.jsonl");
