//! The client side of mailboxes: deposits, and fetch rounds over our holders.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use communitas_crypto::{Envelope, PublicIdentity};
use communitas_net::libp2p::PeerId;
use communitas_net::mbox::{MboxRequest, MboxResponse, Refusal};
use communitas_types::{MailboxId, MessageId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ACCEPT_AT_ONCE, FETCH_BYTES, JOINING, REPLICAS, fetch_signed_bytes};
use crate::Inner;
use crate::inbound::{Accepted, Refusal as InboundRefusal, accept};

/// Client side: leaves `envelope` at up to [`REPLICAS`] server nodes near its
/// mailbox. Returns how many keep it.
pub(crate) async fn deposit(inner: &Inner, envelope: &[u8]) -> Result<usize, String> {
    let mailbox = Envelope::from_bytes(envelope).map_err(|e| e.to_string())?.mailbox();
    let candidates =
        inner.net.closest_peers(mailbox.as_bytes().to_vec()).await.map_err(|e| e.to_string())?;
    let own = inner.secrets.device.peer_id();
    let mut stored = 0;
    let mut last = String::from("no server node found near the mailbox");
    for peer in candidates.into_iter().filter(|p| *p != own) {
        if stored >= REPLICAS {
            break;
        }
        match inner.net.mailbox(peer, MboxRequest::Put { envelope: envelope.to_vec() }).await {
            Ok(MboxResponse::Stored) => stored += 1,
            Ok(MboxResponse::Refused(why)) => last = format!("mailbox server refused: {why:?}"),
            Ok(_) => last = "unexpected mailbox answer".into(),
            Err(e) => last = e.to_string(),
        }
    }
    if stored == 0 { Err(last) } else { Ok(stored) }
}

/// Client side: looks in our mailboxes at start, then `every` (by default
/// [`FETCH_EVERY`]), and whenever a server says new mail arrived.
pub(crate) async fn fetcher(
    inner: Arc<Inner>,
    every: Duration,
    mut wake: mpsc::Receiver<()>,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let mut wait = Duration::from_millis(200);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(()) = wake.recv() => {}
            () = tokio::time::sleep(wait) => {}
        }
        wait = match fetch_all(&inner).await {
            // No server answered yet: still joining, look again soon; after a while,
            // at the normal pace.
            Ok(0) if started.elapsed() < JOINING => Duration::from_millis(500),
            Ok(_) => every,
            Err(e) => {
                tracing::debug!(error = %e, "mailbox fetch failed");
                Duration::from_secs(1)
            }
        };
    }
}

/// One round over the closest servers; returns how many answered.
async fn fetch_all(inner: &Arc<Inner>) -> Result<usize, String> {
    let own = inner.secrets.identity.public().clone();
    let mailbox = own.mailbox_id();
    let me = inner.secrets.device.peer_id();
    let started = Instant::now();
    let candidates =
        inner.net.closest_peers(mailbox.as_bytes().to_vec()).await.map_err(|e| e.to_string())?;
    tracing::debug!(candidates = candidates.len(), took = ?started.elapsed(), "mailbox servers found");
    let mut answered = 0;
    let mut round = Round::default();
    for server in candidates.into_iter().filter(|p| *p != me).take(REPLICAS * 2) {
        if answered >= REPLICAS {
            break;
        }
        let asked = Instant::now();
        let before = round.accepted.len();
        let result = fetch_from(inner, server, &own, mailbox, &mut round).await;
        tracing::debug!(
            %server,
            accepted = round.accepted.len() - before,
            took = ?asked.elapsed(),
            "mailbox server asked"
        );
        match result {
            Ok(true) => answered += 1,
            Ok(false) => {}
            Err(e) => tracing::debug!(%server, error = %e, "mailbox server did not answer"),
        }
    }
    for (to, (keys, ids)) in round.receipts {
        if let Err(e) = crate::receipts::send(inner, to, &keys, &ids).await {
            tracing::warn!(error = %e, "cannot queue a receipt");
        }
    }
    Ok(answered)
}

/// What one fetch round has done so far, across servers.
#[derive(Default)]
struct Round {
    /// Receipts to send, by sender.
    receipts: HashMap<communitas_types::Address, (PublicIdentity, Vec<MessageId>)>,
    /// Envelopes (by hash) already accepted this round: the same envelope waits at up
    /// to R holders, and opening it again would only find it a duplicate.
    accepted: std::collections::HashSet<[u8; 32]>,
}

