//! The gateway controls on the HTTP front ends: the per-message phases on a POSTed message
//! once the engine has passed it, approval holds, and what answers teach the controls
//! (session marks from findings, list filtering and tool pins).

use bytes::Bytes;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use sluice_engine::mcp::JsonRpcId;
use sluice_engine::verdict::error_response;

use super::handle::Who;
use super::respond::{json as json_answer, Body};
use super::State;
use crate::live::Live;
use crate::policy::approval::{Decision, Held};
use crate::policy::{Admitted, Caller, Denial};

impl Who {
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            identity: self.identity.as_deref(),
            key: &self.key,
            session: &self.session_key,
            upstream: self.upstream,
            upstream_url: &self.upstream_url,
        }
    }
}

/// The answer for a refusal: JSON-RPC error with the request's id; 429 with `Retry-After`
/// for limits, 200 for policy refusals (the MCP client reads the error like a tool error),
/// audited and counted.
pub(super) fn refuse(
    state: &State,
    who: &Who,
    id: &JsonRpcId,
    method: Option<&str>,
    tool: Option<&str>,
    d: &Denial,
) -> Response<Body> {
    let p = &state.proxy;
    p.metrics.denials.inc(&[d.control]);
    tracing::info!(control = d.control, identity = who.identity.as_deref(), reason = %d.message, "denied");
    if let Some(a) = &p.audit {
        a.event(
            "denied",
            who.transport,
            who.origin(),
            json!({
                "control": d.control,
                "reason": d.message,
                "method": method,
                "tool": tool,
                "retry_after_s": d.retry_after.map(|r| r.as_secs_f64().ceil() as u64),
            }),
        );
    }
    let body = error_response(
        id,
        d.code(),
        &format!("{} (sluice {} policy)", d.message, d.control),
        &[],
    );
    match d.retry_after {
        Some(wait) => {
            let mut r = json_answer(StatusCode::TOO_MANY_REQUESTS, body);
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(RETRY_AFTER, v);
            }
            r
        }
        None => json_answer(StatusCode::OK, body),
    }
}

/// The id of a single request, read without the rest of the message.
pub(super) fn request_id(bytes: &[u8]) -> JsonRpcId {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<Value>,
    }
    serde_json::from_slice::<IdOnly>(bytes)
        .ok()
        .and_then(|m| m.id)
        .map(|id| id_of(&json!({ "id": id })))
        .unwrap_or(JsonRpcId::Null)
}

fn id_of(v: &Value) -> JsonRpcId {
    crate::policy::jsonrpc_id(v.get("id"))
}

