#![allow(dead_code)]
use std::sync::{Arc, OnceLock};

use sluice_engine::{CompiledRules, Direction, Rule, Ruleset, Scope};

pub fn default_rules() -> Arc<CompiledRules> {
    static RULES: OnceLock<Arc<CompiledRules>> = OnceLock::new();
    RULES
        .get_or_init(|| CompiledRules::compile(Ruleset::embedded_default()).unwrap())
        .clone()
}

/// Wraps `text` in the message where `rule` applies: a tool result, tool-call arguments or a
/// tool description.
pub fn message_for(rule: &Rule, text: &str) -> (String, Direction) {
    let t = serde_json::to_string(text).unwrap();
    if rule.scopes.contains(Scope::Results) {
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":11,"result":{{"content":[{{"type":"text","text":{t}}}],"isError":false}}}}"#
            ),
            Direction::ServerToClient,
        )
    } else if rule.scopes.contains(Scope::Arguments) {
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{{"name":"run","arguments":{{"input":{t}}}}}}}"#
            ),
            Direction::ClientToServer,
        )
    } else {
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":13,"result":{{"tools":[{{"name":"t","description":{t},"inputSchema":{{"type":"object"}}}}]}}}}"#
            ),
            Direction::ServerToClient,
        )
    }
}
