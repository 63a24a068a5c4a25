//! What the exchange decided, for a front end to put on its wire. No transport types here: an
//! HTTP front end maps a [`Reply`]'s kind to a status code, stdio writes its body as a line.

use std::time::Duration;

use bytes::Bytes;

use crate::policy::ControlKind;

/// Why sluice answers in the upstream's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// The engine blocked the message; the body is the JSON-RPC error naming the rules.
    Blocked,
    /// A gateway control refused the message (HTTP 200: the client reads it like a tool
    /// error).
    Denied(ControlKind),
    /// A rate limit or byte budget refused it; retry after the given time (HTTP 429).
    Limited(ControlKind, Duration),
    /// The message could not be inspected and the policy fails closed (HTTP 400).
    Uninspectable,
    /// An upstream answer could not be inspected and was withheld (HTTP 502).
    AnswerUninspectable,
    /// An upstream's error answer had findings and was withheld; the body names the rules
    /// (HTTP: the upstream's status, as JSON).
    Withheld,
    /// The inspection workers are gone or saturated (HTTP 503).
    Unavailable,
}

/// An answer sluice gives in the upstream's place: a JSON-RPC error body and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Why sluice answers (maps to a status code on HTTP).
    pub kind: ReplyKind,
    /// The JSON-RPC error, with the request's id where it is known.
    pub body: Vec<u8>,
}

/// What becomes of a client's message.
#[derive(Debug)]
pub enum Sent {
    /// Send these bytes upstream: the message as it came, or a redacted copy.
    Forward {
        /// The bytes to send.
        bytes: Bytes,
        /// Whether they differ from what the client sent.
        redacted: bool,
        /// What the message asked, for the answer's inspection.
        asked: Asked,
    },
    /// Do not send; answer the client with this.
    Reply(Reply),
    /// Do not send and answer nothing: a blocked notification (HTTP 202).
    Drop,
}

/// What a forwarded request asked, as its answer's inspection needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Asked {
    /// The JSON-RPC method of the (first) message, e.g. `tools/list`.
    pub method: Option<String>,
    /// `params.name` of a `tools/call` or `prompts/get`.
    pub tool: Option<String>,
    /// The JSON-RPC id of the (first) message; `None` for a notification.
    pub id: Option<sluice_engine::mcp::JsonRpcId>,
}

/// What becomes of an upstream's answer read whole.
#[derive(Debug)]
pub enum Answered {
    /// Send these bytes to the client: the answer as it came, redacted, filtered for this
    /// client, or the JSON-RPC error that replaced a blocked answer (with the upstream's
    /// status).
    Send(Bytes),
    /// Withhold it and answer with this instead.
    Reply(Reply),
}

/// What a front end does with a streamed answer after a chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Stop now and close without a clean end, so the client discards the event in
    /// progress: an event over the size cap had a finding, or was cut off.
    Abort,
    /// The inspection workers are gone.
    Unavailable,
}
