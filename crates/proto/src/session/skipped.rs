//! Keys of messages that have not arrived yet (Signal's `MKSKIPPED`), bounded.
//!
//! When a header says message `N` of a chain while the receiver is at `Nr`, the
//! keys `Nr..N` are derived and kept here, each under the header key of its chain,
//! so a late or reordered message still opens — exactly once: its key leaves the
//! store when used. Three bounds keep a peer (or the network) from making the
//! store grow without end, each a constant here:
//!
//! - at most [`MAX_SKIP_PER_CHAIN`] keys skipped in one go (a header asking for
//!   more is refused, and the state is left as it was);
//! - at most [`MAX_SKIPPED`] keys in all: beyond it the oldest go first;
//! - a key expires [`SKIPPED_TTL`] after it was stored (the message TTL: a message
//!   older than that is dead in every mailbox too).

use std::time::Duration;

use communitas_types::Timestamp;

use super::kdf::Key;

/// Most message keys skipped in one chain at once: Signal's libsignal uses 2,000
/// for all chains; a burst of 1,000 lost or reordered messages in one chain is
/// already far past what a mailbox round delivers.
pub const MAX_SKIP_PER_CHAIN: u32 = 1_000;
/// Most skipped keys kept in all.
pub const MAX_SKIPPED: usize = 2_000;
/// How long a skipped key is kept: the message TTL (30 days).
pub const SKIPPED_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// One skipped key.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) hk: Key,
    pub(crate) n: u32,
    pub(crate) mk: Key,
    pub(crate) stored_at: Timestamp,
}

/// The store: entries oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Skipped {
    pub(crate) entries: Vec<Entry>,
}

impl Skipped {
    /// Drops keys stored more than [`SKIPPED_TTL`] before `now`.
    pub(crate) fn expire(&mut self, now: Timestamp) {
        let cutoff = now.saturating_sub(SKIPPED_TTL);
        self.entries.retain(|e| e.stored_at > cutoff);
    }

    /// Adds a key, dropping the oldest beyond [`MAX_SKIPPED`].
    pub(crate) fn push(&mut self, hk: &Key, n: u32, mk: Key, now: Timestamp) {
        self.entries.push(Entry { hk: hk.clone(), n, mk, stored_at: now });
        if self.entries.len() > MAX_SKIPPED {
            let excess = self.entries.len() - MAX_SKIPPED;
            self.entries.drain(..excess);
        }
    }

    /// The distinct header keys, in order of first appearance. A chain's keys are
    /// stored in one run (only the current receiving chain gains keys), so comparing
    /// with the last one found skips nearly all the search.
    pub(crate) fn header_keys(&self) -> Vec<Key> {
        let mut out: Vec<Key> = Vec::new();
        for e in &self.entries {
            if out.last() != Some(&e.hk) && !out.contains(&e.hk) {
                out.push(e.hk.clone());
            }
        }
        out
    }

    /// Takes the key of message `n` of the chain with header key `hk`.
    pub(crate) fn take(&mut self, hk: &Key, n: u32) -> Option<Key> {
        let at = self.entries.iter().position(|e| e.n == n && &e.hk == hk)?;
        Some(self.entries.remove(at).mk)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_taken_once_and_bounded_by_count_and_age() {
        let mut s = Skipped::default();
        let hk = Key([1; 32]);
        let t = Timestamp::from_millis(1_000_000);
        for n in 0..(MAX_SKIPPED as u32 + 5) {
            s.push(&hk, n, Key([2; 32]), t);
        }
        assert_eq!(s.len(), MAX_SKIPPED);
        assert!(s.take(&hk, 0).is_none(), "the oldest were dropped");
        assert!(s.take(&hk, 5).is_some());
        assert!(s.take(&hk, 5).is_none(), "a key is taken once");
        assert!(s.take(&Key([3; 32]), 6).is_none(), "keys are per chain");
        s.expire(t.saturating_add(SKIPPED_TTL - Duration::from_millis(1)));
        assert_eq!(s.len(), MAX_SKIPPED - 1);
        s.expire(t.saturating_add(SKIPPED_TTL));
        assert_eq!(s.len(), 0);
    }
}
