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
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client-to-server",
            Direction::ServerToClient => "server-to-client",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Notification,
    Response,
    ErrorResponse,
    /// An object that is none of the above (kept and inspected, never trusted).
    Unknown,
}

impl MessageKind {
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
#[derive(Debug, Clone, PartialEq)]
pub enum JsonRpcId {
    Str(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Null,
}

impl JsonRpcId {
    pub fn write_json(&self, out: &mut String) {
        match self {
            JsonRpcId::Str(s) => crate::redact::write_json_string(out, s),
            JsonRpcId::Int(i) => {
                let _ = write!(out, "{i}");
            }
            JsonRpcId::UInt(u) => {
                let _ = write!(out, "{u}");
            }
            JsonRpcId::Float(f) => {
                let _ = write!(out, "{f}");
            }
            JsonRpcId::Null => out.push_str("null"),
        }
    }
}

/// The envelope of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageInfo {
    pub kind: MessageKind,
    /// The method for requests and notifications; for responses, the caller's hint if any.
    pub method: Option<String>,
    pub id: Option<JsonRpcId>,
    /// `params.name` of a `tools/call` (or `prompts/get`).
    pub tool: Option<String>,
}

impl MessageInfo {
    pub fn unknown() -> Self {
        MessageInfo {
            kind: MessageKind::Unknown,
            method: None,
            id: None,
            tool: None,
        }
    }
}
