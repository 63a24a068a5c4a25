//! `sluice stdio -- COMMAND [ARGS...]`: wrap a stdio MCP server.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use sluice_proxy::stdio::StdioProxy;

use super::inspect::{policy_for, Mode};
use crate::rules_args::RulesArgs;
use sluice_proxy::config::Config;

#[derive(clap::Args)]
#[command(
    after_help = "The MCP client starts sluice in place of the server, e.g. in its mcpServers configuration:\n\n  \
\"files\": { \"command\": \"sluice\", \"args\": [\"stdio\", \"--mode\", \"redact\", \"--\", \"npx\", \"-y\", \"@modelcontextprotocol/server-filesystem\", \"/srv\"] }\n\n\
stdout carries the protocol, so audit rows go to --audit FILE; sluice's own messages go to stderr with the server's."
)]
pub struct Args {
    /// Rules, policy, audit and gateway controls from a sluice.toml: its [rules], [policy],
    /// [audit] sections, and the controls that need no HTTP client identity ([[tool]] tags,
    /// argument constraints and rates, [[sequence]], [egress], [pins]; a call that needs
    /// [approval] is refused: there is no admin API here). See examples/sluice.toml. Flags
    /// override its values.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// What to do with findings [default: rules, each rule's own action].
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Write one JSON line per message with findings (and per failure) to this file.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// Audit every message, not only those with findings.
    #[arg(long)]
    audit_all: bool,
    /// How redacted spans are written [default: mask].
    #[arg(long, value_name = "mask|partial|hash")]
    redaction: Option<sluice_engine::RedactStrategy>,
    /// Forward messages that cannot be inspected instead of dropping them.
    #[arg(long)]
    fail_open: bool,
    /// Largest message (one line) in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_message_bytes: usize,
    #[command(flatten)]
    rules: RulesArgs,
    /// The server to run, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (mut cfg, shown) = match &args.config {
        Some(p) => (Config::from_file(p)?, p.display().to_string()),
        None => (Config::from_str("", "(flags)")?, "(flags)".to_string()),
    };
    if !args.rules.rules.is_empty() {
        cfg.rules.files = args.rules.rules.clone();
    }
    cfg.rules.add.extend(args.rules.add_rules.iter().cloned());
    if let Some(p) = &args.audit {
        cfg.audit.path = Some(p.clone());
    }
    cfg.audit.all |= args.audit_all;
    let (rules, mut policy) = sluice_proxy::settings::rules_and_policy(&cfg, &shown)?;
    if let Some(m) = args.mode {
        policy.mode = policy_for(m).mode;
    }
    if let Some(r) = args.redaction {
        policy.redaction = r;
    }
    policy.fail_open |= args.fail_open;
    policy.max_message_bytes = args.max_message_bytes;
    if cfg.audit.path.as_deref() == Some(std::path::Path::new("-")) {
        // stdout carries the protocol here.
        anyhow::bail!("--audit - is not available with stdio: name a file")
    }
    let audit = sluice_proxy::settings::audit_log(&cfg, &shown)?.map(Arc::new);
    let gateway = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(sluice_proxy::policy::Gateway::load(&cfg))
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let runtime = sluice_proxy::policy::Runtime {
        pins: cfg
            .pins
            .path
            .as_deref()
            .map(sluice_proxy::policy::pins::PinStore::open)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        ..Default::default()
    };
    let code = StdioProxy {
        rules,
        policy: Arc::new(policy),
        audit: audit.clone(),
        command: args.command,
        gateway: Arc::new(gateway),
        runtime: Arc::new(runtime),
    }
    .run()?;
    // Threads still reading the client may hold the trail: the last checkpoint is written here.
    if let Some(a) = &audit {
        if let Err(e) = a.checkpoint() {
            eprintln!("sluice: cannot write the audit checkpoint: {e}");
        }
    }
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
