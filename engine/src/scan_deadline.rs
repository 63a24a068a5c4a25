//! A wall-clock time budget for one inspection. The clock is read at cheap points only: per
//! batch of strings laid out, per chunk Hyperscan scans, every [`CHECK_EVERY_HITS`] hits inside
//! one Hyperscan call, per rule confirmed in bulk; never per byte or per match.

use std::time::{Duration, Instant};

/// Hyperscan hits between two reads of the clock inside one scan call: a scan of dense hits
/// (one per byte) stays stoppable, and a clock read (about 20 ns) costs under 0.1% of the
/// hits' own work.
pub const CHECK_EVERY_HITS: u32 = 1024;

/// One inspection ran past its time budget; the inspection is abandoned, never cut short into
/// a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("inspection ran past its time budget of {limit:?}")]
pub struct PastDeadline {
    /// The budget it was given.
    pub limit: Duration,
}

/// When one inspection must be over, if ever.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deadline {
    /// `None`: no budget (or one too large to represent as an instant).
    at: Option<Instant>,
    limit: Duration,
}

impl Deadline {
    /// No deadline: every check passes.
    pub const NONE: Deadline = Deadline {
        at: None,
        limit: Duration::ZERO,
    };

    /// A deadline `limit` from now; [`Deadline::NONE`] for `None`. A zero limit is already
    /// past at the first check.
    pub fn after(limit: Option<Duration>) -> Deadline {
        match limit {
            Some(limit) => Deadline {
                at: Instant::now().checked_add(limit),
                limit,
            },
            None => Deadline::NONE,
        }
    }

    /// Whether there is a deadline at all (so a caller can skip work only checks need).
    pub fn is_set(&self) -> bool {
        self.at.is_some()
    }

    /// Errors with [`PastDeadline`] when `now` is at or past the deadline.
    pub fn check_at(&self, now: Instant) -> Result<(), PastDeadline> {
        match self.at {
            Some(at) if now >= at => Err(PastDeadline { limit: self.limit }),
            _ => Ok(()),
        }
    }

    /// Reads the clock (only when there is a deadline) and errors with [`PastDeadline`] when
    /// it has passed.
    pub fn check(&self) -> Result<(), PastDeadline> {
        if self.at.is_none() {
            return Ok(());
        }
        self.check_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_never_passes_and_zero_always_has() {
        assert!(Deadline::NONE.check().is_ok());
        assert!(Deadline::after(None).check().is_ok());
        let zero = Deadline::after(Some(Duration::ZERO));
        assert_eq!(
            zero.check(),
            Err(PastDeadline {
                limit: Duration::ZERO
            })
        );
        assert!(Deadline::after(Some(Duration::from_secs(3600)))
            .check()
            .is_ok());
    }

    #[test]
    fn a_limit_past_what_an_instant_holds_is_no_deadline() {
        let d = Deadline::after(Some(Duration::MAX));
        assert!(!d.is_set());
        assert!(d.check().is_ok());
    }
}
