//! What became of every message `bench load` sent: sent, accepted (the server stored
//! it, or the recipient's receipt came back), refused (a typed answer), failed (no
//! answer), delivered (seen by the recipient, first time only).
//!
//! A message is **lost** when it was accepted and never delivered: that is the
//! promise a server must keep, and the figure the budget says must be 0.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The two ways a message crosses the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Path {
    /// Over a relayed connection (a circuit through the server's relay).
    Relayed,
    /// Left in the server's mailbox, fetched by the recipient when notified.
    Mailbox,
}

struct Entry {
    path: Path,
    at: Instant,
    accepted: bool,
    refused: bool,
    failed: bool,
    delivered: Option<Instant>,
}

/// Every message of a run. Bounded by the run's length × rate, checked up front.
#[derive(Default)]
pub(crate) struct Ledger {
    entries: HashMap<[u8; 32], Entry>,
    reasons: BTreeMap<String, u64>,
    duplicates: u64,
    strangers: u64,
    fetch_failures: u64,
}

/// Figures for one path.
#[derive(Debug, Default, Serialize)]
pub(crate) struct PathFigures {
    pub(crate) sent: u64,
    pub(crate) accepted: u64,
    pub(crate) refused: u64,
    pub(crate) failed: u64,
    pub(crate) delivered: u64,
    /// Accepted and never delivered.
    pub(crate) lost: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

impl Ledger {
    pub(crate) fn sent(&mut self, key: [u8; 32], path: Path, at: Instant) {
        self.entries.insert(
            key,
            Entry { path, at, accepted: false, refused: false, failed: false, delivered: None },
        );
    }

    pub(crate) fn accepted(&mut self, key: [u8; 32]) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.accepted = true;
        }
    }

    pub(crate) fn refused(&mut self, key: [u8; 32], reason: &str) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.refused = true;
        }
        *self.reasons.entry(reason.to_owned()).or_default() += 1;
    }

    pub(crate) fn failed(&mut self, key: [u8; 32], reason: &str) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.failed = true;
        }
        *self.reasons.entry(reason.to_owned()).or_default() += 1;
    }

    pub(crate) fn delivered(&mut self, key: [u8; 32], at: Instant) {
        match self.entries.get_mut(&key) {
            Some(e) if e.delivered.is_none() => e.delivered = Some(at),
            Some(_) => self.duplicates += 1,
            None => self.strangers += 1,
        }
    }

    pub(crate) fn fetch_failed(&mut self) {
        self.fetch_failures += 1;
    }

    /// Accepted messages still undelivered.
    pub(crate) fn outstanding(&self) -> usize {
        self.entries.values().filter(|e| e.accepted && e.delivered.is_none()).count()
    }

    /// Sent messages with neither an answer nor a delivery yet.
    pub(crate) fn unanswered(&self) -> usize {
        self.entries
            .values()
            .filter(|e| !(e.accepted || e.refused || e.failed) && e.delivered.is_none())
            .count()
    }

    pub(crate) fn reasons(&self) -> &BTreeMap<String, u64> {
        &self.reasons
    }

    /// Deliveries seen twice, and deliveries of messages this run never sent.
    pub(crate) fn oddities(&self) -> (u64, u64, u64) {
        (self.duplicates, self.strangers, self.fetch_failures)
    }

    pub(crate) fn figures(&self, path: Option<Path>) -> PathFigures {
        let mut f = PathFigures::default();
        let mut samples = Vec::new();
        for e in self.entries.values().filter(|e| path.is_none_or(|p| e.path == p)) {
            f.sent += 1;
            f.accepted += u64::from(e.accepted);
            f.refused += u64::from(e.refused);
            f.failed += u64::from(e.failed);
            if let Some(at) = e.delivered {
                f.delivered += 1;
                samples.push(at.saturating_duration_since(e.at));
            } else if e.accepted {
                f.lost += 1;
            }
        }
        samples.sort();
        let ms = |p: f64| percentile(&samples, p).as_secs_f64() * 1000.0;
        f.p50_ms = ms(50.0);
        f.p90_ms = ms(90.0);
        f.p99_ms = ms(99.0);
        f.max_ms = ms(100.0);
        f
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let Some(last) = sorted.len().checked_sub(1) else { return Duration::ZERO };
    // Nearest rank; the cast is of a value within 0..=last.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = ((p / 100.0) * last as f64).round() as usize;
    sorted.get(rank.min(last)).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_means_accepted_and_never_delivered() {
        let t0 = Instant::now();
        let mut l = Ledger::default();
        l.sent([1; 32], Path::Mailbox, t0);
        l.sent([2; 32], Path::Mailbox, t0);
        l.sent([3; 32], Path::Relayed, t0);
        l.sent([4; 32], Path::Relayed, t0);
        l.accepted([1; 32]);
        l.accepted([2; 32]);
        l.delivered([1; 32], t0 + Duration::from_millis(4));
        l.delivered([1; 32], t0 + Duration::from_millis(9));
        l.refused([3; 32], "mailbox_MailboxFull");
        l.delivered([4; 32], t0 + Duration::from_millis(2));
        let mailbox = l.figures(Some(Path::Mailbox));
        assert_eq!((mailbox.sent, mailbox.accepted, mailbox.delivered, mailbox.lost), (2, 2, 1, 1));
        assert!((mailbox.p50_ms - 4.0).abs() < 0.01);
        let all = l.figures(None);
        assert_eq!((all.sent, all.refused, all.delivered, all.lost), (4, 1, 2, 1));
        assert_eq!(l.outstanding(), 1);
        assert_eq!(l.oddities(), (1, 0, 0));
    }
}
