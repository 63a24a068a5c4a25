//! `sluice audit verify FILE`: recomputes the audit file's hash chain. An edited row fails
//! its own hash; a removed, inserted or reordered row breaks the chain at the next one.

use std::path::PathBuf;
use std::process::ExitCode;

use sluice_proxy::audit::chain;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Verify the chain: exit 0 when intact, 1 with the first broken line otherwise.
    #[command(
        after_help = "Rows cut from the end of a file leave an intact, shorter chain: \
keep the printed head hash somewhere else (a ticket, another host) and pass it with --head \
later to detect that too."
    )]
    Verify {
        file: PathBuf,
        /// The head hash an earlier verify printed: the file must still end with that row
        /// or continue from it.
        #[arg(long, value_name = "HASH")]
        head: Option<String>,
        /// Accept a file whose chain starts after row 1 (a rotated log).
        #[arg(long)]
        rotated: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let What::Verify {
        file,
        head,
        rotated,
    } = args.what;
    let f = std::fs::File::open(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let v = match chain::verify(f) {
        Ok(v) => v,
        Err(b) => {
            println!("{}:{}: {}", file.display(), b.line, b.why);
            return Ok(ExitCode::from(1));
        }
    };
    if v.first_seq > 1 && !rotated {
        println!(
            "{}:1: the chain starts at row {}: rows 1 to {} are not in this file (pass --rotated if it was rotated)",
            file.display(),
            v.first_seq,
            v.first_seq - 1
        );
        return Ok(ExitCode::from(1));
    }
    if let Some(h) = head {
        if !chain::contains_hash(std::fs::File::open(&file)?, &h) {
            println!(
                "{}: the row with head hash {h} is gone: rows were cut from the end",
                file.display()
            );
            return Ok(ExitCode::from(1));
        }
    }
    println!(
        "{}: OK, {} rows, chain intact; head {}",
        file.display(),
        v.rows,
        v.head
    );
    Ok(ExitCode::SUCCESS)
}
