//! An SSE body cut at fuzzer-chosen points gives the same output as in one piece.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sluice_engine::sse::SseInspector;
use sluice_engine::{Action, CompiledRules, Direction, Inspector, Policy, Ruleset};

fn run(chunks: &[&[u8]], insp: &mut Inspector) -> Vec<u8> {
    let policy = Policy::with_mode(Action::Redact);
    let mut sse = SseInspector::new(Direction::ServerToClient, 1 << 16);
    let (mut out, mut d) = (Vec::new(), Vec::new());
    for c in chunks {
        if sse.feed(c, insp, &policy, &mut out, &mut d).is_err() {
            break;
        }
    }
    sse.finish(&mut d);
    out
}

fuzz_target!(|data: &[u8]| {
    static RULES: OnceLock<std::sync::Arc<CompiledRules>> = OnceLock::new();
    let rules = RULES.get_or_init(|| CompiledRules::compile(Ruleset::embedded_default()).unwrap());
    let mut insp = Inspector::new(rules.clone()).unwrap();
    if data.is_empty() {
        return;
    }
    let cut = data[0] as usize % data.len().max(1);
    let body = &data[1..];
    let cut = cut.min(body.len());
    let whole = run(&[body], &mut insp);
    let split = run(&[&body[..cut], &body[cut..]], &mut insp);
    assert_eq!(whole, split);
});
