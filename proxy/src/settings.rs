//! The one place where a parsed config ([`crate::config::Config`], syntax only) is checked
//! as a whole and turned into what runs: the ruleset compiled, the engine policy checked
//! against it, the gateway controls built (with the JWKS), the worker pool started. `serve`
//! uses it at start, for `--check` and on every reload; `stdio` uses it at start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_engine::{CompileError, CompiledRules, LoadError, Policy, Pool, Ruleset, ScanError};

use crate::audit::AuditKey;
use crate::audit::{AuditError, AuditLog, AuditOptions, CheckpointOptions, KeyError, Seal};
use crate::config::Config;
use crate::live::Live;
use crate::policy::{Gateway, GatewayError};

/// Why a config cannot run. Every message starts with the config's name as shown to the
/// user (its path, or `(flags)`).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A rules file could not be read or parsed (the message names the file and line).
    #[error("{shown}: {error}")]
    Rules {
        /// The config's name.
        shown: String,
        /// What was wrong, with the rules file's path (in the message, not as a source, so
        /// that it is printed once).
        error: LoadError,
    },
    /// No rule left to run (`[rules] files` named only empty files).
    #[error("{shown}: no rules loaded")]
    NoRules {
        /// The config's name.
        shown: String,
    },
    /// Hyperscan refused the ruleset.
    #[error("{shown}: compiling the ruleset: {error}")]
    Compile {
        /// The config's name.
        shown: String,
        /// Hyperscan's reason.
        error: CompileError,
    },
    /// `[policy]` or `[approval]` names a rule the ruleset does not have, or a policy value
    /// is invalid.
    #[error("{shown}: {message}")]
    Policy {
        /// The config's name.
        shown: String,
        /// What is wrong.
        message: String,
    },
    /// The audit salt file is unreadable or too short.
    #[error("audit salt file {}: {message}", path.display())]
    Salt {
        /// The salt file.
        path: PathBuf,
        /// What is wrong (never the salt).
        message: String,
    },
    /// `[audit]` keys that cannot go together (a key or checkpoint with no audit file).
    #[error("{shown}: {message}")]
    Audit {
        /// The config's name.
        shown: String,
        /// What is wrong.
        message: String,
    },
    /// The audit key cannot be read, or is too short (the message names its file or
    /// variable, never the key).
    #[error(transparent)]
    AuditKey(#[from] KeyError),
    /// The audit file cannot be written: locked by another process, a chain that cannot be
    /// continued, a file that falls short of its checkpoint.
    #[error(transparent)]
    AuditFile(#[from] AuditError),
    /// A gateway section is inconsistent, or the JWKS could not be loaded.
    #[error("{shown}: {error}")]
    Gateway {
        /// The config's name.
        shown: String,
        /// What is wrong.
        error: GatewayError,
    },
    /// The inspection workers could not start.
    #[error("starting the inspection workers: {0}")]
    Pool(#[from] ScanError),
}

/// Checks what the syntax alone cannot: the gateway sections against each other (a
/// `[[sequence]]` naming an unknown tag, a `[[tool]]` scoped to an unknown upstream prefix,
/// ...). Needs no network and compiles nothing.
pub fn check(cfg: &Config, shown: &str) -> Result<(), SettingsError> {
    if let Some(admin) = &cfg.admin {
        let clash = admin.listen == cfg.listen.address
            || cfg
                .listen
                .http3
                .as_ref()
                .is_some_and(|h| h.address == admin.listen);
        if clash && admin.listen.port() != 0 {
            return Err(SettingsError::Policy {
                shown: shown.to_string(),
                message: format!(
                    "[admin] listen = {} is also a [listen] address: give the admin API its own port",
                    admin.listen
                ),
            });
        }
    }
    check_audit(cfg, shown)?;
    Gateway::validate(cfg).map_err(|error| SettingsError::Gateway {
        shown: shown.to_string(),
        error,
    })
}

/// `[audit]` as a whole: a key or a checkpoint needs rows in a file (`path`, or `--audit`),
/// and a checkpoint cannot follow rows on stdout, which start a new chain at every start.
fn check_audit(cfg: &Config, shown: &str) -> Result<(), SettingsError> {
    let a = &cfg.audit;
    let error = |message: &str| SettingsError::Audit {
        shown: shown.to_string(),
        message: message.to_string(),
    };
    let keyed = a.key_file.is_some() || a.key_env.is_some();
    match &a.path {
        None if keyed || a.checkpoint.is_some() => Err(error(
            "[audit] key_file, key_env and checkpoint need [audit] path (or --audit FILE)",
        )),
        Some(p) if p.as_os_str() == "-" && a.checkpoint.is_some() => Err(error(
            "[audit] checkpoint needs rows in a file: rows on stdout (path = \"-\") start a new chain at every start",
        )),
        _ => Ok(()),
    }
}

/// How the config's audit rows are sealed: HMAC-SHA-256 under the key of `key_file` or
/// `key_env`, else plain SHA-256. Errors: [`SettingsError::AuditKey`].
pub fn audit_seal(cfg: &Config) -> Result<Seal, SettingsError> {
    let key = match (&cfg.audit.key_file, &cfg.audit.key_env) {
        (Some(p), _) => Some(AuditKey::from_file(p)?),
        (None, Some(var)) => Some(AuditKey::from_env(var)?),
        (None, None) => None,
    };
    Ok(key.map_or(Seal::Hash, Seal::Mac))
}

/// The audit trail the config asks for, opened (and locked) to append to; `None` without
/// `[audit] path`. Errors: [`SettingsError::Audit`], [`SettingsError::AuditKey`],
/// [`SettingsError::AuditFile`].
pub fn audit_log(cfg: &Config, shown: &str) -> Result<Option<AuditLog>, SettingsError> {
    check_audit(cfg, shown)?;
    let Some(path) = &cfg.audit.path else {
        return Ok(None);
    };
    let opts = AuditOptions {
        every_message: cfg.audit.all,
        seal: audit_seal(cfg)?,
        checkpoint: cfg.audit.checkpoint.as_ref().map(|p| CheckpointOptions {
            path: p.clone(),
            interval: cfg.audit.checkpoint_interval,
        }),
    };
    Ok(Some(AuditLog::open(path, opts)?))
}

/// A warning for a config that holds calls for approval with no admin API to approve them
/// (`[admin]` with a `key_sha256`): every held call would wait for its timeout and be denied.
pub fn approval_warning(cfg: &Config) -> Option<String> {
    let holds = cfg.tools.iter().any(|t| t.approve) || !cfg.approval.rules.is_empty();
    let approvable = cfg.admin.as_ref().is_some_and(|a| a.key_sha256.is_some());
    (holds && !approvable).then(|| {
        "calls are held for approval ([[tool]] approve = true or [approval] rules) but no \
         [admin] listener with a key_sha256 is configured: nobody can approve them, and each \
         is denied after [approval] timeout"
            .to_string()
    })
}

/// A warning for a listener on a wildcard address (0.0.0.0, ::) with no `[listen]
/// allowed_hosts`: it accepts connections from anywhere but answers only requests addressed
/// to a loopback name, so remote clients get 403 until the names they use are listed. (The
/// DNS-rebinding defence has no safe default for names it cannot know.)
pub fn host_warning(cfg: &Config) -> Option<String> {
    let ip = cfg.listen.address.ip();
    (ip.is_unspecified() && cfg.listen.allowed_hosts.is_empty()).then(|| {
        format!(
            "[listen] address {ip} accepts remote connections, but with no [listen] \
             allowed_hosts only requests addressed to localhost or a loopback address are \
             served: list the names clients use (allowed_hosts = [\"mcp.example.com\"], or \
             --allow-host mcp.example.com), others get 403"
        )
    })
}

/// The ruleset of `files` (the embedded default when empty) plus `add`.
pub fn ruleset(files: &[PathBuf], add: &[PathBuf]) -> Result<Ruleset, LoadError> {
    let mut set = if files.is_empty() {
        Ruleset::embedded_default()
    } else {
        Ruleset::default()
    };
    for p in files.iter().chain(add) {
        set.extend(Ruleset::from_file(p)?)?;
    }
    Ok(set)
}

/// The compiled rules and the engine policy of a config, checked against each other (a
/// `[policy.rules]` id the ruleset lacks is an error), with the fingerprint salt.
pub fn rules_and_policy(
    cfg: &Config,
    shown: &str,
) -> Result<(Arc<CompiledRules>, Policy), SettingsError> {
    let set = ruleset(&cfg.rules.files, &cfg.rules.add).map_err(|error| SettingsError::Rules {
        shown: shown.to_string(),
        error,
    })?;
    if set.is_empty() {
        return Err(SettingsError::NoRules {
            shown: shown.to_string(),
        });
    }
    let rules = CompiledRules::compile(set).map_err(|error| SettingsError::Compile {
        shown: shown.to_string(),
        error,
    })?;
    let policy_error = |message: String| SettingsError::Policy {
        shown: shown.to_string(),
        message,
    };
    let unknown = cfg
        .policy
        .unknown_rule_ids(|id| rules.ruleset.get(id).is_some());
    if !unknown.is_empty() {
        return Err(policy_error(format!(
            "[policy.rules] names rules the ruleset does not have: {} (list them with `sluice rules`)",
            unknown.join(", ")
        )));
    }
    let mut policy = cfg
        .policy
        .to_policy(&cfg.limits)
        .map_err(|e| policy_error(e.to_string()))?;
    policy.salt = match &cfg.audit.salt_file {
        Some(p) => read_salt(p)?,
        None => random_salt(),
    };
    Ok((rules, policy))
}

/// Everything a reload swaps, built from a config: the rules on `threads` inspection workers,
/// the policy and the gateway. The ruleset compiles off the async threads.
pub async fn live(cfg: &Config, shown: &str, threads: usize) -> Result<Live, SettingsError> {
    check(cfg, shown)?;
    let (cfg2, shown2) = (cfg.clone(), shown.to_string());
    let (rules, policy) = tokio::task::spawn_blocking(move || rules_and_policy(&cfg2, &shown2))
        .await
        .map_err(|e| SettingsError::Policy {
            shown: shown.to_string(),
            message: format!("compiling the ruleset stopped: {e}"),
        })??;
    let unknown: Vec<&String> = cfg
        .approval
        .rules
        .iter()
        .filter(|id| rules.ruleset.get(id).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(SettingsError::Policy {
            shown: shown.to_string(),
            message: format!("[approval] rules names rules the ruleset does not have: {unknown:?}"),
        });
    }
    let gateway = Gateway::load(cfg)
        .await
        .map_err(|error| SettingsError::Gateway {
            shown: shown.to_string(),
            error,
        })?;
    Ok(Live {
        pool: Arc::new(Pool::new(rules, threads)?.with_inline_max(cfg.limits.scan_inline_max)),
        policy: Arc::new(policy),
        gateway: Arc::new(gateway),
        generation: 1,
    })
}

/// The salt of fingerprints and `hash` markers, from a file of at least 16 bytes
/// (surrounding whitespace ignored).
fn read_salt(path: &Path) -> Result<Vec<u8>, SettingsError> {
    let salt_error = |message: String| SettingsError::Salt {
        path: path.to_path_buf(),
        message,
    };
    let salt = std::fs::read(path).map_err(|e| salt_error(format!("cannot read it: {e}")))?;
    let salt = salt.trim_ascii().to_vec();
    if salt.len() < 16 {
        return Err(salt_error(format!(
            "it holds {} bytes; use at least 16 (e.g. `head -c 32 /dev/urandom | base64 > FILE`)",
            salt.len()
        )));
    }
    Ok(salt)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Why the config is refused, if it is.
    fn refusal(text: &str) -> Option<String> {
        match Config::from_str(text, "x.toml") {
            Err(e) => Some(e.to_string()),
            Ok(cfg) => check(&cfg, "x.toml").err().map(|e| e.to_string()),
        }
    }

    #[test]
    fn globs_past_the_bound_are_refused_not_a_panic() {
        let long = "x".repeat(5000);
        let key = "0".repeat(64);
        for text in [
            format!("[[tool]]\nname = \"{long}*\"\n"),
            format!("[[client]]\nname = \"c\"\nkey_sha256 = \"{key}\"\ntools = [\"{long}\"]\n"),
            format!("[[upstream]]\nurl = \"http://a:1/mcp\"\nresources = [\"{long}\"]\n"),
            format!("[egress]\ndeny_hosts = [\"*.{long}\"]\n"),
        ] {
            let err = refusal(&text).expect("refused");
            assert!(err.starts_with("x.toml: "), "{err}");
            assert!(err.contains("longer than 4096 bytes"), "{err}");
            assert!(err.len() < 300, "the pattern is shown cut: {err}");
        }
    }

    #[test]
    fn gateway_sections_are_checked_against_each_other_after_parsing() {
        let text =
            "[[tool]]\nname = \"a\"\ntags = [\"x\"]\n[[sequence]]\nafter = \"y\"\ndeny = \"x\"\n";
        // Syntax alone is fine; the whole is not.
        assert!(Config::from_str(text, "x.toml").is_ok());
        let err = refusal(text).expect("refused");
        assert!(
            err.contains("after = `y`: no [[tool]] has that tag"),
            "{err}"
        );
        assert!(refusal("[[tool]]\nname = \"a\"\ntags = [\"x\"]\n").is_none());
    }

    #[test]
    fn the_admin_api_needs_its_own_address_and_a_key_to_approve() {
        let clash =
            "[listen]\naddress = \"127.0.0.1:7070\"\n[admin]\nlisten = \"127.0.0.1:7070\"\n";
        assert!(refusal(clash).unwrap().contains("its own port"));
        let held = "[[tool]]\nname = \"deploy\"\napprove = true\n";
        let cfg = Config::from_str(held, "x.toml").unwrap();
        assert!(approval_warning(&cfg)
            .unwrap()
            .contains("nobody can approve"));
        let key = "0".repeat(64);
        let with_admin =
            format!("{held}[admin]\nlisten = \"127.0.0.1:9\"\nkey_sha256 = \"{key}\"\n");
        let cfg = Config::from_str(&with_admin, "x.toml").unwrap();
        assert_eq!(approval_warning(&cfg), None);
    }

    #[test]
    fn audit_keys_and_checkpoints_need_an_audit_file_and_a_long_key() {
        let needs_path = refusal("[audit]\nkey_env = \"SLUICE_TEST_AUDIT_KEY_A\"\n").unwrap();
        assert!(needs_path.contains("need [audit] path"), "{needs_path}");
        let stdout = refusal("[audit]\npath = \"-\"\ncheckpoint = \"cp\"\n").unwrap();
        assert!(stdout.contains("rows on stdout"), "{stdout}");
        assert!(refusal("[audit]\npath = \"a.jsonl\"\ncheckpoint = \"cp\"\n").is_none());
        let dir = std::env::temp_dir().join(format!("sluice-audit-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("audit.key");
        std::fs::write(&key, "fabricated-short-key\n").unwrap();
        let text = format!(
            "[audit]\npath = \"a.jsonl\"\nkey_file = \"{}\"\n",
            key.display()
        );
        let cfg = Config::from_str(&text, "x.toml").unwrap();
        let err = audit_seal(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("holds 20 bytes") && err.contains("audit.key"),
            "{err}"
        );
        assert!(!err.contains("fabricated-short-key"), "{err}");
        std::fs::write(&key, "fabricated-audit-key-long-enough-0123456789\n").unwrap();
        assert!(matches!(audit_seal(&cfg).unwrap(), Seal::Mac(_)));
        let unset = "[audit]\npath = \"a.jsonl\"\nkey_env = \"SLUICE_TEST_AUDIT_KEY_UNSET\"\n";
        let err = audit_seal(&Config::from_str(unset, "x.toml").unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .contains("SLUICE_TEST_AUDIT_KEY_UNSET is not set"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_wildcard_listener_without_host_names_is_warned_about() {
        let warning = |text: &str| host_warning(&Config::from_str(text, "x.toml").unwrap());
        let wildcard = "[listen]\naddress = \"0.0.0.0:7070\"\n";
        assert!(warning(wildcard).unwrap().contains("allowed_hosts"));
        assert!(warning("[listen]\naddress = \"[::]:7070\"\n").is_some());
        let named = format!("{wildcard}allowed_hosts = [\"mcp.example.com\"]\n");
        assert_eq!(warning(&named), None);
        assert_eq!(warning(""), None, "the default listens on loopback");
        assert_eq!(warning("[listen]\naddress = \"10.0.0.5:7070\"\n"), None);
    }

    #[test]
    fn a_short_salt_file_is_refused_without_showing_it() {
        let dir = std::env::temp_dir().join(format!("sluice-salt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("salt");
        std::fs::write(&path, "tiny-secret\n").unwrap();
        let err = read_salt(&path).unwrap_err().to_string();
        assert!(err.contains("holds 11 bytes"), "{err}");
        assert!(!err.contains("tiny-secret"), "{err}");
        std::fs::write(&path, "a".repeat(32)).unwrap();
        assert_eq!(read_salt(&path).unwrap().len(), 32);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
