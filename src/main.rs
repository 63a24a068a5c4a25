//! sluice: a streaming DLP and inspection proxy for MCP traffic.

mod cmd;
mod demo;
mod logging;
mod rules_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Streaming DLP and inspection for MCP (Model Context Protocol) traffic",
    long_about = "sluice inspects MCP JSON-RPC messages (tool-call arguments, tool results, tool \
descriptions, SSE streams) with secret, PII and prompt-injection rules compiled into Hyperscan, \
and for each finding blocks, redacts or only records it.\n\n\
Start with `sluice demo`, then `sluice scan FILE` or `sluice inspect < messages.jsonl`.",
    after_help = "Exit codes: scan exits 0 when clean, 1 when something was found, 2 on error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan files (or stdin) for secrets, PII and injection; JSON-RPC lines are inspected as
    /// messages, anything else as text.
    Scan(cmd::scan::Args),
    /// Read JSON-RPC messages one per line on stdin; write exactly what sluice would forward.
    Inspect(cmd::inspect::Args),
    /// Run sluice in front of an in-process demo MCP server and show what it forwards,
    /// redacts and blocks.
    Demo(cmd::demo::Args),
    /// Measure a ruleset against a labelled corpus: precision, recall, throughput, the regex
    /// baseline, what each rule costs.
    Bench(cmd::bench::Args),
    /// Generate labelled JSON-RPC traffic, or benchmark inputs of any size.
    Corpus(cmd::corpus::Args),
    /// Check rules before rollout: compilation, examples, breadth, cost, and differential
    /// fuzzing of Hyperscan against the regex crate.
    Check(cmd::check::Args),
    /// List or check the rules in use.
    Rules(cmd::rules::Args),
    /// Wrap a stdio MCP server: `sluice stdio [OPTIONS] -- COMMAND [ARGS...]`.
    Stdio(cmd::stdio::Args),
    /// Proxy a Streamable HTTP MCP server.
    Serve(cmd::serve::Args),
    /// Client API keys for `serve`.
    Keys(cmd::keys::Args),
    /// Tool pins: list tools whose definition changed, approve them.
    Tools(cmd::tools::Args),
    /// Calls held for a human: list, allow, deny (through `serve`'s admin API).
    Approvals(cmd::approvals::Args),
    /// Audit files: verify the chain (HMAC with a key, else SHA-256) and the checkpoint.
    Audit(cmd::audit::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(a) => cmd::scan::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Corpus(a) => cmd::corpus::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Rules(a) => cmd::rules::run(a),
        Command::Stdio(a) => cmd::stdio::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Keys(a) => cmd::keys::run(a),
        Command::Tools(a) => cmd::tools::run(a),
        Command::Approvals(a) => cmd::approvals::run(a),
        Command::Audit(a) => cmd::audit::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sluice: {}", message(&e));
            ExitCode::from(2)
        }
    }
}

/// `e` and its causes joined by `: `, a cause left out when the text so far already holds it:
/// the library's error types print their cause in their own message and also return it as
/// `source()`, so `{:#}` would print it again at every level.
fn message(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
