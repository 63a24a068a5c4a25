//! How much scan time each client has spent on the calling threads lately. Inline scanning
//! takes a core from whoever else that thread serves, so a client whose small messages are
//! expensive to scan (a flood of 16 KiB made of a repeated credential keyword) spends its
//! budget and has the rest of the window's messages scanned by the workers, where clients
//! take turns; everyone else keeps the inline fast path.
//!
//! Clients are hashed into a fixed table of counters (no allocation, no lock): two clients
//! sharing a counter share a budget, which only sends more of their work to the workers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counters in the table.
const SLOTS: usize = 1024;
/// The window over which spending is counted.
const WINDOW: Duration = Duration::from_millis(100);
/// Inline scan time one client may spend per window: a tenth of one core.
const BUDGET: Duration = Duration::from_millis(10);

/// Inline scan time spent per client in the current window.
pub(super) struct InlineBudget {
    /// Per slot: window number in the high 32 bits, microseconds spent in the low 32.
    spent: Box<[AtomicU64]>,
    start: Instant,
}

impl InlineBudget {
    /// An empty table.
    pub fn new() -> Self {
        InlineBudget {
            spent: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            start: Instant::now(),
        }
    }

    fn window(&self, at: Instant) -> u64 {
        let n = at.duration_since(self.start).as_millis() / WINDOW.as_millis();
        // Window 0 is the empty slot's; numbering from 1 keeps the two apart.
        (n as u64 & 0xffff_ffff).wrapping_add(1) & 0xffff_ffff
    }

    fn slot(&self, client: u64) -> &AtomicU64 {
        // Fibonacci hashing: the client numbers are hashes already, but 0 and small test
        // numbers are not.
        let i = client.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros());
        &self.spent[i as usize]
    }

    /// Whether `client` may have a message scanned on the calling thread now.
    pub fn allows(&self, client: u64) -> bool {
        let v = self.slot(client).load(Ordering::Relaxed);
        v >> 32 != self.window(Instant::now()) || (v & 0xffff_ffff) < BUDGET.as_micros() as u64
    }

    /// Counts `spent` (an inline scan that ended now) against `client`'s budget.
    pub fn charge(&self, client: u64, spent: Duration) {
        let slot = self.slot(client);
        let window = self.window(Instant::now());
        let us = spent.as_micros().min(u32::MAX as u128) as u64;
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            let used = if v >> 32 == window {
                v & 0xffff_ffff
            } else {
                0
            };
            Some(window << 32 | (used + us).min(0xffff_ffff))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_over_its_budget_is_sent_to_the_workers_until_the_next_window() {
        let b = InlineBudget::new();
        // Start at a window's beginning so the test does not straddle two.
        let into = b.start.elapsed().as_millis() % WINDOW.as_millis();
        std::thread::sleep(WINDOW - Duration::from_millis(into as u64));
        assert!(b.allows(7));
        b.charge(7, BUDGET / 2);
        assert!(b.allows(7), "half the budget spent");
        b.charge(7, BUDGET / 2);
        assert!(!b.allows(7), "the whole budget spent");
        assert!(b.allows(8), "another client keeps its own");
        std::thread::sleep(WINDOW);
        assert!(b.allows(7), "a new window, a new budget");
    }

    #[test]
    fn slots_spread_small_client_numbers() {
        let b = InlineBudget::new();
        let used: std::collections::HashSet<*const AtomicU64> =
            (0..64u64).map(|c| b.slot(c) as *const _).collect();
        assert!(used.len() > 60, "{} slots for 64 clients", used.len());
    }
}
