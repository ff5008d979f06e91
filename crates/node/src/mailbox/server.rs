//! The server side of mailboxes: nonces, sessions, puts, fetches, acks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use communitas_crypto::{Envelope, PublicIdentity, random};
use communitas_net::libp2p::PeerId;
use communitas_net::mbox::{MboxRequest, MboxResponse, Refusal};
use communitas_store::PutOutcome;
use communitas_types::{MailboxId, Timestamp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    FETCH_BYTES, MAX_NOTIFYING, MAX_PENDING, NONCE_TTL, NONCES_PER_PEER, Request, SESSION_TTL,
    fetch_signed_bytes,
};
use crate::{Inner, MESSAGE_TTL};

/// Puts, fetches and acks at the store at once (server role): enough to fill the
/// store writer's batches under load, bounded so a flood waits in the inbox instead.
const MAX_STORE_WORK: usize = 128;

/// The server side. Runs on every node; answers `NotServer` unless it is one.
///
/// The actor owns nonces and sessions and checks them inline (cheap, in memory); the
/// store work of puts, fetches and acks runs in a bounded set of tasks
/// ([`MAX_STORE_WORK`]), so concurrent puts share the store's group commit instead of
/// paying one fsync each in a row. When the set is full the actor stops reading
/// requests; its bounded inbox then fills and the dispatcher answers `Unavailable`.
pub(crate) async fn serve(
    inner: Arc<Inner>,
    server: bool,
    mut requests: mpsc::Receiver<Request>,
    wake_fetcher: mpsc::Sender<()>,
    shutdown: CancellationToken,
) {
    let own_mailbox = inner.secrets.identity.public().mailbox_id();
    // Notifications to owners in flight; bounded, and dropped when full (the owner
    // polls anyway).
    let mut notifying: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    // Store work in flight; a finished put says whom to notify.
    let mut work: tokio::task::JoinSet<Option<(MailboxId, Vec<PeerId>)>> =
        tokio::task::JoinSet::new();
    let mut nonces: HashMap<(PeerId, MailboxId), ([u8; 32], Instant)> = HashMap::new();
    let mut sessions: HashMap<(PeerId, MailboxId), Instant> = HashMap::new();
    let own_peer = inner.secrets.device.peer_id();
    let mut expiry = tokio::time::interval(Duration::from_secs(600));
    loop {
        let Request { peer, request, responder } = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = expiry.tick(), if server => {
                if let Err(e) = inner.store.expire(Timestamp::now()).await {
                    tracing::warn!(error = %e, "cannot expire mailbox entries");
                }
                continue;
            }
            Some(_) = notifying.join_next(), if !notifying.is_empty() => continue,
            Some(done) = work.join_next(), if !work.is_empty() => {
                // Owners that fetched here lately are likely online: tell them.
                if let Ok(Some((mailbox, owners))) = done {
                    for owner in owners {
                        if notifying.len() < MAX_NOTIFYING {
                            let net = inner.net.clone();
                            notifying.spawn(async move {
                                let _ = net.mailbox(owner, MboxRequest::Notify { mailbox }).await;
                            });
                        }
                    }
                }
                continue;
            }
            r = requests.recv(), if work.len() < MAX_STORE_WORK => match r {
                Some(r) => r,
                None => break,
            },
        };
        if let MboxRequest::Notify { mailbox } = request {
            // Any node: mail waits for us somewhere; look now.
            if mailbox == own_mailbox {
                let _ = wake_fetcher.try_send(());
            }
            let _ = responder.send(MboxResponse::Acked(0)).await;
            continue;
        }
        if !server {
            let _ = responder.send(MboxResponse::Refused(Refusal::NotServer)).await;
            continue;
        }
        let response = match request {
            MboxRequest::Put { envelope } => {
                spawn_put(&inner, &mut work, &sessions, peer, envelope, None, responder);
                continue;
            }
            MboxRequest::Replicate { expires_at, envelope } => {
                let until = Some(Timestamp::from_millis(expires_at));
                spawn_put(&inner, &mut work, &sessions, peer, envelope, until, responder);
                continue;
            }
            MboxRequest::Offer { hashes, .. } => {
                let inner = inner.clone();
                work.spawn(async move {
                    let response = match inner.store.mailbox_wanted(hashes).await {
                        Ok(answer) => {
                            inner.metrics.mailbox_acked_refused.inc_by(answer.acked as u64);
                            MboxResponse::Wanted(answer.hashes)
                        }
                        Err(_) => MboxResponse::Refused(Refusal::Unavailable),
                    };
                    let _ = responder.send(response).await;
                    None
                });
                continue;
            }
            MboxRequest::Challenge { mailbox } => {
                prune(&mut nonces, |(_, at)| at.elapsed() < NONCE_TTL, |(_, at)| *at);
                let mine: Vec<_> = nonces.iter().filter(|((p, _), _)| *p == peer).collect();
                if mine.len() >= NONCES_PER_PEER
                    && let Some(oldest) =
                        mine.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| **k)
                {
                    nonces.remove(&oldest);
                }
                match random::bytes::<32>() {
                    Ok(nonce) => {
                        nonces.insert((peer, mailbox), (nonce, Instant::now()));
                        MboxResponse::Nonce(nonce)
                    }
                    Err(_) => MboxResponse::Refused(Refusal::Unavailable),
                }
            }
            MboxRequest::Fetch { identity, nonce, signature, max_bytes } => {
                match PublicIdentity::from_bytes(&identity) {
                    Err(_) => MboxResponse::Refused(Refusal::Invalid),
                    Ok(identity) => {
                        let mailbox = identity.mailbox_id();
                        let issued = nonces.remove(&(peer, mailbox));
                        let fresh =
                            issued.is_some_and(|(n, at)| n == nonce && at.elapsed() < NONCE_TTL);
                        let signed = fetch_signed_bytes(&own_peer, &peer, &nonce, &mailbox);
                        if fresh && identity.verify(&signed, &signature) {
                            prune(&mut sessions, |at| at.elapsed() < SESSION_TTL, |at| *at);
                            sessions.insert((peer, mailbox), Instant::now());
                            let max = usize::try_from(max_bytes.min(FETCH_BYTES)).unwrap_or(0);
                            let inner = inner.clone();
                            work.spawn(async move {
                                let response = match inner
                                    .store
                                    .mailbox_fetch(mailbox, Timestamp::now(), max)
                                    .await
                                {
                                    Ok(list) => MboxResponse::Envelopes(list),
                                    Err(_) => MboxResponse::Refused(Refusal::Unavailable),
                                };
                                let _ = responder.send(response).await;
                                None
                            });
                            continue;
                        }
                        MboxResponse::Refused(Refusal::Unauthorized)
                    }
                }
            }
            MboxRequest::Ack { mailbox, hashes } => {
                if sessions.get(&(peer, mailbox)).is_some_and(|at| at.elapsed() < SESSION_TTL) {
                    let inner = inner.clone();
                    work.spawn(async move {
                        let response = match inner.store.mailbox_ack(mailbox, hashes).await {
                            Ok(n) => MboxResponse::Acked(u32::try_from(n).unwrap_or(u32::MAX)),
                            Err(_) => MboxResponse::Refused(Refusal::Unavailable),
                        };
                        let _ = responder.send(response).await;
                        None
                    });
                    continue;
                }
                MboxResponse::Refused(Refusal::Unauthorized)
            }
            _ => MboxResponse::Refused(Refusal::Invalid),
        };
        let _ = responder.send(response).await;
    }
    work.shutdown().await;
}

