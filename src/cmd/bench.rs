//! `sluice bench`: a ruleset against a labelled corpus: precision, recall and F1 per category
//! and per rule, full-inspection throughput, the `regex`-crate baseline in the same run, and
//! what each rule costs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::json;
use sluice_engine::baseline::RegexBaseline;
use sluice_engine::compile::CacheConfig;
use sluice_engine::corpus::generate::labelled;
use sluice_engine::corpus::score::{Counts, Score};
use sluice_engine::corpus::values::ValueScore;
use sluice_engine::corpus::{parse, CorpusEntry};
use sluice_engine::{Action, CompiledRules, Inspector, Policy, Ruleset, Scanner, Scope, Verdict};

use super::corpus::DEFAULT_BENIGN;
use crate::rules_args::RulesArgs;

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  sluice bench\n  sluice bench --add-rules ours.toml --corpus traffic.jsonl --json > bench.json\n\n\
Without --corpus, the labelled corpus `sluice corpus generate` writes (seed 1) is generated in \
memory from the rules in use. Throughput is one thread; the machine's other work counts."
)]
pub struct Args {
    #[command(flatten)]
    rules: RulesArgs,
    /// Labelled corpus (JSON lines, see `sluice corpus generate`).
    #[arg(long, value_name = "FILE")]
    corpus: Option<PathBuf>,
    /// One JSON object on stdout instead of tables.
    #[arg(long)]
    json: bool,
    /// Seconds per throughput measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Skip the per-rule cost profile.
    #[arg(long)]
    no_cost: bool,
    /// Rules in the leave-one-out part of the cost profile (the most expensive alone).
    #[arg(long, default_value_t = 8)]
    leave_one_out: usize,
}

struct Throughput {
    mb_s: f64,
    msgs_s: f64,
}

fn measure(seconds: f64, bytes: usize, msgs: usize, mut pass: impl FnMut()) -> Throughput {
    pass(); // warm caches
    let (start, mut n) = (Instant::now(), 0usize);
    while n == 0 || start.elapsed().as_secs_f64() < seconds {
        pass();
        n += 1;
    }
    let s = start.elapsed().as_secs_f64();
    Throughput {
        mb_s: (n * bytes) as f64 / s / 1e6,
        msgs_s: (n * msgs) as f64 / s,
    }
}

