//! Server-side re-replication (decision 0020): keeps R copies of every mailbox
//! envelope when holders leave, without the sender. The policy (the ranking walk,
//! the offers, which answers count, the replicas' expiry) is
//! `communitas_proto::mbox::replicate`; this is its I/O.
//!
//! Every `every`, a server pages through the mailboxes it keeps. For each, it asks the
//! DHT for the servers closest to the mailbox id, ranks them together with itself by
//! XOR distance, and walks that ranking until R holders are counted (itself included):
//! to each other server it offers the hashes it keeps (`offer`), the server answers
//! with those it lacks (`wanted`: neither kept nor acknowledged there by the owner),
//! and it sends those (`replicate`, carrying the original's expiry). A node that is
//! not a mailbox server does not count. Receivers deduplicate by envelope hash and
//! hold replicas to the same quotas as puts; an envelope the owner acknowledged at a
//! server is refused there until it would have expired (its tombstone), so a slow
//! holder cannot bring delivered mail back.
//!
//! One task, sequential per mailbox, a bounded number of copies in flight: the cost
//! is a DHT query and R - 1 offers per mailbox per period, plus the missing copies.

use std::sync::Arc;
use std::time::Duration;

use communitas_net::libp2p::PeerId;
use communitas_net::libp2p::kad::KBucketKey;
use communitas_net::mbox::MboxResponse;
use communitas_proto::mbox::replicate::{self as policy, Answer, Walk};
use communitas_types::{MailboxId, Timestamp};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::Inner;
use crate::mailbox::{LIMITS, REPLICAS};

/// Default period: a holder that leaves is replaced within about this long.
pub(crate) const EVERY: Duration = Duration::from_secs(5 * 60);
/// Mailboxes read from the store at once.
const PAGE: usize = 64;
/// Copies sent to one server at once.
const COPIES_AT_ONCE: usize = 8;

pub(crate) async fn run(inner: Arc<Inner>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: skip it, the node is still joining.
    tick.tick().await;
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            result = round(&inner) => match result {
                Ok(kept) => {
                    inner.metrics.mailbox_envelopes.set(i64::try_from(kept).unwrap_or(i64::MAX));
                }
                Err(e) => tracing::debug!(error = %e, "re-replication round failed"),
            },
        }
    }
}

/// Why a round stopped early.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error(transparent)]
    Store(#[from] communitas_store::Error),
    #[error(transparent)]
    Net(#[from] communitas_net::Error),
}

/// One pass over every mailbox kept here; returns how many envelopes they hold.
async fn round(inner: &Inner) -> Result<usize, RoundError> {
    let mut after = None;
    let mut kept = 0;
    loop {
        let page = inner.store.mailbox_held(after, Timestamp::now(), PAGE).await?;
        let Some(last) = page.last().copied() else { return Ok(kept) };
        for mailbox in page {
            kept += replicate_mailbox(inner, mailbox).await?;
        }
        after = Some(last);
    }
}

/// Brings `mailbox` to R holders; returns how many envelopes it holds here.
async fn replicate_mailbox(inner: &Inner, mailbox: MailboxId) -> Result<usize, RoundError> {
    let now = Timestamp::now();
    let max = usize::try_from(LIMITS.max_envelopes).unwrap_or(usize::MAX);
    let hashes = inner.store.mailbox_hashes(mailbox, now, max).await?;
    if hashes.is_empty() {
        return Ok(0);
    }
    let me = inner.secrets.device.peer_id();
    let candidates = inner.net.closest_peers(mailbox.as_bytes().to_vec()).await?;
    let mut walk = walk(mailbox, me, candidates);
    while let Some(peer) = walk.next() {
        match offer(inner, peer, mailbox, &hashes).await {
            Ok(Some(copied)) => {
                walk.holds();
                if copied > 0 {
                    tracing::debug!(%peer, copied, "re-replicated mailbox envelopes");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(%peer, error = %e, "re-replication offer failed"),
        }
    }
    Ok(hashes.len())
}

/// The walk over `candidates` and `me`, nearest to the mailbox first, by the DHT's XOR
/// distance over the same hashed keys `closest_peers` uses.
fn walk(mailbox: MailboxId, me: PeerId, candidates: Vec<PeerId>) -> Walk<PeerId> {
    let key = |p: PeerId| (p, dht_key(KBucketKey::from(p).hashed_bytes()));
    let target = dht_key(KBucketKey::new(mailbox.as_bytes().to_vec()).hashed_bytes());
    Walk::new(target, key(me), candidates.into_iter().map(key), REPLICAS)
}

/// A Kademlia key's 32 hashed bytes (SHA-256: always 32).
fn dht_key(hashed: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    for (k, b) in key.iter_mut().zip(hashed) {
        *k = *b;
    }
    key
}

/// Offers `hashes` to `peer` and sends what it lacks. `None` if it keeps no
/// mailboxes; otherwise how many copies it took.
async fn offer(
    inner: &Inner,
    peer: PeerId,
    mailbox: MailboxId,
    hashes: &[[u8; 32]],
) -> Result<Option<usize>, RoundError> {
    let mut copied = 0;
    for (offered, request) in policy::offers(mailbox, hashes) {
        let response = inner.net.mailbox(peer, request).await?;
        let wanted = match policy::answer(offered, response) {
            Answer::Wants(wanted) => wanted,
            Answer::NotServer => return Ok(None),
            _ => {
                tracing::debug!(%peer, "re-replication offer not taken");
                return Ok(Some(copied));
            }
        };
        if wanted.is_empty() {
            continue;
        }
        let entries = inner.store.mailbox_entries(mailbox, wanted, Timestamp::now()).await?;
        let sent: Vec<bool> = futures::stream::iter(entries)
            .map(|entry| async move {
                let request = policy::replica(entry.expires_at, entry.envelope);
                matches!(inner.net.mailbox(peer, request).await, Ok(MboxResponse::Stored))
            })
            .buffer_unordered(COPIES_AT_ONCE)
            .collect()
            .await;
        let n = sent.into_iter().filter(|ok| *ok).count();
        inner.metrics.mailbox_replicated.inc_by(n as u64);
        copied += n;
    }
    Ok(Some(copied))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_ranks_self_among_the_candidates_by_dht_distance() {
        let mailbox = MailboxId::from_bytes([3; 32]);
        let peers: Vec<PeerId> = (0..10).map(|_| PeerId::random()).collect();
        let me = PeerId::random();
        let target = KBucketKey::new(mailbox.as_bytes().to_vec());
        let mut expected: Vec<PeerId> = peers.iter().copied().chain([me]).collect();
        expected.sort_by_key(|p| target.distance(&KBucketKey::from(*p)));
        // Every server keeps mailboxes: the walk offers to the R nearest in libp2p's
        // order, counting us (not offering to us) if we are among them.
        let mut walk = walk(mailbox, me, peers.clone());
        let mut offered = Vec::new();
        while let Some(peer) = walk.next() {
            offered.push(peer);
            walk.holds();
        }
        let nearest: Vec<PeerId> =
            expected.iter().copied().take(REPLICAS).filter(|p| *p != me).collect();
        assert_eq!(offered, nearest);
        assert_eq!(walk.holders(), REPLICAS);
        // Already listed: walked once, and counted once.
        let mut none_serve = super::walk(mailbox, peers[0], peers.clone());
        let reached: Vec<PeerId> = std::iter::from_fn(|| none_serve.next()).collect();
        assert_eq!(reached.len(), 9);
        assert!(!reached.contains(&peers[0]));
        assert_eq!(none_serve.holders(), 1);
    }
}
