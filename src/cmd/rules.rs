//! `sluice rules`: what the ruleset in use holds.

use std::process::ExitCode;

use crate::rules_args::RulesArgs;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  sluice rules\n  sluice rules --rules custom.toml --compile")]
pub struct Args {
    #[command(flatten)]
    rules: RulesArgs,
    /// Also compile the ruleset with Hyperscan and report how long it took.
    #[arg(long)]
    compile: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let set = args.rules.load()?;
    println!(
        "{:<40} {:<13} {:<9} {:<7} scope",
        "id", "category", "severity", "action"
    );
    for r in &set.rules {
        let scopes: Vec<&str> = r.scopes.iter().map(|s| s.as_str()).collect();
        println!(
            "{:<40} {:<13} {:<9} {:<7} {}",
            r.id,
            r.category.as_str(),
            r.severity.as_str(),
            r.action.as_str(),
            scopes.join(",")
        );
    }
    println!("{} rules", set.len());
    if args.compile {
        let t = std::time::Instant::now();
        let c = sluice_engine::CompiledRules::compile(set)?;
        c.build_confirmers()?;
        println!(
            "compiled in {:.1} ms (block database {} bytes, longest confirmation window {} bytes)",
            t.elapsed().as_secs_f64() * 1e3,
            c.block.size().unwrap_or(0),
            c.max_window
        );
    }
    Ok(ExitCode::SUCCESS)
}
