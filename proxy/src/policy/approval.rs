//! Human approval: a held call waits here, nothing forwarded, until an operator allows or
//! denies it through the admin API (`sluice approvals`), or its time runs out (denied).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::oneshot;

/// What the operator sees of a held call. The arguments are the ones sluice would forward
/// (after redaction), so the approver decides on what would really go out.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    /// The queue's number for the call, from 1 (`POST /approvals/ID/allow`).
    pub id: u64,
    /// When it started waiting (RFC 3339, UTC).
    pub since: String,
    /// The authenticated client, if any.
    pub client: Option<String>,
    /// The request's `Mcp-Session-Id`, if any.
    pub session: Option<String>,
    /// The upstream's URL.
    pub upstream: String,
    /// The tool called.
    pub tool: String,
    /// Why it is held: `tool` or the rule ids that matched.
    pub reason: String,
    /// The call's arguments as they would be forwarded.
    pub arguments: serde_json::Value,
}

/// How a held call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// An operator allowed it: it is forwarded.
    Allow,
    /// An operator denied it.
    Deny,
    /// Nobody decided in time.
    Timeout,
    /// The queue was full.
    Overflow,
}

/// The calls waiting for a decision, by id.
#[derive(Default)]
pub struct Queue {
    next: AtomicU64,
    waiting: Mutex<BTreeMap<u64, (Held, oneshot::Sender<Decision>)>>,
}

impl Queue {
    /// Holds the call until decided or `timeout`; at most `max_pending` wait at once.
    pub async fn hold(
        &self,
        mut held: Held,
        timeout: Duration,
        max_pending: usize,
    ) -> (u64, Decision) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        held.id = id;
        held.since = crate::audit::rfc3339(SystemTime::now());
        let (tx, rx) = oneshot::channel();
        {
            let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            if w.len() >= max_pending {
                return (id, Decision::Overflow);
            }
            w.insert(id, (held, tx));
        }
        // Removes the entry however this future ends, the client hanging up included.
        struct Leave<'a>(&'a Queue, u64);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                let mut w = self.0.waiting.lock().unwrap_or_else(|e| e.into_inner());
                w.remove(&self.1);
            }
        }
        let _leave = Leave(self, id);
        let decision = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(d)) => d,
            Ok(Err(_)) => Decision::Deny,
            Err(_) => Decision::Timeout,
        };
        (id, decision)
    }

    /// The calls waiting now, oldest first.
    pub fn list(&self) -> Vec<Held> {
        let w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        w.values().map(|(h, _)| h.clone()).collect()
    }

    /// How many calls wait.
    pub fn len(&self) -> usize {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no call waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides a waiting call; the held call's description when it was waiting.
    pub fn decide(&self, id: u64, decision: Decision) -> Option<Held> {
        let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let (held, tx) = w.remove(&id)?;
        let _ = tx.send(decision);
        Some(held)
    }
}

/// The approval control: a `[[tool]]` entry with `approve = true` holds the call for a human
/// once every other control has let it through.
pub struct ApprovalStep;

impl super::Control for ApprovalStep {
    fn kind(&self) -> super::ControlKind {
        super::ControlKind::Approval
    }

    fn check<'a>(
        &'a self,
        _g: &'a super::Gateway,
        _rt: &'a super::Runtime,
        call: &'a super::Call<'a>,
    ) -> super::control::StepFuture<'a> {
        let step = match call.tool() {
            Some(tool) if call.policies.iter().any(|p| p.approve) => {
                super::Step::Hold(super::Hold {
                    tool: tool.to_string(),
                    arguments: call.arguments().cloned().unwrap_or(serde_json::Value::Null),
                    reason: "tool".into(),
                })
            }
            _ => super::Step::Pass,
        };
        super::control::ready(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn held() -> Held {
        Held {
            id: 0,
            since: String::new(),
            client: Some("alice".into()),
            session: None,
            upstream: "/mcp".into(),
            tool: "deploy".into(),
            reason: "tool".into(),
            arguments: serde_json::json!({}),
        }
    }

    #[tokio::test]
    async fn calls_wait_for_a_decision_or_time_out() {
        let q = Arc::new(Queue::default());
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.hold(held(), Duration::from_secs(10), 8).await });
        while q.is_empty() {
            tokio::task::yield_now().await;
        }
        let id = q.list()[0].id;
        assert_eq!(q.decide(id, Decision::Allow).unwrap().tool, "deploy");
        assert_eq!(waiter.await.unwrap(), (id, Decision::Allow));
        assert!(q.is_empty());
        assert!(q.decide(id, Decision::Deny).is_none());
        let (_, d) = q.hold(held(), Duration::from_millis(20), 8).await;
        assert_eq!(d, Decision::Timeout);
        assert!(q.is_empty());
        let (_, d) = q.hold(held(), Duration::from_millis(20), 0).await;
        assert_eq!(d, Decision::Overflow);
    }
}
