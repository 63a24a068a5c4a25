//! The `--rules` / `--add-rules` options every subcommand shares.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use sluice_engine::{CompiledRules, Ruleset};

#[derive(clap::Args, Debug, Clone)]
pub struct RulesArgs {
    /// Rules file(s) to use instead of the embedded default ruleset (TOML, see
    /// rulesets/README.md). Repeat to combine files.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Rules file(s) to add to the ruleset in use (the default, or --rules).
    #[arg(long = "add-rules", value_name = "FILE")]
    pub add_rules: Vec<PathBuf>,
}

impl RulesArgs {
    /// The ruleset these options name: `--rules` files (else the embedded default) plus
    /// `--add-rules` files.
    pub fn load(&self) -> anyhow::Result<Ruleset> {
        let set = sluice_proxy::settings::ruleset(&self.rules, &self.add_rules)?;
        anyhow::ensure!(!set.is_empty(), "no rules loaded");
        Ok(set)
    }

    pub fn compile(&self) -> anyhow::Result<Arc<CompiledRules>> {
        let set = self.load()?;
        CompiledRules::compile(set).context("compiling the ruleset")
    }
}

pub use sluice_proxy::settings::random_salt;
