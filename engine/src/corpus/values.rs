//! Scoring by value: labelled data written by others names the sensitive text, not the rule
//! that should find it. A value is found when it no longer appears in any string (object key
//! or string value) of what sluice would forward; a message labelled `[]` that sluice changes
//! is a false alarm. The same definition as `shared/eval/score.py`, so both agree.
//!
//! Misses name their values: this is for labelled test data only, never for live traffic.

use std::collections::BTreeMap;

use super::{CorpusEntry, ValueLabel};
use crate::verdict::Verdict;

/// Found and total, per category and per `category:type`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recall {
    /// Labelled values sluice would not forward.
    pub found: usize,
    /// Labelled values.
    pub total: usize,
}

impl Recall {
    /// found / total; 1.0 when nothing was labelled.
    pub fn rate(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.found as f64 / self.total as f64
        }
    }
}

/// A labelled value that sluice would forward.
#[derive(Debug, Clone)]
pub struct ValueMiss {
    /// 1-based line of the corpus entry.
    pub line: usize,
    /// The entry's note.
    pub note: String,
    /// The label, value included.
    pub label: ValueLabel,
}

/// A message labelled `[]` that sluice would change, with the rules that fired.
#[derive(Debug, Clone)]
pub struct ValueAlarm {
    /// 1-based line of the corpus entry.
    pub line: usize,
    /// The entry's note.
    pub note: String,
    /// Ids of the rules that fired.
    pub rules: Vec<String>,
}

/// Scores by value over a corpus, built one message at a time with [`ValueScore::add`].
#[derive(Debug, Default)]
pub struct ValueScore {
    /// Keyed `secret`, `secret:TYPE`, ...
    pub recall: BTreeMap<String, Recall>,
    /// Messages labelled `[]`.
    pub clean: usize,
    /// One per message labelled `[]` that sluice would change.
    pub false_alarms: Vec<ValueAlarm>,
    /// One per labelled value sluice would forward.
    pub missed: Vec<ValueMiss>,
}

impl ValueScore {
    /// Adds one message and what sluice would do with it; `rules` are the ids that fired.
    pub fn add(&mut self, entry: &CorpusEntry, verdict: &Verdict, rules: &[String]) {
        if entry.is_clean() {
            self.clean += 1;
            if !matches!(verdict, Verdict::Forward) {
                self.false_alarms.push(ValueAlarm {
                    line: entry.line,
                    note: entry.note.clone(),
                    rules: rules.to_vec(),
                });
            }
            return;
        }
        let forwarded = forwarded_strings(&entry.message, verdict);
        for label in &entry.values {
            let found = !forwarded.iter().any(|s| s.contains(label.value.as_str()));
            let mut keys = vec![label.category.as_str().to_string()];
            if let Some(kind) = &label.kind {
                keys.push(format!("{}:{kind}", label.category.as_str()));
            }
            for k in keys {
                let r = self.recall.entry(k).or_default();
                r.total += 1;
                r.found += found as usize;
            }
            if !found {
                self.missed.push(ValueMiss {
                    line: entry.line,
                    note: entry.note.clone(),
                    label: label.clone(),
                });
            }
        }
    }

    /// Whether any message carried a label by value.
    pub fn is_empty(&self) -> bool {
        self.recall.is_empty()
    }

    /// The fraction of messages labelled `[]` that sluice would change; 0.0 when there are none.
    pub fn false_alarm_rate(&self) -> f64 {
        if self.clean == 0 {
            0.0
        } else {
            self.false_alarms.len() as f64 / self.clean as f64
        }
    }
}

/// Every string and object key of what would be forwarded: nothing for a blocked message.
fn forwarded_strings(original: &[u8], verdict: &Verdict) -> Vec<String> {
    let bytes = match verdict {
        Verdict::Forward => original,
        Verdict::Redacted(b) => b.as_slice(),
        Verdict::Block { .. } => return Vec::new(),
    };
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        collect(v, &mut out);
    }
    out
}

fn collect(v: serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(a) => a.into_iter().for_each(|x| collect(x, out)),
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                out.push(k);
                collect(x, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::parse;

    const LINES: &str = concat!(
        r#"{"direction":"server-to-client","source":"a","message":{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"key Zq8vN2kLp4"}]}},"expected":[{"category":"secret","value":"Zq8vN2kLp4","type":"acme"}]}"#,
        "\n",
        r#"{"direction":"server-to-client","source":"b","message":{"jsonrpc":"2.0","id":2,"result":{}},"expected":[]}"#,
        "\n"
    );

    #[test]
    fn labels_by_value_parse_beside_labels_by_rule() {
        let e = parse(LINES, "t").unwrap();
        assert_eq!(e[0].values.len(), 1);
        assert_eq!(e[0].values[0].kind.as_deref(), Some("acme"));
        assert_eq!(e[0].note, "a");
        assert!(e[1].is_clean());
        let bad =
            r#"{"direction":"c2s","message":{},"expected":[{"category":"secrets","value":"x"}]}"#;
        let err = parse(bad, "t").err().unwrap().to_string();
        assert!(err.contains("t:1") && err.contains("category"), "{err}");
    }

    #[test]
    fn a_value_is_found_when_redacted_or_blocked_and_missed_when_forwarded() {
        let e = parse(LINES, "t").unwrap();
        let mut s = ValueScore::default();
        s.add(&e[0], &Verdict::Forward, &[]);
        let redacted = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"key [REDACTED]"}]}}"#;
        s.add(&e[0], &Verdict::Redacted(redacted.to_vec()), &["x".into()]);
        s.add(&e[0], &Verdict::Block { response: None }, &["x".into()]);
        assert_eq!(s.recall["secret"], Recall { found: 2, total: 3 });
        assert_eq!(s.recall["secret:acme"].found, 2);
        assert_eq!(s.missed.len(), 1);
        s.add(&e[1], &Verdict::Forward, &[]);
        s.add(&e[1], &Verdict::Redacted(b"{}".to_vec()), &["r".into()]);
        assert_eq!((s.clean, s.false_alarms.len()), (2, 1));
        assert_eq!(s.false_alarms[0].rules, vec!["r".to_string()]);
    }
}