/// Keeps an envelope (a put, or a replica that expires no later than `until`) on its
/// own task; when stored, the task names the owners that fetched here lately (likely
/// online) so that the actor tells them.
fn spawn_put(
    inner: &Arc<Inner>,
    work: &mut tokio::task::JoinSet<Option<(MailboxId, Vec<PeerId>)>>,
    sessions: &HashMap<(PeerId, MailboxId), Instant>,
    peer: PeerId,
    envelope: Vec<u8>,
    until: Option<Timestamp>,
    responder: communitas_net::MboxResponder,
) {
    let mailbox = Envelope::from_bytes(&envelope).map(|e| e.mailbox()).ok();
    let owners: Vec<PeerId> = sessions
        .iter()
        .filter(|((_, m), at)| Some(*m) == mailbox && at.elapsed() < SESSION_TTL)
        .map(|((owner, _), _)| *owner)
        .collect();
    let inner = inner.clone();
    work.spawn(async move {
        let response = put(&inner, peer, envelope, until).await;
        let stored = response == MboxResponse::Stored;
        let _ = responder.send(response).await;
        mailbox.filter(|_| stored && !owners.is_empty()).map(|m| (m, owners))
    });
}

/// Keeps the entries `keep` accepts; if the map is still at [`MAX_PENDING`], drops
/// the oldest (by `born`) down to nine tenths of it, so a flood of new entries costs
/// the oldest ones, not everybody's.
fn prune<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    keep: impl Fn(&V) -> bool,
    born: impl Fn(&V) -> Instant,
) {
    map.retain(|_, v| keep(v));
    if map.len() < MAX_PENDING {
        return;
    }
    let mut ages: Vec<(Instant, K)> = map.iter().map(|(k, v)| (born(v), k.clone())).collect();
    ages.sort_unstable_by_key(|(at, _)| *at);
    let excess = map.len() - MAX_PENDING * 9 / 10;
    for (_, key) in ages.into_iter().take(excess) {
        map.remove(&key);
    }
}

