//! What the load benchmarks share: percentile summaries and fixed-rate pacing.

use std::time::{Duration, Instant};

pub struct Run {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
}

pub fn summarize(mut lat: Vec<Duration>, secs: f64) -> Run {
    lat.sort_unstable();
    let at = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    Run {
        rps: lat.len() as f64 / secs,
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// Waits until request `k` of a fixed-rate run is due and returns the instant its latency
/// counts from: when it was due if the previous call ran late (so the stall shows), else when
/// it is sent (the timer wakes at millisecond granularity, which is not the proxy's delay).
pub async fn wait_turn(start: Instant, interval: Duration, k: u64, prev_done: Instant) -> Instant {
    let due = start + interval * k as u32;
    tokio::time::sleep_until(due.into()).await;
    if prev_done > due {
        due
    } else {
        Instant::now()
    }
}

pub fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}
