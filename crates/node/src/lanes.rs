//! The two inbound lanes (issue 15 item 4, decision 0063): contacts' devices, and
//! everyone else.
//!
//! A peer whose device has brought us a contact's letter before, or taken one of ours
//! to a contact, is *familiar*: its envelopes go straight to their own task (at most
//! `max_inbound`). Every other peer's envelope — a stranger's first contact, a flood
//! from fresh PeerIds, a contact's new device until its first letter lands — waits
//! in the strangers' lane before it is even opened: a [`FairQueue`] of at most
//! [`QUEUED`] envelopes, [`QUEUED_PER_PEER`] from one peer, served round robin (a
//! newcomer to a full queue takes the place of a peer holding two), from which at
//! most [`AT_ONCE`] are being answered. One waiting longer than [`MAX_WAIT`]
//! is told `busy` and retries. So what strangers can make the node open, look up and
//! derive is two tasks' worth at any time, whatever their number, and contacts' letters
//! never queue behind theirs.
//!
//! ```text
//! Message ─ rate limit ─ familiar? ─┬ yes ─ task (≤ max_inbound)
//!                                   └ no ── lane: queue (≤ 32, ≤ 2 per peer) ─ task (≤ 2 at once)
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use communitas_net::libp2p::PeerId;
use communitas_net::{Receipt, Responder};
use communitas_proto::fair::{FairQueue, Refused};
use communitas_types::Timestamp;
use tokio::task::JoinSet;

use crate::Inner;

/// Strangers' envelopes being answered at once: one may wait for its derivation while
/// another is opened.
pub(crate) const AT_ONCE: usize = 2;
/// Strangers' envelopes waiting, from all peers together.
pub(crate) const QUEUED: usize = 32;
/// Strangers' envelopes one peer may have waiting.
pub(crate) const QUEUED_PER_PEER: usize = 2;
/// Longest wait in the lane; the sender's request gives up at 10 s.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(5);
/// Familiar peers remembered; a full set starts again (contacts' devices are few, and
/// each is learnt again from its next letter).
const FAMILIAR: usize = 4096;

/// Peers known to be contacts' devices.
#[derive(Default)]
pub(crate) struct Familiar(Mutex<HashSet<PeerId>>);

impl Familiar {
    /// Whether `peer`'s envelopes skip the strangers' lane.
    pub(crate) fn knows(&self, peer: &PeerId) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).contains(peer)
    }

    /// `peer` brought a contact's letter (new, not a replay), or answered for one of
    /// its devices when we wrote to it.
    pub(crate) fn learn(&self, peer: PeerId) {
        let mut peers = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if peers.len() >= FAMILIAR && !peers.contains(&peer) {
            peers.clear();
        }
        peers.insert(peer);
    }
}

/// An envelope waiting in the lane, with the channel its answer goes back on.
type Waiting = (Vec<u8>, Responder);

/// The strangers' lane: its queue and the tasks answering from it. Owned by the
/// dispatcher's loop.
pub(crate) struct Lane {
    queue: FairQueue<PeerId, Waiting>,
    pub(crate) tasks: JoinSet<()>,
}

impl Lane {
    pub(crate) fn new() -> Self {
        Self { queue: FairQueue::new(QUEUED, QUEUED_PER_PEER), tasks: JoinSet::new() }
    }

    /// An envelope from a peer that is not familiar: answered now if the lane has
    /// room, queued, or told `busy` at once.
    pub(crate) async fn offer(
        &mut self,
        inner: &Arc<Inner>,
        peer: PeerId,
        envelope: Vec<u8>,
        responder: Responder,
    ) {
        if self.tasks.len() < AT_ONCE && self.queue.is_empty() {
            inner.metrics.lane("answered_at_once");
            self.spawn(inner, peer, envelope, responder);
            return;
        }
        match self.queue.push(peer, (envelope, responder), Timestamp::now()) {
            Ok(None) => inner.metrics.lane("queued"),
            Ok(Some((_, pushed_out))) => {
                // A newcomer took the place of a peer holding more than its share.
                inner.metrics.lane("queued");
                inner.metrics.lane("pushed_out");
                let _ = pushed_out.send(Receipt::Busy).await;
            }
            Err((why, (_, responder))) => {
                inner.metrics.lane(match why {
                    Refused::SourceShare => "peer_share",
                    Refused::Full => "full",
                });
                let _ = responder.send(Receipt::Busy).await;
            }
        }
    }

    /// One of the lane's tasks ended: the next waiting envelopes get their turn.
    pub(crate) async fn next(&mut self, inner: &Arc<Inner>) {
        while self.tasks.len() < AT_ONCE {
            let Some((peer, queued, (envelope, responder))) = self.queue.pop() else { return };
            let waited = Timestamp::now().as_millis().saturating_sub(queued.as_millis());
            if u128::from(waited) > MAX_WAIT.as_millis() {
                inner.metrics.lane("too_late");
                let _ = responder.send(Receipt::Busy).await;
                continue;
            }
            self.spawn(inner, peer, envelope, responder);
        }
    }

    fn spawn(&mut self, inner: &Arc<Inner>, peer: PeerId, envelope: Vec<u8>, responder: Responder) {
        let inner = inner.clone();
        self.tasks.spawn(async move {
            crate::inbound::answer(&inner, peer, envelope, responder).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_familiar_set_starts_again_rather_than_growing() {
        let familiar = Familiar::default();
        let first = PeerId::random();
        familiar.learn(first);
        for _ in 1..FAMILIAR {
            familiar.learn(PeerId::random());
        }
        assert!(familiar.knows(&first));
        familiar.learn(first);
        assert!(familiar.knows(&first), "one already known does not clear the set");
        let late = PeerId::random();
        familiar.learn(late);
        assert!(familiar.knows(&late) && !familiar.knows(&first));
    }
}
