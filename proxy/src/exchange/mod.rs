//! One exchange through sluice, the same for every transport. A front end frames bytes, calls
//! the exchange, and puts the typed outcome on its wire; it never inspects, audits, counts or
//! runs a gateway control itself.
//!
//! ```text
//!  client message ──> Exchange::request
//!                       traffic limits (client rate, byte budget, upstream rate)
//!                       inspection on the worker pool (engine: parse once, scan, verdict)
//!                       gateway controls, in order (policy::Gateway::admit)
//!                       hold for approval
//!                       session marks
//!                     ──> Sent::{Forward, Reply, Drop}
//!  upstream answer ──> Exchange::answer          (read whole)
//!                   ─> Exchange::opaque_answer    (an HTTP error page, not JSON-RPC)
//!                   ─> Exchange::stream          (server-sent events, event by event)
//!                       inspection with the request's method as hint
//!                       what answers teach: list filtering, pins, quarantine, Mcp-Param
//!                       mappings, session marks from findings, answer bytes in the budget
//!                     ──> Answered::{Send, Reply} / bytes per chunk and a StreamEnd
//! ```
//!
//! Every step writes its audit row and metrics here, with the transport the [`Who`] names.

mod answer;
mod inspect;
mod lists;
mod outcome;
mod params;
mod pending;
mod request;
mod stream;
mod who;

use std::sync::Arc;

pub use outcome::{Answered, Asked, Reply, ReplyKind, Sent, StreamEnd};
pub use params::{Mirrored, ParamMap};
pub use pending::Pending;
pub use stream::AnswerStream;
pub use who::{Transport, Who};

use crate::audit::AuditLog;
use crate::metrics::Metrics;
use crate::policy::Runtime;

/// JSON-RPC code for an answer sluice gives because the upstream failed or its answer was
/// withheld (implementation-defined server error range).
pub const UPSTREAM_ERROR: i64 = -32002;

/// What every exchange shares: what the controls learnt and counted, the audit log, the
/// metrics. The rules, policy and controls in force come with each call (a
/// [`crate::live::Live`]), so a reload never changes them under a message in flight.
pub struct Exchange {
    /// Buckets, sessions, pins, held calls, quarantined tools: kept across reloads.
    pub runtime: Arc<Runtime>,
    /// One row per finding, refusal, hold and failure, when configured.
    pub audit: Option<Arc<AuditLog>>,
    /// Counters and latencies for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Which `Mcp-Param-*` header mirrors which argument, learnt from `tools/list` answers.
    pub params: ParamMap,
    /// Largest server-sent event held whole in memory, in bytes; larger ones are scanned as a
    /// stream.
    pub max_event: usize,
    /// Whether a call can be held for a human (an admin API is there to approve it); without
    /// one a call that needs approval is refused.
    pub holds: bool,
}

impl Exchange {
    /// An exchange with the given shared state.
    pub fn new(
        runtime: Arc<Runtime>,
        audit: Option<Arc<AuditLog>>,
        metrics: Arc<Metrics>,
        max_event: usize,
        holds: bool,
    ) -> Exchange {
        Exchange {
            runtime,
            audit,
            metrics,
            params: ParamMap::default(),
            max_event,
            holds,
        }
    }
}

#[cfg(test)]
mod tests;
