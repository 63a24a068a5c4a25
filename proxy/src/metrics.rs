//! Prometheus metrics, rendered in the text exposition format on the admin listener's
//! `/metrics`. Counters are atomics or small maps behind a mutex taken once per message;
//! labels come from rule ids, controls and verdicts, never from traffic content.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets in seconds: 10 us to 10 s.
const BUCKETS: [f64; 13] = [
    0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 1.0, 10.0,
];

#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, c) in BUCKETS.iter().zip(&self.counts) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// A counter family with labels, e.g. findings by rule and action.
#[derive(Default)]
pub struct Family {
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl Family {
    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1);
    }

    pub fn add(&self, labels: &[&str], n: u64) {
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        let mut v = self.values.lock().unwrap_or_else(|e| e.into_inner());
        *v.entry(key).or_insert(0) += n;
    }

    pub fn get(&self, labels: &[&str]) -> u64 {
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        let v = self.values.lock().unwrap_or_else(|e| e.into_inner());
        v.get(&key).copied().unwrap_or(0)
    }

    fn render(&self, out: &mut String, name: &str, help: &str, keys: &[&str]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        let v = self.values.lock().unwrap_or_else(|e| e.into_inner());
        for (labels, n) in v.iter() {
            let l: Vec<String> = keys
                .iter()
                .zip(labels)
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(out, "{name}{{{}}} {n}", l.join(","));
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counters whose labels are known in advance: one atomic each, no lock and no allocation on
/// the per-message path.
pub struct Fixed<const N: usize> {
    labels: [&'static [&'static str]; N],
    counts: [AtomicU64; N],
}

impl<const N: usize> Fixed<N> {
    const fn new(labels: [&'static [&'static str]; N]) -> Self {
        Fixed {
            labels,
            counts: [const { AtomicU64::new(0) }; N],
        }
    }

    /// Counts under the labels given; labels outside the set are counted under the last.
    pub fn inc(&self, labels: &[&str]) {
        let i = self
            .labels
            .iter()
            .position(|l| *l == labels)
            .unwrap_or(N - 1);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, labels: &[&str]) -> u64 {
        self.labels
            .iter()
            .position(|l| *l == labels)
            .map_or(0, |i| self.counts[i].load(Ordering::Relaxed))
    }

    fn render(&self, out: &mut String, name: &str, help: &str, keys: &[&str]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, c) in self.labels.iter().zip(&self.counts) {
            let n = c.load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let l: Vec<String> = keys
                .iter()
                .zip(labels.iter())
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            let _ = writeln!(out, "{name}{{{}}} {n}", l.join(","));
        }
    }
}

const C2S: &str = "client-to-server";
const S2C: &str = "server-to-client";

pub struct Metrics {
    /// HTTP requests by transport.
    pub requests: Fixed<4>,
    /// Inspected messages by direction and verdict.
    pub messages: Fixed<10>,
    /// Findings by rule and action.
    pub findings: Family,
    /// Refusals by control.
    pub denials: Family,
    /// Approval outcomes.
    pub approvals: Family,
    /// Config reloads by result.
    pub reloads: Family,
    pub inspect_latency: Histogram,
    pub upstream_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Fixed::new([&["http"], &["https"], &["h3"], &["other"]]),
            messages: Fixed::new([
                &[C2S, "forward"],
                &[C2S, "redact"],
                &[C2S, "block"],
                &[C2S, "error"],
                &[C2S, "unavailable"],
                &[S2C, "forward"],
                &[S2C, "redact"],
                &[S2C, "block"],
                &[S2C, "error"],
                &[S2C, "unavailable"],
            ]),
            findings: Family::default(),
            denials: Family::default(),
            approvals: Family::default(),
            reloads: Family::default(),
            inspect_latency: Histogram::default(),
            upstream_latency: Histogram::default(),
        }
    }
}

impl Metrics {
    /// The text exposition; `pending` is the approval queue's depth now.
    pub fn render(&self, pending: usize) -> String {
        let mut out = String::with_capacity(4096);
        self.requests.render(
            &mut out,
            "sluice_requests_total",
            "HTTP requests received.",
            &["transport"],
        );
        self.messages.render(
            &mut out,
            "sluice_messages_total",
            "JSON-RPC messages inspected.",
            &["direction", "verdict"],
        );
        self.findings.render(
            &mut out,
            "sluice_findings_total",
            "Engine findings.",
            &["rule", "action"],
        );
        self.denials.render(
            &mut out,
            "sluice_denials_total",
            "Messages refused by a gateway control.",
            &["control"],
        );
        self.approvals.render(
            &mut out,
            "sluice_approvals_total",
            "Held calls by outcome.",
            &["decision"],
        );
        self.reloads.render(
            &mut out,
            "sluice_reloads_total",
            "Configuration reloads.",
            &["result"],
        );
        let _ = writeln!(
            out,
            "# HELP sluice_approval_queue_depth Calls waiting for a human.\n# TYPE sluice_approval_queue_depth gauge\nsluice_approval_queue_depth {pending}"
        );
        self.inspect_latency.render(
            &mut out,
            "sluice_inspection_seconds",
            "Time to inspect one message on the worker pool.",
        );
        self.upstream_latency.render(
            &mut out,
            "sluice_upstream_seconds",
            "Time to the upstream's response headers.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.findings.inc(&["secret.aws.access-key", "redact"]);
        m.findings.inc(&["secret.aws.access-key", "redact"]);
        m.denials.inc(&["catalog"]);
        m.messages.inc(&["server-to-client", "redact"]);
        m.requests.inc(&["h3"]);
        m.inspect_latency.observe(Duration::from_micros(30));
        m.inspect_latency.observe(Duration::from_millis(3));
        assert_eq!(m.findings.get(&["secret.aws.access-key", "redact"]), 2);
        let text = m.render(3);
        assert!(text
            .contains("sluice_findings_total{rule=\"secret.aws.access-key\",action=\"redact\"} 2"));
        assert!(text.contains("sluice_denials_total{control=\"catalog\"} 1"));
        assert!(text.contains("sluice_approval_queue_depth 3"));
        assert!(text.contains(
            "sluice_messages_total{direction=\"server-to-client\",verdict=\"redact\"} 1"
        ));
        assert!(text.contains("sluice_requests_total{transport=\"h3\"} 1"));
        assert_eq!(m.messages.get(&["client-to-server", "forward"]), 0);
        assert!(text.contains("sluice_inspection_seconds_bucket{le=\"0.00005\"} 1"));
        assert!(text.contains("sluice_inspection_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("sluice_inspection_seconds_count 2"));
    }
}
