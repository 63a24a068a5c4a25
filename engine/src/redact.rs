//! Rewriting sensitive spans inside strings, and writing strings back as JSON.

use std::fmt::Write as _;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// How a redacted span is rendered. Every marker names the rule(s), never the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedactStrategy {
    /// `[REDACTED:aws.access-key-id]`
    #[default]
    Mask,
    /// `[REDACTED:pii.credit-card:…1111]`: the last four characters of spans of 12 or more
    /// ASCII characters stay, so a person can tell two cards apart.
    Partial,
    /// `[REDACTED:aws.access-key-id:3f9a0c1b2d4e]`: a salted SHA-256 prefix, the same for the
    /// same secret under the same salt, so leaks can be correlated without being readable.
    Hash,
}

impl FromStr for RedactStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mask" => Ok(RedactStrategy::Mask),
            "partial" => Ok(RedactStrategy::Partial),
            "hash" => Ok(RedactStrategy::Hash),
            _ => Err(format!(
                "unknown redaction strategy `{s}` (expected mask, partial or hash)"
            )),
        }
    }
}

/// A span to redact in one string, with the rule that asked for it.
#[derive(Debug, Clone)]
pub struct RedactSpan<'r> {
    /// Byte offset of the span in the decoded string.
    pub start: usize,
    /// Byte offset just past the span.
    pub end: usize,
    /// The id of the rule that matched, for the marker.
    pub rule_id: &'r str,
}

/// Salted fingerprint of a matched span: correlates a leak across audit rows without
/// carrying it.
pub fn fingerprint(salt: &[u8], span: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(span);
    crate::rules::hex(&h.finalize()[..16])
}

/// Returns `text` with every span replaced by its marker. Overlapping spans merge into one
/// marker naming each rule once.
pub fn redact_bytes(
    text: &[u8],
    spans: &mut [RedactSpan<'_>],
    strategy: RedactStrategy,
    salt: &[u8],
) -> Vec<u8> {
    spans.sort_by_key(|s| (s.start, s.end));
    let mut out = Vec::with_capacity(text.len() + 32);
    let mut pos = 0;
    let mut i = 0;
    while i < spans.len() {
        let start = spans[i].start.max(pos);
        let mut end = spans[i].end;
        let mut ids: Vec<&str> = vec![spans[i].rule_id];
        let mut j = i + 1;
        while j < spans.len() && spans[j].start < end {
            end = end.max(spans[j].end);
            if !ids.contains(&spans[j].rule_id) {
                ids.push(spans[j].rule_id);
            }
            j += 1;
        }
        if start < end {
            out.extend_from_slice(&text[pos..start]);
            out.extend_from_slice(marker(&text[start..end], &ids, strategy, salt).as_bytes());
            pos = end;
        }
        i = j;
    }
    out.extend_from_slice(&text[pos..]);
    out
}

fn marker(span: &[u8], ids: &[&str], strategy: RedactStrategy, salt: &[u8]) -> String {
    let mut m = String::from("[REDACTED:");
    m.push_str(&ids.join(","));
    match strategy {
        RedactStrategy::Mask => {}
        RedactStrategy::Partial => {
            if span.len() >= 12 && span.is_ascii() {
                m.push_str(":…");
                m.push_str(std::str::from_utf8(&span[span.len() - 4..]).unwrap_or_default());
            }
        }
        RedactStrategy::Hash => {
            m.push(':');
            m.push_str(&fingerprint(salt, span)[..12]);
        }
    }
    m.push(']');
    m
}

/// Appends `s` as a JSON string literal.
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends UTF-8 `bytes` as a JSON string literal (lossy on invalid UTF-8, which the JSON
/// parser has already excluded).
pub fn write_json_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut s = String::with_capacity(bytes.len() + 2);
    write_json_string(&mut s, &String::from_utf8_lossy(bytes));
    out.extend_from_slice(s.as_bytes());
}

/// End of the raw JSON string whose content starts at `start` (the offset of its closing
/// quote).
pub fn raw_string_end(raw: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < raw.len() {
        match raw[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    raw.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_overlaps_and_names_rules() {
        let text = b"key AKIAABCDEFGHIJKLMNOP and mail a@b.io";
        let mut spans = vec![
            RedactSpan {
                start: 4,
                end: 24,
                rule_id: "aws",
            },
            RedactSpan {
                start: 10,
                end: 20,
                rule_id: "other",
            },
            RedactSpan {
                start: 34,
                end: 40,
                rule_id: "pii.email",
            },
        ];
        let out = redact_bytes(text, &mut spans, RedactStrategy::Mask, b"");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "key [REDACTED:aws,other] and mail [REDACTED:pii.email]"
        );
    }

    #[test]
    fn partial_and_hash() {
        let text = b"4111111111111111";
        let mut s = vec![RedactSpan {
            start: 0,
            end: 16,
            rule_id: "cc",
        }];
        let p = redact_bytes(text, &mut s, RedactStrategy::Partial, b"");
        assert_eq!(String::from_utf8(p).unwrap(), "[REDACTED:cc:…1111]");
        let h1 = redact_bytes(text, &mut s, RedactStrategy::Hash, b"salt");
        let h2 = redact_bytes(text, &mut s, RedactStrategy::Hash, b"salt");
        let h3 = redact_bytes(text, &mut s, RedactStrategy::Hash, b"other");
        assert_eq!(h1, h2);
        assert_ne!(h1, h3);
        assert!(!String::from_utf8(h1).unwrap().contains("4111"));
    }

    #[test]
    fn json_string_escaping_round_trips() {
        let mut out = String::new();
        write_json_string(&mut out, "a\"b\\c\nd\u{1}é");
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
        let raw = br#""x\"y" rest"#;
        assert_eq!(raw_string_end(raw, 1), 5);
    }
}
