//! `sluice stdio -- COMMAND [ARGS...]`: wrap a stdio MCP server.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use sluice_proxy::audit::AuditLog;
use sluice_proxy::stdio::StdioProxy;

use super::inspect::{policy_for, Mode};
use crate::rules_args::{random_salt, RulesArgs};

#[derive(clap::Args)]
#[command(
    after_help = "The MCP client starts sluice in place of the server, e.g. in its mcpServers configuration:\n\n  \
\"files\": { \"command\": \"sluice\", \"args\": [\"stdio\", \"--mode\", \"redact\", \"--\", \"npx\", \"-y\", \"@modelcontextprotocol/server-filesystem\", \"/srv\"] }\n\n\
stdout carries the protocol, so audit rows go to --audit FILE; sluice's own messages go to stderr with the server's."
)]
pub struct Args {
    /// What to do with findings.
    #[arg(long, value_enum, default_value_t = Mode::Rules)]
    mode: Mode,
    /// Write one JSON line per message with findings (and per failure) to this file.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// Audit every message, not only those with findings.
    #[arg(long)]
    audit_all: bool,
    /// How redacted spans are written.
    #[arg(long, value_name = "mask|partial|hash", default_value = "mask")]
    redaction: sluice_engine::RedactStrategy,
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
    let rules = args.rules.compile()?;
    let mut policy = policy_for(args.mode);
    policy.redaction = args.redaction;
    policy.fail_open = args.fail_open;
    policy.max_message_bytes = args.max_message_bytes;
    policy.salt = random_salt();
    let audit = match &args.audit {
        // stdout carries the protocol here.
        Some(p) if p.as_os_str() == "-" => {
            anyhow::bail!("--audit - is not available with stdio: name a file")
        }
        Some(p) => Some(Arc::new(
            AuditLog::open(p, args.audit_all)
                .with_context(|| format!("cannot open audit file {}", p.display()))?,
        )),
        None => None,
    };
    let code = StdioProxy {
        rules,
        policy: Arc::new(policy),
        audit,
        command: args.command,
    }
    .run()?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
