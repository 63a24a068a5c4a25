//! Request headers scanned like body strings. Every `Mcp-*` header (the `Mcp-Param-*`
//! argument mirrors of the 2026-07-28 draft above all) gets the policy's action; the headers
//! `[http] scan_headers` names, and `Mcp-Session-Id`, get `[http] scan_headers_action`
//! (monitor by default). Values written `=?base64?...?=` (the draft's encoding for non-ASCII
//! values, see `params.rs`) are decoded first.
//!
//! The values go to the engine as the arguments of one synthetic `tools/call` message, so
//! they meet the same rules, decoding views, policy and redaction as a body string. A block
//! refuses the request with the error of a blocked body (HTTP 200, JSON-RPC -32001); a
//! redaction replaces the header's value with its redacted text (kept, not removed: a server
//! that requires the header, or compares an `Mcp-Param-*` header with its argument, then sees
//! the marker where a secret was, as it does in the body).

use std::collections::BTreeSet;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use sluice_engine::mcp::JsonRpcId;
use sluice_engine::verdict::{error_response, BLOCKED_CODE};
use sluice_engine::{Action, Direction, Inspection, Verdict};

use super::params;
use super::respond::{json_error, reply, Body, INVALID_REQUEST};
use super::State;
use crate::config::headers::{HeaderAction, ALL_HEADERS, EXEMPT_HEADERS};
use crate::config::HttpChecks;
use crate::exchange::{Reply, ReplyKind, Who};
use crate::live::Live;

/// The JSON pointer under which the synthetic message carries header number `i`.
const ARGS: &str = "/params/arguments/";

/// One header value to scan.
struct Field {
    name: HeaderName,
    /// Whether the policy decides (else `scan_headers_action`).
    governed: bool,
    text: String,
}

/// New values for the headers whose values were redacted: every value of each name, in order.
pub(super) type Rewrite = Vec<(HeaderName, Vec<HeaderValue>)>;

/// The size of a header section as RFC 9113 section 6.5.2 counts a header list: name and
/// value bytes plus 32 per field.
pub(super) fn section_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 32)
        .sum()
}

/// Why the header section is refused with 431 (RFC 6585 section 5): it is over `max` bytes.
pub(super) fn too_large(headers: &HeaderMap, max: usize) -> Option<String> {
    let size = section_size(headers);
    (size > max).then(|| format!("request headers of {size} bytes are over the {max}-byte limit"))
}

/// Whether `name` is scanned, and whether the policy decides its findings.
fn selected(name: &HeaderName, checks: &HttpChecks) -> Option<bool> {
    let n = name.as_str();
    // `Mcp_Param_X` too: CGI and WSGI servers read `_` and `-` in names alike.
    let mcp = n.starts_with("mcp-") || n.starts_with("mcp_");
    if mcp && n != "mcp-session-id" && n != "mcp_session_id" {
        return Some(true);
    }
    let listed = checks.scan_headers.iter().any(|h| {
        h.eq_ignore_ascii_case(n)
            || (h == ALL_HEADERS && (n == "mcp-session-id" || !EXEMPT_HEADERS.contains(&n)))
    });
    listed.then_some(checks.scan_headers_action == HeaderAction::Policy)
}

/// A value as text: `=?base64?...?=` decoded, UTF-8. `Err` with why for a governed header
/// that cannot be read (fail closed); a monitored one is read lossily.
fn text_of(name: &HeaderName, v: &HeaderValue, governed: bool) -> Result<String, String> {
    let raw = v.as_bytes();
    let decoded = match raw
        .strip_prefix(b"=?base64?")
        .and_then(|r| r.strip_suffix(b"?="))
    {
        Some(enc) => params::base64_decode(enc).ok_or_else(|| {
            format!("header `{name}` is marked =?base64?...?= but is not valid base64")
        })?,
        None => raw.to_vec(),
    };
    match String::from_utf8(decoded) {
        Ok(s) => Ok(s),
        Err(e) if !governed => Ok(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        Err(_) => Err(format!(
            "header `{name}` is not UTF-8 text; sluice cannot inspect it"
        )),
    }
}

fn fields(headers: &HeaderMap, checks: &HttpChecks) -> Result<Vec<Field>, String> {
    let mut out = Vec::new();
    for (name, v) in headers {
        let Some(governed) = selected(name, checks) else {
            continue;
        };
        let text = text_of(name, v, governed)?;
        out.push(Field {
            name: name.clone(),
            governed,
            text,
        });
    }
    Ok(out)
}

/// The synthetic message: header `i`'s text is argument `"i"` of a `tools/call`, the scope
/// body arguments are scanned in.
fn message(fields: &[Field]) -> Vec<u8> {
    let args: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| (i.to_string(), serde_json::Value::from(f.text.as_str())))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0", "id": 0, "method": "tools/call",
        "params": {"name": "request-headers", "arguments": args},
    }))
    .unwrap_or_default()
}

