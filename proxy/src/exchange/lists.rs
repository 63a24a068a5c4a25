//! What a forwarded answer teaches the controls: session marks from its findings, its bytes
//! in the client's budget, and for list answers the `Mcp-Param` mappings, the quarantine of
//! tools the engine took out, tool pins and this client's catalog filter. A list answer is
//! parsed once for all of them, and only when one of them needs it.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::{Exchange, Who};
use crate::audit::WITHHELD;
use crate::live::Live;

impl Exchange {
    /// Learns from `forwarded` (what the engine let through; `original` is what the upstream
    /// sent when the engine changed it) and what the engine `found` in it. Returns the bytes
    /// to send this client instead when a list was filtered for it. `Err(Unreadable)` when a
    /// list answer the controls must read does not parse for them: it must not go out
    /// unfiltered and unpinned.
    pub(super) fn learn(
        &self,
        live: &Live,
        who: &Who,
        method: Option<&str>,
        found: Found<'_>,
        original: Option<&[u8]>,
        forwarded: &[u8],
    ) -> Result<Option<Vec<u8>>, Unreadable> {
        let g = &live.gateway;
        let rt = &self.runtime;
        let caller = who.caller();
        let marks = g.finding_marks(found.categories.iter().copied());
        rt.sessions
            .mark(&who.session_key, marks.iter().map(String::as_str));
        g.count_answer(rt, &caller, forwarded.len());
        let Some(method) = method else {
            return Ok(None);
        };
        let tools = method == "tools/list";
        if !tools && !g.filters_list(rt, &caller, method) {
            return Ok(None);
        }
        let Ok(mut message) = serde_json::from_slice::<Value>(forwarded) else {
            return Err(Unreadable);
        };
        if tools {
            self.params.learn(who.upstream, &message);
            let after = tool_names(&message);
            let before = match original.map(serde_json::from_slice::<Value>) {
                Some(Ok(v)) => tool_names(&v),
                Some(Err(_)) => Vec::new(),
                None => after.clone(),
            };
            // Even a clean list may clear a tool quarantined earlier.
            rt.note_tool_list(&who.upstream_url, &before, &after);
        }
        // Names a rule matched (a monitor-only rule lets them through as sent) are not
        // written to the row: read them before the filter moves the list's items.
        let matched: HashSet<String> = found
            .pointers
            .iter()
            .filter_map(|p| message.pointer(p).and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        let Some(removed) = g.filter_list(rt, &caller, method, &mut message) else {
            return Ok(None);
        };
        let by = |why: &str| -> Vec<&str> {
            removed
                .iter()
                .filter(|(_, w)| *w == why)
                .map(|(n, _)| match matched.contains(n) {
                    true => WITHHELD,
                    false => n.as_str(),
                })
                .collect()
        };
        self.audit_event(
            who,
            "filtered",
            json!({
                "method": method,
                "hidden_by_catalog": by("catalog"),
                "changed_since_approval": by("pins"),
                "changed_flagged": by("pins-flagged"),
            }),
        );
        Ok(Some(message.to_string().into_bytes()))
    }
}

/// What the engine found in an answer, as the controls learn from it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Found<'a> {
    /// The findings' categories, each once (for session marks).
    pub categories: &'a [&'static str],
    /// The findings' JSON pointers.
    pub pointers: &'a [String],
}

/// A list answer the controls must read did not parse for them.
#[derive(Debug)]
pub(super) struct Unreadable;

/// The names of the tools in a `tools/list` result.
fn tool_names(message: &Value) -> Vec<String> {
    message
        .pointer("/result/tools")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
