//! `sluice check`: rules checked before rollout; exit 1 on any failure, each naming its rule.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use sluice_engine::check::{check, CheckOptions, Severity};
use sluice_engine::Ruleset;

#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  sluice check --rules ours.toml --fuzz-seconds 30\n\n\
For each rule: it compiles in Hyperscan (block and streaming) and in the confirming regex \
engine; every example is found and no negative example is, each embedded in an MCP message \
and inspected through the full path; it is not too broad (fires on generated benign traffic \
above --max-benign-hits), matches no empty string, has the capture group it names, and is \
warned about when no literal anchors it. Differential fuzzing feeds strings generated from \
each pattern, near misses, and both embedded in benign text and split at random points, to \
Hyperscan block mode, Hyperscan streaming mode and the regex crate; a disagreement is a \
failure, shown with a minimized input. Finally the rules' cost: the base ruleset's scan of \
benign traffic with the custom rules added against without. Exit 0 when everything passes, \
1 when a check fails, 2 when the file cannot be read."
)]
pub struct Args {
    /// The rules file(s) to check.
    #[arg(long = "rules", value_name = "FILE", required = true)]
    rules: Vec<PathBuf>,
    /// Time for differential fuzzing, shared by the rules.
    #[arg(long, default_value_t = 5.0)]
    fuzz_seconds: f64,
    /// Largest fraction of benign messages a rule may fire on.
    #[arg(long, default_value_t = 0.01)]
    max_benign_hits: f64,
    /// Largest slowdown of the default ruleset's scan the rules may cause.
    #[arg(long, default_value_t = 1.5)]
    max_slowdown: f64,
    /// Measure cost against these rules instead of the embedded default (repeatable).
    #[arg(long, value_name = "FILE")]
    base: Vec<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut custom = Ruleset::default();
    for p in &args.rules {
        custom.extend(Ruleset::from_file(p)?)?;
    }
    anyhow::ensure!(!custom.is_empty(), "no rules in {:?}", args.rules);
    let base = if args.base.is_empty() {
        Ruleset::embedded_default()
    } else {
        let mut b = Ruleset::default();
        for p in &args.base {
            b.extend(Ruleset::from_file(p)?)?;
        }
        b
    };
    let opts = CheckOptions {
        fuzz: Duration::from_secs_f64(args.fuzz_seconds.max(0.0)),
        max_benign_hits: args.max_benign_hits,
        max_slowdown: args.max_slowdown,
        seed: args.seed,
        ..CheckOptions::default()
    };
    let report = check(&custom, &base, &opts);
    for p in &report.problems {
        let level = match p.severity {
            Severity::Fail => "FAIL",
            Severity::Warn => "warn",
        };
        println!("{level} {} [{}]: {}", p.rule, p.check, p.message);
    }
    let fails = report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Fail)
        .count();
    println!(
        "{} rule(s) checked; {} differential cases; cost: {}; {}",
        report.rules,
        report.fuzz_cases,
        report.slowdown.map_or("not measured".into(), |r| format!(
            "{r:.2}x the base ruleset's scan time"
        )),
        if fails == 0 {
            "all checks pass".to_string()
        } else {
            format!("{fails} failure(s)")
        }
    );
    Ok(if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
