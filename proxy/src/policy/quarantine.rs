//! Quarantine of poisoned tools: a tool the engine took out of a `tools/list` answer (its
//! description carried an injection) cannot be called by name either, until a list carries it
//! clean again.

use std::collections::HashSet;
use std::sync::Mutex;

use super::control::{ready, Call, Control, ControlKind, Denial, Step, StepFuture};
use super::{Gateway, Runtime};

/// Bound on quarantined (upstream, tool) pairs.
const MAX_QUARANTINED: usize = 65_536;

/// Quarantined tools per upstream URL.
#[derive(Default)]
pub struct Quarantine(Mutex<HashSet<(String, String)>>);

impl Quarantine {
    /// Tools in `before` but not in `after` are quarantined; tools in `after` are cleared.
    pub fn note(&self, upstream_url: &str, before: &[String], after: &[String]) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for name in after {
            q.remove(&(upstream_url.to_string(), name.clone()));
        }
        for name in before {
            if !after.contains(name) && q.len() < MAX_QUARANTINED {
                q.insert((upstream_url.to_string(), name.clone()));
            }
        }
    }

    /// Whether no tool is quarantined.
    pub fn is_empty(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// Whether `tool` of `upstream_url` is quarantined.
    pub fn contains(&self, upstream_url: &str, tool: &str) -> bool {
        let q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        q.contains(&(upstream_url.to_string(), tool.to_string()))
    }
}

/// Refuses calls of quarantined tools.
pub struct QuarantineStep;

impl Control for QuarantineStep {
    fn kind(&self) -> ControlKind {
        ControlKind::Poisoned
    }

    fn check<'a>(&'a self, _g: &'a Gateway, rt: &'a Runtime, call: &'a Call<'a>) -> StepFuture<'a> {
        ready(match call.tool() {
            Some(tool) if rt.quarantine.contains(call.caller.upstream_url, tool) => {
                Step::Deny(Denial::new(
                    self.kind(),
                    format!("tool `{tool}` was removed from the tool list for what its description says; it cannot be called"),
                ))
            }
            _ => Step::Pass,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_taken_out_are_quarantined_until_listed_clean() {
        let q = Quarantine::default();
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        q.note("u", &names(&["read", "evil"]), &names(&["read"]));
        assert!(q.contains("u", "evil"));
        assert!(!q.contains("u", "read"));
        assert!(!q.contains("other", "evil"), "per upstream");
        q.note("u", &names(&["read", "evil"]), &names(&["read", "evil"]));
        assert!(q.is_empty());
    }
}
