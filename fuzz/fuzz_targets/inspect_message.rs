//! Any bytes as a JSON-RPC message: never a panic; a redacted message is valid JSON and
//! re-scans clean of the rules it redacted.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sluice_engine::{Action, CompiledRules, Direction, Inspector, Policy, Ruleset, Verdict};

fn inspector() -> Inspector {
    static RULES: OnceLock<std::sync::Arc<CompiledRules>> = OnceLock::new();
    let rules = RULES.get_or_init(|| CompiledRules::compile(Ruleset::embedded_default()).unwrap());
    Inspector::new(rules.clone()).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let mut insp = inspector();
    let policy = Policy::with_mode(Action::Redact);
    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        let Ok(res) = insp.inspect(data, dir, None, &policy) else {
            continue;
        };
        // What sluice accepts as JSON, a strict parser accepts too: no parser differential.
        serde_json::from_slice::<serde_json::Value>(data).expect("accepted input is JSON");
        if let Verdict::Redacted(out) = &res.verdict {
            serde_json::from_slice::<serde_json::Value>(out).expect("redacted output is JSON");
            let again = insp.inspect(out, dir, None, &policy).expect("redacted output inspects");
            for f in &again.findings {
                assert!(
                    !res.findings.iter().any(|g| g.rule_id == f.rule_id),
                    "{} found again after redaction",
                    f.rule_id
                );
            }
        }
    }
});
