//! Policy applied to findings, and the verdict on a message: forward it as it came, forward a
//! redacted copy, or block it and answer with a JSON-RPC error.

use std::collections::HashMap;
use std::time::Duration;

use crate::mcp::{JsonRpcId, MessageInfo, MessageKind};
use crate::redact::{write_json_string, RedactStrategy};
use crate::rules::{Action, Category, Rule, Scope};

/// JSON-RPC error code of a message blocked by sluice (implementation-defined server error
/// range, -32000 to -32099).
pub const BLOCKED_CODE: i64 = -32001;

/// What to do with findings. Precedence, most specific first: per rule, per category, per
/// scope, the global mode, and last the rule's own `action`.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The global action: applies to every finding that no rule, category or scope entry
    /// covers. `None` leaves each rule's own action.
    pub mode: Option<Action>,
    /// Action by rule id.
    pub rules: HashMap<String, Action>,
    /// Action by rule category.
    pub categories: HashMap<Category, Action>,
    /// Action by the scope the finding sits in.
    pub scopes: HashMap<Scope, Action>,
    /// How redacted spans are replaced.
    pub redaction: RedactStrategy,
    /// Salt of fingerprints and `hash` redaction markers.
    pub salt: Vec<u8>,
    /// Deepest JSON nesting inspected, the JSON-RPC message object being level 1; a deeper
    /// message fails inspection.
    pub max_depth: usize,
    /// Largest message inspected, in bytes (default 64 MiB); a larger one fails inspection with
    /// [`InspectError::TooLarge`](crate::InspectError::TooLarge).
    pub max_message_bytes: usize,
    /// Longest one inspection may take, wall clock from its start (`None`: no limit, the
    /// default); past it the inspection fails with
    /// [`InspectError::TimeBudget`](crate::InspectError::TimeBudget), which no policy forwards.
    pub scan_timeout: Option<Duration>,
    /// Forward what could not be inspected (malformed data in a stream) instead of dropping it.
    pub fail_open: bool,
    /// A list result (tools, prompts, resources) with blocking findings only inside some
    /// entries is forwarded without those entries instead of being blocked whole.
    pub remove_blocked_list_items: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: None,
            rules: HashMap::new(),
            categories: HashMap::new(),
            scopes: HashMap::new(),
            redaction: RedactStrategy::Mask,
            salt: Vec::new(),
            max_depth: 128,
            max_message_bytes: 64 << 20,
            scan_timeout: None,
            fail_open: false,
            remove_blocked_list_items: true,
        }
    }
}

impl Policy {
    /// The default policy with `mode` as the global action.
    pub fn with_mode(mode: Action) -> Self {
        Policy {
            mode: Some(mode),
            ..Policy::default()
        }
    }

    /// The action for a finding of `rule` in `scope`, by the precedence above.
    pub fn action_for(&self, rule: &Rule, scope: Scope) -> Action {
        self.rules
            .get(&rule.id)
            .or_else(|| self.categories.get(&rule.category))
            .or_else(|| self.scopes.get(&scope))
            .copied()
            .or(self.mode)
            .unwrap_or(rule.action)
    }
}

/// What to send in place of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward the original bytes, unchanged.
    Forward,
    /// Forward these bytes: the message with sensitive spans replaced.
    Redacted(Vec<u8>),
    /// Do not forward: a finding whose action is block, or one to redact where a rewrite
    /// would change more than the secret (a span in a JSON number; keys of one object that
    /// their markers would give one name).
    Block {
        /// The JSON-RPC error to answer with, or `None` for a notification (or a message
        /// without an id), which has no one to answer.
        response: Option<Vec<u8>>,
    },
}

impl Verdict {
    /// The verdict's name in metrics, audit records and reports: `forward`, `redact` or `block`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Forward => "forward",
            Verdict::Redacted(_) => "redact",
            Verdict::Block { .. } => "block",
        }
    }
}

/// The error sent in place of a blocked message. Names rules, never the matched text.
pub fn block_response(info: &MessageInfo, rule_ids: &[&str]) -> Option<String> {
    let id = match (info.kind, &info.id) {
        (MessageKind::Notification, _) | (_, None) => return None,
        (_, Some(id)) => id,
    };
    Some(error_response(
        id,
        BLOCKED_CODE,
        &format!(
            "Blocked by sluice: the message matched {}",
            rule_ids.join(", ")
        ),
        rule_ids,
    ))
}

/// A JSON-RPC 2.0 error response (JSON-RPC 2.0 specification, section 5.1) to `id`, as JSON
/// text. With rule ids, its `data` is `{"blockedBy":"sluice","rules":[...]}`.
pub fn error_response(id: &JsonRpcId, code: i64, message: &str, rule_ids: &[&str]) -> String {
    let mut out = String::with_capacity(160);
    out.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
    id.write_json(&mut out);
    out.push_str(",\"error\":{\"code\":");
    out.push_str(&code.to_string());
    out.push_str(",\"message\":");
    write_json_string(&mut out, message);
    if !rule_ids.is_empty() {
        out.push_str(",\"data\":{\"blockedBy\":\"sluice\",\"rules\":[");
        for (i, r) in rule_ids.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_string(&mut out, r);
        }
        out.push_str("]}");
    }
    out.push_str("}}");
    out
}
