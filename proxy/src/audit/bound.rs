//! The size of a row: every string clipped, every list capped, the whole row at most
//! [`MAX_ROW`] bytes. Many fields come from the client or the upstream (a tool name, a
//! pointer, an error text, a `Host` header in a refusal), and a row that copied them whole
//! let one request write megabytes of audit file: the bounds make a flood cost the disk at
//! most [`MAX_ROW`] per row.
//!
//! The bounds hold for every row, whoever builds it: `bound_row` runs on each row before it
//! is sealed, and a row still over [`MAX_ROW`] (JSON escapes can make a clipped string six
//! times longer) is written in its `short_form`.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// Longest string a row holds, in bytes of UTF-8 (before JSON escaping); a longer one is cut
/// at a char boundary at or below it and ends with `…(truncated, N bytes)`, N its length.
pub const MAX_TEXT: usize = 256;

/// Most items a list in a row holds (findings, tool names); the rest are counted in a field
/// `<list>_omitted` beside it.
pub const MAX_LIST: usize = 32;

/// Longest row, in bytes, seal included and newline excluded.
pub const MAX_ROW: usize = 64 * 1024;

/// Lists and objects nested deeper than this (a row's own fields are depth 0) are written as
/// [`TOO_DEEP`].
const MAX_DEPTH: usize = 3;

/// Written in place of a value nested deeper than a row keeps.
const TOO_DEEP: &str = "(nested too deep)";

/// The fields a row over [`MAX_ROW`] keeps: who, when and what was decided, each a scalar.
const SHORT_FORM: &[&str] = &[
    "time",
    "event",
    "transport",
    "client",
    "identity",
    "session",
    "direction",
    "kind",
    "control",
    "outcome",
    "verdict",
    "decision",
    "approval_id",
    "forwarded",
    "aborted",
    "bytes",
    "seq",
    "prev",
];

/// `s` at most [`MAX_TEXT`] bytes long, with a marker saying how long it was when cut.
pub fn clip(s: &str) -> Cow<'_, str> {
    if s.len() <= MAX_TEXT {
        return Cow::Borrowed(s);
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…(truncated, {} bytes)", &s[..end], s.len()))
}

/// Clips every string of `row`, keys included, caps every list at [`MAX_LIST`] (writing the
/// number left out as `<field>_omitted`), and cuts nesting below [`MAX_DEPTH`].
pub(super) fn bound_row(row: &mut Map<String, Value>) {
    bound_object(row, 0);
}

fn bound_object(m: &mut Map<String, Value>, depth: usize) {
    let fields = std::mem::take(m);
    for (k, mut v) in fields {
        let k = clip(&k).into_owned();
        if let Some(omitted) = bound(&mut v, depth) {
            m.insert(format!("{k}_omitted"), omitted.into());
        }
        m.insert(k, v);
    }
}

/// Bounds `v` in place; for a list that was capped, how many items were left out.
fn bound(v: &mut Value, depth: usize) -> Option<usize> {
    match v {
        Value::String(s) => {
            if let Cow::Owned(c) = clip(s) {
                *s = c;
            }
            None
        }
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => {
            *v = TOO_DEEP.into();
            None
        }
        Value::Array(a) => {
            let omitted = a.len().saturating_sub(MAX_LIST);
            a.truncate(MAX_LIST);
            for item in a.iter_mut() {
                // An item is not a field: a list in a list has no field to count into.
                bound(item, depth + 1);
            }
            (omitted > 0).then_some(omitted)
        }
        Value::Object(m) => {
            bound_object(m, depth + 1);
            None
        }
        _ => None,
    }
}

/// A row over [`MAX_ROW`]: only its [`SHORT_FORM`] scalars, and `cut` with the bytes the
/// full row would have taken.
pub(super) fn short_form(row: &Map<String, Value>, full: usize) -> Map<String, Value> {
    let mut out = Map::new();
    for &k in SHORT_FORM {
        if let Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) = row.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    out.insert("cut".into(), full.into());
    out
}

/// The first [`MAX_LIST`] of `findings` (only those are turned into JSON: a flood of
/// findings costs no more than 32); when some are left out, `findings_omitted` with their
/// number and `omitted_rules` with their rules (`rule_of` each), each once, go into `row`: so
/// a rule that fired only past the cap still shows.
pub(super) fn cap_findings<'a, T>(
    findings: &'a [T],
    rule_of: impl Fn(&T) -> &str,
    row: &mut Map<String, Value>,
) -> &'a [T] {
    if findings.len() <= MAX_LIST {
        return findings;
    }
    let (shown, rest) = findings.split_at(MAX_LIST);
    let mut rules: Vec<&str> = Vec::new();
    for r in rest.iter().map(&rule_of) {
        if !rules.contains(&r) {
            rules.push(r);
        }
    }
    row.insert("findings_omitted".into(), rest.len().into());
    row.insert("omitted_rules".into(), rules.into());
    shown
}
