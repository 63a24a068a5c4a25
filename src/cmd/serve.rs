//! `sluice serve`: the Streamable HTTP proxy, configured by a TOML file, flags, or both
//! (flags win).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use sluice_proxy::admin::Admin;
use sluice_proxy::audit::Seal;
use sluice_proxy::config::{
    parse_duration, parse_size, Config, ModeName, TlsFiles, UpstreamConfig,
};
use sluice_proxy::http::{tls, HttpProxy};
use sluice_proxy::live::Live;
use sluice_proxy::metrics::Metrics;
use sluice_proxy::policy::pins::PinStore;
use sluice_proxy::policy::Runtime;
use sluice_proxy::reload::Reloader;
use sluice_proxy::settings;

use super::inspect::Mode;
use crate::rules_args::RulesArgs;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
sluice serve --upstream http://127.0.0.1:8000/mcp --listen 127.0.0.1:7070 --mode redact\n  \
sluice serve --config sluice.toml\n  \
sluice serve --config sluice.toml --check\n\n\
With --upstream, clients use the same path on sluice as on the server \
(http://127.0.0.1:7070/mcp above), and every other path is forwarded to the same server as it \
comes (the legacy SSE transport's /messages/, OAuth metadata). Several upstreams, routed by path \
prefix, and per-category, per-rule and per-direction policy: see the commented example \
examples/sluice.toml. HTTP/1.1 and HTTP/2 on one port: h2c in the clear, ALPN with TLS.\n\n\
Gateway controls, all in the config file: client keys and JWTs ([[client]], [auth.jwt]), \
tool/resource/prompt allowlists and argument constraints ([[client]], [[upstream]], [[tool]]), \
rate limits and daily byte budgets, tool pinning ([pins]; `sluice tools`), sequence rules \
([[sequence]]), human approval ([approval]; `sluice approvals`), an egress guard ([egress]), \
chained audit rows (HMAC-SHA-256 with [audit] key_file; `sluice audit verify`), and [admin] for /healthz, /readyz, /metrics. \
SIGHUP or an edit of the config, rules or JWKS file reloads them atomically.")]
pub struct Args {
    /// TOML configuration file (see examples/sluice.toml). Flags override its values.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration and the rules, print what would run, and exit.
    #[arg(long)]
    check: bool,
    /// The MCP server's URL (http:// or https://), e.g. http://127.0.0.1:8000/mcp. Replaces
    /// the config's upstreams.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// Address to listen on [default: 127.0.0.1:7070].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// A host name (or IP address) clients may address sluice by besides localhost, loopback
    /// addresses and the listen address; repeatable. Added to [listen] allowed_hosts. Requests
    /// whose Host or Origin names another host get 403 (the DNS-rebinding defence).
    #[arg(long, value_name = "NAME", value_parser = host_name)]
    allow_host: Vec<String>,
    /// What to do with findings [default: rules, each rule's own action].
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Also serve HTTP/3 (QUIC) on this UDP address, with the TLS certificate.
    #[arg(long, value_name = "ADDR", requires = "tls_cert")]
    http3: Option<SocketAddr>,
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
    /// Largest request or JSON response body, e.g. 16MiB [default: 16MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_body: Option<usize>,
    /// Time to wait for the upstream's response headers, e.g. 60s [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    upstream_timeout: Option<std::time::Duration>,
    /// Scan worker threads [default: one per core].
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    rules: RulesArgs,
}

fn host_name(s: &str) -> Result<String, String> {
    match sluice_proxy::config::parse_host(s) {
        Some(_) => Ok(s.to_string()),
        None => Err(format!(
            "`{s}` is not a host name or IP address (no scheme, port or path)"
        )),
    }
}

/// The configuration file with the flags applied on top.
fn effective_config(args: &Args) -> anyhow::Result<Config> {
    let mut cfg = match &args.config {
        Some(p) => Config::from_file(p)?,
        None => Config::from_str("", "(flags)")?,
    };
    if let Some(url) = &args.upstream {
        let primary = UpstreamConfig {
            url: url.clone(),
            prefix: None,
            ca_file: None,
            ..Default::default()
        };
        let checked = primary
            .check()
            .map_err(|e| anyhow::anyhow!("--upstream: {e}"))?;
        cfg.upstreams = vec![primary];
        if !checked.prefix.trim_end_matches('/').is_empty() {
            cfg.upstreams.push(UpstreamConfig {
                url: format!(
                    "{}://{}",
                    checked.url.scheme_str().unwrap_or("http"),
                    checked.url.authority().map(|a| a.as_str()).unwrap_or("")
                ),
                prefix: Some("/".into()),
                ca_file: None,
                ..Default::default()
            });
        }
    }
    anyhow::ensure!(
        !cfg.upstreams.is_empty(),
        "no upstream: pass --upstream URL, or --config FILE with an [[upstream]] section"
    );
    if let Some(l) = args.listen {
        cfg.listen.address = l;
    }
    cfg.listen
        .allowed_hosts
        .extend(args.allow_host.iter().cloned());
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        cfg.listen.tls = Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    if let Some(a) = args.http3 {
        cfg.listen.http3 = Some(sluice_proxy::config::Http3Listen { address: a });
    }
    if let Some(m) = args.mode {
        cfg.policy.mode = match m {
            Mode::Rules => ModeName::Rules,
            Mode::Block => ModeName::Block,
            Mode::Redact => ModeName::Redact,
            Mode::Monitor => ModeName::Monitor,
        };
    }
    if args.fail_open {
        cfg.policy.fail_open = true;
    }
    if let Some(a) = &args.audit {
        cfg.audit.path = Some(a.clone());
    }
    if args.audit_all {
        cfg.audit.all = true;
    }
    if let Some(m) = args.max_body {
        cfg.limits.max_body = m;
    }
    if let Some(t) = args.upstream_timeout {
        cfg.limits.upstream_timeout = t;
    }
    if !args.rules.rules.is_empty() {
        cfg.rules.files = args.rules.rules.clone();
    }
    cfg.rules.add.extend(args.rules.add_rules.iter().cloned());
    Ok(cfg)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let args = Arc::new(args);
    crate::logging::init();
    let cfg = effective_config(&args)?;
    let shown = args
        .config
        .as_ref()
        .map_or("(flags)".to_string(), |p| p.display().to_string());
    let tls = match &cfg.listen.tls {
        Some(t) => Some(tls::server_config(&t.cert, &t.key)?),
        None => None,
    };
    for u in cfg.upstreams() {
        tls::client_config(u.ca_file.as_deref()).with_context(|| format!("upstream {}", u.url))?;
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let Live {
            pool,
            policy,
            gateway,
            ..
        } = settings::live(&cfg, &shown, threads).await?;
        for warning in [
            settings::approval_warning(&cfg),
            settings::host_warning(&cfg),
        ]
        .into_iter()
        .flatten()
        {
            eprintln!("sluice: warning: {shown}: {warning}");
        }
        let egress =
            sluice_proxy::policy::egress::Guard::new(&cfg.egress).map_err(anyhow::Error::msg)?;
        for u in cfg.upstreams() {
            if let Some(why) = egress.check_upstream(&u.url.to_string()).await {
                anyhow::bail!("{shown}: {why}");
            }
        }
        if args.check {
            println!("{shown}: OK");
            println!(
                "listen: {scheme}://{} (HTTP/1.1 and HTTP/2)",
                cfg.listen.address
            );
            if let Some(h3) = &cfg.listen.http3 {
                println!("listen: HTTP/3 on udp {}", h3.address);
            }
            let mut hosts = vec!["localhost".to_string(), "127.0.0.0/8".into(), "::1".into()];
            if !cfg.listen.address.ip().is_unspecified() {
                hosts.push(cfg.listen.address.ip().to_string());
            }
            hosts.extend(cfg.listen.allowed_hosts.iter().cloned());
            println!("hosts: {}", hosts.join(", "));
            for u in cfg.upstreams() {
                println!("route: {} -> {}", u.prefix, u.url);
            }
            if !cfg.clients.is_empty() {
                let names: Vec<&str> = cfg.clients.iter().map(|c| c.name.as_str()).collect();
                println!("clients (Bearer keys required): {}", names.join(", "));
            }
            if let Some(j) = &cfg.auth.jwt {
                println!("JWT: issuer {}, audience {:?}", j.issuer, j.audience);
            }
            if !cfg.tools.is_empty() || !cfg.sequences.is_empty() {
                println!(
                    "gateway: {} [[tool]] entries, {} sequence rules",
                    cfg.tools.len(),
                    cfg.sequences.len()
                );
            }
            if let Some(a) = &cfg.admin {
                println!(
                    "admin: http://{} (/healthz /readyz /metrics /approvals)",
                    a.listen
                );
            }
            if let Some(p) = &cfg.audit.path {
                println!("audit: {}", audit_summary(&cfg, p)?);
            }
            println!(
                "rules: {} compiled; mode: {:?}; fail {}",
                pool.rules().ruleset.len(),
                cfg.policy.mode,
                if policy.fail_open { "open" } else { "closed" }
            );
            return Ok(());
        }
        let audit = settings::audit_log(&cfg, &shown)?.map(Arc::new);
        let runtime = Arc::new(Runtime {
            pins: cfg
                .pins
                .path
                .as_deref()
                .map(PinStore::open)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            ..Runtime::default()
        });
        let metrics = Arc::new(Metrics::default());
        let upstreams = cfg.upstreams();
        let proxy = HttpProxy {
            listen: cfg.listen.address,
            allowed_hosts: cfg.listen.allowed_hosts.clone(),
            tls,
            upstreams: upstreams.clone(),
            pool,
            policy,
            audit: audit.clone(),
            limits: cfg.limits.clone(),
            checks: cfg.http.clone(),
            http3: cfg.listen.http3.as_ref().map(|h| h.address),
            gateway,
            runtime: runtime.clone(),
            metrics: metrics.clone(),
        };
        let bound = proxy.bind_all().await.context("cannot listen")?;
        let (addr, serve, live) = (bound.tcp, bound.serve, bound.live);
        eprintln!("sluice: listening on {scheme}://{addr}");
        if let Some(h3) = bound.http3 {
            eprintln!("sluice: HTTP/3 on udp {h3}");
        }
        for u in &upstreams {
            eprintln!(
                "sluice: {scheme}://{addr}{} -> {}",
                if u.prefix == "/" { "/*" } else { &u.prefix },
                u.url
            );
        }
        let admin_serve = match &cfg.admin {
            Some(a) => {
                let key = a
                    .key_sha256
                    .as_deref()
                    .map(|k| {
                        sluice_proxy::policy::auth::decode_hex32(k).ok_or_else(|| {
                            anyhow::anyhow!("{shown}: [admin] key_sha256 must be 64 hex digits")
                        })
                    })
                    .transpose()?;
                let (admin_addr, serve) = Admin {
                    listen: a.listen,
                    key_sha256: key,
                    allowed_hosts: cfg.listen.allowed_hosts.clone(),
                    header_timeout: cfg.limits.client_header_timeout,
                    idle_timeout: cfg.limits.client_idle_timeout,
                    max_connections: a.max_connections,
                    live: live.clone(),
                    runtime: runtime.clone(),
                    metrics: metrics.clone(),
                    audit: audit.clone(),
                }
                .bind()
                .await
                .with_context(|| format!("cannot listen on [admin] {}", a.listen))?;
                eprintln!(
                    "sluice: admin on http://{admin_addr} (/healthz /readyz /metrics /approvals)"
                );
                Some(serve)
            }
            None => None,
        };
        let source_args = args.clone();
        let reloader = Reloader::new(
            Box::new(move || effective_config(&source_args).map_err(Into::into)),
            args.config.clone(),
            shown.clone(),
            threads,
            &cfg,
            live.clone(),
            audit.clone(),
            metrics.clone(),
        );
        let admin = async {
            match admin_serve {
                Some(s) => s.await,
                None => std::future::pending().await,
            }
        };
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = serve => {}
            _ = admin => {}
            _ = reloader.run() => {}
            _ = tokio::signal::ctrl_c() => eprintln!("sluice: stopping"),
            _ = terminate.recv() => eprintln!("sluice: stopping"),
        }
        // Connections may still hold the trail: the last checkpoint is written here.
        if let Some(a) = &audit {
            if let Err(e) = a.checkpoint() {
                eprintln!("sluice: cannot write the audit checkpoint: {e}");
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `--check`'s line on the audit trail: where, how sealed (the key is read, so a missing or
/// short key shows here), where the checkpoint goes.
fn audit_summary(cfg: &Config, path: &std::path::Path) -> anyhow::Result<String> {
    let seal = match settings::audit_seal(cfg)? {
        Seal::Mac(_) => "rows chained with HMAC-SHA-256",
        Seal::Hash => "rows chained with plain SHA-256 (no key: detects accidental damage only)",
    };
    let checkpoint = match &cfg.audit.checkpoint {
        Some(c) => format!(
            "; checkpoint {} every {:?}",
            c.display(),
            cfg.audit.checkpoint_interval
        ),
        None => "; no checkpoint (rows cut from the end go unnoticed)".into(),
    };
    Ok(format!("{}, {seal}{checkpoint}", path.display()))
}
