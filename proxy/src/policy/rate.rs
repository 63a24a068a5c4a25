//! Rate limits and byte budgets: token buckets keyed by client, by client and tool, and by
//! upstream, and a per-client byte budget that resets at midnight UTC. State survives config
//! reloads (a reload must not hand every client a fresh burst).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::config::Rate;

/// How a limit was hit: wait this long before trying again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exceeded {
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Keys are bounded: buckets that have refilled are dropped when the map grows past this.
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, Bucket>>,
    budgets: Mutex<HashMap<String, (u64, usize)>>,
}

impl Limiter {
    /// Takes one token from the bucket named `key`, refilled at `rate` and holding at most
    /// `burst` (default: one second's worth, at least 1).
    pub fn take(&self, key: &str, rate: Rate, burst: Option<u32>) -> Result<(), Exceeded> {
        self.take_at(key, rate, burst, Instant::now())
    }

    fn take_at(
        &self,
        key: &str,
        rate: Rate,
        burst: Option<u32>,
        now: Instant,
    ) -> Result<(), Exceeded> {
        let cap = burst.map_or(rate.per_second.max(1.0), f64::from).max(1.0);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * rate.per_second < cap
            });
        }
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        let refilled = now.saturating_duration_since(b.at).as_secs_f64() * rate.per_second;
        b.tokens = (b.tokens + refilled).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / rate.per_second;
            Err(Exceeded {
                retry_after: Duration::from_secs_f64(wait.max(0.001)),
            })
        }
    }

    /// Adds `bytes` to `client`'s count for today (UTC); an error once the day's `budget` is
    /// spent, with the time to midnight. The bytes of a refused message are not counted.
    pub fn spend(&self, client: &str, bytes: usize, budget: usize) -> Result<(), Exceeded> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        self.spend_at(client, bytes, budget, now)
    }

    fn spend_at(
        &self,
        client: &str,
        bytes: usize,
        budget: usize,
        unix: u64,
    ) -> Result<(), Exceeded> {
        let day = unix / 86_400;
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        if budgets.len() >= MAX_KEYS && !budgets.contains_key(client) {
            budgets.retain(|_, (d, _)| *d == day);
        }
        let entry = budgets.entry(client.to_string()).or_insert((day, 0));
        if entry.0 != day {
            *entry = (day, 0);
        }
        if entry.1.saturating_add(bytes) > budget {
            return Err(Exceeded {
                retry_after: Duration::from_secs((day + 1) * 86_400 - unix),
            });
        }
        entry.1 += bytes;
        Ok(())
    }

    /// Counts answer bytes against the budget without refusing (the answer already exists;
    /// the next request is the one refused).
    pub fn add_spent(&self, client: &str, bytes: usize) {
        let day = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            / 86_400;
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        let entry = budgets.entry(client.to_string()).or_insert((day, 0));
        if entry.0 != day {
            *entry = (day, 0);
        }
        entry.1 = entry.1.saturating_add(bytes);
    }
}

/// The per-tool rate control: a `[[tool]]` entry's `rate`, per client and upstream.
pub struct ToolRateStep;

impl super::Control for ToolRateStep {
    fn kind(&self) -> super::ControlKind {
        super::ControlKind::Rate
    }

    fn check<'a>(
        &'a self,
        _g: &'a super::Gateway,
        rt: &'a super::Runtime,
        call: &'a super::Call<'a>,
    ) -> super::control::StepFuture<'a> {
        let limit = call.policies.iter().find_map(|p| p.rate);
        let step = match (call.tool(), limit) {
            (Some(tool), Some((rate, burst))) => {
                let key = format!(
                    "tool\0{}\0{}\0{tool}",
                    call.caller.key, call.caller.upstream
                );
                match rt.limiter.take(&key, rate, burst) {
                    Ok(()) => super::Step::Pass,
                    Err(e) => super::Step::Deny(super::limited(
                        self.kind(),
                        format!("tool `{tool}` is over its rate limit for this client"),
                        e,
                    )),
                }
            }
            _ => super::Step::Pass,
        };
        super::control::ready(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_allow_a_burst_then_the_rate() {
        let l = Limiter::default();
        let rate = Rate::parse("2/s").unwrap();
        let t0 = Instant::now();
        assert!(l.take_at("a", rate, Some(3), t0).is_ok());
        assert!(l.take_at("a", rate, Some(3), t0).is_ok());
        assert!(l.take_at("a", rate, Some(3), t0).is_ok());
        let e = l.take_at("a", rate, Some(3), t0).unwrap_err();
        assert!((e.retry_after.as_secs_f64() - 0.5).abs() < 0.01, "{e:?}");
        // Another key has its own bucket.
        assert!(l.take_at("b", rate, Some(3), t0).is_ok());
        // Half a second later one token is back.
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.take_at("a", rate, Some(3), t1).is_ok());
        assert!(l.take_at("a", rate, Some(3), t1).is_err());
    }

    #[test]
    fn rates_parse_with_units() {
        assert_eq!(Rate::parse("600/m").unwrap().per_second, 10.0);
        assert_eq!(Rate::parse("1/s").unwrap().per_second, 1.0);
        for bad in ["", "5", "x/s", "5/fortnight", "0/s", "-1/s"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn budgets_reset_at_midnight_utc() {
        let l = Limiter::default();
        let noon = 20_000 * 86_400 + 43_200;
        assert!(l.spend_at("c", 600, 1000, noon).is_ok());
        let e = l.spend_at("c", 600, 1000, noon).unwrap_err();
        assert_eq!(e.retry_after, Duration::from_secs(43_200));
        assert!(l.spend_at("c", 400, 1000, noon).is_ok());
        assert!(l.spend_at("c", 600, 1000, noon + 43_200).is_ok());
    }
}
