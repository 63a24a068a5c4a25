//! `sluice tools list|approve`: the tool pins `serve` keeps (`[pins] path`). A tool whose
//! name, description or schemas changed since it was first seen waits here for a person to
//! look at it; approving makes the new definition the pinned one. A running proxy picks the
//! change up from the file at once.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sluice_proxy::config::Config;
use sluice_proxy::policy::pins;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
sluice tools list --config sluice.toml\n  \
sluice tools approve --config sluice.toml add\n  \
sluice tools approve --pins /var/lib/sluice/pins.json --all")]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Args)]
struct PinsFile {
    /// The pins file; or give --config and its [pins] path is used.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pins: Option<PathBuf>,
    /// sluice.toml with a [pins] path.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl PinsFile {
    fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(p) = &self.pins {
            return Ok(p.clone());
        }
        let Some(c) = &self.config else {
            anyhow::bail!("give --pins FILE or --config sluice.toml");
        };
        Config::from_file(c)?
            .pins
            .path
            .ok_or_else(|| anyhow::anyhow!("{}: no [pins] path", c.display()))
    }
}

#[derive(clap::Subcommand)]
enum What {
    /// Every pinned tool; changed ones first, with when the change was seen.
    List {
        #[command(flatten)]
        file: PinsFile,
    },
    /// Accept the changed definition of these tools (or of every changed tool with --all).
    Approve {
        #[command(flatten)]
        file: PinsFile,
        /// Only tools of this upstream URL.
        #[arg(long, value_name = "URL")]
        upstream: Option<String>,
        /// Approve every changed tool.
        #[arg(long, conflicts_with = "tools")]
        all: bool,
        tools: Vec<String>,
    },
}

fn list(path: &Path) -> anyhow::Result<()> {
    let pins = pins::read(path).map_err(anyhow::Error::msg)?;
    let mut changed = 0;
    for (upstream, tools) in &pins {
        println!("{upstream}");
        let mut rows: Vec<_> = tools.iter().collect();
        rows.sort_by_key(|(name, p)| (p.pending.is_none(), name.as_str()));
        for (name, p) in rows {
            match &p.pending {
                Some(_) => {
                    changed += 1;
                    println!(
                        "  CHANGED  {name}  (since {}; approve with `sluice tools approve {name}`)",
                        p.changed_at.as_deref().unwrap_or("?")
                    );
                }
                None => println!("  pinned   {name}"),
            }
        }
    }
    println!("{changed} changed tool(s) waiting for approval");
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::List { file } => list(&file.path()?)?,
        What::Approve {
            file,
            upstream,
            all,
            tools,
        } => {
            anyhow::ensure!(
                all || !tools.is_empty(),
                "name the tools to approve, or --all"
            );
            let path = file.path()?;
            let done =
                pins::approve(&path, upstream.as_deref(), &tools).map_err(anyhow::Error::msg)?;
            for (u, t) in &done {
                println!("approved {t} ({u})");
            }
            if done.is_empty() {
                println!("nothing was waiting for approval");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
