//! `sluice approvals list|allow|deny`: the human side of held calls, through the admin API
//! of a running `sluice serve` (`[admin] listen`, authenticated with the admin key).

use std::process::ExitCode;

use http_body_util::{BodyExt, Full};
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
export SLUICE_ADMIN_KEY=sk_sluice_...   # from `sluice keys new admin`\n  \
sluice approvals list --admin http://127.0.0.1:7071\n  \
sluice approvals allow 3\n  \
sluice approvals deny 4\n\n\
A held call waits (nothing forwarded) until allowed, denied, or [approval] timeout passes.")]
pub struct Args {
    #[command(subcommand)]
    what: What,
    /// The admin listener of the running proxy.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        default_value = "http://127.0.0.1:7071"
    )]
    admin: String,
    /// Environment variable holding the admin key.
    #[arg(
        long,
        global = true,
        value_name = "VAR",
        default_value = "SLUICE_ADMIN_KEY"
    )]
    key_env: String,
}

#[derive(clap::Subcommand)]
enum What {
    /// The calls waiting now, with client, tool, why held and the arguments as they would
    /// be forwarded.
    List {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let a held call through.
    Allow { id: u64 },
    /// Refuse a held call: the client gets a JSON-RPC error.
    Deny { id: u64 },
}

async fn call(args: &Args, method: Method, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let key = std::env::var(&args.key_env).map_err(|_| {
        anyhow::anyhow!(
            "set {} to the admin key (its SHA-256 is [admin] key_sha256)",
            args.key_env
        )
    })?;
    let url = format!("{}{path}", args.admin.trim_end_matches('/'));
    let req = Request::builder()
        .method(method)
        .uri(&url)
        .header(AUTHORIZATION, format!("Bearer {key}"))
        .body(Full::new(bytes::Bytes::new()))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let resp = client
        .request(req)
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Ok((status, v))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (status, v) = match &args.what {
            What::List { .. } => call(&args, Method::GET, "/approvals").await?,
            What::Allow { id } => {
                call(&args, Method::POST, &format!("/approvals/{id}/allow")).await?
            }
            What::Deny { id } => {
                call(&args, Method::POST, &format!("/approvals/{id}/deny")).await?
            }
        };
        if status != 200 {
            let why = v.get("error").and_then(|e| e.as_str()).unwrap_or("");
            eprintln!("sluice: admin API answered {status}: {why}");
            return Ok(ExitCode::from(1));
        }
        match &args.what {
            What::List { json: true } => println!("{v}"),
            What::List { json: false } => {
                let pending = v["pending"].as_array().cloned().unwrap_or_default();
                if pending.is_empty() {
                    println!("no calls waiting");
                }
                for h in pending {
                    println!(
                        "#{}  {}  client {}  upstream {}  tool {}  held for: {}\n    arguments: {}",
                        h["id"],
                        h["since"].as_str().unwrap_or(""),
                        h["client"].as_str().unwrap_or("-"),
                        h["upstream"].as_str().unwrap_or(""),
                        h["tool"].as_str().unwrap_or(""),
                        h["reason"].as_str().unwrap_or(""),
                        h["arguments"]
                    );
                }
            }
            _ => println!(
                "{} call #{} ({})",
                if v["decision"] == "allow" {
                    "allowed"
                } else {
                    "denied"
                },
                v["decided"],
                v["tool"].as_str().unwrap_or("")
            ),
        }
        Ok(ExitCode::SUCCESS)
    })
}
