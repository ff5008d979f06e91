//! A bounded table of what a peer proved or was handed for one mailbox: the challenge
//! nonces and the fetch sessions of the [mailbox server](super).
//!
//! Entries are keyed by `(peer, mailbox)` and carry the time they were made; an entry
//! is live for `ttl` after that. Two bounds hold at every insert:
//!
//! - **per peer**: a peer holds at most `per_peer` entries; a new one pushes out that
//!   peer's own oldest, never anybody else's;
//! - **overall**: at most `cap` entries; when full (after the stale ones are gone), the
//!   oldest tenth is dropped, so a flood costs the oldest entries, not everybody's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use communitas_types::{MailboxId, Timestamp};

const FIRST: MailboxId = MailboxId::from_bytes([0; 32]);
const LAST: MailboxId = MailboxId::from_bytes([0xff; 32]);

/// One entry: its value and when it was made.
#[derive(Debug, Clone)]
struct Entry<V> {
    value: V,
    born: Timestamp,
}

/// The table (see the module docs).
#[derive(Debug, Clone)]
pub(super) struct Table<P, V> {
    by_peer: BTreeMap<(P, MailboxId), Entry<V>>,
    /// The same keys by mailbox: who holds an entry for a mailbox.
    by_mailbox: BTreeMap<MailboxId, BTreeSet<P>>,
    ttl: Duration,
    per_peer: usize,
    cap: usize,
}

impl<P: Copy + Ord, V> Table<P, V> {
    /// An empty table whose entries live `ttl`, at most `per_peer` per peer and `cap`
    /// in all.
    pub(super) fn new(ttl: Duration, per_peer: usize, cap: usize) -> Self {
        Self {
            by_peer: BTreeMap::new(),
            by_mailbox: BTreeMap::new(),
            ttl,
            per_peer: per_peer.max(1),
            cap: cap.max(1),
        }
    }

    /// How many entries are held (live or not yet pruned).
    pub(super) fn len(&self) -> usize {
        self.by_peer.len()
    }

    fn live(&self, born: Timestamp, now: Timestamp) -> bool {
        // A clock stepped back makes an entry's age 0, not negative.
        let age = now.as_millis().saturating_sub(born.as_millis());
        u128::from(age) < self.ttl.as_millis()
    }

    /// The live entry of `peer` for `mailbox`.
    pub(super) fn get(&self, peer: P, mailbox: MailboxId, now: Timestamp) -> Option<&V> {
        self.by_peer.get(&(peer, mailbox)).filter(|e| self.live(e.born, now)).map(|e| &e.value)
    }

    /// Removes the entry of `peer` for `mailbox`; returns it if it was live.
    pub(super) fn take(&mut self, peer: P, mailbox: MailboxId, now: Timestamp) -> Option<V> {
        let entry = self.remove(peer, mailbox)?;
        self.live(entry.born, now).then_some(entry.value)
    }

    fn remove(&mut self, peer: P, mailbox: MailboxId) -> Option<Entry<V>> {
        if let Some(peers) = self.by_mailbox.get_mut(&mailbox) {
            peers.remove(&peer);
            if peers.is_empty() {
                self.by_mailbox.remove(&mailbox);
            }
        }
        self.by_peer.remove(&(peer, mailbox))
    }

    /// Puts `value` for `peer` and `mailbox` (replacing theirs), within the bounds.
    pub(super) fn insert(&mut self, peer: P, mailbox: MailboxId, value: V, now: Timestamp) {
        self.remove(peer, mailbox);
        self.prune(now);
        if self.len() >= self.cap {
            self.drop_oldest_tenth();
        }
        let mine: Vec<(MailboxId, Timestamp)> = self
            .by_peer
            .range((peer, FIRST)..=(peer, LAST))
            .map(|((_, m), e)| (*m, e.born))
            .collect();
        if mine.len() >= self.per_peer {
            let mut mine = mine;
            mine.sort_unstable_by_key(|(_, born)| *born);
            let excess = mine.len() + 1 - self.per_peer;
            for (m, _) in mine.into_iter().take(excess) {
                self.remove(peer, m);
            }
        }
        self.by_mailbox.entry(mailbox).or_default().insert(peer);
        self.by_peer.insert((peer, mailbox), Entry { value, born: now });
    }

    /// Drops the entries that are no longer live.
    pub(super) fn prune(&mut self, now: Timestamp) {
        let stale: Vec<(P, MailboxId)> =
            self.by_peer.iter().filter(|(_, e)| !self.live(e.born, now)).map(|(k, _)| *k).collect();
        for (peer, mailbox) in stale {
            self.remove(peer, mailbox);
        }
    }

    /// Drops the oldest entries down to nine tenths of the cap.
    fn drop_oldest_tenth(&mut self) {
        let mut ages: Vec<(Timestamp, (P, MailboxId))> =
            self.by_peer.iter().map(|(k, e)| (e.born, *k)).collect();
        ages.sort_unstable_by_key(|(born, _)| *born);
        let excess = self.len().saturating_sub(self.cap * 9 / 10);
        for (_, (peer, mailbox)) in ages.into_iter().take(excess) {
            self.remove(peer, mailbox);
        }
    }

    /// The peers with a live entry for `mailbox`, the most recent first, at most `n`.
    pub(super) fn peers_of(&self, mailbox: MailboxId, now: Timestamp, n: usize) -> Vec<P> {
        let mut peers: Vec<(Timestamp, P)> = self
            .by_mailbox
            .get(&mailbox)
            .into_iter()
            .flatten()
            .filter_map(|p| self.by_peer.get(&(*p, mailbox)).map(|e| (e.born, *p)))
            .filter(|(born, _)| self.live(*born, now))
            .collect();
        peers.sort_unstable_by_key(|p| std::cmp::Reverse(p.0));
        peers.into_iter().take(n).map(|(_, p)| p).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbox::server::MAX_PENDING;

    #[test]
    fn a_full_table_loses_its_oldest_entries_not_all() {
        let ttl = Duration::from_secs(60);
        let mut table: Table<usize, ()> = Table::new(ttl, 8, MAX_PENDING);
        let mailbox = MailboxId::from_bytes([1; 32]);
        let start = 1_780_000_000_000;
        for n in 0..MAX_PENDING {
            table.insert(n, mailbox, (), Timestamp::from_millis(start + n as u64));
        }
        assert_eq!(table.len(), MAX_PENDING);
        // All live, and the table is full: the next one costs the oldest tenth.
        let now = Timestamp::from_millis(start + MAX_PENDING as u64);
        table.insert(MAX_PENDING, mailbox, (), now);
        assert_eq!(table.len(), MAX_PENDING * 9 / 10 + 1);
        let oldest_kept = (0..MAX_PENDING).find(|n| table.get(*n, mailbox, now).is_some());
        assert_eq!(oldest_kept, Some(MAX_PENDING - MAX_PENDING * 9 / 10));
        assert!(table.get(MAX_PENDING - 1, mailbox, now).is_some(), "the newest entries stay");
        // Below the bound, only stale entries go.
        let later = Timestamp::from_millis(start + (MAX_PENDING - 10) as u64 + 60_000);
        table.prune(later);
        assert_eq!(table.len(), 10);
        assert_eq!(table.peers_of(mailbox, later, 100).len(), 10);
    }
}
