//! `sluice serve`: the Streamable HTTP proxy in front of one MCP server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sluice_engine::Pool;
use sluice_proxy::audit::AuditLog;
use sluice_proxy::http::HttpProxy;

use super::inspect::{policy_for, Mode};
use crate::rules_args::{random_salt, RulesArgs};

#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  sluice serve --upstream http://127.0.0.1:8000 --listen 127.0.0.1:7070 --mode redact\n\n\
Clients use http://127.0.0.1:7070/mcp where they used http://127.0.0.1:8000/mcp: request paths \
are forwarded as they come. HTTP/1.1 and HTTP/2 (h2c) on the same port."
)]
pub struct Args {
    /// The MCP server's origin (scheme, host, port), e.g. http://127.0.0.1:8000.
    #[arg(long)]
    upstream: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// What to do with findings.
    #[arg(long, value_enum, default_value_t = Mode::Rules)]
    mode: Mode,
    /// Write one JSON line per message with findings (and per failure) to this file, or `-`
    /// for stdout.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// Audit every message, not only those with findings.
    #[arg(long)]
    audit_all: bool,
    /// Forward messages that cannot be inspected instead of refusing them.
    #[arg(long)]
    fail_open: bool,
    /// Largest request or JSON response body in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_body: usize,
    /// Seconds to wait for the upstream's response headers.
    #[arg(long, default_value_t = 60)]
    upstream_timeout: u64,
    /// Scan worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    rules: RulesArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let upstream: sluice_proxy::http::Uri = args
        .upstream
        .parse()
        .with_context(|| format!("--upstream {} is not a URL", args.upstream))?;
    anyhow::ensure!(
        upstream.scheme_str() == Some("http") && upstream.authority().is_some(),
        "--upstream must be an http:// URL with a host (https upstreams are not supported yet)"
    );
    let rules = args.rules.compile()?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let pool = Arc::new(Pool::new(rules, threads)?);
    let mut policy = policy_for(args.mode);
    policy.fail_open = args.fail_open;
    policy.max_message_bytes = args.max_body;
    policy.salt = random_salt();
    let audit = match &args.audit {
        Some(p) => Some(Arc::new(
            AuditLog::open(p, args.audit_all)
                .with_context(|| format!("cannot open audit file {}", p.display()))?,
        )),
        None => None,
    };
    let proxy = HttpProxy {
        listen: args.listen,
        upstream,
        pool,
        policy: Arc::new(policy),
        audit,
        max_body: args.max_body,
        event_cap: sluice_engine::sse::DEFAULT_EVENT_CAP,
        upstream_timeout: Duration::from_secs(args.upstream_timeout),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (addr, serve) = proxy.bind().await.context("cannot listen")?;
        eprintln!(
            "sluice: listening on http://{addr}, forwarding to {}",
            args.upstream
        );
        tokio::select! {
            _ = serve => {}
            _ = tokio::signal::ctrl_c() => eprintln!("sluice: stopping"),
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
