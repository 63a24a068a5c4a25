//! Prometheus metrics through the `prometheus-client` crate, rendered on the admin listener's
//! `/metrics` in the OpenMetrics text format (which Prometheus also reads as its text format
//! 0.0.4). Labels come from transports, rule ids, controls and verdicts, never from traffic
//! content; a label value not seen before (a new transport, a new rule) gets its own series.

use std::borrow::Cow;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Latency buckets in seconds: 10 us to 10 s.
const BUCKETS: [f64; 13] = [
    0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 1.0, 10.0,
];

/// One label value: borrowed for the fixed vocabulary (transports, verdicts, controls), owned
/// for rule ids.
pub type Label = Cow<'static, str>;

type Labels<const N: usize> = [(&'static str, Label); N];

/// A counter family with `N` named labels, e.g. findings by rule and action.
#[derive(Clone)]
pub struct Counters<const N: usize> {
    keys: [&'static str; N],
    family: Family<Labels<N>, Counter>,
}

impl<const N: usize> Counters<N> {
    fn new(keys: [&'static str; N]) -> Self {
        Counters {
            keys,
            family: Family::default(),
        }
    }

    fn labels(&self, values: [Label; N]) -> Labels<N> {
        let mut values = values.into_iter();
        self.keys.map(|k| (k, values.next().unwrap_or_default()))
    }

    /// Adds one under these label values, in the order of the family's keys.
    pub fn inc(&self, values: [&str; N]) {
        let owned = values.map(|v| Cow::Owned(v.to_string()));
        self.family.get_or_create(&self.labels(owned)).inc();
    }

    /// Adds one under label values of the fixed vocabulary (no allocation when the series
    /// exists).
    pub fn inc_static(&self, values: [&'static str; N]) {
        self.family
            .get_or_create(&self.labels(values.map(Cow::Borrowed)))
            .inc();
    }

    /// The count under these label values.
    pub fn get(&self, values: [&str; N]) -> u64 {
        let owned = values.map(|v| Cow::Owned(v.to_string()));
        self.family.get_or_create(&self.labels(owned)).get()
    }
}

/// A latency histogram in seconds.
#[derive(Clone)]
pub struct Latency(Histogram);

impl Default for Latency {
    fn default() -> Self {
        Latency(Histogram::new(BUCKETS))
    }
}

impl Latency {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        self.0.observe(d.as_secs_f64());
    }
}

/// Every metric sluice exports.
pub struct Metrics {
    /// HTTP requests by transport.
    pub requests: Counters<1>,
    /// Inspected messages by direction and verdict.
    pub messages: Counters<2>,
    /// Findings by rule and action.
    pub findings: Counters<2>,
    /// Refusals by control.
    pub denials: Counters<1>,
    /// Approval outcomes.
    pub approvals: Counters<1>,
    /// Config reloads by result.
    pub reloads: Counters<1>,
    /// Time to inspect one message on the worker pool.
    pub inspect_latency: Latency,
    /// Time to the upstream's response headers.
    pub upstream_latency: Latency,
    queue_depth: Gauge,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            requests: Counters::new(["transport"]),
            messages: Counters::new(["direction", "verdict"]),
            findings: Counters::new(["rule", "action"]),
            denials: Counters::new(["control"]),
            approvals: Counters::new(["decision"]),
            reloads: Counters::new(["result"]),
            inspect_latency: Latency::default(),
            upstream_latency: Latency::default(),
            queue_depth: Gauge::default(),
            registry: Registry::default(),
        };
        m.registered()
    }
}

impl Metrics {
    /// Registers every metric (the registry holds handles that share their values). Help
    /// texts have no final period: the encoder adds one.
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        let counters: [(&str, &str, &Family<Labels<1>, Counter>); 4] = [
            (
                "sluice_requests",
                "HTTP requests received",
                &self.requests.family,
            ),
            (
                "sluice_denials",
                "Messages refused by a gateway control",
                &self.denials.family,
            ),
            (
                "sluice_approvals",
                "Held calls by outcome",
                &self.approvals.family,
            ),
            (
                "sluice_reloads",
                "Configuration reloads",
                &self.reloads.family,
            ),
        ];
        for (name, help, family) in counters {
            r.register(name, help, family.clone());
        }
        r.register(
            "sluice_messages",
            "JSON-RPC messages inspected",
            self.messages.family.clone(),
        );
        r.register(
            "sluice_findings",
            "Engine findings",
            self.findings.family.clone(),
        );
        r.register(
            "sluice_approval_queue_depth",
            "Calls waiting for a human",
            self.queue_depth.clone(),
        );
        r.register(
            "sluice_inspection_seconds",
            "Time to inspect one message on the worker pool",
            self.inspect_latency.0.clone(),
        );
        r.register(
            "sluice_upstream_seconds",
            "Time to the upstream's response headers",
            self.upstream_latency.0.clone(),
        );
        self
    }

    /// The text exposition; `pending` is the approval queue's depth now.
    pub fn render(&self, pending: usize) -> String {
        self.queue_depth.set(pending.try_into().unwrap_or(i64::MAX));
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.findings.inc(["secret.aws.access-key", "redact"]);
        m.findings.inc(["secret.aws.access-key", "redact"]);
        m.denials.inc_static(["catalog"]);
        m.messages.inc_static(["server-to-client", "redact"]);
        m.requests.inc_static(["h3"]);
        m.requests.inc_static(["websocket"]);
        m.inspect_latency.observe(Duration::from_micros(30));
        m.inspect_latency.observe(Duration::from_millis(3));
        assert_eq!(m.findings.get(["secret.aws.access-key", "redact"]), 2);
        let text = m.render(3);
        assert!(text
            .contains("sluice_findings_total{rule=\"secret.aws.access-key\",action=\"redact\"} 2"));
        assert!(text.contains("sluice_denials_total{control=\"catalog\"} 1"));
        assert!(text.contains("sluice_approval_queue_depth 3"));
        assert!(text.contains(
            "sluice_messages_total{direction=\"server-to-client\",verdict=\"redact\"} 1"
        ));
        assert!(text.contains("sluice_requests_total{transport=\"h3\"} 1"));
        assert!(
            text.contains("sluice_requests_total{transport=\"websocket\"} 1"),
            "labels are open to new transports"
        );
        assert_eq!(m.messages.get(["client-to-server", "forward"]), 0);
        assert!(
            text.contains("sluice_inspection_seconds_bucket{le=\"0.00005\"} 1"),
            "{text}"
        );
        assert!(text.contains("sluice_inspection_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("sluice_inspection_seconds_count 2"));
    }
}