/// Seconds for the fastest of `reps` raw scans of `text` with `rules`.
fn scan_time(rules: &Arc<CompiledRules>, text: &[u8], reps: usize) -> anyhow::Result<f64> {
    let mut s = Scanner::new(rules.clone())?;
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        s.scan_text(text, Scope::Results)?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ruleset = args.rules.load()?;
    let rules = CompiledRules::compile(ruleset.clone()).context("compiling the ruleset")?;
    let (name, entries) = match &args.corpus {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read corpus {}", p.display()))?;
            (
                p.display().to_string(),
                parse(&text, &p.display().to_string())?,
            )
        }
        None => {
            let mut buf = Vec::new();
            for l in labelled(&ruleset, 1, DEFAULT_BENIGN) {
                l.write_line(&mut buf)?;
            }
            let text = String::from_utf8(buf)?;
            (
                "generated labelled corpus (seed 1)".to_string(),
                parse(&text, "generated")?,
            )
        }
    };
    anyhow::ensure!(!entries.is_empty(), "{name}: no messages");
    let bytes: usize = entries.iter().map(|e| e.message.len()).sum();
    let labelled_msgs = entries.iter().filter(|e| !e.is_clean()).count();
    let by_rule = entries.iter().any(|e| !e.expected.is_empty()) || !by_value_labels(&entries);

    // Quality: every finding, nothing changed (monitor), against the labels.
    let mut insp = Inspector::new(rules.clone())?;
    let monitor = Policy::with_mode(Action::Monitor);
    let category_of = |id: &str| {
        rules
            .ruleset
            .rules
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.category)
    };
    // Labels by value are scored on what would be forwarded with every finding redacted (as
    // `shared/eval/score.py` does with `sluice inspect --mode redact`).
    let by_value = by_value_labels(&entries);
    let quality_policy = if by_value {
        Policy::with_mode(Action::Redact)
    } else {
        monitor
    };
    let mut score = Score::default();
    let mut values = ValueScore::default();
    let mut errors = 0usize;
    for e in &entries {
        match insp.inspect(&e.message, e.direction, None, &quality_policy) {
            Ok(i) => {
                let found: Vec<_> = i
                    .findings
                    .iter()
                    .map(|f| (f.rule_id.clone(), f.category, f.pointer.clone()))
                    .collect();
                if e.values.is_empty() {
                    score.add(e, &found, category_of);
                }
                if by_value {
                    let ids: Vec<String> = found.into_iter().map(|(r, _, _)| r).collect();
                    values.add(e, &i.verdict, &ids);
                }
            }
            Err(_) => {
                errors += 1;
                // Not inspected is not forwarded (fail closed).
                if by_value {
                    values.add(e, &Verdict::Block { response: None }, &[]);
                }
            }
        }
    }

    // Speed: full inspection with the rules' own actions, one thread; then the baseline.
    let policy = Policy::default();
    let full = measure(args.seconds, bytes, entries.len(), || {
        for e in &entries {
            let _ = insp.inspect(&e.message, e.direction, None, &policy);
        }
    });
    let baseline = RegexBaseline::new(&ruleset).context("the regex baseline")?;
    let base = measure(args.seconds, bytes, entries.len(), || {
        for e in &entries {
            let _ = baseline.inspect(&e.message);
        }
    });

    let cost = if args.no_cost {
        Vec::new()
    } else {
        cost_profile(&ruleset, &rules, &entries, args.leave_one_out)?
    };

    if args.json {
        let counts = |c: &Counts| json!({"tp": c.tp, "fp": c.fp, "fn": c.fn_, "precision": c.precision(), "recall": c.recall(), "f1": c.f1()});
        let out = json!({
            "corpus": name,
            "messages": entries.len(),
            "labelled_messages": labelled_msgs,
            "bytes": bytes,
            "inspection_errors": errors,
            "categories": score.by_category.iter().map(|(k, c)| (k.as_str().to_string(), counts(c))).collect::<serde_json::Map<_, _>>(),
            "rules": score.by_rule.iter().map(|(k, c)| (k.clone(), counts(c))).collect::<serde_json::Map<_, _>>(),
            "missed": score.missed.iter().map(|m| json!({"rule": m.rule, "pointer": m.pointer, "line": m.line, "note": m.note})).collect::<Vec<_>>(),
            "false_alarms": score.false_alarms.iter().map(|m| json!({"rule": m.rule, "pointer": m.pointer, "line": m.line, "note": m.note})).collect::<Vec<_>>(),
            "by_value": values_json(&values),
            "throughput": {"mb_per_s": full.mb_s, "messages_per_s": full.msgs_s},
            "regex_baseline": {"mb_per_s": base.mb_s, "messages_per_s": base.msgs_s},
            "speedup_vs_regex": full.mb_s / base.mb_s,
            "cost": cost.iter().map(|c| json!({"rule": c.rule, "alone_mb_per_s": c.alone_mb_s, "share_of_database": c.share, "slowdown_when_added": c.leave_one_out})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }

    println!(
        "corpus: {name}: {} messages ({labelled_msgs} with labels), {:.1} MB; rules: {}",
        entries.len(),
        bytes as f64 / 1e6,
        ruleset.len()
    );
    if errors > 0 {
        println!("  {errors} messages could not be inspected (malformed)");
    }
    print_values(&values);
    if by_rule {
        println!(
            "\n{:<14} {:>9} {:>7} {:>6} {:>6} {:>5} {:>5}",
            "category", "precision", "recall", "F1", "tp", "fp", "fn"
        );
        for (cat, c) in &score.by_category {
            println!(
                "{:<14} {:>9.3} {:>7.3} {:>6.3} {:>6} {:>5} {:>5}",
                cat.as_str(),
                c.precision(),
                c.recall(),
                c.f1(),
                c.tp,
                c.fp,
                c.fn_
            );
        }
        let imperfect: Vec<_> = score
            .by_rule
            .iter()
            .filter(|(_, c)| c.fp > 0 || c.fn_ > 0)
            .collect();
        println!(
            "\nper rule: {} of {} rules with labels or findings are exact; the others:",
            score.by_rule.len() - imperfect.len(),
            score.by_rule.len()
        );
        for (rule, c) in &imperfect {
            println!(
                "  {:<40} precision {:.3} recall {:.3} (tp {}, fp {}, fn {})",
                rule,
                c.precision(),
                c.recall(),
                c.tp,
                c.fp,
                c.fn_
            );
        }
        for (what, list) in [
            ("missed", &score.missed),
            ("false alarms", &score.false_alarms),
        ] {
            if !list.is_empty() {
                println!("\n{what} ({}):", list.len());
                for m in list.iter().take(25) {
                    println!(
                        "  {} at {} (line {}: {})",
                        m.rule, m.pointer, m.line, m.note
                    );
                }
                if list.len() > 25 {
                    println!("  ... {} more (--json lists all)", list.len() - 25);
                }
            }
        }
    }
    println!(
        "\nfull inspection, one thread: {:.0} MB/s, {:.0} messages/s",
        full.mb_s, full.msgs_s
    );
    println!(
        "regex crate, same rules and messages (parse, RegexSet, locate): {:.0} MB/s, {:.0} messages/s; sluice is {:.1}x",
        base.mb_s,
        base.msgs_s,
        full.mb_s / base.mb_s
    );
    if !cost.is_empty() {
        println!("\nwhat rules cost (scan of the corpus's messages as text):");
        println!(
            "  {:<40} {:>12} {:>9} {:>14}",
            "rule", "alone MB/s", "share", "when added"
        );
        for c in &cost {
            println!(
                "  {:<40} {:>12.0} {:>8.1}% {:>14}",
                c.rule,
                c.alone_mb_s,
                c.share * 100.0,
                c.leave_one_out
                    .map_or("-".to_string(), |x| format!("{:+.1}%", x * 100.0))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether any entry is labelled by value (then findings are scored by value only, unless
/// some entries also carry labels by rule).
fn by_value_labels(entries: &[CorpusEntry]) -> bool {
    entries.iter().any(|e| !e.values.is_empty())
}

/// Labels by value, for `--json`: `null` when the corpus has none.
fn values_json(v: &ValueScore) -> serde_json::Value {
    if v.is_empty() {
        return serde_json::Value::Null;
    }
    json!({
        "recall": v.recall.iter().map(|(k, r)| (k.clone(), json!({"found": r.found, "total": r.total, "recall": r.rate()}))).collect::<serde_json::Map<_, _>>(),
        "clean_messages": v.clean,
        "false_alarm_rate": v.false_alarm_rate(),
        "false_alarms": v.false_alarms.iter().map(|a| json!({"line": a.line, "note": a.note, "rules": a.rules})).collect::<Vec<_>>(),
        "missed": v.missed.iter().map(|m| json!({"line": m.line, "note": m.note, "category": m.label.category, "type": m.label.kind, "value": m.label.value})).collect::<Vec<_>>(),
    })
}

/// Recall per category and type, false alarms on messages labelled `[]`, and the first
/// misses with their values (labelled test data, so the values are the point).
fn print_values(v: &ValueScore) {
    if v.is_empty() {
        return;
    }
    println!("\nby value (found: no longer in what sluice would forward, every finding redacted):");
    for (k, r) in &v.recall {
        println!(
            "  recall {:<34} {:>5}/{:<5} {:.3}",
            k,
            r.found,
            r.total,
            r.rate()
        );
    }
    println!(
        "  false alarms on messages labelled []: {}/{} {:.3}",
        v.false_alarms.len(),
        v.clean,
        v.false_alarm_rate()
    );
    for m in v.missed.iter().take(25) {
        let value: String = m.label.value.chars().take(100).collect();
        println!(
            "  missed (line {}, {}, {}): {value:?}",
            m.line,
            m.note,
            m.label.kind.as_deref().unwrap_or("-")
        );
    }
    for a in v.false_alarms.iter().take(25) {
        println!(
            "  false alarm (line {}, {}): {}",
            a.line,
            a.note,
            a.rules.join(", ")
        );
    }
    let more = v.missed.len().saturating_sub(25) + v.false_alarms.len().saturating_sub(25);
    if more > 0 {
        println!("  ... {more} more (--json lists all)");
    }
}

struct RuleCost {
    rule: String,
    alone_mb_s: f64,
    /// The rule's scan time alone over the whole database's.
    share: f64,
    /// How much slower the whole database is with the rule than without it.
    leave_one_out: Option<f64>,
}

/// Each rule alone over the corpus text, then the most expensive ones left out of the whole
/// database one at a time (compiled without the cache: a leave-one-out database is used once).
fn cost_profile(
    ruleset: &Ruleset,
    rules: &Arc<CompiledRules>,
    entries: &[CorpusEntry],
    leave_one_out: usize,
) -> anyhow::Result<Vec<RuleCost>> {
    let text: Vec<u8> = entries
        .iter()
        .flat_map(|e| e.message.iter().copied())
        .collect();
    let all = scan_time(rules, &text, 3)?;
    let no_cache = CacheConfig { dir: None };
    let mut out = Vec::new();
    for r in &ruleset.rules {
        let one = Ruleset {
            rules: vec![r.clone()],
        };
        let compiled = CompiledRules::compile_with_cache(one, &no_cache)?;
        let t = scan_time(&compiled, &text, 3)?;
        out.push(RuleCost {
            rule: r.id.clone(),
            alone_mb_s: text.len() as f64 / t / 1e6,
            share: t / all,
            leave_one_out: None,
        });
    }
    out.sort_by(|a, b| b.share.total_cmp(&a.share));
    for c in out.iter_mut().take(leave_one_out) {
        let rest = Ruleset {
            rules: ruleset
                .rules
                .iter()
                .filter(|r| r.id != c.rule)
                .cloned()
                .collect(),
        };
        if rest.is_empty() {
            continue;
        }
        let compiled = CompiledRules::compile_with_cache(rest, &no_cache)?;
        // Both measured now, back to back, so a change in the machine's load hits both.
        let (mut with, mut without) = (f64::MAX, f64::MAX);
        for _ in 0..3 {
            with = with.min(scan_time(rules, &text, 2)?);
            without = without.min(scan_time(&compiled, &text, 2)?);
        }
        c.leave_one_out = Some(with / without - 1.0);
    }
    out.truncate(leave_one_out.max(10));
    Ok(out)
}
