//! The HTTP side of a streamed answer: reads the upstream's SSE body frame by frame, hands
//! each chunk to the exchange's [`AnswerStream`], and sends what it returns as soon as it has
//! it. The client going away drops the receiver, which stops the task and drops the upstream
//! body: that cancels the upstream request.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::sync::mpsc;

use super::respond::{Body, BoxError};
use crate::exchange::{AnswerStream, Exchange, StreamEnd, Who};

/// The body to send the client: the inspected events; when the stream was cut, the JSON-RPC
/// error event for the request it answers ([`AnswerStream::cut_events`]), or for a stream
/// that answers no request an error (the connection or stream is reset, so the client
/// discards the event in progress).
pub(super) fn inspected(
    exchange: Arc<Exchange>,
    who: Who,
    mut upstream: Incoming,
    mut stream: AnswerStream,
) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, BoxError>>(16);
    tokio::spawn(async move {
        while let Some(frame) = upstream.frame().await {
            let Ok(frame) = frame else {
                exchange.upstream_failed(&who, "upstream stream broke off");
                let _ = tx.send(Err("upstream stream broke off".into())).await;
                return;
            };
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            let (out, end) = stream.feed(chunk).await;
            if !out.is_empty() && tx.send(Ok(Frame::data(Bytes::from(out)))).await.is_err() {
                return; // client gone
            }
            if let Some(end) = end {
                cut(&tx, stream.cut_events(), end).await;
                return;
            }
        }
        if let Some(end) = stream.finish() {
            cut(&tx, stream.cut_events(), end).await;
        }
    });
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    StreamBody::new(frames).boxed()
}

/// Ends a stream that was cut: with the request's JSON-RPC error event and a clean end when
/// it answers a request, else with an error (the connection or stream is reset).
async fn cut(tx: &mpsc::Sender<Result<Frame<Bytes>, BoxError>>, events: Vec<u8>, end: StreamEnd) {
    if events.is_empty() {
        let _ = tx.send(Err(why(end).into())).await;
    } else {
        let _ = tx.send(Ok(Frame::data(Bytes::from(events)))).await;
    }
}

fn why(end: StreamEnd) -> &'static str {
    match end {
        StreamEnd::Abort => "event blocked in an oversized stream",
        StreamEnd::Unavailable => "inspection unavailable",
    }
}
