//! The parts of a `sluice.toml` every front end shares: the ruleset and the policy, checked
//! against each other (a `[policy.rules]` id the ruleset lacks is an error), with the audit
//! fingerprint salt.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use sluice_engine::{CompiledRules, Policy};
use sluice_proxy::config::Config;

use crate::rules_args::{random_salt, RulesArgs};

pub fn rules_and_policy(cfg: &Config, shown: &str) -> anyhow::Result<(Arc<CompiledRules>, Policy)> {
    let rules = RulesArgs {
        rules: cfg.rules.files.clone(),
        add_rules: cfg.rules.add.clone(),
    }
    .compile()?;
    let unknown = cfg
        .policy
        .unknown_rule_ids(|id| rules.ruleset.rules.iter().any(|r| r.id == id));
    anyhow::ensure!(
        unknown.is_empty(),
        "{shown}: [policy.rules] names rules the ruleset does not have: {} (list them with `sluice rules`)",
        unknown.join(", ")
    );
    let mut policy = cfg
        .policy
        .to_policy(cfg.limits.max_body)
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    policy.salt = match &cfg.audit.salt_file {
        Some(p) => read_salt(p)?,
        None => random_salt(),
    };
    Ok((rules, policy))
}

fn read_salt(path: &Path) -> anyhow::Result<Vec<u8>> {
    let salt = std::fs::read(path)
        .with_context(|| format!("cannot read audit salt file {}", path.display()))?;
    let salt = salt.trim_ascii().to_vec();
    anyhow::ensure!(
        salt.len() >= 16,
        "audit salt file {} holds {} bytes; use at least 16 (e.g. `head -c 32 /dev/urandom | base64 > FILE`)",
        path.display(),
        salt.len()
    );
    Ok(salt)
}
