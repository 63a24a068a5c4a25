//! What a JSON-RPC message is in MCP terms.

use std::fmt::Write;

/// Who sent the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Requests, notifications and responses the client sends (tool calls, answers to
    /// sampling / elicitation).
    ClientToServer,
    /// What the server sends: results, notifications, server-initiated requests.
    ServerToClient,
}

impl Direction {
    /// The name in logs and metrics: `client-to-server` or `server-to-client`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client-to-server",
            Direction::ServerToClient => "server-to-client",
        }
    }
}

/// The kind of a JSON-RPC 2.0 message (JSON-RPC 2.0 specification, sections 4 and 5), as read
/// from its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Has `method` and `id`.
    Request,
    /// Has `method` and no `id`: no response is expected.
    Notification,
    /// Has `result` and no `method`.
    Response,
    /// Has `error` and no `method`.
    ErrorResponse,
    /// An object that is none of the above (kept and inspected, never trusted).
    Unknown,
}

impl MessageKind {
    /// The name in reports and logs: `request`, `notification`, `response`, `error` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Request => "request",
            MessageKind::Notification => "notification",
            MessageKind::Response => "response",
            MessageKind::ErrorResponse => "error",
            MessageKind::Unknown => "unknown",
        }
    }
}

/// A JSON-RPC id, kept to answer a blocked request with an error carrying the same id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonRpcId {
    /// A string id.
    Str(String),
    /// An integer id that fits `i64`.
    Int(i64),
    /// An integer id above `i64::MAX` that fits `u64`.
    UInt(u64),
    /// Any other number id (a fraction, an exponent, `-0`, more than 64 bits), as its JSON
    /// text (RFC 8259 section 6 grammar), written back exactly: `1.0` is answered as `1.0`,
    /// not `1`. JSON-RPC 2.0 (section 4) discourages fractions in ids but they occur.
    Number(String),
    /// A `null` id, or one of a type JSON-RPC does not allow (object, array, boolean).
    Null,
}

impl JsonRpcId {
    /// The id a JSON number's `text` names: [`JsonRpcId::UInt`] for a non-negative integer
    /// that fits `u64`, [`JsonRpcId::Int`] for a negative one that fits `i64`, each only when
    /// it prints back as `text`; [`JsonRpcId::Number`] otherwise. So
    /// [`JsonRpcId::write_json`] gives `text` back either way. `text` is not checked against
    /// the grammar.
    pub fn from_number_text(text: &str) -> JsonRpcId {
        let exact = |n: &dyn std::fmt::Display| n.to_string() == text;
        if text.starts_with('-') {
            if let Ok(i) = text.parse::<i64>() {
                if exact(&i) {
                    return JsonRpcId::Int(i);
                }
            }
        } else if let Ok(u) = text.parse::<u64>() {
            if exact(&u) {
                return JsonRpcId::UInt(u);
            }
        }
        JsonRpcId::Number(text.to_owned())
    }

    /// Appends the id to `out` as JSON.
    pub fn write_json(&self, out: &mut String) {
        match self {
            JsonRpcId::Str(s) => crate::redact::write_json_string(out, s),
            JsonRpcId::Int(i) => {
                let _ = write!(out, "{i}");
            }
            JsonRpcId::UInt(u) => {
                let _ = write!(out, "{u}");
            }
            JsonRpcId::Number(text) => out.push_str(text),
            JsonRpcId::Null => out.push_str("null"),
        }
    }
}

/// The envelope of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageInfo {
    /// Request, notification, response or error, as read from the members.
    pub kind: MessageKind,
    /// The method for requests and notifications; for responses, the caller's hint if any.
    pub method: Option<String>,
    /// The `id` member, `None` when absent.
    pub id: Option<JsonRpcId>,
    /// `params.name` when it is a string: the tool of a `tools/call`, the prompt of a
    /// `prompts/get` (also read from other methods' params).
    pub tool: Option<String>,
}

impl MessageInfo {
    /// The envelope of a message nothing is known about: kind `Unknown`, no method, id or tool.
    pub fn unknown() -> Self {
        MessageInfo {
            kind: MessageKind::Unknown,
            method: None,
            id: None,
            tool: None,
        }
    }
}
