//! Mailboxes (ARCHITECTURE §6): the server side that keeps sealed envelopes for
//! offline recipients, and the client side that deposits and fetches them.
//!
//! Server: one actor owns the nonces it handed out and the (peer, mailbox) pairs that
//! proved ownership; envelopes live in the store (SQLite), so a restarted server still
//! has them. Puts are deduplicated by the envelope's BLAKE3 hash and held to quotas
//! per mailbox and per sending peer. Only the owner can fetch or acknowledge.
//!
//! Client: `deposit` puts an envelope at the R closest server nodes to the recipient's
//! mailbox id; `fetcher` collects our own mail at start, when a server notifies us
//! that mail is waiting (servers notify owners that fetched from them lately), and
//! periodically; it feeds
//! each envelope through the same acceptance as direct messages, acknowledges, and
//! sends end-to-end receipts to the senders.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use communitas_crypto::{Envelope, PublicIdentity, random};
use communitas_net::MboxResponder;
use communitas_net::libp2p::PeerId;
use communitas_net::mbox::{FETCH_DOMAIN, MboxRequest, MboxResponse, Refusal};
use communitas_store::{MailboxLimits, PutOutcome};
use communitas_types::{MailboxId, MessageId, Timestamp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::inbound::{Accepted, Refusal as InboundRefusal, accept};
use crate::{Inner, MESSAGE_TTL};

/// Copies of each envelope: the R closest server nodes (ARCHITECTURE §6).
pub(crate) const REPLICAS: usize = 5;
/// Default quotas per recipient and per sending peer.
pub(crate) const LIMITS: MailboxLimits = MailboxLimits {
    max_envelopes: 10_000,
    max_bytes: 256 * 1024 * 1024,
    max_per_sender: 20_000,
    max_total_bytes: 16 << 30,
};
/// A challenge's nonce is good this long, once.
const NONCE_TTL: Duration = Duration::from_secs(60);
/// After a proven fetch, acks from that peer for that mailbox are accepted this long.
const SESSION_TTL: Duration = Duration::from_secs(600);
/// Outstanding nonces and sessions kept; beyond, the oldest are dropped.
const MAX_PENDING: usize = 10_000;
/// Outstanding nonces one peer may have (an owner asks for one or two mailboxes):
/// a peer asking for many cannot push everybody else's out.
const NONCES_PER_PEER: usize = 8;
/// Bytes asked for per fetch.
const FETCH_BYTES: u32 = 4 * 1024 * 1024;
/// Owner notifications in flight at once.
const MAX_NOTIFYING: usize = 64;
/// Fetched envelopes accepted concurrently.
const ACCEPT_AT_ONCE: usize = 32;
/// How long after start a node keeps looking for mailbox servers every half second.
const JOINING: Duration = Duration::from_secs(30);
/// How often a node looks in its mailboxes while running.
pub(crate) const FETCH_EVERY: Duration = Duration::from_secs(15);

pub(crate) struct Request {
    pub(crate) peer: PeerId,
    pub(crate) request: MboxRequest,
    pub(crate) responder: MboxResponder,
}

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

fn fetch_signed_bytes(
    server: &PeerId,
    requester: &PeerId,
    nonce: &[u8; 32],
    mailbox: &MailboxId,
) -> Vec<u8> {
    [FETCH_DOMAIN, &server.to_bytes(), &requester.to_bytes(), nonce, mailbox.as_bytes()].concat()
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
