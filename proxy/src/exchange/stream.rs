//! An upstream answer streamed as server-sent events: each chunk is inspected on the worker
//! pool and each event sent on as soon as it is decided, with what it teaches the controls.
//! The engine frames the events and says where each one's bytes are; nothing is split again
//! here.

use std::sync::Arc;
use std::time::Duration;

use sluice_engine::sse::{replace_data, EventDecision, EventOutcome, Flow, SseInspector};
use sluice_engine::{Direction, Verdict};

use sluice_engine::verdict::{error_response, BLOCKED_CODE};

use super::{Asked, Exchange, StreamEnd, Who, UPSTREAM_ERROR};
use crate::live::Live;

/// JSON-RPC "internal error" (JSON-RPC 2.0 section 5.1): the answer could not be inspected.
const UNINSPECTED: i64 = -32603;
const CUT_FINDING: &str = "sluice blocked the rest of this answer: an event larger than \
     max_event had a finding, and part of it had been sent";
const CUT_UPSTREAM: &str =
    "sluice cut this answer: the upstream ended it inside an event larger than max_event";

/// Whether `out` (ending with `last`) ends at an event boundary: a blank line.
fn ends_event(out: &[u8], last: u8) -> bool {
    last == b'\n' && (out.ends_with(b"\n\n") || out.ends_with(b"\r\n\r\n"))
        || last == b'\r' && out.ends_with(b"\r\r")
}

/// Maps the data of a legacy `endpoint` event (the URL where the client is to POST) to where
/// the front end serves it; `None` keeps it.
pub type EndpointRewrite = Box<dyn Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// One streamed answer in progress. Owned by the task that pumps the stream; dropping it
/// drops the inspection state.
pub struct AnswerStream {
    exchange: Arc<Exchange>,
    live: Arc<Live>,
    who: Who,
    asked: Asked,
    /// `None` while a chunk is on the pool, and after the stream was aborted.
    inspector: Option<SseInspector>,
    endpoint: Option<EndpointRewrite>,
    /// Whether the bytes sent so far end inside an event (an oversized one is sent in part).
    mid_event: bool,
    /// Why the stream was cut, once it was: the JSON-RPC error code and message for the
    /// request it answers.
    cut: Option<(i64, &'static str)>,
}

impl Exchange {
    /// Starts inspecting a streamed answer to `asked`, under the rules and controls `live`
    /// that its request started with.
    pub fn stream(self: &Arc<Self>, live: Arc<Live>, who: Who, asked: Asked) -> AnswerStream {
        let inspector = SseInspector::new(Direction::ServerToClient, self.max_event)
            .with_method_hint(asked.method.clone());
        AnswerStream {
            exchange: self.clone(),
            live,
            who,
            asked,
            inspector: Some(inspector),
            endpoint: None,
            mid_event: false,
            cut: None,
        }
    }
}

impl AnswerStream {
    /// Rewrites the data of `endpoint` events (the legacy HTTP+SSE transport) with `f`.
    pub fn with_endpoint_rewrite(mut self, f: EndpointRewrite) -> Self {
        self.endpoint = Some(f);
        self
    }

    /// Inspects the next chunk of the body. Returns the bytes to send now (whole decided
    /// events, and the part of an oversized event that is safe to send), and whether the
    /// stream must end here without a clean close.
    pub async fn feed(&mut self, chunk: bytes::Bytes) -> (Vec<u8>, Option<StreamEnd>) {
        let Some(mut inspector) = self.inspector.take() else {
            return (Vec::new(), Some(StreamEnd::Abort));
        };
        let policy = self.live.policy.clone();
        let (client, bytes) = (self.who.scan_client(), chunk.len());
        let job = self.live.pool.run_for(client, bytes, move |insp| {
            let (mut out, mut decisions) = (Vec::new(), Vec::new());
            let flow = inspector.feed(&chunk, insp, &policy, &mut out, &mut decisions);
            (inspector, out, decisions, flow)
        });
        let Ok((inspector, out, decisions, flow)) = job.await else {
            self.cut = Some((
                UNINSPECTED,
                "sluice could not inspect the rest of this answer",
            ));
            return (Vec::new(), Some(StreamEnd::Unavailable));
        };
        let out = self.decided(out, &decisions);
        if let Some(&last) = out.last() {
            self.mid_event = !ends_event(&out, last);
        }
        match flow {
            Ok(Flow::Continue) => {
                self.inspector = Some(inspector);
                (out, None)
            }
            Ok(Flow::Abort) => {
                self.cut = Some((BLOCKED_CODE, CUT_FINDING));
                (out, Some(StreamEnd::Abort))
            }
            Err(_) => {
                self.cut = Some((
                    UNINSPECTED,
                    "sluice could not inspect the rest of this answer",
                ));
                (out, Some(StreamEnd::Abort))
            }
        }
    }

