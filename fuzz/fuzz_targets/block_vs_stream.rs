//! Any text scanned whole (block database) and in fuzzer-chosen chunks (streaming database)
//! flags the same sensitive bytes with every rule of the default ruleset.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sluice_engine::{CompiledRules, Match, Ruleset, Scanner, Scope};

/// Per rule, the capture spans merged into disjoint intervals.
fn coverage(matches: &[Match]) -> Vec<(usize, usize, usize)> {
    let mut v: Vec<(usize, usize, usize)> = matches.iter().map(|m| (m.rule, m.start, m.end)).collect();
    v.sort_unstable();
    let mut out: Vec<(usize, usize, usize)> = Vec::new();
    for (r, s, e) in v {
        match out.last_mut() {
            Some(last) if last.0 == r && s <= last.2 => last.2 = last.2.max(e),
            _ => out.push((r, s, e)),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    static RULES: OnceLock<std::sync::Arc<CompiledRules>> = OnceLock::new();
    let rules = RULES.get_or_init(|| CompiledRules::compile(Ruleset::embedded_default()).unwrap());
    if data.len() < 2 {
        return;
    }
    // The first two bytes choose the cuts; the rest is the text.
    let (a, b, text) = (data[0] as usize, data[1] as usize, &data[2..]);
    let mut cuts = [a % (text.len() + 1), b % (text.len() + 1)];
    cuts.sort_unstable();
    let mut scanner = Scanner::new(rules.clone()).unwrap();
    let block = scanner.scan_text(text, Scope::Results).unwrap();
    let mut stream = scanner.open_stream(Scope::Results).unwrap();
    let mut got = Vec::new();
    let mut at = 0;
    for c in cuts.into_iter().chain([text.len()]) {
        stream.feed(&text[at..c], &mut got).unwrap();
        at = c;
    }
    stream.finish(&mut got).unwrap();
    assert_eq!(coverage(&block), coverage(&got), "cuts {cuts:?}");
});
