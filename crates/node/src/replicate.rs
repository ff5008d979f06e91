//! Server-side re-replication (decision 0020): keeps R copies of every mailbox
//! envelope when holders leave, without the sender.
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
use communitas_net::mbox::{MAX_ACK, MboxRequest, MboxResponse, Refusal};
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
    let mut holders = 0;
    for peer in ranked(mailbox, me, candidates) {
        if holders >= REPLICAS {
            break;
        }
        if peer == me {
            holders += 1;
            continue;
        }
        match offer(inner, peer, mailbox, &hashes).await {
            Ok(Some(copied)) => {
                holders += 1;
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

/// `candidates` and `me`, nearest to the mailbox first (the DHT's XOR distance over
/// the same hashed keys `closest_peers` uses).
fn ranked(mailbox: MailboxId, me: PeerId, candidates: Vec<PeerId>) -> Vec<PeerId> {
    let target = KBucketKey::new(mailbox.as_bytes().to_vec());
    let mut all = candidates;
    if !all.contains(&me) {
        all.push(me);
    }
    all.sort_by_key(|p| target.distance(&KBucketKey::from(*p)));
    all.dedup();
    all
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
    for chunk in hashes.chunks(MAX_ACK) {
        let request = MboxRequest::Offer { mailbox, hashes: chunk.to_vec() };
        let wanted = match inner.net.mailbox(peer, request).await? {
            MboxResponse::Wanted(wanted) => wanted,
            MboxResponse::Refused(Refusal::NotServer) => return Ok(None),
            other => {
                tracing::debug!(%peer, answer = ?other, "re-replication offer not taken");
                return Ok(Some(copied));
            }
        };
        // Only what was offered: a server cannot ask for other mailboxes' mail.
        let wanted: Vec<[u8; 32]> = wanted.into_iter().filter(|h| chunk.contains(h)).collect();
        if wanted.is_empty() {
            continue;
        }
        let entries = inner.store.mailbox_entries(mailbox, wanted, Timestamp::now()).await?;
        let sent: Vec<bool> = futures::stream::iter(entries)
            .map(|entry| async move {
                let request = MboxRequest::Replicate {
                    expires_at: entry.expires_at.as_millis(),
                    envelope: entry.envelope,
                };
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
    fn ranking_puts_self_among_the_candidates_by_distance() {
        let mailbox = MailboxId::from_bytes([3; 32]);
        let peers: Vec<PeerId> = (0..10).map(|_| PeerId::random()).collect();
        let me = PeerId::random();
        let ranked = ranked(mailbox, me, peers.clone());
        assert_eq!(ranked.len(), 11);
        assert!(ranked.contains(&me));
        let target = KBucketKey::new(mailbox.as_bytes().to_vec());
        let distances: Vec<_> =
            ranked.iter().map(|p| target.distance(&KBucketKey::from(*p))).collect();
        assert!(distances.windows(2).all(|w| w[0] <= w[1]));
        // Already listed: not twice.
        assert_eq!(super::ranked(mailbox, peers[0], peers.clone()).len(), 10);
    }
}
