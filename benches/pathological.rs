//! The worst inputs we can construct for confirmation, next to prose, through the full
//! message path with the default ruleset: one 256 KiB tool result each. Read the MB/s of each
//! against `prose`; the goal is that none is over 3x slower per byte.
//!
//! Each input repeats what makes Hyperscan report a candidate at nearly every byte: the
//! keywords of the generic credential rules followed by an assignment, runs of digits (cards,
//! phones), of base64, of hex, and the literal prefixes of provider tokens.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_engine::corpus::synth::{benign_text, Rng};
use sluice_engine::{Action, CompiledRules, Direction, Inspector, Policy, Ruleset};

const SIZE: usize = 256 << 10;

/// Key names the generic rules lead with, each followed by an assignment.
const KEYWORDS: &[&str] = &[
    "password=",
    "passwd: ",
    "pwd=",
    "secret=",
    "client_secret: ",
    "token=",
    "api_key=",
    "apikey: ",
    "access_key=",
    "private_key=",
    "auth=",
    "credentials=",
    "Authorization: Bearer ",
    "X-API-Key: ",
    "?access_token=",
    "<password>",
    "--password ",
    "SECRET_KEY = ",
];

fn repeat_to(unit: &str, len: usize) -> String {
    unit.repeat(len / unit.len() + 1)[..len].to_string()
}

fn random_run(alphabet: &[u8], len: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    (0..len)
        .map(|_| alphabet[rng.below(alphabet.len())] as char)
        .collect()
}

fn inputs() -> Vec<(&'static str, String)> {
    let mut prose = String::new();
    benign_text(&mut Rng::new(3), SIZE, &mut prose);
    let mut v = vec![
        ("prose", prose),
        ("password-eq", repeat_to("password=", SIZE)),
        ("every-keyword", repeat_to(&KEYWORDS.concat(), SIZE)),
        (
            "keyword-value",
            repeat_to("api_key=Zq8vN2kLp4Rt7Wx1 ", SIZE),
        ),
        ("digits", random_run(b"0123456789", SIZE, 5)),
        ("digit-groups", repeat_to("4111 1111 1111 1111 ", SIZE)),
        (
            "base64",
            random_run(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                SIZE,
                7,
            ),
        ),
        ("hex", random_run(b"0123456789abcdef", SIZE, 9)),
        (
            "prefixes",
            repeat_to("AKIA ghp_ xoxb- sk- eyJ glpat- ", SIZE),
        ),
        (
            "pem-headers",
            repeat_to("-----BEGIN PRIVATE KEY-----\n", SIZE),
        ),
        ("urls-with-at", repeat_to("https://user:pw@h.io/ ", SIZE)),
        // Phone candidates near a phone word: each one parsed against numbering plans.
        (
            "phone-candidates",
            repeat_to("call 020 7946 0958 or +44 20 7946 0959, ", SIZE),
        ),
        ("digit-pairs", repeat_to("phone 12 34 56 78 90 ", SIZE)),
        // A decoded view full of hits of one rule in one string: base64 of a fabricated AWS
        // key id (AKIAQX7ZR2M4KD5T6WYB), repeated; each hit is checked against those kept.
        (
            "base64-key-ids",
            repeat_to("QUtJQVFYN1pSMk00S0Q1VDZXWUI= ", SIZE),
        ),
    ];
    v.shrink_to_fit();
    v
}

fn message(text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"content": [{"type": "text", "text": text}]}
    }))
    .unwrap()
}

fn pathological(c: &mut Criterion) {
    let rules = CompiledRules::compile(Ruleset::embedded_default()).unwrap();
    let mut insp = Inspector::new(rules).unwrap();
    let policy = Policy::with_mode(Action::Redact);
    let mut g = c.benchmark_group("pathological-256KiB");
    g.sample_size(10);
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    for (name, text) in inputs() {
        let msg = message(&text);
        g.throughput(Throughput::Bytes(msg.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &msg, |b, msg| {
            b.iter(|| {
                // A message the engine refuses is a result too: it must come back quickly.
                let r = insp.inspect(black_box(msg), Direction::ServerToClient, None, &policy);
                black_box(r.map(|r| r.findings.len()).unwrap_or(0))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, pathological);
criterion_main!(benches);
