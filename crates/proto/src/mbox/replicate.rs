//! Re-replication policy (decision 0020): the pure part of keeping R copies of every
//! mailbox envelope when holders leave, without the sender. The node's
//! `replicate` driver does the I/O (store pages, DHT lookups, requests).
//!
//! For each mailbox it keeps, a holder:
//!
//! 1. ranks the servers closest to the mailbox id together with itself by XOR distance
//!    between DHT keys ([`Walk::new`]);
//! 2. walks that ranking until R holders are counted, itself included ([`Walk::next`],
//!    [`Walk::holds`]); a node that answers `NotServer` does not count;
//! 3. offers each other server the hashes it keeps, at most [`MAX_ACK`] per request
//!    ([`offers`]); the server answers with those it lacks ([`answer`] keeps only
//!    hashes that were offered, so no server can ask for other mailboxes' mail);
//! 4. sends each wanted envelope as a [`replica`] carrying its expiry here, so a copy
//!    never outlives the original.

use std::collections::VecDeque;

use communitas_types::{MailboxId, Timestamp};

use super::{MAX_ACK, MboxRequest, MboxResponse, Refusal};

/// The ranking walk for one mailbox (see the module docs).
#[derive(Debug, Clone)]
pub struct Walk<P> {
    order: VecDeque<P>,
    me: P,
    holders: usize,
    replicas: usize,
}

/// Orders by XOR distance of two DHT keys (the same order as Kademlia's `Distance`,
/// which compares the XOR as a big-endian 256-bit number).
fn distance(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut d = [0u8; 32];
    for (out, (x, y)) in d.iter_mut().zip(a.iter().zip(b)) {
        *out = x ^ y;
    }
    d
}

impl<P: Copy + Eq> Walk<P> {
    /// A walk over `candidates` and `me` (each with its DHT key), nearest to `target`
    /// (the mailbox's DHT key) first, to count `replicas` holders. A candidate listed
    /// twice, or `me` among the candidates, is walked once.
    pub fn new(
        target: [u8; 32],
        me: (P, [u8; 32]),
        candidates: impl IntoIterator<Item = (P, [u8; 32])>,
        replicas: usize,
    ) -> Self {
        let mut all: Vec<([u8; 32], P)> = Vec::new();
        for (peer, key) in std::iter::once(me).chain(candidates) {
            if !all.iter().any(|(_, p)| *p == peer) {
                all.push((distance(&target, &key), peer));
            }
        }
        all.sort_by_key(|a| a.0);
        Self { order: all.into_iter().map(|(_, p)| p).collect(), me: me.0, holders: 0, replicas }
    }

    /// The next server to offer to, or `None` when R holders are counted or the
    /// ranking is walked. Passing ourselves counts us as a holder.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<P> {
        while self.holders < self.replicas {
            let peer = self.order.pop_front()?;
            if peer == self.me {
                self.holders += 1;
            } else {
                return Some(peer);
            }
        }
        None
    }

    /// The server last returned by [`next`](Self::next) keeps mailboxes: it counts.
    pub fn holds(&mut self) {
        self.holders += 1;
    }

    /// Holders counted so far, ourselves included once passed.
    pub fn holders(&self) -> usize {
        self.holders
    }
}

/// The offers for `hashes` of `mailbox`: at most [`MAX_ACK`] hashes each, with the
/// hashes each one offers.
pub fn offers(
    mailbox: MailboxId,
    hashes: &[[u8; 32]],
) -> impl Iterator<Item = (&[[u8; 32]], MboxRequest)> {
    hashes
        .chunks(MAX_ACK)
        .map(move |chunk| (chunk, MboxRequest::Offer { mailbox, hashes: chunk.to_vec() }))
}

/// What an offered server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// It keeps mailboxes and lacks these (only offered ones; maybe none).
    Wants(Vec<[u8; 32]>),
    /// It keeps mailboxes but took nothing now (busy, full, rate-limited): it counts as
    /// a holder, and the rest of this mailbox's offers to it wait for the next round.
    Declined,
    /// It keeps no mailboxes: it does not count.
    NotServer,
}

