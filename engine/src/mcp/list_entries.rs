//! Taking entries out of an MCP list result (`tools/list`, `prompts/list`, `resources/list`,
//! `resources/templates/list`) by their bytes: the rest of the message is kept as it was
//! written, so numbers no parser could hold (`1e400`, 30-digit integers) and lone surrogate
//! escapes pass through unchanged.

use serde::Deserialize;
use serde_json::value::RawValue;

/// The lists of a list result, each entry as its raw JSON text. serde_json skips what it does
/// not deserialize without reading numbers' values or pairing surrogates.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    result: Lists<'a>,
}

#[derive(Deserialize)]
struct Lists<'a> {
    #[serde(borrow, default)]
    tools: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    prompts: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    resources: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default, rename = "resourceTemplates")]
    resource_templates: Option<Vec<&'a RawValue>>,
}

impl<'a> Lists<'a> {
    fn get(&self, name: &str) -> Option<&[&'a RawValue]> {
        match name {
            "tools" => self.tools.as_deref(),
            "prompts" => self.prompts.as_deref(),
            "resources" => self.resources.as_deref(),
            "resourceTemplates" => self.resource_templates.as_deref(),
            _ => None,
        }
    }
}

/// `msg`, one JSON-RPC message, without the entries `drop` names: `(list, index)` with `list`
/// one of `tools`, `prompts`, `resources`, `resourceTemplates` under `result`; an index past
/// the end names nothing. Bytes outside the changed lists are kept; a changed list keeps its
/// remaining entries byte for byte, joined by `,` (the space around them between the first
/// entry and the last goes).
///
/// `None` when `msg` is not a JSON object whose `result` member is an object, when a named
/// list is not an array, or when a member the lookup reads (`result`, a list) is given twice.
pub fn without_entries(msg: &[u8], drop: &[(String, usize)]) -> Option<Vec<u8>> {
    let envelope: Envelope<'_> = serde_json::from_slice(msg).ok()?;
    let offset = |v: &RawValue| v.get().as_ptr() as usize - msg.as_ptr() as usize;
    // One replacement per changed list: the span from its first entry to its last.
    let mut splices: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut lists: Vec<&str> = drop.iter().map(|(l, _)| l.as_str()).collect();
    lists.sort_unstable();
    lists.dedup();
    for name in lists {
        let entries = envelope.result.get(name)?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            continue;
        };
        let kept: Vec<&str> = entries
            .iter()
            .enumerate()
            .filter(|(i, _)| !drop.iter().any(|(l, d)| l == name && d == i))
            .map(|(_, e)| e.get())
            .collect();
        if kept.len() == entries.len() {
            continue;
        }
        let end = offset(last) + last.get().len();
        splices.push((offset(first), end, kept.join(",").into_bytes()));
    }
    splices.sort_by_key(|s| s.0);
    let mut out = Vec::with_capacity(msg.len());
    let mut pos = 0;
    for (start, end, new) in splices {
        out.extend_from_slice(&msg[pos..start]);
        out.extend_from_slice(&new);
        pos = end;
    }
    out.extend_from_slice(&msg[pos..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop(items: &[(&str, usize)]) -> Vec<(String, usize)> {
        items.iter().map(|(l, i)| (l.to_string(), *i)).collect()
    }

    #[test]
    fn removes_entries_and_keeps_every_other_byte() {
        let msg = br#"{"jsonrpc":"2.0","id":1.0,"result":{ "tools" : [ {"name":"a","n":1e400} , {"name":"b\ud800"},{"name":"c","big":123456789012345678901234567890} ],"prompts":[{"name":"p"}]}}"#;
        let out = without_entries(msg, &drop(&[("tools", 1)])).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"jsonrpc":"2.0","id":1.0,"result":{ "tools" : [ {"name":"a","n":1e400},{"name":"c","big":123456789012345678901234567890} ],"prompts":[{"name":"p"}]}}"#
        );
        let out =
            without_entries(msg, &drop(&[("tools", 0), ("tools", 2), ("prompts", 0)])).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"jsonrpc":"2.0","id":1.0,"result":{ "tools" : [ {"name":"b\ud800"} ],"prompts":[]}}"#
        );
        let out = without_entries(msg, &drop(&[("tools", 9)])).unwrap();
        assert_eq!(out, msg.to_vec(), "an index past the end names nothing");
    }

    #[test]
    fn refuses_what_it_cannot_read_one_way() {
        for bad in [
            &br#"{"result":{"tools":[{"a":1}]},"result":{"tools":[]}}"#[..],
            br#"{"result":{"tools":{"a":1}}}"#,
            br#"{"result":[]}"#,
            br#"[{"result":{"tools":[]}}]"#,
        ] {
            assert_eq!(without_entries(bad, &drop(&[("tools", 0)])), None);
        }
    }
}
