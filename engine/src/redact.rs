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
    let mut out = Vec::with_capacity(text.len() + 32);
    let mut pos = 0;
    for (start, end, ids) in merged(spans) {
        out.extend_from_slice(&text[pos..start]);
        out.extend_from_slice(marker(&text[start..end], &ids, strategy, salt).as_bytes());
        pos = end;
    }
    out.extend_from_slice(&text[pos..]);
    out
}

/// Appends one JSON string, quotes included, to `out`: the string whose raw content (between
/// its quotes, as sent) is `raw` and whose decoded text is `decoded`, with each span of
/// `decoded` replaced by its marker. Everything outside the spans is copied as it was
/// written, escapes included, so a lone surrogate escape such as `\ud800` stays `\ud800`. A
/// span that starts or ends inside an escape or a multi-byte character covers all of it.
/// `raw` must have been checked by [`crate::mcp::strict::check_tokens`] and `decoded` must be
/// what simd-json made of it after [`crate::mcp::standins`] (a lone surrogate as U+FFFD).
pub fn redact_raw_string(
    out: &mut Vec<u8>,
    raw: &[u8],
    decoded: &[u8],
    spans: &mut [RedactSpan<'_>],
    strategy: RedactStrategy,
    salt: &[u8],
) {
    out.push(b'"');
    let (mut r, mut d) = (0, 0);
    for (start, end, ids) in merged(spans) {
        // Copy whole units up to the span, then skip the units it touches.
        while r < raw.len() {
            let (rl, dl) = raw_unit(raw, r);
            if d + dl > start {
                break;
            }
            out.extend_from_slice(&raw[r..r + rl]);
            (r, d) = (r + rl, d + dl);
        }
        while r < raw.len() && d < end {
            let (rl, dl) = raw_unit(raw, r);
            (r, d) = (r + rl, d + dl);
        }
        let mut m = String::new();
        write_json_string(&mut m, &marker(&decoded[start..end], &ids, strategy, salt));
        out.extend_from_slice(&m.as_bytes()[1..m.len() - 1]);
    }
    out.extend_from_slice(&raw[r..]);
    out.push(b'"');
}

/// The unit of raw string content at `at`, as `(raw length, decoded length)`: a plain
/// character, a short escape, a `\uXXXX` escape, or a surrogate pair of them. A lone
/// surrogate decodes as U+FFFD (3 bytes), its [stand-in](crate::mcp::standins).
fn raw_unit(raw: &[u8], at: usize) -> (usize, usize) {
    use crate::mcp::strict::hex4;
    match raw[at] {
        b'\\' if raw.get(at + 1) == Some(&b'u') => match hex4(raw, at + 2) {
            Some(0xD800..=0xDBFF)
                if raw.get(at + 6..at + 8) == Some(b"\\u")
                    && matches!(hex4(raw, at + 8), Some(0xDC00..=0xDFFF)) =>
            {
                (12, 4)
            }
            Some(u) => (6, char::from_u32(u).map_or(3, char::len_utf8)),
            None => (2, 1),
        },
        b'\\' => (2, 1),
        b if b < 0x80 => (1, 1),
        b if b >= 0xF0 => (4, 4),
        b if b >= 0xE0 => (3, 3),
        _ => (2, 2),
    }
}

/// The spans sorted and merged where they overlap: `(start, end, rule ids)`, each rule once.
fn merged<'r>(spans: &mut [RedactSpan<'r>]) -> Vec<(usize, usize, Vec<&'r str>)> {
    spans.sort_by_key(|s| (s.start, s.end));
    let mut out: Vec<(usize, usize, Vec<&str>)> = Vec::new();
    for s in spans.iter() {
        match out.last_mut() {
            Some((_, end, ids)) if s.start < *end => {
                *end = (*end).max(s.end);
                if !ids.contains(&s.rule_id) {
                    ids.push(s.rule_id);
                }
            }
            _ if s.start < s.end => out.push((s.start, s.end, vec![s.rule_id])),
            _ => {}
        }
    }
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

    fn raw_redact(raw: &str, decoded: &str, spans: &[(usize, usize)]) -> String {
        let mut spans: Vec<RedactSpan<'_>> = spans
            .iter()
            .map(|&(start, end)| RedactSpan {
                start,
                end,
                rule_id: "r",
            })
            .collect();
        let mut out = Vec::new();
        let (raw, decoded) = (raw.as_bytes(), decoded.as_bytes());
        redact_raw_string(
            &mut out,
            raw,
            decoded,
            &mut spans,
            RedactStrategy::Mask,
            b"",
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn raw_rewrite_keeps_every_escape_outside_the_spans() {
        // `\ud800` is lone: it decoded (from its stand-in) as U+FFFD.
        let raw = r#"a\/b\ud800 KEY \u00e9x\ud83d\ude00\"\udc00"#;
        let decoded = "a/b\u{FFFD} KEY éx😀\"\u{FFFD}";
        let key = decoded.find("KEY").unwrap();
        assert_eq!(
            raw_redact(raw, decoded, &[(key, key + 3)]),
            r#""a\/b\ud800 [REDACTED:r] \u00e9x\ud83d\ude00\"\udc00""#
        );
        // A span ending inside `é` (two bytes from one escape) or starting inside the emoji
        // (four from a pair) takes the whole of it.
        let e = decoded.find('é').unwrap();
        assert_eq!(
            raw_redact(raw, decoded, &[(key, e + 1), (e + 4, e + 5)]),
            r#""a\/b\ud800 [REDACTED:r]x[REDACTED:r]\"\udc00""#
        );
        // The lone surrogate itself in a span goes with it; the spans merge.
        assert_eq!(
            raw_redact(raw, decoded, &[(3, 6), (5, 7)]),
            r#""a\/b[REDACTED:r]KEY \u00e9x\ud83d\ude00\"\udc00""#
        );
        let out = raw_redact(raw, decoded, &[(0, decoded.len())]);
        assert_eq!(out, r#""[REDACTED:r]""#);
    }

    #[test]
    fn raw_rewrite_of_plain_text_is_the_decoded_rewrite() {
        let text = "key AKIAABCDEFGHIJKLMNOP and mail a@b.io, ünï";
        let spans = [(4, 24), (10, 20), (34, 40), (42, 45)];
        let mut rs: Vec<RedactSpan<'_>> = spans
            .iter()
            .map(|&(start, end)| RedactSpan {
                start,
                end,
                rule_id: "r",
            })
            .collect();
        let mut want = String::new();
        let red = redact_bytes(text.as_bytes(), &mut rs, RedactStrategy::Mask, b"");
        write_json_string(&mut want, std::str::from_utf8(&red).unwrap());
        assert_eq!(raw_redact(text, text, &spans), want);
    }
}
