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
    pub fn load(&self) -> anyhow::Result<Ruleset> {
        let mut set = if self.rules.is_empty() {
            Ruleset::embedded_default()
        } else {
            Ruleset::default()
        };
        for p in self.rules.iter().chain(&self.add_rules) {
            set.extend(Ruleset::from_file(p)?)?;
        }
        anyhow::ensure!(!set.is_empty(), "no rules loaded");
        Ok(set)
    }

    pub fn compile(&self) -> anyhow::Result<Arc<CompiledRules>> {
        let set = self.load()?;
        CompiledRules::compile(set).context("compiling the ruleset")
    }
}

/// 32 unpredictable bytes for fingerprint salts, from the kernel.
pub fn random_salt() -> Vec<u8> {
    use std::io::Read;
    let mut salt = vec![0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(&mut salt).is_ok() {
            return salt;
        }
    }
    // No /dev/urandom: fall back to time and pid, weaker but never fixed.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{t}-{}", std::process::id()).into_bytes()
}