/// Runs the message phases on what would be forwarded. `Ok` carries the marks to set on
/// the session and an optional hold; `Err` the refusal to answer with.
pub(super) async fn admit(
    state: &State,
    live: &Live,
    who: &Who,
    forwarded: &Bytes,
    rule_ids: &[String],
) -> Result<Admitted, Response<Body>> {
    let g = &live.gateway;
    let rt = &state.proxy.runtime;
    let needs_parse = g.inspects_messages()
        || rt.pins.is_some()
        || rt.has_quarantine()
        || !g.approval_rules().is_empty();
    if !needs_parse {
        return Ok(Admitted::default());
    }
    // The engine has already refused what does not parse (fail closed).
    let Ok(parsed) = serde_json::from_slice::<Value>(forwarded) else {
        return Ok(Admitted::default());
    };
    let messages: Vec<&Value> = match &parsed {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    let caller = who.caller();
    let mut all = Admitted::default();
    for m in &messages {
        match g.admit(rt, &caller, m).await {
            Ok(a) => {
                all.marks.extend(a.marks);
                if all.hold.is_none() {
                    all.hold = a.hold;
                }
            }
            Err(d) => {
                // One refused message refuses its whole batch: half a batch is a state the
                // client did not ask for.
                let id = if messages.len() == 1 {
                    id_of(m)
                } else {
                    JsonRpcId::Null
                };
                let method = m.get("method").and_then(Value::as_str);
                let tool = m.pointer("/params/name").and_then(Value::as_str);
                return Err(refuse(state, who, &id, method, tool, &d));
            }
        }
    }
    // Findings of rules marked for approval hold the call too.
    let held_rules: Vec<&String> = rule_ids
        .iter()
        .filter(|r| g.approval_rules().contains(r))
        .collect();
    if all.hold.is_none() && !held_rules.is_empty() {
        let m = messages.first().copied().unwrap_or(&Value::Null);
        all.hold = Some((
            m.pointer("/params/name")
                .and_then(Value::as_str)
                .or(m.get("method").and_then(Value::as_str))
                .unwrap_or("")
                .to_string(),
            m.pointer("/params/arguments")
                .cloned()
                .unwrap_or(Value::Null),
            format!(
                "rules: {}",
                held_rules
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(all)
}

/// Holds a call for a human; `Err` with the refusal when denied or not decided in time.
pub(super) async fn hold(
    state: &State,
    live: &Live,
    who: &Who,
    forwarded: &Bytes,
    (tool, arguments, reason): (String, Value, String),
) -> Result<(), Response<Body>> {
    let p = &state.proxy;
    let cfg = &live.gateway.approval;
    let held = Held {
        id: 0,
        since: String::new(),
        client: who.identity.clone().or(Some(who.client.clone())),
        session: who.session.clone(),
        upstream: p.upstreams[who.upstream].prefix.clone(),
        tool: tool.clone(),
        reason: reason.clone(),
        arguments,
    };
    if let Some(a) = &p.audit {
        a.event(
            "held",
            who.transport,
            who.origin(),
            json!({"tool": tool, "reason": reason}),
        );
    }
    let (id, decision) = p
        .runtime
        .approvals
        .hold(held, cfg.timeout, cfg.max_pending)
        .await;
    let label = match decision {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
        Decision::Timeout => "timeout",
        Decision::Overflow => "overflow",
    };
    p.metrics.approvals.inc(&[label]);
    if let Some(a) = &p.audit {
        a.event(
            "approval",
            who.transport,
            who.origin(),
            json!({"approval_id": id, "tool": tool, "decision": label}),
        );
    }
    if decision == Decision::Allow {
        return Ok(());
    }
    let message = match decision {
        Decision::Timeout => format!(
            "call to `{tool}` was held for approval and not approved within {} s",
            cfg.timeout.as_secs()
        ),
        Decision::Overflow => {
            format!("call to `{tool}` needs approval and the approval queue is full")
        }
        _ => format!("call to `{tool}` was denied by an operator"),
    };
    let id = serde_json::from_slice::<Value>(forwarded)
        .map(|v| id_of(&v))
        .unwrap_or(JsonRpcId::Null);
    p.metrics.denials.inc(&["approval"]);
    Err(json_answer(
        StatusCode::OK,
        error_response(
            &id,
            -32003,
            &format!("{message} (sluice approval policy)"),
            &[],
        ),
    ))
}

/// What an inspected answer teaches the controls: session marks from finding categories,
/// and, for list answers, filtering for this client and pinning. Returns replacement bytes
/// when the list was filtered.
pub(super) fn learn_answer(
    state: &State,
    live: &Live,
    who: &Who,
    method: Option<&str>,
    categories: &[&str],
    bytes: &[u8],
) -> Option<Vec<u8>> {
    let g = &live.gateway;
    let rt = &state.proxy.runtime;
    let caller = who.caller();
    let marks = g.finding_marks(categories.iter().copied());
    rt.sessions
        .mark(&who.session_key, marks.iter().map(String::as_str));
    g.count_answer(rt, &caller, bytes.len());
    let (out, removed) = g.filter_list(rt, &caller, method?, bytes)?;
    if let Some(a) = &state.proxy.audit {
        let by = |why: &str| -> Vec<&str> {
            removed
                .iter()
                .filter(|(_, w)| *w == why)
                .map(|(n, _)| n.as_str())
                .collect()
        };
        a.event(
            "filtered",
            who.transport,
            who.origin(),
            json!({
                "method": method,
                "hidden_by_catalog": by("catalog"),
                "changed_since_approval": by("pins"),
                "changed_flagged": by("pins-flagged"),
            }),
        );
    }
    Some(out)
}
