//! An upstream event stream, inspected event by event on the worker pool and sent on as soon
//! as each event is decided. The client going away drops the receiver, which stops the task
//! and drops the upstream body: that cancels the upstream request.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use sluice_engine::sse::{EventOutcome, Flow, SseInspector};
use sluice_engine::Direction;
use tokio::sync::mpsc;

use super::handle::Who;
use super::respond::{Body, BoxError};
use super::{gate, State};
use crate::live::Live;

pub(super) struct Stream {
    /// The rules, policy and controls the request started with.
    pub live: Arc<Live>,
    pub upstream: usize,
    pub method_hint: Option<String>,
    pub endpoint_rewrites: Vec<(String, String)>,
    pub who: Who,
}

pub(super) fn inspected(state: Arc<State>, mut upstream: Incoming, mut s: Stream) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, BoxError>>(16);
    tokio::spawn(async move {
        let p = &state.proxy;
        let learn_tools = s.method_hint.as_deref() == Some("tools/list");
        let list_method = s
            .method_hint
            .clone()
            .filter(|m| crate::policy::catalog::Kind::of_list(m).is_some());
        let mut inspector = SseInspector::new(Direction::ServerToClient, p.limits.max_event)
            .with_method_hint(s.method_hint.clone());
        for (from, to) in std::mem::take(&mut s.endpoint_rewrites) {
            inspector = inspector.with_endpoint_rewrite(from, to);
        }
        let mut sse = Some(inspector);
        // A tools/list answer as the upstream sent it, to tell which tools the engine took out.
        let mut raw: Vec<u8> = Vec::new();
        while let Some(frame) = upstream.frame().await {
            let Ok(frame) = frame else {
                let _ = tx.send(Err("upstream stream broke off".into())).await;
                return;
            };
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            let Some(mut inspector) = sse.take() else {
                return;
            };
            if learn_tools && raw.len() + chunk.len() <= p.limits.max_body {
                raw.extend_from_slice(&chunk);
            }
            let policy = s.live.policy.clone();
            let job = s.live.pool.run(move |insp| {
                let (mut out, mut decisions) = (Vec::new(), Vec::new());
                let flow = inspector.feed(&chunk, insp, &policy, &mut out, &mut decisions);
                (inspector, out, decisions, flow)
            });
            let Ok((inspector, out, decisions, flow)) = job.await else {
                let _ = tx.send(Err("inspection unavailable".into())).await;
                return;
            };
            sse = Some(inspector);
            let mut categories: Vec<&'static str> = Vec::new();
            for d in &decisions {
                if let EventOutcome::Inspected(i) = &d.outcome {
                    p.metrics
                        .messages
                        .inc(&[Direction::ServerToClient.as_str(), i.verdict.name()]);
                    for f in &i.findings {
                        p.metrics.findings.inc(&[&f.rule_id, f.action.as_str()]);
                        if !categories.contains(&f.category.as_str()) {
                            categories.push(f.category.as_str());
                        }
                    }
                }
            }
            if let Some(a) = &p.audit {
                for d in &decisions {
                    if let EventOutcome::Inspected(i) = &d.outcome {
                        let transport = if s.who.transport == "https" {
                            "https-sse"
                        } else {
                            "http-sse"
                        };
                        a.record(
                            transport,
                            s.who.origin(),
                            Direction::ServerToClient,
                            d.data_bytes,
                            Duration::ZERO,
                            i,
                        );
                    }
                }
            }
            if learn_tools {
                let original = event_data(&raw)
                    .into_iter()
                    .rev()
                    .find(|d| has_tools(d))
                    .unwrap_or_default();
                for data in event_data(&out) {
                    state.params.learn(s.upstream, &data);
                    if has_tools(&data) {
                        p.runtime
                            .note_tool_list(&s.who.upstream_url, &original, &data);
                    }
                }
            }
            let out = if !categories.is_empty() || list_method.is_some() {
                gated_events(&state, &s, list_method.as_deref(), &categories, out)
            } else {
                out
            };
            if !out.is_empty() && tx.send(Ok(Frame::data(Bytes::from(out)))).await.is_err() {
                return; // client gone
            }
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Abort) | Err(_) => {
                    let _ = tx
                        .send(Err("event blocked in an oversized stream".into()))
                        .await;
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    StreamBody::new(stream).boxed()
}

/// Lets the controls learn from the forwarded events (session marks) and filter list answers
/// for this client; a filtered event is re-emitted with its other fields kept.
fn gated_events(
    state: &State,
    s: &Stream,
    list_method: Option<&str>,
    categories: &[&'static str],
    out: Vec<u8>,
) -> Vec<u8> {
    let Ok(text) = String::from_utf8(out) else {
        return Vec::new(); // the inspector emits UTF-8 only; anything else is not sent
    };
    let mut result = String::with_capacity(text.len());
    let mut first = true;
    for event in events(&text) {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        let cats: &[&'static str] = if first { categories } else { &[] };
        first = false;
        let replaced = if data.is_empty() {
            None
        } else {
            gate::learn_answer(
                state,
                &s.live,
                &s.who,
                list_method,
                cats,
                data.join("\n").as_bytes(),
            )
        };
        match replaced {
            Some(new) => {
                for line in event.lines() {
                    if !line.starts_with("data:") && !line.is_empty() {
                        result.push_str(line);
                        result.push('\n');
                    }
                }
                result.push_str("data: ");
                result.push_str(&String::from_utf8_lossy(&new));
                result.push_str("\n\n");
            }
            None => result.push_str(event),
        }
    }
    result.into_bytes()
}

fn has_tools(data: &[u8]) -> bool {
    memchr::memmem::find(data, b"\"tools\"").is_some()
}

/// Whole events with their terminating blank line, `\n` or `\r\n` line ends alike.
fn events(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        pos += line.len();
        if line == "\n" || line == "\r\n" {
            out.push(&text[start..pos]);
            start = pos;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// The `data` of each whole event in `out` (what was forwarded), for learning tool schemas.
/// `out` holds whole events only: the inspector emits an event once it has decided it.
fn event_data(out: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(out);
    let mut events = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            events.extend(cur.take());
        } else if let Some(d) = line.strip_prefix("data:") {
            let d = d.strip_prefix(' ').unwrap_or(d);
            let buf = cur.get_or_insert_with(Vec::new);
            if !buf.is_empty() {
                buf.push(b'\n');
            }
            buf.extend_from_slice(d.as_bytes());
        }
    }
    events.extend(cur);
    events
}
