//! A client's message: traffic limits, inspection, the gateway controls, a hold for approval,
//! session marks.

use bytes::Bytes;
use serde_json::{json, Value};
use sluice_engine::mcp::JsonRpcId;
use sluice_engine::verdict::error_response;
use sluice_engine::Direction;

use super::inspect::{Decided, Inspected};
use super::{Asked, Exchange, Reply, ReplyKind, Sent, Who};
use crate::audit::{Matched, WITHHELD};
use crate::live::Live;
use crate::policy::approval::{Decision, Held};
use crate::policy::{Admitted, ControlKind, Denial, Hold};

impl Exchange {
    /// Runs a client's message through every step. The bytes are the message as framed by the
    /// transport (one JSON-RPC message or a batch).
    pub async fn request(&self, live: &Live, who: &Who, bytes: Bytes) -> Sent {
        // No decision without its audit row: while the trail cannot be written, nothing goes.
        if !self.audit_writable() {
            return Sent::Reply(audit_unwritable(&bytes));
        }
        let gateway = &live.gateway;
        if let Err(d) = gateway.admit_traffic(&self.runtime, &who.caller(), bytes.len()) {
            // Refused before the engine parsed it: the id is read on its own.
            let id = super::Pending::message_id(&bytes).unwrap_or(JsonRpcId::Null);
            return Sent::Reply(self.refuse(who, &id, Named::default(), &d));
        }
        // A reference, read again only when inspection fails, for the id of its error.
        let sent = bytes.clone();
        let mut inspected = self
            .inspect(live, who, bytes, Direction::ClientToServer, None)
            .await;
        let first = inspected.messages.first();
        // A name a rule matched is matched text: the answer's audit row (which shows its
        // request's method) and the answer's inspection get it withheld too. No MCP method
        // or tool name that the answer's handling depends on is one a rule matches.
        let matched = Matched::in_message(inspected.pointers.iter().map(String::as_str), 0);
        let asked = Asked {
            method: matched
                .method(first.and_then(|m| m.method.as_deref()))
                .map(str::to_string),
            tool: matched
                .tool(first.and_then(|m| m.tool.as_deref()))
                .map(str::to_string),
            id: first.and_then(|m| m.id.clone()),
        };
        match std::mem::replace(&mut inspected.decided, Decided::Unavailable) {
            Decided::Pass { bytes, redacted } => {
                let admitted = match self.admit(live, who, &bytes, &inspected).await {
                    Ok(a) => a,
                    Err(reply) => return Sent::Reply(reply),
                };
                if let Some(hold) = admitted.hold {
                    let id = asked.id.clone().unwrap_or(JsonRpcId::Null);
                    if let Err(reply) = self.hold(live, who, &id, hold).await {
                        return Sent::Reply(reply);
                    }
                }
                self.runtime
                    .sessions
                    .mark(&who.session_key, admitted.marks.iter().map(String::as_str));
                // This message's row, or another's meanwhile, could not be written.
                if !self.audit_writable() {
                    return Sent::Reply(audit_unwritable(&bytes));
                }
                Sent::Forward {
                    bytes,
                    redacted,
                    asked,
                }
            }
            Decided::Blocked(Some(body)) => Sent::Reply(Reply {
                kind: ReplyKind::Blocked,
                body,
            }),
            Decided::Blocked(None) => Sent::Drop,
            Decided::Failed { code, message } => {
                // The engine gave up on the message (out of time, too large, malformed past
                // its id): the id alone may still be readable, and the client waits on it.
                let id = super::Pending::message_id(&sent).unwrap_or(JsonRpcId::Null);
                Sent::Reply(Reply {
                    kind: ReplyKind::Uninspectable,
                    body: error_response(&id, code, &message, &[]).into_bytes(),
                })
            }
            Decided::Unavailable => Sent::Reply(unavailable()),
        }
    }

