//! Rate limits and byte budgets: token buckets keyed by client, by client and tool, and by
//! upstream, and a per-client byte budget that resets at midnight UTC. State survives config
//! reloads (a reload must not hand every client a fresh burst).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::config::gateway::Rate;

/// How a limit was hit: wait this long before trying again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exceeded {
    /// The wait: until the next token (a rate), or until the next UTC day (a byte budget).
    pub retry_after: Duration,
}

/// Token buckets for every key that shares one quota (GCRA, the `governor` crate).
type Keyed<C> =
    RateLimiter<String, DashMapStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The keyed limiters by quota: (period in ns, burst).
type ByQuota<C> = HashMap<(u128, u32), Arc<Keyed<C>>>;

/// Keys are bounded: once a quota's buckets number this many, those that have refilled
/// (indistinguishable from a new bucket) are dropped.
const MAX_KEYS: usize = 100_000;

/// The slowest refill sluice models: one token a year (slower rates refill at this pace).
const MAX_PERIOD: Duration = Duration::from_secs(366 * 86_400);

/// The quota for `rate` tokens a second and a bucket of `burst` (default: one second's
/// worth, at least 1; a fraction of a token is dropped). Periods are kept between 1 ns and
/// [`MAX_PERIOD`], and the burst so that the bucket's depth in nanoseconds fits 64 bits.
fn quota(rate: Rate, burst: Option<u32>) -> Quota {
    let period = Duration::try_from_secs_f64(1.0 / rate.per_second)
        .unwrap_or(MAX_PERIOD)
        .clamp(Duration::from_nanos(1), MAX_PERIOD);
    let cap = burst
        .map_or(rate.per_second, f64::from)
        .clamp(1.0, f64::from(u32::MAX)) as u32;
    let deepest = u64::MAX / period.as_nanos().max(1) as u64;
    let cap = NonZeroU32::new(cap.min(u32::try_from(deepest).unwrap_or(u32::MAX)))
        .unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(cap)
}

/// Rate limits (token buckets by key) and daily byte budgets (by client), kept across
/// config reloads. `C` is the clock (a fake one in tests).
pub struct Limiter<C: Clock = MonotonicClock> {
    clock: C,
    /// One keyed limiter per distinct quota.
    buckets: Mutex<ByQuota<C>>,
    budgets: Mutex<HashMap<String, (u64, usize)>>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::with_clock(MonotonicClock)
    }
}

impl<C: Clock + Clone> Limiter<C> {
    fn with_clock(clock: C) -> Self {
        Limiter {
            clock,
            buckets: Mutex::default(),
            budgets: Mutex::default(),
        }
    }

    /// The keyed limiter for `q`, made on first use. A new quota (after a reload changed a
    /// rate) first drops the limiters whose buckets have all refilled.
    fn keyed(&self, q: Quota) -> Arc<Keyed<C>> {
        let id = (q.replenish_interval().as_nanos(), q.burst_size().get());
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = map.get(&id) {
            return Arc::clone(l);
        }
        map.retain(|_, l| {
            l.retain_recent();
            !l.is_empty()
        });
        let l = Arc::new(RateLimiter::dashmap_with_clock(q, self.clock.clone()));
        map.insert(id, Arc::clone(&l));
        l
    }