    /// What to send the client after the stream was cut, before a clean end: when part of an
    /// event went out, the rest of a line that makes that event's data invalid JSON and the
    /// blank line that ends it (SSE has no way to take back an event's data lines, so the
    /// client dispatches it, and fails to parse it), then an event with the JSON-RPC error
    /// for the request this stream answers. Empty when it answers no request (a GET stream):
    /// then the connection is reset instead, and the client discards any event in progress.
    pub fn cut_events(&self) -> Vec<u8> {
        let (Some(id), Some((code, message))) = (&self.asked.id, self.cut) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if self.mid_event {
            out.extend_from_slice(b"\ndata: (cut off by sluice)\n\n");
        }
        out.extend_from_slice(b"event: message\ndata: ");
        out.extend_from_slice(error_response(id, code, message, &[]).as_bytes());
        out.extend_from_slice(b"\n\n");
        out
    }

    /// The body ended. An event over the size cap that was cut off gets its decision and
    /// audit row here, and the stream must end without a clean close (`Some(Abort)`).
    pub fn finish(&mut self) -> Option<StreamEnd> {
        let mut inspector = self.inspector.take()?;
        let mut decisions = Vec::new();
        let flow = inspector.finish(&mut decisions);
        for d in &decisions {
            self.account(d);
        }
        if flow == Flow::Abort {
            self.cut = Some((UPSTREAM_ERROR, CUT_UPSTREAM));
        }
        (flow == Flow::Abort).then_some(StreamEnd::Abort)
    }

    /// Audits and counts each decided event, lets the controls learn from it, and returns
    /// `out` with the events they changed replaced.
    fn decided(&self, out: Vec<u8>, decisions: &[EventDecision]) -> Vec<u8> {
        let mut replaced: Vec<(std::ops::Range<usize>, Vec<u8>)> = Vec::new();
        for d in decisions {
            self.account(d);
            if d.out.is_empty() {
                continue;
            }
            if let Some(new) = self.replacement(d, &out[d.out.clone()]) {
                replaced.push((d.out.clone(), new));
            }
        }
        if replaced.is_empty() {
            return out;
        }
        let mut result = Vec::with_capacity(out.len());
        let mut at = 0;
        for (range, new) in replaced {
            result.extend_from_slice(&out[at..range.start]);
            result.extend_from_slice(&new);
            at = range.end;
        }
        result.extend_from_slice(&out[at..]);
        result
    }

    /// The event's new bytes when the front end maps its endpoint or the controls filter it.
    fn replacement(&self, d: &EventDecision, event: &[u8]) -> Option<Vec<u8>> {
        let data = match &d.outcome {
            EventOutcome::Passed if d.event_type.as_deref() == Some("endpoint") => {
                self.endpoint.as_ref()?(&d.data)?
            }
            EventOutcome::Inspected(i) => {
                let original = match &i.verdict {
                    Verdict::Forward => None,
                    Verdict::Redacted(_) => Some(&d.data[..]),
                    Verdict::Block { .. } => return None,
                };
                let method = i
                    .info()
                    .and_then(|m| m.method.clone())
                    .or(self.asked.method.clone());
                let categories = super::inspect::categories(&i.findings);
                let pointers = super::inspect::pointers(&i.findings);
                let found = super::lists::Found {
                    categories: &categories,
                    pointers: &pointers,
                };
                let learnt = self.exchange.learn(
                    &self.live,
                    &self.who,
                    method.as_deref(),
                    found,
                    original,
                    d.forwarded_data()?,
                );
                match learnt {
                    Ok(filtered) => filtered?,
                    // Not sent unfiltered: the event carries the error in its place.
                    Err(_) => {
                        let dir = Direction::ServerToClient;
                        let id = self.asked.id.as_ref();
                        self.exchange
                            .unreadable(&self.who, dir, d.data_bytes, id)
                            .body
                    }
                }
            }
            _ => return None,
        };
        let mut new = Vec::with_capacity(event.len());
        replace_data(event, Some(&data), &mut new);
        Some(new)
    }

    /// The audit row and metrics of one event.
    fn account(&self, d: &EventDecision) {
        let x = &self.exchange;
        let dir = Direction::ServerToClient;
        let transport = self.who.transport.sse_label();
        let origin = self.who.origin();
        match &d.outcome {
            EventOutcome::Passed => {}
            EventOutcome::Inspected(i) => {
                x.metrics
                    .messages
                    .inc_static([dir.as_str(), i.verdict.name()]);
                for f in &i.findings {
                    x.metrics.findings.inc([&f.rule_id, f.action.as_str()]);
                }
                if let Some(a) = &x.audit {
                    a.record(transport, origin, dir, d.data_bytes, Duration::ZERO, i);
                }
            }
            EventOutcome::Failed(e) => {
                x.metrics.messages.inc_static([dir.as_str(), "error"]);
                if let Some(a) = &x.audit {
                    let forwarded = self.live.policy.fail_open && e.may_fail_open();
                    a.error(
                        transport,
                        origin,
                        dir,
                        d.data_bytes,
                        &e.to_string(),
                        forwarded,
                    );
                }
            }
            EventOutcome::Streamed { findings, aborted } => {
                for f in findings {
                    x.metrics.findings.inc([&f.rule_id, f.action.as_str()]);
                }
                if let Some(a) = &x.audit {
                    a.streamed(transport, origin, dir, d.data_bytes, findings, *aborted);
                }
            }
        }
    }
}
