//! `sluice corpus generate`: the labelled corpus, or benchmark inputs of any size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sluice_engine::corpus::generate::{labelled, write_sized};
use sluice_proxy::config::parse_size;

use crate::rules_args::RulesArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Write labelled JSON-RPC traffic (JSON lines: direction, note, message, expected
    /// findings). Without --size: the labelled corpus `sluice bench` uses by default (benign
    /// traffic, then every rule example plainly and with evasions). With --size: benign
    /// traffic with an embedded example every --malicious-every messages, up to that size.
    #[command(
        after_help = "Examples:\n  sluice corpus generate > corpus/labelled.jsonl\n  \
sluice corpus generate --size 1GiB --seed 7 -o /tmp/big.jsonl\n\n\
Deterministic: the same ruleset, seed and size give the same bytes."
    )]
    Generate {
        /// Approximate output size, e.g. 64MiB, 1GiB.
        #[arg(long, value_parser = parse_size)]
        size: Option<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Benign messages in the labelled corpus (without --size).
        #[arg(long, default_value_t = DEFAULT_BENIGN)]
        benign: usize,
        /// With --size: one message in this many carries an example.
        #[arg(long, default_value_t = 20)]
        malicious_every: usize,
        /// Write here instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        rules: RulesArgs,
    },
}

/// Benign messages in the default labelled corpus.
pub const DEFAULT_BENIGN: usize = 2000;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let What::Generate {
        size,
        seed,
        benign,
        malicious_every,
        output,
        rules,
    } = args.what;
    let ruleset = rules.load()?;
    let mut out: Box<dyn Write> = match &output {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    match size {
        Some(size) => {
            write_sized(&ruleset, seed, size as u64, malicious_every, &mut out)?;
        }
        None => {
            for l in labelled(&ruleset, seed, benign) {
                l.write_line(&mut out)?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
