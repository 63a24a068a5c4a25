//! Inspection throughput with the default ruleset: whole JSON-RPC messages (1 KB, 64 KB,
//! 4 MB; clean and with findings; each also under a scan time budget), raw Hyperscan
//! scanning, and the same patterns through `regex::bytes::RegexSet` as the baseline.

use std::hint::black_box;
use std::time::Duration;

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
    // The same with a scan time budget, so the cost of reading the clock shows side by side.
    let budget = Policy {
        scan_timeout: Some(Duration::from_secs(10)),
        ..Policy::with_mode(Action::Redact)
    };
    let mut g = c.benchmark_group("inspect");
    for (name, size) in sizes() {
        for (kind, secrets) in [("clean", &[][..]), ("findings", SECRETS)] {
            let msg = tool_result(7, size, secrets);
            g.throughput(Throughput::Bytes(msg.len() as u64));
            for (suffix, policy) in [("", &policy), ("-budget", &budget)] {
                let id = BenchmarkId::new(format!("{kind}{suffix}"), name);
                g.bench_with_input(id, &msg, |b, msg| {
                    b.iter(|| {
                        let r = insp
                            .inspect(black_box(msg), Direction::ServerToClient, None, policy)
                            .unwrap();
                        black_box(r.findings.len())
                    })
                });
            }
        }
    }
    // Structured results full of numbers (metrics, coordinates, ids): every number is a token
    // the strictness pass checks and the walk visits.
    let msg = numeric_result(64 << 10);
    g.throughput(Throughput::Bytes(msg.len() as u64));
    g.bench_with_input(BenchmarkId::new("numbers", "64KB"), &msg, |b, msg| {
        b.iter(|| {
            let r = insp
                .inspect(black_box(msg), Direction::ServerToClient, None, &policy)
                .unwrap();
            black_box(r.findings.len())
        })
    });
    g.finish();
}

/// A tool result of about `len` bytes whose `structuredContent` is rows of integers, floats
/// and 10-digit ids.
fn numeric_result(len: usize) -> Vec<u8> {
    let mut rng = Rng::new(11);
    let mut rows = Vec::new();
    let mut produced = 0;
    while produced < len {
        let id = 1_000_000_000 + rng.below(8_999_999_999);
        let row = format!(
            "[{},{}.{:03},-{}e-{},{id}]",
            rng.below(100_000),
            rng.below(1000),
            rng.below(1000),
            rng.below(90) + 1,
            rng.below(20)
        );
        produced += row.len() + 1;
        rows.push(row);
    }
    format!(
        r#"{{"jsonrpc":"2.0","id":3,"result":{{"content":[],"structuredContent":{{"rows":[{}]}}}}}}"#,
        rows.join(",")
    )
    .into_bytes()
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
    let set =
        regex::bytes::RegexSetBuilder::new(rules.ruleset.rules.iter().map(|r| r.pattern.as_str()))
            .size_limit(1 << 30)
            .dfa_size_limit(1 << 30)
            .build()
            .unwrap();
    g.bench_function("regex-set", |b| {
        b.iter(|| black_box(set.matches(black_box(text.as_bytes())).matched_any()))
    });
    g.finish();
}

/// The same 64 KB message and 4 MB text with one category of the default ruleset at a time,
/// to name what each category costs.
fn by_category(c: &mut Criterion) {
    use sluice_engine::Category;
    let msg = tool_result(7, 64 << 10, &[]);
    let mut text = String::new();
    benign_text(&mut Rng::new(11), 4 << 20, &mut text);
    let mut g = c.benchmark_group("category");
    g.sample_size(10);
    for cat in Category::ALL {
        let mut set = Ruleset::embedded_default();
        set.rules.retain(|r| r.category == cat);
        let rules = CompiledRules::compile(set).unwrap();
        let mut insp = Inspector::new(rules.clone()).unwrap();
        let policy = Policy::with_mode(Action::Redact);
        g.throughput(Throughput::Bytes(msg.len() as u64));
        g.bench_function(BenchmarkId::new("inspect-64KB", cat.as_str()), |b| {
            b.iter(|| {
                insp.inspect(black_box(&msg), Direction::ServerToClient, None, &policy)
                    .unwrap()
                    .findings
                    .len()
            })
        });
        let mut scanner = sluice_engine::Scanner::new(rules.clone()).unwrap();
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(BenchmarkId::new("hyperscan-4MB", cat.as_str()), |b| {
            b.iter(|| {
                scanner
                    .scan_text(black_box(text.as_bytes()), Scope::Results)
                    .unwrap()
                    .len()
            })
        });
        let set = regex::bytes::RegexSetBuilder::new(
            rules.ruleset.rules.iter().map(|r| r.pattern.as_str()),
        )
        .size_limit(1 << 30)
        .dfa_size_limit(1 << 30)
        .build()
        .unwrap();
        g.bench_function(BenchmarkId::new("regex-set-4MB", cat.as_str()), |b| {
            b.iter(|| set.matches(black_box(text.as_bytes())).matched_any())
        });
    }
    g.finish();
}

/// The labelled corpus `sluice bench` scores by default (seed 1), inspected whole with the
/// rules' own actions, and through the regex-crate baseline: what `sluice bench` prints as
/// throughput and as the ratio.
fn labelled_corpus(c: &mut Criterion) {
    use sluice_engine::baseline::RegexBaseline;
    use sluice_engine::corpus::generate::labelled;
    let ruleset = Ruleset::embedded_default();
    let msgs = labelled(&ruleset, 1, 2000);
    let bytes: usize = msgs.iter().map(|m| m.message.len()).sum();
    let rules = CompiledRules::compile(ruleset.clone()).unwrap();
    let mut insp = Inspector::new(rules).unwrap();
    let policy = Policy::default();
    let baseline = RegexBaseline::new(&ruleset).unwrap();
    let mut g = c.benchmark_group("labelled-corpus");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("sluice", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(insp.inspect(&m.message, m.direction, None, &policy).is_ok());
            }
        })
    });
    g.bench_function("regex-baseline", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(baseline.inspect(&m.message));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, inspect, raw_scan, by_category, labelled_corpus);
criterion_main!(benches);
