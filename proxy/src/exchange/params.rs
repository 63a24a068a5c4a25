//! Which `Mcp-Param-{Name}` header mirrors which tool argument (2026-07-28): a tool marks
//! arguments with `x-mcp-header` in its input schema, and the mapping is learnt from the
//! `tools/list` answers that pass through. The HTTP front end uses it to rewrite the headers
//! of a redacted call (`http::params`).

use std::collections::HashMap;
use std::sync::RwLock;

use serde_json::Value;

/// One mirrored argument: its header (lower-case, `mcp-param-...`) and its path of property
/// names in the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrored {
    /// The header's name, lower-case.
    pub header: String,
    /// Property names from the arguments object down to the argument.
    pub path: Vec<String>,
}

/// Bound on learnt tools, so an upstream announcing millions of tools cannot grow memory.
const MAX_TOOLS: usize = 65_536;

/// Learnt mappings per (upstream, tool).
#[derive(Default)]
pub struct ParamMap {
    by_tool: RwLock<HashMap<(usize, String), Vec<Mirrored>>>,
}

impl ParamMap {
    /// Records the mirrored arguments of every tool in a parsed `tools/list` result of
    /// `upstream`.
    pub fn learn(&self, upstream: usize, message: &Value) {
        let Some(tools) = message.pointer("/result/tools").and_then(Value::as_array) else {
            return;
        };
        let Ok(mut map) = self.by_tool.write() else {
            return;
        };
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            let mut found = Vec::new();
            if let Some(schema) = tool.get("inputSchema") {
                collect(schema, &mut Vec::new(), &mut found, 0);
            }
            let key = (upstream, name.to_string());
            if found.is_empty() {
                map.remove(&key);
            } else if map.len() < MAX_TOOLS || map.contains_key(&key) {
                map.insert(key, found);
            }
        }
    }

    /// The mirrored arguments learnt for `tool` of `upstream`.
    pub fn for_tool(&self, upstream: usize, tool: &str) -> Option<Vec<Mirrored>> {
        self.by_tool
            .read()
            .ok()?
            .get(&(upstream, tool.to_string()))
            .cloned()
    }
}

/// Annotations count only where reachable through `properties` chains (the spec's rule).
fn collect(schema: &Value, path: &mut Vec<String>, out: &mut Vec<Mirrored>, depth: usize) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    if depth > 16 {
        return;
    }
    for (key, prop) in props {
        path.push(key.clone());
        if let Some(name) = prop.get("x-mcp-header").and_then(Value::as_str) {
            out.push(Mirrored {
                header: format!("mcp-param-{}", name.to_ascii_lowercase()),
                path: path.clone(),
            });
        }
        collect(prop, path, out, depth + 1);
        path.pop();
    }
}
