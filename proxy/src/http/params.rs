//! `Mcp-Param-*` headers (2026-07-28). A tool marks arguments with `x-mcp-header` in its input
//! schema and clients mirror them into `Mcp-Param-{Name}` headers, which the server checks
//! against the body. When sluice redacts such an argument the header must follow, or the secret
//! leaks through the header and the server refuses the call (-32020).
//!
//! Which header mirrors which argument is learnt from the `tools/list` answers that pass
//! through (`exchange::ParamMap`). For a tool not seen yet, a header mirrors the argument whose
//! original value it carries.

use base64::Engine as _;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::exchange::Mirrored;

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn decode(raw: &HeaderValue) -> Option<String> {
    let raw = raw.to_str().ok()?;
    match raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(enc) => String::from_utf8(base64_decode(enc.as_bytes())?).ok(),
        None => Some(raw.to_string()),
    }
}

/// The bytes of the base64 text (RFC 4648 section 4, padded) inside `=?base64?...?=`.
pub(super) fn base64_decode(enc: &[u8]) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(enc).ok()
}

/// Plain when the value is visible ASCII with no surrounding spaces, else `=?base64?...?=`.
pub(super) fn encode(v: &str) -> Option<HeaderValue> {
    let plain = v.bytes().all(|b| (0x20..0x7f).contains(&b)) && v.trim() == v;
    let s = if plain {
        v.to_string()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(v)
        )
    };
    HeaderValue::from_str(&s).ok()
}

/// The `Mcp-Param-*` headers to replace after `original` was redacted into `redacted`, or
/// `None` when none changes.
pub fn rewritten(
    headers: &HeaderMap,
    mirrored: Option<&[Mirrored]>,
    original: &[u8],
    redacted: &[u8],
) -> Option<HeaderMap> {
    let present: Vec<(&HeaderName, &HeaderValue)> = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("mcp-param-"))
        .collect();
    if present.is_empty() {
        return None;
    }
    let args = |body: &[u8]| -> Option<Value> {
        let v: Value = serde_json::from_slice(body).ok()?;
        Some(v.pointer("/params/arguments")?.clone())
    };
    let (before, after) = (args(original)?, args(redacted)?);
    let at = |v: &Value, path: &[String]| -> Option<String> {
        let mut cur = v;
        for p in path {
            cur = cur.get(p)?;
        }
        (!cur.is_null()).then(|| text(cur))
    };
    let mut out = HeaderMap::new();
    for (name, value) in present {
        let new = match mirrored.and_then(|m| m.iter().find(|m| m.header == name.as_str())) {
            Some(m) => at(&after, &m.path),
            None => {
                // Not learnt: the argument whose original value the header carries.
                let old = decode(value)?;
                let obj = before.as_object()?;
                let key = obj.iter().find(|(_, v)| text(v) == old).map(|(k, _)| k)?;
                after.get(key).map(text)
            }
        };
        let Some(new) = new else { continue };
        if decode(value).as_deref() == Some(new.as_str()) {
            continue;
        }
        out.insert(name.clone(), encode(&new)?);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlearnt_headers_follow_their_redacted_arguments_in_both_encodings() {
        let mut h = HeaderMap::new();
        h.insert(
            "mcp-param-note",
            HeaderValue::from_static("=?base64?a8OpeSBzM2NyZXQ=?="),
        );
        h.insert("mcp-param-city", HeaderValue::from_static("Paris"));
        let before = r#"{"params":{"arguments":{"note":"kéy s3cret","city":"Paris"}}}"#;
        let after = r#"{"params":{"arguments":{"note":"kéy [REDACTED:x]","city":"Paris"}}}"#;
        let out = rewritten(&h, None, before.as_bytes(), after.as_bytes()).unwrap();
        assert_eq!(out.len(), 1, "only the changed argument's header");
        let v = out.get("mcp-param-note").unwrap();
        assert_eq!(decode(v).unwrap(), "kéy [REDACTED:x]");
    }

    #[test]
    fn learnt_mapping_follows_nested_arguments_by_schema() {
        let map = crate::exchange::ParamMap::default();
        let list = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"deploy","inputSchema":{"type":"object","properties":{"target":{"type":"object","properties":{"token":{"type":"string","x-mcp-header":"Token"}}},"region":{"type":"string","x-mcp-header":"Region"}}}}]}}"#;
        map.learn(0, &serde_json::from_str(list).unwrap());
        let m = map.for_tool(0, "deploy").unwrap();
        assert_eq!(m.len(), 2);
        assert!(map.for_tool(1, "deploy").is_none(), "per upstream");
        // The header's value differs from the body (the client encoded it its own way); the
        // schema still says which argument it mirrors.
        let mut h = HeaderMap::new();
        h.insert(
            "mcp-param-token",
            HeaderValue::from_static("=?base64?c2VjcmV0?="),
        );
        h.insert("mcp-param-region", HeaderValue::from_static("eu"));
        let before = r#"{"params":{"name":"deploy","arguments":{"target":{"token":"secret"},"region":"eu"}}}"#;
        let after = r#"{"params":{"name":"deploy","arguments":{"target":{"token":"[REDACTED:t]"},"region":"eu"}}}"#;
        let out = rewritten(&h, Some(&m), before.as_bytes(), after.as_bytes()).unwrap();
        assert_eq!(out.get("mcp-param-token").unwrap(), "[REDACTED:t]");
        assert!(out.get("mcp-param-region").is_none());
    }
}
