//! Inbound requests a peer has waiting at the node (issue 16 item 1).
//!
//! The event channel to the node is bounded and shed when full (`Busy`): without a
//! share per peer, one peer with 4 connections × 256 streams could fill it and have
//! every other peer's messages answered `Busy`. Each handed-over request holds a
//! [`Permit`] until it is answered or dropped; a peer holding [`PER_PEER`] of them is
//! answered `Busy` (or `Unavailable`) at once, before the node sees the request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use libp2p::PeerId;

/// Requests of one peer (messages and mailbox requests together) waiting at the node.
/// The node's event buffer holds 1,024: one peer gets 1/16 of it.
pub(crate) const PER_PEER: usize = 64;

/// The counts, shared by the event loop and every outstanding responder.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight(Arc<Mutex<HashMap<PeerId, usize>>>);

impl InFlight {
    /// A permit for one more request of `peer`, unless it holds `limit` already.
    pub(crate) fn try_acquire(&self, peer: PeerId, limit: usize) -> Option<Permit> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(peer).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Permit { counts: self.clone(), peer })
    }

    /// Requests of `peer` waiting now.
    #[cfg(test)]
    pub(crate) fn of(&self, peer: PeerId) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&peer).copied().unwrap_or(0)
    }
}

/// One waiting request; released when dropped (answered, shed or abandoned).
#[derive(Debug)]
pub(crate) struct Permit {
    counts: InFlight,
    peer: PeerId,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_its_share_and_gets_it_back() {
        let inflight = InFlight::default();
        let (greedy, other) = (PeerId::random(), PeerId::random());
        let held: Vec<Permit> = (0..3).filter_map(|_| inflight.try_acquire(greedy, 3)).collect();
        assert_eq!(held.len(), 3);
        assert!(inflight.try_acquire(greedy, 3).is_none(), "over its share");
        assert!(inflight.try_acquire(other, 3).is_some(), "another peer is not affected");
        drop(held);
        assert_eq!(inflight.of(greedy), 0);
        assert!(inflight.try_acquire(greedy, 3).is_some(), "answered requests free the share");
    }
}
