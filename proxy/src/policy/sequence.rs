//! Tool-sequence rules: what a session has done (the tags of the tools it called, the
//! categories of engine findings in its answers) decides what it may do next. The classic
//! case is read-then-exfiltrate: after a tool tagged `reads-secrets`, no tool tagged
//! `sends-external` for the rest of the session.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::gateway::SequenceRule;

/// Sessions idle this long are forgotten (their taint with them).
const SESSION_IDLE: Duration = Duration::from_secs(24 * 3600);
const MAX_SESSIONS: usize = 100_000;

/// The tags and finding marks each session has collected, by session key; at most
/// `MAX_SESSIONS`, idle ones forgotten after a day.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, (BTreeSet<String>, Instant)>>,
}

impl Sessions {
    /// Marks the session with these marks (tool tags, `finding:CATEGORY`).
    pub fn mark<'a>(&self, session: &str, marks: impl IntoIterator<Item = &'a str>) {
        let mut marks = marks.into_iter().peekable();
        if marks.peek().is_none() {
            return;
        }
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SESSIONS && !map.contains_key(session) {
            map.retain(|_, (_, seen)| now.duration_since(*seen) < SESSION_IDLE);
        }
        let entry = map
            .entry(session.to_string())
            .or_insert_with(|| (BTreeSet::new(), now));
        entry.0.extend(marks.map(str::to_owned));
        entry.1 = now;
    }

    /// The first rule that forbids a tool with `tags` in this session, with the mark that
    /// triggered it.
    pub fn forbidding<'r>(
        &self,
        session: &str,
        tags: &[String],
        rules: &'r [SequenceRule],
    ) -> Option<&'r SequenceRule> {
        if rules.is_empty() || tags.is_empty() {
            return None;
        }
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (marks, seen) = map.get(session)?;
        if seen.elapsed() >= SESSION_IDLE {
            return None;
        }
        rules
            .iter()
            .find(|r| marks.contains(&r.after) && tags.contains(&r.deny))
    }

    /// The session's marks, for the audit row and tests.
    pub fn marks(&self, session: &str) -> Vec<String> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(session)
            .map(|(m, _)| m.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The sequence control: a tool whose tags a rule forbids after what the session has done.
pub struct SequenceStep;

impl super::Control for SequenceStep {
    fn kind(&self) -> super::ControlKind {
        super::ControlKind::Sequence
    }

    fn check<'a>(
        &'a self,
        g: &'a super::Gateway,
        rt: &'a super::Runtime,
        call: &'a super::Call<'a>,
    ) -> super::control::StepFuture<'a> {
        let refused = call.tool().and_then(|tool| {
            let rule = rt
                .sessions
                .forbidding(call.caller.session, &call.tags, &g.sequences)?;
            Some(format!(
                "tool `{tool}` ({}) is not allowed in this session after {}",
                rule.deny, rule.after
            ))
        });
        super::control::ready(match refused {
            Some(why) => super::Step::Deny(super::Denial::new(self.kind(), why)),
            None => super::Step::Pass,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_taints_the_session_not_others() {
        let rules = vec![SequenceRule {
            after: "reads-secrets".into(),
            deny: "sends-external".into(),
        }];
        let s = Sessions::default();
        let send = vec!["sends-external".to_string()];
        assert!(s.forbidding("s1", &send, &rules).is_none());
        s.mark("s1", ["reads-secrets"]);
        assert_eq!(
            s.forbidding("s1", &send, &rules).map(|r| r.after.as_str()),
            Some("reads-secrets")
        );
        assert!(s.forbidding("s2", &send, &rules).is_none());
        assert!(s.forbidding("s1", &["other".to_string()], &rules).is_none());
        s.mark("s2", ["finding:secret"]);
        assert_eq!(s.marks("s2"), vec!["finding:secret"]);
    }
}
