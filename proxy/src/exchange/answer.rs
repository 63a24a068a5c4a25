//! An upstream's answer read whole: inspected with the request's method as hint, then what it
//! teaches the controls.

use bytes::Bytes;
use serde_json::json;
use sluice_engine::mcp::JsonRpcId;
use sluice_engine::verdict::error_response;
use sluice_engine::{Direction, Scope};

use super::inspect::Decided;
use super::lists::Found;
use super::request::unavailable;
use super::{Answered, Asked, Exchange, Reply, ReplyKind, Who, UPSTREAM_ERROR};
use crate::live::Live;

impl Exchange {
    /// A JSON-RPC answer (or batch of answers) to `asked`. Whitespace alone (a 202's empty
    /// body) passes as it is.
    pub async fn answer(&self, live: &Live, who: &Who, asked: &Asked, bytes: Bytes) -> Answered {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Answered::Send(bytes);
        }
        let inspected = self
            .inspect(
                live,
                who,
                bytes.clone(),
                Direction::ServerToClient,
                asked.method.clone(),
            )
            .await;
        let method = inspected.method(asked.method.as_deref());
        match inspected.decided {
            Decided::Pass {
                bytes: forwarded,
                redacted,
            } => {
                let original = redacted.then_some(&bytes[..]);
                let learnt = self.learn(
                    live,
                    who,
                    method.as_deref(),
                    Found {
                        categories: &inspected.categories,
                        pointers: &inspected.pointers,
                    },
                    original,
                    &forwarded,
                );
                match learnt {
                    Ok(filtered) => Answered::Send(filtered.map_or(forwarded, Bytes::from)),
                    Err(_) => Answered::Reply(self.unreadable(
                        who,
                        Direction::ServerToClient,
                        forwarded.len(),
                        asked.id.as_ref(),
                    )),
                }
            }
            Decided::Blocked(err) => Answered::Send(Bytes::from(err.unwrap_or_default())),
            Decided::Failed { .. } => Answered::Reply(Reply {
                kind: ReplyKind::AnswerUninspectable,
                body: error_response(
                    &asked.id.clone().unwrap_or(JsonRpcId::Null),
                    UPSTREAM_ERROR,
                    "upstream answer could not be inspected",
                    &[],
                )
                .into_bytes(),
            }),
            Decided::Unavailable => Answered::Reply(unavailable()),
        }
    }

    /// An upstream answer that need not be JSON-RPC, inspected as text: an error answer of
    /// any type (`401 {"error":"invalid_token"}`, an HTML 500 page with a stack trace) or a
    /// success of a type other than JSON and SSE (the legacy transport's `202 Accepted`; a
    /// `text/plain` body some clients parse as JSON-RPC anyway). It passes as it is, for the
    /// client may need it, unless a rule that blocks or redacts finds something in it: then it
    /// is withheld and replaced by a JSON-RPC error naming the rules.
    pub async fn opaque_answer(&self, live: &Live, who: &Who, bytes: Bytes) -> Answered {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Answered::Send(bytes);
        }
        let policy = live.policy.clone();
        let text = bytes.clone();
        let job = live
            .pool
            .run_for(who.scan_client(), bytes.len(), move |insp| {
                insp.acting_rules_in_text(&text, Scope::Results, &policy)
                    .unwrap_or_else(|_| vec!["(inspection failed)".to_string()])
                // fail closed
            });
        let Ok(rules) = job.await else {
            return Answered::Reply(unavailable());
        };
        if rules.is_empty() {
            return Answered::Send(bytes);
        }
        if let Some(a) = &self.audit {
            let why = format!("upstream answer withheld: it matched {}", rules.join(", "));
            a.error(
                who.transport.as_str(),
                who.origin(),
                Direction::ServerToClient,
                bytes.len(),
                &why,
                false,
            );
        }
        let ids: Vec<&str> = rules.iter().map(String::as_str).collect();
        Answered::Reply(Reply {
            kind: ReplyKind::Withheld,
            body: error_response(
                &JsonRpcId::Null,
                UPSTREAM_ERROR,
                "upstream answer withheld by sluice",
                &ids,
            )
            .into_bytes(),
        })
    }

    /// Logs and audits an upstream that failed (refused, timed out, broke off), so that
    /// every failure leaves a row.
    pub fn upstream_failed(&self, who: &Who, why: &str) {
        // The route's name, not its URL: a URL may carry credentials.
        let upstream = who.upstream_name.as_str();
        tracing::warn!(upstream, transport = who.transport.as_str(), "{why}");
        self.audit_event(
            who,
            "upstream",
            json!({"outcome": "failed", "upstream": upstream, "reason": why}),
        );
    }
}