    /// Takes one token from the bucket named `key`, refilled at `rate` and holding at most
    /// `burst` tokens (default: one second's worth, at least 1). Errors: the bucket is empty;
    /// `retry_after` is the time until the next token (at least 1 ms).
    ///
    /// Buckets are per key and per quota: a key whose rate or burst changes (a reload) starts
    /// with a full bucket of the new size.
    pub fn take(&self, key: &str, rate: Rate, burst: Option<u32>) -> Result<(), Exceeded> {
        let limiter = self.keyed(quota(rate, burst));
        let key = key.to_string();
        if limiter.len() >= MAX_KEYS {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(&key).map_err(|not_until| Exceeded {
            retry_after: not_until
                .wait_time_from(self.clock.now())
                .max(Duration::from_millis(1)),
        })
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

    use governor::clock::FakeRelativeClock;

    fn fake() -> (FakeRelativeClock, Limiter<FakeRelativeClock>) {
        let clock = FakeRelativeClock::default();
        (clock.clone(), Limiter::with_clock(clock))
    }

    #[test]
    fn buckets_allow_a_burst_then_the_rate() {
        let (clock, l) = fake();
        let rate = Rate::parse("2/s").unwrap();
        assert!(l.take("a", rate, Some(3)).is_ok());
        assert!(l.take("a", rate, Some(3)).is_ok());
        assert!(l.take("a", rate, Some(3)).is_ok());
        let e = l.take("a", rate, Some(3)).unwrap_err();
        assert!((e.retry_after.as_secs_f64() - 0.5).abs() < 0.01, "{e:?}");
        // Another key has its own bucket.
        assert!(l.take("b", rate, Some(3)).is_ok());
        // Half a second later one token is back.
        clock.advance(Duration::from_millis(500));
        assert!(l.take("a", rate, Some(3)).is_ok());
        assert!(l.take("a", rate, Some(3)).is_err());
        // Idle long enough, the bucket is full again, and no fuller.
        clock.advance(Duration::from_secs(60));
        for _ in 0..3 {
            assert!(l.take("a", rate, Some(3)).is_ok());
        }
        assert!(l.take("a", rate, Some(3)).is_err());
    }

    #[test]
    fn the_default_burst_is_one_seconds_worth() {
        let (clock, l) = fake();
        let rate = Rate::parse("600/m").unwrap();
        for _ in 0..10 {
            assert!(l.take("k", rate, None).is_ok());
        }
        let e = l.take("k", rate, None).unwrap_err();
        assert!((e.retry_after.as_secs_f64() - 0.1).abs() < 0.01, "{e:?}");
        // Slower than one a second: a bucket of one, refilled a minute later.
        let slow = Rate::parse("1/m").unwrap();
        assert!(l.take("s", slow, None).is_ok());
        let e = l.take("s", slow, None).unwrap_err();
        assert!((e.retry_after.as_secs_f64() - 60.0).abs() < 0.01, "{e:?}");
        clock.advance(Duration::from_secs(60));
        assert!(l.take("s", slow, None).is_ok());
        // A burst of 0 is a burst of 1.
        assert!(l.take("z", slow, Some(0)).is_ok());
        assert!(l.take("z", slow, Some(0)).is_err());
    }

    #[test]
    fn extreme_rates_and_bursts_do_not_panic() {
        let (_, l) = fake();
        for (rate, burst) in [
            (1e-300, Some(u32::MAX)),
            (1e300, None),
            (1e-3, Some(1_000_000)),
        ] {
            let r = Rate { per_second: rate };
            let _ = l.take("x", r, burst);
            let _ = l.take("x", r, burst);
        }
    }

    #[test]
    fn refilled_buckets_are_dropped_past_the_key_bound() {
        let (clock, l) = fake();
        let rate = Rate::parse("1/s").unwrap();
        for i in 0..MAX_KEYS {
            assert!(l.take(&i.to_string(), rate, None).is_ok());
        }
        let keyed = l.keyed(quota(rate, None));
        assert_eq!(keyed.len(), MAX_KEYS);
        // Still empty buckets are kept; refilled ones go when the next key arrives.
        assert!(l.take("new", rate, None).is_ok());
        assert_eq!(keyed.len(), MAX_KEYS + 1);
        clock.advance(Duration::from_secs(2));
        assert!(l.take("newer", rate, None).is_ok());
        assert_eq!(keyed.len(), 1);
        // A limiter for another quota drops the idle ones.
        assert!(l.take("other", Rate::parse("5/s").unwrap(), None).is_ok());
        assert_eq!(l.buckets.lock().unwrap().len(), 2);
        clock.advance(Duration::from_secs(2));
        assert!(l.take("third", Rate::parse("7/s").unwrap(), None).is_ok());
        assert_eq!(l.buckets.lock().unwrap().len(), 1);
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