/// Stores a put; a replica keeps its original's expiry `until` (if earlier than ours),
/// so bouncing between holders never extends an envelope's life.
async fn put(
    inner: &Inner,
    peer: PeerId,
    envelope: Vec<u8>,
    until: Option<Timestamp>,
) -> MboxResponse {
    let Ok(parsed) = Envelope::from_bytes(&envelope) else {
        return MboxResponse::Refused(Refusal::Invalid);
    };
    let hash = *blake3::hash(&envelope).as_bytes();
    let now = Timestamp::now();
    let ours = now.saturating_add(MESSAGE_TTL);
    let expires_at = until.map_or(ours, |until| until.min(ours));
    if expires_at <= now {
        return MboxResponse::Refused(Refusal::Invalid);
    }
    let outcome = inner
        .store
        .mailbox_put(
            hash,
            parsed.mailbox(),
            envelope,
            peer.to_string(),
            now,
            expires_at,
            inner.mailbox_limits,
        )
        .await;
    match outcome {
        Ok(PutOutcome::Stored | PutOutcome::AlreadyStored) => MboxResponse::Stored,
        // Delivered already: the put's purpose is served, and it is not kept again.
        Ok(PutOutcome::AlreadyAcked) => {
            inner.metrics.mailbox_acked_refused.inc();
            MboxResponse::Stored
        }
        Ok(PutOutcome::MailboxFull) => {
            inner.metrics.mailbox_full.inc();
            inner.metrics.refuse("mailbox_full");
            MboxResponse::Refused(Refusal::MailboxFull)
        }
        Ok(PutOutcome::SenderOverQuota) => {
            inner.metrics.refuse("mailbox_sender_quota");
            MboxResponse::Refused(Refusal::SenderOverQuota)
        }
        // The sender tries the other holders, as for a full mailbox.
        Ok(PutOutcome::ServerFull) => {
            inner.metrics.refuse("mailbox_server_full");
            MboxResponse::Refused(Refusal::MailboxFull)
        }
        Ok(_) | Err(_) => {
            inner.metrics.refuse("mailbox_unavailable");
            MboxResponse::Refused(Refusal::Unavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_loses_its_oldest_entries_not_all() {
        let start = Instant::now();
        let mut map: HashMap<usize, Instant> =
            (0..MAX_PENDING).map(|n| (n, start + Duration::from_millis(n as u64))).collect();
        // All live, and the map is full: the oldest tenth goes.
        prune(&mut map, |_| true, |at| *at);
        assert_eq!(map.len(), MAX_PENDING * 9 / 10);
        let oldest_kept = map.keys().min().copied();
        assert_eq!(oldest_kept, Some(MAX_PENDING - MAX_PENDING * 9 / 10));
        assert!(map.contains_key(&(MAX_PENDING - 1)), "the newest entry stays");
        // Below the bound, only stale entries go.
        let cut = start + Duration::from_millis((MAX_PENDING - 10) as u64);
        prune(&mut map, |at| *at >= cut, |at| *at);
        assert_eq!(map.len(), 10);
    }
}
