//! Audit rows: one JSON line per inspected message that found something (or per message, if
//! asked). Rule ids, pointers and salted fingerprints; never the matched text.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use sluice_engine::{Direction, Inspection};

/// Who a message belongs to, where the transport knows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// The client's address (HTTP) or `stdio`.
    pub client: Option<&'a str>,
    /// `Mcp-Session-Id`, when the protocol has sessions.
    pub session: Option<&'a str>,
    /// The authenticated client's name, when clients are configured.
    pub identity: Option<&'a str>,
}

pub struct AuditLog {
    out: Mutex<Box<dyn Write + Send>>,
    every_message: bool,
}

impl AuditLog {
    pub fn new(out: Box<dyn Write + Send>, every_message: bool) -> Self {
        AuditLog {
            out: Mutex::new(out),
            every_message,
        }
    }

    #[allow(clippy::too_many_arguments)]
    /// Appends to `path` (`-` is stdout).
    pub fn open(path: &std::path::Path, every_message: bool) -> std::io::Result<AuditLog> {
        let out: Box<dyn Write + Send> = if path.as_os_str() == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )
        };
        Ok(AuditLog::new(out, every_message))
    }

    pub fn record(
        &self,
        transport: &str,
        origin: Origin<'_>,
        dir: Direction,
        size: usize,
        took: Duration,
        inspection: &Inspection,
    ) {
        if inspection.findings.is_empty() && !self.every_message {
            return;
        }
        let info = inspection.info();
        let findings: Vec<_> = inspection.findings.iter().map(|f| f.to_json()).collect();
        let mut row = who_and_when(transport, origin, dir);
        row.extend(json_fields(json!({
            "kind": info.map(|i| i.kind.as_str()),
            "method": info.and_then(|i| i.method.as_deref()),
            "tool": info.and_then(|i| i.tool.as_deref()),
            "verdict": inspection.verdict.name(),
            "findings": findings,
            "bytes": size,
            "inspect_us": took.as_secs_f64() * 1e6,
        })));
        self.write(&row.into());
    }

    /// A message that could not be inspected.
    pub fn error(
        &self,
        transport: &str,
        origin: Origin<'_>,
        dir: Direction,
        size: usize,
        error: &str,
        forwarded: bool,
    ) {
        let mut row = who_and_when(transport, origin, dir);
        row.extend(json_fields(json!({
            "error": error,
            "forwarded": forwarded,
            "bytes": size,
        })));
        self.write(&row.into());
    }

    fn write(&self, row: &serde_json::Value) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // An audit sink that fails must not take the traffic down with it; stderr says so.
        if writeln!(out, "{row}").and_then(|_| out.flush()).is_err() {
            eprintln!("sluice: cannot write an audit row");
        }
    }
}

/// `2026-11-22T01:02:03.456Z`, from the civil-from-days algorithm (no time zone database).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// The fields every row starts with: when, over what, from whom, which way.
fn who_and_when(
    transport: &str,
    origin: Origin<'_>,
    dir: Direction,
) -> serde_json::Map<String, serde_json::Value> {
    json_fields(json!({
        "time": rfc3339(SystemTime::now()),
        "transport": transport,
        "client": origin.client,
        "identity": origin.identity,
        "session": origin.session,
        "direction": dir.as_str(),
    }))
}

fn json_fields(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        let t = UNIX_EPOCH + Duration::from_millis(1_763_773_323_456);
        assert_eq!(rfc3339(t), "2025-11-22T01:02:03.456Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
