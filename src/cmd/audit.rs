//! `sluice audit verify FILE`: recomputes the audit file's chain. An edited row fails its own
//! seal; a removed, inserted or reordered row breaks the chain at the next one; with a key,
//! rows rewritten by someone without it fail; with a checkpoint, rows cut from the end show.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sluice_proxy::audit::chain::{self, Seal, Verified};
use sluice_proxy::audit::checkpoint::{Checkpoint, Shortfall};
use sluice_proxy::audit::AuditKey;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Verify the chain: exit 0 when intact, 1 naming the first bad line otherwise, 2 when it
    /// cannot be checked (unreadable file, missing or short key).
    #[command(after_help = VERIFY_HELP)]
    Verify(Verify),
}

const VERIFY_HELP: &str = "\
What each check finds:
  every row's seal    an edited row (its MAC, or hash, no longer matches)
  prev and seq        a row removed from the middle, inserted, repeated or moved
  the key             rows rewritten by someone without it: with --key-file/--key-env a row
                      sealed with a plain hash, or with a MAC under another key, fails
  --checkpoint        rows cut from the end: the file must still reach the checkpoint's row,
                      with the same seal (rows written after it are fine)
  --head              the same, against a head an earlier verify printed

Without a key the chain is plain SHA-256: it finds accidental damage, but anyone who can
write the file can edit a row and recompute every hash. Keep the key where such a person
cannot read it. Even then they can cut the rows written since the last checkpoint, or put
back an older checkpoint they copied and cut back to it: copy the checkpoint off the machine
(or compare it with one kept elsewhere) to pin the tail.

Exit codes: 0 intact; 1 a bad line or a file cut short (the first one is named); 2 the file,
key or checkpoint cannot be read.

Examples:
  sluice audit verify /var/log/sluice/audit.jsonl --key-file /etc/sluice/audit.key \\
      --checkpoint /var/log/sluice/audit.checkpoint
  SLUICE_AUDIT_KEY=... sluice audit verify audit.jsonl --key-env SLUICE_AUDIT_KEY
  sluice audit verify old-unkeyed-audit.jsonl";

#[derive(clap::Args)]
struct Verify {
    /// The audit file (JSON lines, as `[audit] path` or `--audit` wrote it).
    file: PathBuf,
    /// The key the rows were sealed with ([audit] key_file).
    #[arg(long, value_name = "FILE", conflicts_with = "key_env")]
    key_file: Option<PathBuf>,
    /// ... or the environment variable holding it ([audit] key_env).
    #[arg(long, value_name = "VAR")]
    key_env: Option<String>,
    /// The checkpoint file ([audit] checkpoint): the file must reach its row.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// A head an earlier verify printed: the file must still hold that row.
    #[arg(long, value_name = "SEAL")]
    head: Option<String>,
    /// Accept a file whose chain starts after row 1 (a rotated log).
    #[arg(long)]
    rotated: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let What::Verify(v) = args.what;
    let seal = match (&v.key_file, &v.key_env) {
        (Some(p), _) => Seal::Mac(AuditKey::from_file(p)?),
        (None, Some(var)) => Seal::Mac(AuditKey::from_env(var)?),
        (None, None) => Seal::Hash,
    };
    let checkpoint = match &v.checkpoint {
        Some(p) => Some((
            Checkpoint::read(p)?
                .ok_or_else(|| anyhow::anyhow!("checkpoint {}: no such file", p.display()))?,
            p.as_path(),
        )),
        None => None,
    };
    let shown = v.file.display().to_string();
    let open = || std::fs::File::open(&v.file).map_err(|e| anyhow::anyhow!("{shown}: {e}"));
    let fail = |line: Option<usize>, why: String| {
        match line {
            Some(n) => println!("{shown}:{n}: {why}"),
            None => println!("{shown}: {why}"),
        }
        Ok(ExitCode::from(1))
    };
    if let Some((cp, path)) = &checkpoint {
        if let Err(e) = cp.check(&seal, path) {
            return fail(None, e.to_string());
        }
    }
    let verified = match chain::verify(open()?, &seal, checkpoint.as_ref().map(|c| c.0.seq)) {
        Ok(verified) => verified,
        Err(b) => return fail(Some(b.line), b.why),
    };
    if verified.first_seq > 1 && !v.rotated {
        return fail(
            Some(1),
            format!(
                "the chain starts at row {}: rows 1 to {} are not in this file (pass --rotated if it was rotated)",
                verified.first_seq,
                verified.first_seq - 1
            ),
        );
    }
    if let Some((cp, path)) = &checkpoint {
        if let Some((line, why)) = shortfall(cp, path, &verified) {
            return fail(line, why);
        }
    }
    if let Some(h) = &v.head {
        if !chain::contains_tag(open()?, h) {
            return fail(
                None,
                format!("the row with head {h} is gone: rows were cut from the end"),
            );
        }
    }
    report(
        &shown,
        &verified,
        checkpoint.as_ref().map(|(cp, p)| (cp, *p)),
    );
    Ok(ExitCode::SUCCESS)
}

/// What is wrong with the file against the checkpoint, if anything: a line (when one is to
/// blame) and why.
fn shortfall(cp: &Checkpoint, path: &Path, v: &Verified) -> Option<(Option<usize>, String)> {
    let at = format!(
        "checkpoint {} (written {}) records row {}",
        path.display(),
        cp.time,
        cp.seq
    );
    match cp.shortfall(v)? {
        Shortfall::Truncated { last } => Some((
            None,
            format!(
                "truncated: the file ends at row {last} but {at}: rows {} to {} were cut from the end",
                last + 1,
                cp.seq
            ),
        )),
        Shortfall::Rewritten { line } => Some((
            Some(line),
            format!("row {} is not the row {at}: the file was rewritten at or before it", cp.seq),
        )),
        // A rotated file (already accepted with --rotated) that starts after the checkpoint.
        Shortfall::Before { first } => {
            eprintln!(
                "note: the file starts at row {first}, after the row {at}: the checkpoint checks another file"
            );
            None
        }
    }
}

fn report(shown: &str, v: &Verified, checkpoint: Option<(&Checkpoint, &Path)>) {
    let what = if v.keyed { "MAC chain" } else { "hash chain" };
    println!(
        "{shown}: OK, {} rows, {what} intact; head {}",
        v.rows, v.head
    );
    match checkpoint {
        Some((cp, path)) => println!(
            "{shown}: reaches checkpoint {} (row {}, written {}); {} rows after it",
            path.display(),
            cp.seq,
            cp.time,
            v.last_seq.saturating_sub(cp.seq)
        ),
        None => println!(
            "note: without --checkpoint, rows cut from the end of the file are not detected"
        ),
    }
    if let Some(w) = v.warning() {
        println!("warning: {w}");
    }
}
