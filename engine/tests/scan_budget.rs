//! The per-message scan time budget (`Policy::scan_timeout`): a message the budget does not
//! cover fails with its own error, never with a partial result, and no policy forwards it;
//! without a budget, or with an ample one, the same message is inspected as before.

use std::time::Duration;

use sluice_engine::scan::{Segment, View};
use sluice_engine::{
    Action, CompiledRules, Deadline, Direction, InspectError, Inspector, PastDeadline, Policy,
    Ruleset, ScanError, Scanner, Scope, Verdict,
};

const AWS: &str = "AKIAQX7ZR2M4KD5T6WYB"; // fabricated

/// A tool result of about `len` bytes of `filler` with a fabricated AWS key at its end.
fn big_result(filler: &str, len: usize) -> Vec<u8> {
    let text = format!("{} {AWS}", filler.repeat(len / filler.len()));
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": 7,
        "result": {"content": [{"type": "text", "text": text}]}
    })
    .to_string()
    .into_bytes()
}

fn inspector() -> Inspector {
    Inspector::new(CompiledRules::compile(Ruleset::embedded_default()).unwrap()).unwrap()
}

fn policy(scan_timeout: Option<Duration>) -> Policy {
    Policy {
        scan_timeout,
        ..Policy::with_mode(Action::Redact)
    }
}

#[test]
fn past_the_budget_is_an_error_of_its_own_that_no_policy_forwards() {
    let mut insp = inspector();
    let msg = big_result("the quick brown fox jumps over the lazy dog ", 4 << 20);
    for limit in [Duration::ZERO, Duration::from_micros(1)] {
        let err = insp
            .inspect(&msg, Direction::ServerToClient, None, &policy(Some(limit)))
            .unwrap_err();
        assert!(
            matches!(err, InspectError::TimeBudget(PastDeadline { limit: l }) if l == limit),
            "{err:?}"
        );
        assert!(!err.may_fail_open());
        assert_eq!(err.jsonrpc_code(), -32603);
        let text = err.to_string();
        assert!(text.contains("time budget"), "{text}");
        assert!(!text.contains(AWS), "{text}");
    }
    // The inspector is not left half-way: the next message is inspected whole.
    let res = insp
        .inspect(&msg, Direction::ServerToClient, None, &policy(None))
        .unwrap();
    assert!(res
        .findings
        .iter()
        .any(|f| f.rule_id == "aws.access-key-id"));
}

#[test]
fn without_a_budget_or_with_an_ample_one_the_result_is_the_same() {
    let mut insp = inspector();
    // Prose, and a keyword repeated (slow for Hyperscan: the scan gives way to the linear set).
    for filler in ["the quick brown fox jumps over the lazy dog ", "secretKey "] {
        let msg = big_result(filler, 1 << 20);
        let unbounded = insp
            .inspect(&msg, Direction::ServerToClient, None, &policy(None))
            .unwrap();
        let ample = Some(Duration::from_secs(600));
        let bounded = insp
            .inspect(&msg, Direction::ServerToClient, None, &policy(ample))
            .unwrap();
        assert_eq!(unbounded.findings, bounded.findings, "{filler}");
        assert!(
            bounded
                .findings
                .iter()
                .any(|f| f.rule_id == "aws.access-key-id"),
            "{filler}"
        );
        let (Verdict::Redacted(a), Verdict::Redacted(b)) = (&unbounded.verdict, &bounded.verdict)
        else {
            panic!("{filler}: not redacted");
        };
        assert_eq!(a, b, "{filler}");
    }
}

/// The scanner stops at the deadline inside one long scan, in each of its paths: Hyperscan in
/// chunks (prose), and over a thousand hits (e-mail addresses) in a buffer short enough for
/// one block-mode call, where only the hit callback reads the clock.
#[test]
fn the_scanner_stops_inside_a_long_scan() {
    let rules = CompiledRules::compile(Ruleset::embedded_default()).unwrap();
    let mut scanner = Scanner::new(rules).unwrap();
    let long = "the quick brown fox jumps over the lazy dog ".repeat(50_000);
    let dense = "jo@ex.io ".repeat(1_800);
    for text in [long, dense] {
        let segs = [Segment {
            start: 0,
            end: text.len(),
            scope: Scope::Results,
            view: View::Text,
            source: 0,
            aux: 0,
        }];
        let mut out = Vec::new();
        let past = Deadline::after(Some(Duration::ZERO));
        let err = scanner
            .scan_within(text.as_bytes(), &segs, &mut out, past)
            .unwrap_err();
        assert!(matches!(err, ScanError::PastDeadline(_)), "{err:?}");
        // And the same scanner then scans the same text whole.
        out.clear();
        scanner
            .scan_within(text.as_bytes(), &segs, &mut out, Deadline::NONE)
            .unwrap();
        assert_eq!(out.is_empty(), text.starts_with("the "));
    }
}