/// Scans the request's headers. `Ok(None)`: forward them as they are; `Ok(Some)`: replace
/// these; `Err`: answer with this instead (blocked, unreadable, or inspection unavailable).
/// `id` is the request's JSON-RPC id, for the error of a block.
pub(super) async fn inspect(
    state: &State,
    live: &Live,
    who: &Who,
    headers: &HeaderMap,
    id: Option<JsonRpcId>,
) -> Result<Option<Rewrite>, Box<Response<Body>>> {
    let fields = fields(headers, &state.proxy.checks)
        .map_err(|why| Box::new(json_error(StatusCode::BAD_REQUEST, INVALID_REQUEST, &why)))?;
    if fields.is_empty() {
        return Ok(None);
    }
    let msg = message(&fields);
    let res = live
        .pool
        .inspect_for(
            who.scan_client(),
            msg,
            Direction::ClientToServer,
            None,
            live.policy.clone(),
        )
        .await;
    let insp = match res {
        Ok(Ok(insp)) => insp,
        Ok(Err(e)) => {
            // Bounded by max_header_bytes, the message fails only on a broken rule set:
            // whatever the policy's fail_open, headers that were not scanned do not go on.
            let why = format!("sluice could not inspect the request headers: {e}");
            return Err(Box::new(json_error(
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                &why,
            )));
        }
        Err(_) => {
            return Err(Box::new(json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                INVALID_REQUEST,
                "inspection is unavailable",
            )))
        }
    };
    decide(state, who, &fields, insp, id.unwrap_or(JsonRpcId::Null))
}

/// What a finding does: the policy's action for a governed header, else the configured one.
fn effective(f: &Field, action: Action, checks: &HttpChecks) -> Action {
    match (f.governed, checks.scan_headers_action) {
        (true, _) | (false, HeaderAction::Policy) => action,
        (false, HeaderAction::Monitor) => Action::Monitor,
    }
}

fn decide(
    state: &State,
    who: &Who,
    fields: &[Field],
    insp: Inspection,
    id: JsonRpcId,
) -> Result<Option<Rewrite>, Box<Response<Body>>> {
    let checks = &state.proxy.checks;
    let (mut blocked, mut redacted) = (BTreeSet::new(), BTreeSet::new());
    let (mut names, mut rules) = (BTreeSet::new(), BTreeSet::new());
    for f in &insp.findings {
        // Only the arguments carry header text; the envelope around them is sluice's own.
        let at: Option<usize> = f
            .pointer
            .strip_prefix(ARGS)
            .and_then(|r| r.split('/').next()?.parse().ok());
        let Some(i) = at.filter(|i| *i < fields.len()) else {
            continue;
        };
        let action = effective(&fields[i], f.action, checks);
        state
            .proxy
            .metrics
            .findings
            .inc([&f.rule_id, action.as_str()]);
        names.insert(fields[i].name.as_str());
        rules.insert(f.rule_id.as_str());
        match action {
            Action::Block => blocked.insert(i),
            Action::Redact => redacted.insert(i),
            Action::Monitor => false,
        };
    }
    if names.is_empty() {
        return Ok(None);
    }
    let outcome = match (blocked.is_empty(), redacted.is_empty()) {
        (false, _) => "blocked",
        (true, false) => "redacted",
        (true, true) => "recorded",
    };
    audit(state, who, outcome, &names, &rules);
    if !blocked.is_empty() {
        let rules: Vec<&str> = rules.into_iter().collect();
        let why = format!(
            "Blocked by sluice: the request headers matched {}",
            rules.join(", ")
        );
        return Err(Box::new(reply(Reply {
            kind: ReplyKind::Blocked,
            body: error_response(&id, BLOCKED_CODE, &why, &rules).into_bytes(),
        })));
    }
    if redacted.is_empty() {
        return Ok(None);
    }
    rewrite(fields, &redacted, &insp.verdict)
        .map(Some)
        .ok_or_else(|| {
            Box::new(json_error(
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                "sluice could not redact the request headers",
            ))
        })
}

