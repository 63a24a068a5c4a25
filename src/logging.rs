//! Structured logs through `tracing`, to stderr: `SLUICE_LOG` sets the filter (e.g.
//! `info`, `sluice_proxy=debug`) [default: warn], `SLUICE_LOG_FORMAT=json` one JSON object
//! per event. Logs carry rule ids, controls and client names, never matched text.

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or a collector gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if std::env::var("SLUICE_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