/// Fetches, accepts and acknowledges everything one server holds for us. `Ok(false)`
/// if it is not a mailbox server.
///
/// The same envelope waits at up to R holders. What an earlier holder of this round
/// already gave us is not fetched again: the first fetch from each later holder asks
/// for as little as possible (it is what opens the session acks need), then
/// acknowledges everything accepted so far in one go, and only then fetches the rest.
async fn fetch_from(
    inner: &Arc<Inner>,
    server: PeerId,
    own: &PublicIdentity,
    mailbox: MailboxId,
    round: &mut Round,
) -> Result<bool, String> {
    let me = inner.secrets.device.peer_id();
    let mut known: Vec<[u8; 32]> = round.accepted.iter().copied().collect();
    loop {
        let nonce = match inner
            .net
            .mailbox(server, MboxRequest::Challenge { mailbox })
            .await
            .map_err(|e| e.to_string())?
        {
            MboxResponse::Nonce(n) => n,
            MboxResponse::Refused(Refusal::NotServer) => return Ok(false),
            other => return Err(format!("unexpected answer to a challenge: {other:?}")),
        };
        let signature =
            inner.secrets.identity.sign(&fetch_signed_bytes(&server, &me, &nonce, &mailbox));
        // With acks to send first, a fetch of one envelope opens the session.
        let max_bytes = if known.is_empty() { FETCH_BYTES } else { 1 };
        let request = MboxRequest::Fetch { identity: own.to_bytes(), nonce, signature, max_bytes };
        let list = match inner.net.mailbox(server, request).await.map_err(|e| e.to_string())? {
            MboxResponse::Envelopes(list) => list,
            other => return Err(format!("fetch refused: {other:?}")),
        };
        if list.is_empty() {
            return Ok(true);
        }
        let fetched = list.len();
        let mut done = std::mem::take(&mut known);
        let mut fresh = Vec::with_capacity(fetched);
        let mut handled = 0;
        for (hash, envelope) in list {
            if round.accepted.contains(&hash) {
                inner.metrics.duplicates.inc();
                handled += 1;
                if !done.contains(&hash) {
                    done.push(hash);
                }
            } else {
                fresh.push((hash, envelope));
            }
        }
        for (hash, outcome) in accept_all(inner, fresh).await {
            match outcome {
                Ok(Accepted { text_from, inserted }) => {
                    if inserted == communitas_store::Inserted::Duplicate {
                        inner.metrics.duplicates.inc();
                    }
                    if let Some((from, keys, id)) = text_from {
                        round.receipts.entry(from).or_insert_with(|| (keys, Vec::new())).1.push(id);
                    }
                    round.accepted.insert(hash);
                    done.push(hash);
                    handled += 1;
                }
                // Refused for good (not ours, forged, stale): drop it from the mailbox.
                Err(InboundRefusal::Rejected(why, reason)) => {
                    tracing::debug!(?why, %reason, "mailbox envelope refused");
                    inner.metrics.rejected.inc();
                    done.push(hash);
                    handled += 1;
                }
                // Could not store now: leave it there for the next round.
                Err(InboundRefusal::Busy(reason)) => {
                    tracing::warn!(%reason, "mailbox envelope not stored yet")
                }
            }
        }
        for chunk in done.chunks(communitas_net::mbox::MAX_ACK) {
            inner
                .net
                .mailbox(server, MboxRequest::Ack { mailbox, hashes: chunk.to_vec() })
                .await
                .map_err(|e| e.to_string())?;
        }
        // Something stayed behind (not stored yet): the next round takes it.
        if handled < fetched {
            return Ok(true);
        }
    }
}

/// Accepts fetched envelopes, [`ACCEPT_AT_ONCE`] at a time, each on its own task: opening
/// is CPU work, and tasks spread it over the runtime's threads, while their commits
/// share transactions (group commit). Order does not matter; each is checked on its
/// own. A task that fails leaves its envelope in the mailbox for the next round.
async fn accept_all(
    inner: &Arc<Inner>,
    fresh: Vec<([u8; 32], Vec<u8>)>,
) -> Vec<([u8; 32], Result<Accepted, InboundRefusal>)> {
    let mut out = Vec::with_capacity(fresh.len());
    let mut tasks = tokio::task::JoinSet::new();
    for (hash, envelope) in fresh {
        if tasks.len() >= ACCEPT_AT_ONCE
            && let Some(Ok(done)) = tasks.join_next().await
        {
            out.push(done);
        }
        let inner = inner.clone();
        tasks.spawn(async move { (hash, accept(&inner, &envelope).await) });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(done) = done {
            out.push(done);
        }
    }
    out
}