    /// The gateway controls on what would be forwarded: `Ok` with the session marks and an
    /// optional hold, `Err` with the refusal. The message is parsed here only when a control
    /// needs more than the engine's envelope (arguments, resource URIs).
    async fn admit(
        &self,
        live: &Live,
        who: &Who,
        forwarded: &Bytes,
        inspected: &Inspected,
    ) -> Result<Admitted, Reply> {
        let g = &live.gateway;
        let rt = &self.runtime;
        let needs_parse = g.inspects_messages()
            || rt.pins.is_some()
            || rt.has_quarantine()
            || !g.approval_rules().is_empty();
        if !needs_parse {
            return Ok(Admitted::default());
        }
        // The controls must read what the engine read. A message the engine accepted (or let
        // through failing open) that this reader refuses (nesting near the depth limit, a lone
        // surrogate escape) cannot be checked, so it does not go on: fail closed.
        let Ok(parsed) = serde_json::from_slice::<Value>(forwarded) else {
            let id = inspected.messages.first().and_then(|m| m.id.as_ref());
            return Err(self.unreadable(who, Direction::ClientToServer, forwarded.len(), id));
        };
        let messages: Vec<&Value> = match &parsed {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        let caller = who.caller();
        let mut all = Admitted::default();
        let pointers = || inspected.pointers.iter().map(String::as_str);
        for (i, m) in messages.iter().enumerate() {
            let matched = Matched::in_message(pointers(), i);
            match g.admit(rt, &caller, m).await {
                Ok(a) => {
                    all.marks.extend(a.marks);
                    if all.hold.is_none() {
                        all.hold = a.hold.map(|h| withhold_tool(h, matched));
                    }
                }
                Err(d) => {
                    // One refused message refuses its whole batch: half a batch is a state the
                    // client did not ask for.
                    let info = inspected.messages.get(i);
                    let id = match (messages.len(), info.and_then(|m| m.id.clone())) {
                        (1, Some(id)) => id,
                        _ => JsonRpcId::Null,
                    };
                    let named = Named {
                        method: info.and_then(|m| m.method.as_deref()),
                        tool: info.and_then(|m| m.tool.as_deref()),
                        matched,
                    };
                    return Err(self.refuse(who, &id, named, &d));
                }
            }
        }
        // Findings of rules marked for approval hold the call too.
        let held_rules: Vec<&str> = inspected
            .rule_ids
            .iter()
            .filter(|r| g.approval_rules().contains(r))
            .map(String::as_str)
            .collect();
        if all.hold.is_none() && !held_rules.is_empty() {
            let info = inspected.messages.first();
            let m = messages.first().copied().unwrap_or(&Value::Null);
            let matched = Matched::in_message(pointers(), 0);
            let tool = info.and_then(|i| {
                let method = matched.method(i.method.as_deref());
                matched.tool(i.tool.as_deref()).or(method)
            });
            all.hold = Some(Hold {
                tool: tool.unwrap_or_default().to_string(),
                arguments: m
                    .pointer("/params/arguments")
                    .cloned()
                    .unwrap_or(Value::Null),
                reason: format!("rules: {}", held_rules.join(", ")),
            });
        }
        Ok(all)
    }

    /// Holds a call for a human; `Err` with the refusal when denied or not decided in time.
    async fn hold(&self, live: &Live, who: &Who, id: &JsonRpcId, hold: Hold) -> Result<(), Reply> {
        if !self.holds {
            let d = Denial::new(
                ControlKind::Approval,
                "this call needs human approval, which `sluice stdio` cannot ask for (run the server behind `sluice serve` with [admin])".into(),
            );
            let named = Named {
                tool: Some(&hold.tool),
                ..Named::default()
            };
            return Err(self.refuse(who, id, named, &d));
        }
        let cfg = &live.gateway.approval;
        let Hold {
            tool,
            arguments,
            reason,
        } = hold;
        let held = Held {
            id: 0,
            since: String::new(),
            client: who.identity.clone().or(Some(who.client.clone())),
            session: who.session.clone(),
            upstream: who.upstream_name.clone(),
            tool: tool.clone(),
            reason: reason.clone(),
            arguments,
        };
        self.audit_event(who, "held", json!({"tool": tool, "reason": reason}));
        let (approval_id, decision) = self
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
        self.metrics.approvals.inc_static([label]);
        self.audit_event(
            who,
            "approval",
            json!({"approval_id": approval_id, "tool": tool, "decision": label}),
        );
        let message = match decision {
            Decision::Allow => return Ok(()),
            Decision::Timeout => format!(
                "call to `{tool}` was held for approval and not approved within {} s",
                cfg.timeout.as_secs()
            ),
            Decision::Overflow => {
                format!("call to `{tool}` needs approval and the approval queue is full")
            }
            Decision::Deny => format!("call to `{tool}` was denied by an operator"),
        };
        self.metrics
            .denials
            .inc_static([ControlKind::Approval.as_str()]);
        Err(Reply {
            kind: ReplyKind::Denied(ControlKind::Approval),
            body: error_response(
                id,
                -32003,
                &format!("{message} (sluice approval policy)"),
                &[],
            )
            .into_bytes(),
        })
    }

    /// The answer to a refusal by a control: the JSON-RPC error with the request's id,
    /// audited, logged and counted. The log and the row show a name a rule matched, in its
    /// field and in the reason, as [`crate::audit::WITHHELD`].
    pub(super) fn refuse(&self, who: &Who, id: &JsonRpcId, named: Named<'_>, d: &Denial) -> Reply {
        let control = d.control.as_str();
        self.metrics.denials.inc_static([control]);
        let Named {
            method,
            tool,
            matched,
        } = named;
        let reason = matched.scrub(&d.message, method, tool);
        tracing::info!(control, identity = who.identity.as_deref(), reason = %reason, "denied");
        self.audit_event(
            who,
            "denied",
            json!({
                "control": control,
                "reason": reason,
                "method": matched.method(method),
                "tool": matched.tool(tool),
                "retry_after_s": d.retry_after.map(|r| r.as_secs_f64().ceil() as u64),
            }),
        );
        let body = error_response(
            id,
            d.code(),
            &format!("{} (sluice {control} policy)", d.message),
            &[],
        )
        .into_bytes();
        let kind = match d.retry_after {
            Some(wait) => ReplyKind::Limited(d.control, wait),
            None => ReplyKind::Denied(d.control),
        };
        Reply { kind, body }
    }

    pub(super) fn audit_event(&self, who: &Who, kind: &str, fields: Value) {
        if let Some(a) = &self.audit {
            a.event(kind, who.transport.as_str(), who.origin(), fields);
        }
    }

    /// Whether the audit trail (if any) can take rows ([`crate::audit::AuditLog::writable`]).
    fn audit_writable(&self) -> bool {
        self.audit.as_ref().is_none_or(|a| a.writable())
    }
}

/// The method and tool name of a refused message as the engine read them, and which of them
/// a rule matched.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Named<'a> {
    pub method: Option<&'a str>,
    pub tool: Option<&'a str>,
    pub matched: Matched,
}

