//! Labelled JSON-RPC traffic: one JSON object per line with the direction, the message as
//! sent, and the findings expected in it (rule id and JSON pointer).

pub mod generate;
pub mod score;
pub mod synth;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::mcp::Direction;

#[derive(Debug, Deserialize)]
pub struct CorpusLine {
    pub direction: String,
    #[serde(default)]
    pub note: String,
    /// The message exactly as written in the file (never re-serialized).
    pub message: Box<RawValue>,
    #[serde(default)]
    pub expected: Vec<Expected>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Expected {
    pub rule: String,
    pub pointer: String,
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
        out.push(CorpusEntry {
            line: i + 1,
            direction,
            note: l.note,
            message: l.message.get().as_bytes().to_vec(),
            expected: l.expected,
        });
    }
    Ok(out)
}

/// The demo corpus bundled with sluice.
pub const DEMO_CORPUS: &str = include_str!("../../../corpus/demo.jsonl");
