//! Every example of the default ruleset, through the full message path.

mod common;

use sluice_engine::{Action, Inspector, Policy, Ruleset, Verdict};

#[test]
fn default_ruleset_has_at_least_80_rules_with_examples() {
    let rs = Ruleset::embedded_default();
    assert!(rs.len() >= 80, "{} rules", rs.len());
    for r in &rs.rules {
        assert!(!r.examples.is_empty(), "{} has no example", r.id);
        assert!(
            !r.negative_examples.is_empty(),
            "{} has no negative example",
            r.id
        );
    }
}

#[test]
fn every_example_is_found_and_every_negative_is_not() {
    let rules = common::default_rules();
    let mut insp = Inspector::new(rules.clone()).unwrap();
    let policy = Policy::default();
    let mut failures = Vec::new();
    for rule in &rules.ruleset.rules {
        for ex in &rule.examples {
            let (msg, dir) = common::message_for(rule, ex);
            let res = insp.inspect(msg.as_bytes(), dir, None, &policy).unwrap();
            if !res.findings.iter().any(|f| f.rule_id == rule.id) {
                failures.push(format!("{}: example not found: {ex:?}", rule.id));
                continue;
            }
            // What the verdict forwards must no longer hold what the rule found.
            match (&res.verdict, rule.action) {
                (Verdict::Redacted(bytes), Action::Redact) => {
                    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_else(|e| {
                        panic!("{}: redacted output is not JSON: {e}", rule.id)
                    });
                    assert!(v.is_object());
                    let again = insp.inspect(bytes, dir, None, &policy).unwrap();
                    if again.findings.iter().any(|f| f.rule_id == rule.id) {
                        failures.push(format!("{}: redacted output still matches", rule.id));
                    }
                }
                (
                    Verdict::Block {
                        response: Some(err),
                    },
                    _,
                ) => {
                    let v: serde_json::Value = serde_json::from_slice(err).unwrap();
                    assert!(v["error"]["code"].is_i64());
                    assert!(!v["id"].is_null());
                }
                (Verdict::Redacted(_), _) | (Verdict::Block { .. }, _) => {}
                (Verdict::Forward, a) if a != Action::Monitor => {
                    failures.push(format!("{}: found but forwarded unchanged", rule.id))
                }
                _ => {}
            }
        }
        for ex in &rule.negative_examples {
            let (msg, dir) = common::message_for(rule, ex);
            let res = insp.inspect(msg.as_bytes(), dir, None, &policy).unwrap();
            if res.findings.iter().any(|f| f.rule_id == rule.id) {
                failures.push(format!("{}: negative example matched: {ex:?}", rule.id));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn demo_corpus_labels_match_what_is_found() {
    let rules = common::default_rules();
    let mut insp = Inspector::new(rules).unwrap();
    let entries =
        sluice_engine::corpus::parse(sluice_engine::corpus::DEMO_CORPUS, "demo.jsonl").unwrap();
    assert!(entries.len() >= 20);
    let mut problems = Vec::new();
    for e in &entries {
        let res = insp
            .inspect(&e.message, e.direction, None, &Policy::default())
            .unwrap();
        let mut found: Vec<(String, String)> = res
            .findings
            .iter()
            .map(|f| (f.rule_id.clone(), f.pointer.clone()))
            .collect();
        found.sort();
        found.dedup();
        let mut want: Vec<(String, String)> = e
            .expected
            .iter()
            .map(|x| (x.rule.clone(), x.pointer.clone()))
            .collect();
        want.sort();
        if found != want {
            problems.push(format!(
                "line {} ({}): found {found:?}, labelled {want:?}",
                e.line, e.note
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
