#![deny(missing_docs)]

//! sluice's inspection engine: rules, Hyperscan scanning, JSON-RPC walking, redaction,
//! verdicts, SSE streams and the worker pool. Knows nothing of sockets.

pub mod baseline;
pub mod check;
pub mod compile;
pub mod corpus;
mod covering;
pub mod inspect;
pub mod json_stream;
pub mod mcp;
pub mod normalize;
pub mod pool;
pub mod redact;
mod redact_keys;
pub mod rules;
pub mod scan;
pub mod scan_deadline;
pub mod sse;
pub mod verdict;
pub mod views;

pub use compile::{CompileError, CompiledRules};
pub use inspect::{Finding, InspectError, Inspection, Inspector};
pub use mcp::{Direction, MessageInfo, MessageKind};
pub use pool::{Pool, PoolError};
pub use redact::RedactStrategy;
pub use rules::{Action, Category, LoadError, Rule, Ruleset, Scope, Severity};
pub use scan::{Match, ScanError, Scanner};
pub use scan_deadline::{Deadline, PastDeadline};
pub use sse::{EventDecision, EventOutcome, Flow, SseInspector};
pub use verdict::{Policy, Verdict};
