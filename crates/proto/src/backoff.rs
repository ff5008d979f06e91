//! Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff
//! and Jitter", 2015): the wait before attempt `n + 1` is uniform in
//! `[0, min(cap, base · 2^n)]`, never below a floor so a zero draw cannot spin.
//! Every retry loop in the protocol (outbox deliveries, presence to unreachable
//! contacts, file fetches) uses this one copy with its own [`Backoff`] settings.

use std::time::Duration;

use crate::Random;

/// A backoff schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first wait.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
    /// The shortest wait.
    pub floor: Duration,
}

impl Backoff {
    /// Message delivery (ARCHITECTURE §6): 1 s doubling to a 5-minute cap.
    pub const DELIVERY: Self = Self {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(300),
        floor: Duration::from_millis(100),
    };

    /// Presence heartbeats to a contact we cannot reach (decision 0030): 1 s doubling
    /// to a 5-minute cap, and never sooner than the shortest heartbeat interval.
    pub const PRESENCE: Self = Self {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(300),
        floor: Duration::from_millis(500),
    };

    /// The largest wait after `failures` failed attempts in a row, before jitter.
    pub fn ceiling(&self, failures: u32) -> Duration {
        self.base.saturating_mul(2u32.saturating_pow(failures.min(24))).min(self.cap)
    }

    /// The wait after `failures` failed attempts in a row: full jitter under
    /// [`ceiling`](Self::ceiling), at least the floor.
    pub fn wait(&self, failures: u32, rng: &mut impl Random) -> Duration {
        let ceiling_ms = u64::try_from(self.ceiling(failures).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.below(ceiling_ms.saturating_add(1))).max(self.floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Seeded;

    #[test]
    fn waits_stay_under_a_doubling_ceiling_up_to_the_cap() {
        let b = Backoff::DELIVERY;
        let mut rng = Seeded::new(1);
        assert_eq!(b.ceiling(0), Duration::from_secs(1));
        assert_eq!(b.ceiling(3), Duration::from_secs(8));
        assert_eq!(b.ceiling(40), Duration::from_secs(300));
        for failures in 0..40 {
            for _ in 0..50 {
                let w = b.wait(failures, &mut rng);
                assert!(w >= b.floor && w <= b.ceiling(failures).max(b.floor), "{w:?}");
            }
        }
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let b = Backoff::DELIVERY;
        let mut rng = Seeded::new(2);
        let waits: std::collections::HashSet<_> = (0..100).map(|_| b.wait(8, &mut rng)).collect();
        assert!(waits.len() > 90, "full jitter draws distinct waits: {}", waits.len());
    }
}
