//! `sluice demo`: the bundled demo corpus through the engine with the default ruleset, as a
//! table of what was forwarded, redacted and blocked, with the labels checked and the speed
//! measured.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sluice_engine::corpus::{parse, DEMO_CORPUS};
use sluice_engine::{Direction, Inspector, Policy, Verdict};

use crate::rules_args::{random_salt, RulesArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    rules: RulesArgs,
    /// Exit after the run (kept for scripts; the demo never waits today).
    #[arg(long)]
    once: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = args.once;
    let t = Instant::now();
    let rules = args.rules.compile()?;
    println!(
        "sluice demo: {} rules compiled into Hyperscan in {:.0} ms\n",
        rules.ruleset.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let entries = parse(DEMO_CORPUS, "corpus/demo.jsonl")?;
    let mut insp = Inspector::new(rules.clone())?;
    let policy = Policy {
        salt: random_salt(),
        ..Policy::default()
    };
    println!(
        "{:>3}  {:<7} {:<28} {:<8} {:<40} what",
        "#", "dir", "message", "verdict", "rules"
    );
    let mut verdicts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_category: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (i, e) in entries.iter().enumerate() {
        let res = insp.inspect(&e.message, e.direction, None, &policy)?;
        let info = res.info();
        let what = match info {
            Some(i) => match (&i.method, &i.tool) {
                (Some(m), Some(t)) => format!("{} {m} {t}", i.kind.as_str()),
                (Some(m), None) => format!("{} {m}", i.kind.as_str()),
                _ => i.kind.as_str().to_string(),
            },
            None => "?".into(),
        };
        let mut ids: Vec<&str> = res.findings.iter().map(|f| f.rule_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        for f in &res.findings {
            *by_category.entry(f.category.as_str()).or_default() += 1;
        }
        let mut found: Vec<(String, String)> = res
            .findings
            .iter()
            .map(|f| (f.rule_id.clone(), f.pointer.clone()))
            .collect();
        found.sort();
        found.dedup();
        for x in &e.expected {
            if found.contains(&(x.rule.clone(), x.pointer.clone())) {
                tp += 1;
            } else {
                fn_ += 1;
            }
        }
        fp += found
            .iter()
            .filter(|(r, p)| !e.expected.iter().any(|x| &x.rule == r && &x.pointer == p))
            .count();
        *verdicts.entry(res.verdict.name()).or_default() += 1;
        let rules_col = if ids.is_empty() {
            "-".to_string()
        } else {
            truncate(&ids.join(","), 40)
        };
        println!(
            "{:>3}  {:<7} {:<28} {:<8} {:<40} {}",
            i + 1,
            match e.direction {
                Direction::ClientToServer => "c->s",
                Direction::ServerToClient => "s->c",
            },
            truncate(&what, 28),
            res.verdict.name(),
            rules_col,
            e.note
        );
        if let Verdict::Redacted(bytes) = &res.verdict {
            let text = String::from_utf8_lossy(bytes);
            if let Some(p) = text.find("[REDACTED:") {
                let from = text[..p].char_indices().rev().nth(30).map_or(0, |(i, _)| i);
                let to = (p + 60).min(text.len());
                let to = (to..=text.len())
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(text.len());
                println!(
                    "{:>5}  forwarded: …{}…",
                    "",
                    &text[from..to].replace('\n', "\\n")
                );
            }
        }
    }
    println!();
    let v: Vec<String> = verdicts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let c: Vec<String> = by_category
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    println!("verdicts: {}", v.join(", "));
    println!("findings: {}", c.join(", "));
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    println!(
        "against the corpus labels: {tp} found as labelled, {fp} unlabelled, {fn_} missed (precision {precision:.2}, recall {recall:.2})"
    );
    let bytes: usize = entries.iter().map(|e| e.message.len()).sum();
    let (mut n, start) = (0usize, Instant::now());
    while start.elapsed() < Duration::from_millis(500) {
        for e in &entries {
            insp.inspect(&e.message, e.direction, None, &policy)?;
        }
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "speed: {:.1} µs per message on average, {:.0} MB/s (one thread, small messages; `cargo bench` for sizes)",
        secs * 1e6 / (n * entries.len()) as f64,
        (n * bytes) as f64 / secs / 1e6
    );
    Ok(ExitCode::SUCCESS)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
