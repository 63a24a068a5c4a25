//! The inspection step: one message through the engine (on this thread when it is small, else
//! on the worker pool in its client's turn), with its audit row and metrics.

use std::time::Instant;

use bytes::Bytes;
use sluice_engine::mcp::{JsonRpcId, MessageInfo};
use sluice_engine::verdict::error_response;
use sluice_engine::{Direction, InspectError, Verdict};

use super::{Exchange, Reply, ReplyKind, Who};
use crate::live::Live;

/// What the engine and the policy made of one message.
pub(super) enum Decided {
    /// Send these bytes: the original, a redacted copy, or (failing open) the uninspected
    /// original.
    Pass { bytes: Bytes, redacted: bool },
    /// Do not send; in its place the JSON-RPC error, or nothing for a notification.
    Blocked(Option<Vec<u8>>),
    /// Not inspectable, and the policy fails closed: the JSON-RPC code and why.
    Failed { code: i64, message: String },
    /// The worker pool is gone or saturated.
    Unavailable,
}

pub(super) struct Inspected {
    pub decided: Decided,
    /// The envelope of each message (one, or one per batch element); empty when the message
    /// was not parsed.
    pub messages: Vec<MessageInfo>,
    /// Rules that found something, each once.
    pub rule_ids: Vec<String>,
    /// Their categories, each once (for session marks).
    pub categories: Vec<&'static str>,
    /// The JSON pointers of the findings: a name a rule matched is withheld from
    /// audit rows ([`crate::audit::Matched`]).
    pub pointers: Vec<String>,
}

impl Inspected {
    /// The method of the first message, else `hint`.
    pub fn method(&self, hint: Option<&str>) -> Option<String> {
        self.messages
            .first()
            .and_then(|m| m.method.clone())
            .or(hint.map(str::to_owned))
    }
}

impl Exchange {
    /// Inspects `bytes` sent in `dir` on the pool; writes the audit row and counts it.
    pub(super) async fn inspect(
        &self,
        live: &Live,
        who: &Who,
        bytes: Bytes,
        dir: Direction,
        method_hint: Option<String>,
    ) -> Inspected {
        let policy = &live.policy;
        let t = Instant::now();
        let size = bytes.len();
        let res = live
            .pool
            .inspect_for(
                who.scan_client(),
                bytes.clone(),
                dir,
                method_hint,
                policy.clone(),
            )
            .await;
        self.metrics.inspect_latency.observe(t.elapsed());
        let mut out = Inspected {
            decided: Decided::Unavailable,
            messages: Vec::new(),
            rule_ids: Vec::new(),
            categories: Vec::new(),
            pointers: Vec::new(),
        };
        let verdict_label = match &res {
            Ok(Ok(i)) => i.verdict.name(),
            Ok(Err(_)) => "error",
            Err(_) => "unavailable",
        };
        self.metrics
            .messages
            .inc_static([dir.as_str(), verdict_label]);
        let transport = who.transport.as_str();
        match res {
            Err(_) => {}
            Ok(Err(e)) => {
                let fail_open = policy.fail_open && e.may_fail_open();
                if let Some(a) = &self.audit {
                    a.error(
                        transport,
                        who.origin(),
                        dir,
                        size,
                        &e.to_string(),
                        fail_open,
                    );
                }
                out.decided = if fail_open {
                    Decided::Pass {
                        bytes,
                        redacted: false,
                    }
                } else {
                    Decided::Failed {
                        code: e.jsonrpc_code(),
                        message: format!("sluice could not inspect the message: {e}"),
                    }
                };
            }
            Ok(Ok(insp)) => {
                if let Some(a) = &self.audit {
                    a.record(transport, who.origin(), dir, size, t.elapsed(), &insp);
                }
                for f in &insp.findings {
                    self.metrics.findings.inc([&f.rule_id, f.action.as_str()]);
                    if !out.rule_ids.contains(&f.rule_id) {
                        out.rule_ids.push(f.rule_id.clone());
                    }
                }
                out.categories = categories(&insp.findings);
                out.pointers = pointers(&insp.findings);
                out.decided = match insp.verdict {
                    Verdict::Forward => Decided::Pass {
                        bytes,
                        redacted: false,
                    },
                    Verdict::Redacted(b) => Decided::Pass {
                        bytes: Bytes::from(b),
                        redacted: true,
                    },
                    Verdict::Block { response } => Decided::Blocked(response),
                };
                out.messages = insp.messages;
            }
        }
        out
    }
}

impl Exchange {
    /// A message over the size limit, refused before inspection (never forwarded, even when
    /// the policy fails open: it was not scanned at all). Audits it and returns the error to
    /// answer a client's request with.
    pub fn oversized(&self, who: &Who, dir: Direction, size: usize, limit: usize) -> Reply {
        self.metrics.messages.inc_static([dir.as_str(), "error"]);
        let e = InspectError::TooLarge { size, limit };
        if let Some(a) = &self.audit {
            a.error(
                who.transport.as_str(),
                who.origin(),
                dir,
                size,
                &e.to_string(),
                false,
            );
        }
        let message = format!("sluice could not inspect the message: {e}");
        Reply {
            kind: ReplyKind::Uninspectable,
            body: error_response(&JsonRpcId::Null, e.jsonrpc_code(), &message, &[]).into_bytes(),
        }
    }
}

/// The JSON pointers of `findings`, in the order found.
pub(super) fn pointers(findings: &[sluice_engine::Finding]) -> Vec<String> {
    findings.iter().map(|f| f.pointer.clone()).collect()
}

/// The categories of `findings`, each once, in the order found (for session marks).
pub(super) fn categories(findings: &[sluice_engine::Finding]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for f in findings {
        if !out.contains(&f.category.as_str()) {
            out.push(f.category.as_str());
        }
    }
    out
}
