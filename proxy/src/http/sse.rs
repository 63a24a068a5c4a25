//! The HTTP side of a streamed answer: reads the upstream's SSE body frame by frame as the
//! client takes what came before, hands each chunk to the exchange's [`AnswerStream`], and
//! sends what it returns as soon as it has it. No task and no queue of its own: a stream
//! waiting for its next event holds only the two connections' state (memory per open stream
//! is a documented bound), the client's pace is the upstream's, and the client going away
//! drops the upstream body at once, which cancels the upstream request.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};

use super::respond::{Body, BoxError};
use crate::exchange::{AnswerStream, Exchange, StreamEnd, Who};

type Item = Result<Frame<Bytes>, BoxError>;

/// The body to send the client: the inspected events; when the stream was cut, the JSON-RPC
/// error event for the request it answers ([`AnswerStream::cut_events`]), or for a stream
/// that answers no request an error (the connection or stream is reset, so the client
/// discards the event in progress).
pub(super) fn inspected(
    exchange: Arc<Exchange>,
    who: Who,
    upstream: Incoming,
    stream: AnswerStream,
) -> Body {
    let pump = Pump {
        exchange,
        who,
        upstream,
        stream,
        queued: None,
        over: false,
    };
    let frames = futures_util::stream::unfold(pump, Pump::next);
    Unshared(Mutex::new(Box::pin(frames))).boxed()
}

/// A body polled by one connection at a time, made `Sync` (which [`Body`] requires and a
/// Hyperscan stream is not) by a mutex that is never locked: polling has `&mut` access.
struct Unshared<S>(Mutex<Pin<Box<S>>>);

impl<S: Stream<Item = Item> + Send> hyper::body::Body for Unshared<S> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let frames = self.get_mut().0.get_mut();
        frames
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .poll_next(cx)
    }
}

/// One streamed answer between the upstream's body and the client's.
struct Pump {
    exchange: Arc<Exchange>,
    who: Who,
    upstream: Incoming,
    stream: AnswerStream,
    /// The end of a cut stream, sent after the bytes that came with the cut.
    queued: Option<Item>,
    /// Nothing more is read from the upstream.
    over: bool,
}

impl Pump {
    /// The next piece for the client, or `None` at the end of the stream.
    async fn next(mut self) -> Option<(Item, Self)> {
        if let Some(item) = self.queued.take() {
            return Some((item, self));
        }
        if self.over {
            return None;
        }
        loop {
            let Some(frame) = self.upstream.frame().await else {
                self.over = true;
                let end = self.stream.finish()?;
                let item = cut(self.stream.cut_events(), end);
                return Some((item, self));
            };
            let Ok(frame) = frame else {
                self.over = true;
                self.exchange
                    .upstream_failed(&self.who, "upstream stream broke off");
                return Some((Err("upstream stream broke off".into()), self));
            };
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            let (out, end) = self.stream.feed(chunk).await;
            if let Some(end) = end {
                self.over = true;
                let item = cut(self.stream.cut_events(), end);
                if out.is_empty() {
                    return Some((item, self));
                }
                self.queued = Some(item);
            }
            if !out.is_empty() {
                return Some((Ok(Frame::data(Bytes::from(out))), self));
            }
        }
    }
}

/// Ends a stream that was cut: with the request's JSON-RPC error event and a clean end when
/// it answers a request, else with an error (the connection or stream is reset).
fn cut(events: Vec<u8>, end: StreamEnd) -> Item {
    if events.is_empty() {
        Err(why(end).into())
    } else {
        Ok(Frame::data(Bytes::from(events)))
    }
}

fn why(end: StreamEnd) -> &'static str {
    match end {
        StreamEnd::Abort => "event blocked in an oversized stream",
        StreamEnd::Unavailable => "inspection unavailable",
    }
}
