//! The one trait every gateway control on a call implements, and what a control decides.
//! [`super::Gateway::admit`] runs the controls of [`super::Gateway::steps`] in order on each
//! tool, resource or prompt request; the first that denies ends the run.
//!
//! Adding a control: one file with a type implementing [`Control`], its config struct in
//! `policy/config.rs`, one line in `Gateway::steps`, and its tests.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;

use super::{Ask, Caller, Gateway, Runtime, ToolPolicy};

/// Which control refused a message: the `control` of audit rows, metrics and error texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlKind {
    /// Client authentication (API key or JWT).
    Auth,
    /// Tool, resource and prompt allowlists per client and upstream.
    Catalog,
    /// A tool the engine took out of a list answer for what its description says.
    Poisoned,
    /// Tool pinning: a tool whose description changed since it was approved.
    Pins,
    /// Constraints on a tool's arguments.
    Arguments,
    /// Sequence rules: tools not allowed after others (or after findings) in a session.
    Sequence,
    /// The egress guard on tools that fetch URLs.
    Egress,
    /// A rate limit (client, upstream or tool).
    Rate,
    /// A client's daily byte budget.
    Budget,
    /// Human approval.
    Approval,
    /// The DNS-rebinding defence on `Host`: a request addressed to a name the proxy does
    /// not answer to (or with no, several or a malformed `Host`).
    Host,
    /// The DNS-rebinding defence on `Origin`: a browser page whose origin is not allowed.
    Origin,
    /// A request path that climbs out of its route or hides separators (dot segments,
    /// encoded slashes, backslashes, control bytes).
    Path,
    /// A request the transport checks refuse: an unsupported `MCP-Protocol-Version`, a
    /// compressed body, a header section or body over its limit or late, a body on a method
    /// other than POST, a path no upstream serves.
    Request,
}

impl ControlKind {
    /// The label in audit rows, metrics and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlKind::Auth => "auth",
            ControlKind::Catalog => "catalog",
            ControlKind::Poisoned => "poisoned",
            ControlKind::Pins => "pins",
            ControlKind::Arguments => "arguments",
            ControlKind::Sequence => "sequence",
            ControlKind::Egress => "egress",
            ControlKind::Rate => "rate",
            ControlKind::Budget => "budget",
            ControlKind::Approval => "approval",
            ControlKind::Host => "host",
            ControlKind::Origin => "origin",
            ControlKind::Path => "path",
            ControlKind::Request => "request",
        }
    }
}

/// A refusal by a control: what the client is told, and what the audit row records.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    /// Which control refused.
    pub control: ControlKind,
    /// Why, for the client and the audit row; never message content.
    pub message: String,
    /// For rate limits and budgets: when to try again.
    pub retry_after: Option<Duration>,
}

impl Denial {
    /// A policy refusal (no retry).
    pub fn new(control: ControlKind, message: String) -> Denial {
        Denial {
            control,
            message,
            retry_after: None,
        }
    }

    /// The JSON-RPC error code: -32029 for limits, -32003 for policy refusals (both in the
    /// implementation-defined server error range).
    pub fn code(&self) -> i64 {
        if self.retry_after.is_some() {
            -32029
        } else {
            -32003
        }
    }
}

/// A call to hold for a human before it is forwarded.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    /// The tool (or method) called.
    pub tool: String,
    /// Its arguments as they would be forwarded (redacted when the engine redacted them).
    pub arguments: Value,
    /// Why it is held: `tool` (the tool needs approval) or `rules: ...`.
    pub reason: String,
}

/// What one control decided about a call.
#[derive(Debug)]
pub enum Step {
    /// Nothing to object to: on to the next control.
    Pass,
    /// Allowed once a human approves it.
    Hold(Hold),
    /// Refused.
    Deny(Denial),
}

/// One request as the controls see it.
pub struct Call<'a> {
    /// Who calls, through which upstream.
    pub caller: &'a Caller<'a>,
    /// What it asks for.
    pub ask: Ask<'a>,
    /// The `[[tool]]` entries that apply to the tool called (empty for resources, prompts).
    pub(super) policies: Vec<&'a ToolPolicy>,
    /// The tags of those entries, sorted, each once.
    pub tags: Vec<String>,
}

impl Call<'_> {
    /// The tool called, if the call is a `tools/call`.
    pub fn tool(&self) -> Option<&str> {
        match self.ask {
            Ask::Tool { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The arguments of a `tools/call`.
    pub fn arguments(&self) -> Option<&Value> {
        match self.ask {
            Ask::Tool { arguments, .. } => arguments,
            _ => None,
        }
    }
}

/// A boxed future of a control's step (controls may wait, e.g. on DNS).
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Step> + Send + 'a>>;

/// One gateway control on a call.
pub trait Control: Send + Sync {
    /// Which control this is.
    fn kind(&self) -> ControlKind;

    /// Decides about `call` with the config in `g` and the state in `rt`.
    fn check<'a>(&'a self, g: &'a Gateway, rt: &'a Runtime, call: &'a Call<'a>) -> StepFuture<'a>;
}

/// A step decided without waiting.
pub fn ready<'a>(step: Step) -> StepFuture<'a> {
    Box::pin(std::future::ready(step))
}
