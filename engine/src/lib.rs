//! sluice's inspection engine: rules, Hyperscan scanning, JSON-RPC walking, verdicts, SSE.
//! Knows nothing of sockets.

pub mod compile;
pub mod rules;
pub mod scan;

pub use compile::{CompileError, CompiledRules};
pub use rules::{Action, Category, LoadError, Rule, Ruleset, Scope};
pub use scan::{Match, ScanError, Scanner};
