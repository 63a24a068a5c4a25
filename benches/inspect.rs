//! Inspection throughput with the default ruleset: whole JSON-RPC messages (1 KB, 64 KB,
//! 4 MB; clean and with findings), raw Hyperscan scanning, and the same patterns through
//! `regex::bytes::RegexSet` as the baseline.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_engine::corpus::synth::{benign_text, tool_result, Rng};
use sluice_engine::{Action, CompiledRules, Direction, Inspector, Policy, Ruleset, Scope};

const SECRETS: &[&str] = &[
    "AKIAQX7ZR2M4KD5T6WYB",
    "ghp_Zq8Lr2Vt6Xw1Ny4Pb7Mc0Kd3Fg5Hj9Ss2Aa1B",
    "card 4111 1111 1111 1111",
    "mail jane.doe@example.com",
];

fn sizes() -> [(&'static str, usize); 3] {
    [("1KB", 1 << 10), ("64KB", 64 << 10), ("4MB", 4 << 20)]
}

fn inspect(c: &mut Criterion) {
    let rules = CompiledRules::compile(Ruleset::embedded_default()).unwrap();
    let mut insp = Inspector::new(rules).unwrap();
    let policy = Policy::with_mode(Action::Redact);
    let mut g = c.benchmark_group("inspect");
    for (name, size) in sizes() {
        for (kind, secrets) in [("clean", &[][..]), ("findings", SECRETS)] {
            let msg = tool_result(7, size, secrets);
            g.throughput(Throughput::Bytes(msg.len() as u64));
            g.bench_with_input(BenchmarkId::new(kind, name), &msg, |b, msg| {
                b.iter(|| {
                    let r = insp
                        .inspect(black_box(msg), Direction::ServerToClient, None, &policy)
                        .unwrap();
                    black_box(r.findings.len())
                })
            });
        }
    }
    g.finish();
}

fn raw_scan(c: &mut Criterion) {
    let rules = CompiledRules::compile(Ruleset::embedded_default()).unwrap();
    let mut text = String::new();
    benign_text(&mut Rng::new(11), 4 << 20, &mut text);
    let mut scanner = sluice_engine::Scanner::new(rules.clone()).unwrap();
    let mut g = c.benchmark_group("scan-4MB");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("hyperscan", |b| {
        b.iter(|| {
            black_box(
                scanner
                    .scan_text(black_box(text.as_bytes()), Scope::Results)
                    .unwrap()
                    .len(),
            )
        })
    });
    // The baseline: the same patterns in one RegexSet (which only says which rules match).
    let set = regex::bytes::RegexSet::new(rules.ruleset.rules.iter().map(|r| r.pattern.as_str()))
        .unwrap();
    g.bench_function("regex-set", |b| {
        b.iter(|| black_box(set.matches(black_box(text.as_bytes())).matched_any()))
    });
    g.finish();
}

criterion_group!(benches, inspect, raw_scan);
criterion_main!(benches);