/// A hold of a call whose method or tool name a rule matched names it [`WITHHELD`]: the
/// name goes to the audit rows and to the approver.
fn withhold_tool(mut hold: Hold, matched: Matched) -> Hold {
    if matched.any() {
        hold.tool = WITHHELD.to_string();
    }
    hold
}

/// The refusal of a request while the audit trail cannot be written (HTTP 503).
fn audit_unwritable(bytes: &[u8]) -> Reply {
    let id = super::Pending::message_id(bytes).unwrap_or(JsonRpcId::Null);
    let message = "sluice cannot write its audit trail; requests are refused until it can";
    Reply {
        kind: ReplyKind::Unavailable,
        body: error_response(&id, -32603, message, &[]).into_bytes(),
    }
}

impl Exchange {
    /// The refusal of a message the gateway controls cannot read, audited as a failure.
    pub(super) fn unreadable(
        &self,
        who: &Who,
        dir: Direction,
        size: usize,
        id: Option<&JsonRpcId>,
    ) -> Reply {
        let why = "the gateway controls could not read the message (JSON nested too deep or \
                   an escape another JSON reader rejects)";
        self.metrics.messages.inc_static([dir.as_str(), "error"]);
        if let Some(a) = &self.audit {
            a.error(who.transport.as_str(), who.origin(), dir, size, why, false);
        }
        let (kind, code) = match dir {
            Direction::ClientToServer => (ReplyKind::Uninspectable, -32600),
            Direction::ServerToClient => (ReplyKind::AnswerUninspectable, super::UPSTREAM_ERROR),
        };
        Reply {
            kind,
            body: error_response(
                id.unwrap_or(&JsonRpcId::Null),
                code,
                &format!("sluice: {why}"),
                &[],
            )
            .into_bytes(),
        }
    }
}

/// The answer when the inspection workers are gone or saturated.
pub(super) fn unavailable() -> Reply {
    Reply {
        kind: ReplyKind::Unavailable,
        body: error_response(&JsonRpcId::Null, -32603, "inspection unavailable", &[]).into_bytes(),
    }
}
