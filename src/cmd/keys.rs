//! `sluice keys new NAME`: a fresh client API key, shown once, and the config lines that
//! admit it (only its SHA-256 is stored).

use std::process::ExitCode;

use sluice_proxy::policy::auth::new_key;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Make a key for a client: prints the key (give it to the client; it is not stored
    /// anywhere) and the [[client]] lines to paste into sluice.toml. Clients then send
    /// `Authorization: Bearer KEY`; once any client is configured, requests without a valid
    /// key get 401.
    New {
        /// The client's name, as audit rows will show it.
        name: String,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let What::New { name } = args.what;
    anyhow::ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "client names are letters, digits, `-`, `_` and `.`"
    );
    let (key, hash) = new_key()?;
    println!("key for {name} (shown once; give it to the client):\n\n  {key}\n");
    println!("add to sluice.toml:\n\n[[client]]\nname = \"{name}\"\nkey_sha256 = \"{hash}\"");
    Ok(ExitCode::SUCCESS)
}