/// The redacted fields' new values from the engine's redacted message, with every value of
/// their names in order (a name may repeat). `None` when the engine did not redact.
fn rewrite(fields: &[Field], redacted: &BTreeSet<usize>, verdict: &Verdict) -> Option<Rewrite> {
    let Verdict::Redacted(bytes) = verdict else {
        return None;
    };
    let msg: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let args = msg.pointer("/params/arguments")?;
    let mut out: Rewrite = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if !fields
            .iter()
            .enumerate()
            .any(|(j, g)| g.name == f.name && redacted.contains(&j))
        {
            continue;
        }
        let v = if redacted.contains(&i) {
            params::encode(args.get(i.to_string())?.as_str()?)?
        } else {
            params::encode(&f.text)?
        };
        match out.iter_mut().find(|(n, _)| *n == f.name) {
            Some((_, vs)) => vs.push(v),
            None => out.push((f.name.clone(), vec![v])),
        }
    }
    Some(out)
}

/// The audit row: the headers' names and the rules, never a value.
fn audit(state: &State, who: &Who, outcome: &str, names: &BTreeSet<&str>, rules: &BTreeSet<&str>) {
    tracing::info!(outcome, client = %who.client, "finding in request headers");
    if let Some(a) = &state.proxy.audit {
        a.event(
            "headers",
            who.transport.as_str(),
            who.origin(),
            serde_json::json!({"outcome": outcome, "headers": names, "rules": rules}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(list: &[&str], action: HeaderAction) -> HttpChecks {
        HttpChecks {
            scan_headers: list.iter().map(|s| s.to_string()).collect(),
            scan_headers_action: action,
            ..HttpChecks::default()
        }
    }

    #[test]
    fn mcp_headers_follow_the_policy_and_credentials_are_left_alone_by_default() {
        let c = checks(&["*"], HeaderAction::Monitor);
        let h = |n: &'static str| HeaderName::from_static(n);
        assert_eq!(selected(&h("mcp-param-foo"), &c), Some(true));
        assert_eq!(selected(&h("mcp-method"), &c), Some(true));
        assert_eq!(selected(&h("mcp-session-id"), &c), Some(false));
        assert_eq!(selected(&h("x-note"), &c), Some(false));
        assert_eq!(selected(&h("authorization"), &c), None);
        assert_eq!(selected(&h("x-api-key"), &c), None);
        let named = checks(&["X-Api-Key"], HeaderAction::Policy);
        assert_eq!(selected(&h("x-api-key"), &named), Some(true));
        assert_eq!(selected(&h("x-note"), &named), None);
        assert_eq!(selected(&h("mcp-session-id"), &named), None);
        assert_eq!(
            selected(&h("mcp-param-foo"), &checks(&[], HeaderAction::Monitor)),
            Some(true)
        );
    }

    #[test]
    fn base64_values_are_decoded_and_unreadable_governed_ones_refused() {
        let n = HeaderName::from_static("mcp-param-note");
        let v = HeaderValue::from_static("=?base64?a8OpeSBzM2NyZXQ=?=");
        assert_eq!(text_of(&n, &v, true).unwrap(), "kéy s3cret");
        let bad = HeaderValue::from_static("=?base64?!!?=");
        assert!(text_of(&n, &bad, true)
            .unwrap_err()
            .contains("not valid base64"));
        let latin1 = HeaderValue::from_bytes(b"caf\xe9").unwrap();
        assert!(text_of(&n, &latin1, true)
            .unwrap_err()
            .contains("not UTF-8"));
        assert_eq!(text_of(&n, &latin1, false).unwrap(), "caf\u{fffd}");
    }

    #[test]
    fn the_section_size_counts_names_values_and_32_per_field() {
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("12345"));
        h.append("x-a", HeaderValue::from_static("1"));
        assert_eq!(section_size(&h), (3 + 5 + 32) + (3 + 1 + 32));
        assert!(too_large(&h, 76).is_none());
        let why = too_large(&h, 75).unwrap();
        assert_eq!(
            why,
            "request headers of 76 bytes are over the 75-byte limit"
        );
    }
}