/// Classifies the `response` to an offer of `offered`.
pub fn answer(offered: &[[u8; 32]], response: MboxResponse) -> Answer {
    match response {
        MboxResponse::Wanted(wanted) => {
            Answer::Wants(wanted.into_iter().filter(|h| offered.contains(h)).collect())
        }
        MboxResponse::Refused(Refusal::NotServer) => Answer::NotServer,
        _ => Answer::Declined,
    }
}

/// The copy of an envelope kept here until `expires_at`.
pub fn replica(expires_at: Timestamp, envelope: Vec<u8>) -> MboxRequest {
    MboxRequest::Replicate { expires_at: expires_at.as_millis(), envelope }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[0] = n;
        k
    }

    #[test]
    fn the_walk_ranks_by_xor_distance_and_counts_itself() {
        // Target 0: distance = key. Me (peer 3) is the third nearest.
        let candidates = [(5, key(5)), (1, key(1)), (2, key(2)), (4, key(4)), (1, key(1))];
        let mut walk = Walk::new(key(0), (3, key(3)), candidates, 3);
        assert_eq!(walk.next(), Some(1));
        walk.holds();
        assert_eq!(walk.next(), Some(2), "peer 1 was walked once");
        walk.holds();
        // We are next: counted, and the walk ends at 3 holders.
        assert_eq!(walk.next(), None);
        assert_eq!(walk.holders(), 3);
    }

    #[test]
    fn non_servers_do_not_count_and_the_walk_goes_further() {
        let candidates = (1..=6).map(|n| (n, key(n)));
        let mut walk = Walk::new(key(0), (9, key(9)), candidates, 3);
        let mut offered = Vec::new();
        while let Some(peer) = walk.next() {
            offered.push(peer);
            // Odd peers keep no mailboxes.
            if peer % 2 == 0 {
                walk.holds();
            }
        }
        // 2 and 4 count, and 6; we are the farthest and were not reached.
        assert_eq!(offered, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(walk.holders(), 3);
        // Too few servers: the walk ends with what there is, ourselves included.
        let mut short = Walk::new(key(0), (9, key(9)), [(1, key(1))], 5);
        assert_eq!(short.next(), Some(1));
        short.holds();
        assert_eq!(short.next(), None);
        assert_eq!(short.holders(), 2);
    }

    #[test]
    fn the_distance_is_xor_not_plain_order() {
        // Target 0b1000_0000: key 0b1000_0001 is at distance 1, key 1 at 0b1000_0001.
        let mut walk = Walk::new(key(0x80), (7, key(0xff)), [(1, key(1)), (2, key(0x81))], 5);
        assert_eq!(walk.next(), Some(2));
        walk.holds();
        assert_eq!(walk.next(), Some(1));
    }

    #[test]
    fn offers_are_chunked_and_answers_keep_only_what_was_offered() {
        let mailbox = MailboxId::from_bytes([1; 32]);
        let hashes: Vec<[u8; 32]> =
            (0..MAX_ACK + 3).map(|n| blake3::hash(&n.to_le_bytes()).into()).collect();
        let sent: Vec<_> = offers(mailbox, &hashes).collect();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].0.len(), MAX_ACK);
        assert_eq!(sent[1].1, MboxRequest::Offer { mailbox, hashes: hashes[MAX_ACK..].to_vec() });
        let stranger = [0xee; 32];
        let wanted = MboxResponse::Wanted(vec![hashes[1], stranger, hashes[0]]);
        assert_eq!(answer(sent[0].0, wanted), Answer::Wants(vec![hashes[1], hashes[0]]));
        let not = MboxResponse::Refused(Refusal::NotServer);
        assert_eq!(answer(sent[0].0, not), Answer::NotServer);
        let busy = MboxResponse::Refused(Refusal::RateLimited);
        assert_eq!(answer(sent[0].0, busy), Answer::Declined);
        let copy = replica(Timestamp::from_millis(77), vec![1, 2]);
        assert_eq!(copy, MboxRequest::Replicate { expires_at: 77, envelope: vec![1, 2] });
    }
}
