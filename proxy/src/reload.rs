//! Reloading a running `serve`: on SIGHUP, or when a watched file (the config, the rules
//! files it names, the JWKS file) changes, the config is read again and built into new
//! settings ([`crate::settings::live`]), then swapped in whole; in-flight requests finish on
//! the settings they started with. A config that fails leaves the running one in place. Every
//! attempt is logged on stderr, counted (`sluice_reloads_total`) and audited.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::audit::{AuditLog, Origin};
use crate::config::Config;
use crate::live::LiveHandle;
use crate::metrics::Metrics;

/// Where a reload reads the config from: the file with the command line's flags applied.
pub type ConfigSource =
    Box<dyn Fn() -> Result<Config, Box<dyn std::error::Error + Send + Sync>> + Send + Sync>;

/// Why a reload was rejected.
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    #[error("{}", chain(.0.as_ref()))]
    Config(Box<dyn std::error::Error + Send + Sync>),
    #[error("{} changed: [listen], [[upstream]], [admin], [audit], [pins] path and [limits] change only on restart; the running config is kept", .0.join(", "))]
    Fixed(Vec<&'static str>),
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
}

/// An error and its causes, `: `-separated.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Watches for reasons to reload and reloads.
pub struct Reloader {
    source: ConfigSource,
    config_path: Option<PathBuf>,
    shown: String,
    threads: usize,
    fixed: Vec<(&'static str, String)>,
    watched: Vec<PathBuf>,
    live: LiveHandle,
    audit: Option<Arc<AuditLog>>,
    metrics: Arc<Metrics>,
}

impl Reloader {
    /// A reloader for the running `cfg` (read from `config_path`, shown as `shown`), whose
    /// settings are in `live`; new pools get `threads` workers.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: ConfigSource,
        config_path: Option<PathBuf>,
        shown: String,
        threads: usize,
        cfg: &Config,
        live: LiveHandle,
        audit: Option<Arc<AuditLog>>,
        metrics: Arc<Metrics>,
    ) -> Reloader {
        Reloader {
            watched: watched_files(cfg, config_path.as_deref()),
            fixed: fixed_parts(cfg),
            source,
            config_path,
            shown,
            threads,
            live,
            audit,
            metrics,
        }
    }

    /// Runs until dropped: reloads on SIGHUP and when a watched file's modification time or
    /// size changes (polled every second: no platform watcher needed, and edits by rename are
    /// seen too).
    pub async fn run(mut self) {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return std::future::pending().await;
        };
        let mut seen = stamp(&self.watched);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let why = tokio::select! {
                _ = hup.recv() => "SIGHUP",
                _ = tick.tick() => {
                    let now = stamp(&self.watched);
                    if now == seen {
                        continue;
                    }
                    "file change"
                }
            };
            self.reload(why).await;
            seen = stamp(&self.watched);
        }
    }

    async fn attempt(&mut self) -> Result<u64, ReloadError> {
        let cfg = (self.source)().map_err(ReloadError::Config)?;
        let changed: Vec<&'static str> = fixed_parts(&cfg)
            .into_iter()
            .zip(&self.fixed)
            .filter(|(now, was)| now.1 != was.1)
            .map(|(now, _)| now.0)
            .collect();
        if !changed.is_empty() {
            return Err(ReloadError::Fixed(changed));
        }
        let live = crate::settings::live(&cfg, &self.shown, self.threads).await?;
        self.watched = watched_files(&cfg, self.config_path.as_deref());
        Ok(self.live.swap(live))
    }

    async fn reload(&mut self, why: &str) {
        let (label, row) = match self.attempt().await {
            Ok(generation) => {
                eprintln!("sluice: reloaded ({why}): config generation {generation}");
                (
                    "ok",
                    serde_json::json!({"trigger": why, "result": "ok", "generation": generation}),
                )
            }
            Err(e) => {
                let e = chain(&e);
                eprintln!("sluice: reload ({why}) rejected, the running config stays: {e}");
                (
                    "rejected",
                    serde_json::json!({"trigger": why, "result": "rejected", "error": e}),
                )
            }
        };
        self.metrics.reloads.inc_static([label]);
        if let Some(a) = &self.audit {
            a.event("reload", "config", Origin::default(), row);
        }
    }
}

/// The parts of a config a reload cannot change (sockets, files held open), by section.
pub fn fixed_parts(cfg: &Config) -> Vec<(&'static str, String)> {
    vec![
        ("[listen]", format!("{:?}", cfg.listen)),
        ("[[upstream]]", format!("{:?}", cfg.upstreams)),
        ("[admin]", format!("{:?}", cfg.admin)),
        ("[audit]", format!("{:?}", cfg.audit)),
        ("[pins] path", format!("{:?}", cfg.pins.path)),
        ("[limits]", format!("{:?}", cfg.limits)),
    ]
}

/// Files whose change triggers a reload: the config, the rules files it names, the JWKS.
fn watched_files(cfg: &Config, config: Option<&Path>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = config.into_iter().map(Path::to_path_buf).collect();
    files.extend(cfg.rules.files.iter().cloned());
    files.extend(cfg.rules.add.iter().cloned());
    if let Some(f) = cfg.auth.jwt.as_ref().and_then(|j| j.jwks_file.clone()) {
        files.push(f);
    }
    files
}

fn stamp(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}
