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

/// One line of a corpus file as written (JSON Lines); [`parse`] turns it into a
/// [`CorpusEntry`].
#[derive(Debug, Deserialize)]
pub struct CorpusLine {
    /// Who sent the message; see [`parse_direction`] for the names read.
    pub direction: String,
    /// What the line is; `source` (where a labelled example comes from) is read as the note.
    #[serde(default, alias = "source")]
    pub note: String,
    /// The message exactly as written in the file (never re-serialized).
    pub message: Box<RawValue>,
    /// The labels: each `{"rule", "pointer"}` or `{"category", "value", "type"?}`; `[]` for a
    /// message nothing may be found in.
    #[serde(default)]
    pub expected: Vec<serde_json::Value>,
}

/// A finding expected of one rule on the string at a JSON pointer.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Expected {
    /// The id of the rule expected to find it.
    pub rule: String,
    /// JSON pointer of the string (for a match in an object key: of the object), as
    /// [`Finding::pointer`](crate::Finding::pointer) writes it.
    pub pointer: String,
}

/// A sensitive value, labelled by category and optionally by type (`CREDIT_CARD`, a source
/// scanner's rule name): found when it no longer appears in any string of what sluice would
/// forward (redacted, or the message blocked). Labels of data written by others.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ValueLabel {
    /// What kind of sensitive value it is.
    pub category: Category,
    /// The value exactly as it appears in a string of the message.
    pub value: String,
    /// The label's `type`, if any: free text from whoever labelled the data.
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

/// A corpus line that could not be read: bad JSON, an unknown direction or a malformed label.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct CorpusError {
    /// The file name, as given to [`parse`].
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One parsed corpus line.
pub struct CorpusEntry {
    /// 1-based line number in the file.
    pub line: usize,
    /// Who sent the message.
    pub direction: Direction,
    /// What the line is; may be empty.
    pub note: String,
    /// The message bytes exactly as in the file.
    pub message: Vec<u8>,
    /// Labels by rule.
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

/// Reads a direction as corpus files name it: `client-to-server` (also `request`, `c2s`) or
/// `server-to-client` (also `response`, `s2c`).
pub fn parse_direction(s: &str) -> Option<Direction> {
    match s {
        "client-to-server" | "request" | "c2s" => Some(Direction::ClientToServer),
        "server-to-client" | "response" | "s2c" => Some(Direction::ServerToClient),
        _ => None,
    }
}

/// Parses a corpus file's text; blank lines are skipped. `file` names the file in errors.
///
/// Errors: a [`CorpusError`] for the first line that is not a corpus object, names an
/// unknown direction or holds a malformed label.
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
