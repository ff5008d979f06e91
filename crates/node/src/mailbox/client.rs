//! The client side of mailboxes: deposits, and the driver of the mailbox client
//! machine (`communitas_proto::mbox::client`), which decides when to look, whom to
//! ask and what to acknowledge.
//!
//! The driver owns the machine and its one timer, and carries out its outputs in
//! order: lookups, requests to holders (each on its own task, many at once) and
//! acceptance of fetched envelopes (at most [`ACCEPT_AT_ONCE`] tasks, the rest queued)
//! come back as inputs; receipts are queued to the senders when a round is over.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use communitas_net::libp2p::PeerId;
use communitas_net::mbox::{MboxRequest, MboxResponse};
use communitas_proto::mbox::client::{
    self, Acceptance, Client, Delivered, Input, Metric, NoAnswer, Output, RequestId, Sign,
};
use communitas_types::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{ACCEPT_AT_ONCE, REPLICAS};
use crate::Inner;
use crate::inbound::{Accepted, Refusal as InboundRefusal, accept};

/// Client side: leaves `envelope` at up to [`REPLICAS`] server nodes near its
/// mailbox. Returns how many keep it.
pub(crate) async fn deposit(inner: &Inner, envelope: &[u8]) -> Result<usize, String> {
    let mailbox =
        communitas_proto::session::letter::mailbox_of(envelope).map_err(|e| e.to_string())?;
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

/// Signs fetch proofs with the identity the node holds (the machine never holds it).
struct Signer(Arc<Inner>);

impl Sign for Signer {
    fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.secrets.identity.sign(message)
    }
}

/// How long a request task waits for the network before it gives up: the machine has
/// dropped the holder after its own deadline by then, and nothing waits for the answer.
const REQUEST_TASK_LIMIT: Duration = Duration::from_secs(5);

/// Client side: the fetcher. Looks in our mailboxes at start, then `every` (by default
/// [`FETCH_EVERY`](super::FETCH_EVERY)), and whenever a server says new mail arrived
/// (`wake`); the machine decides, this loop carries it out.
pub(crate) async fn fetcher(
    inner: Arc<Inner>,
    every: Duration,
    mut wake: mpsc::Receiver<()>,
    shutdown: CancellationToken,
) {
    let config = client::Config { every, replicas: REPLICAS, ..client::Config::default() };
    let me = inner.secrets.device.peer_id();
    let identity = inner.secrets.identity.public();
    let mut driver = Driver {
        machine: Client::new(config, me, identity, Signer(inner.clone())),
        inner,
        lookups: JoinSet::new(),
        requests: JoinSet::new(),
        accepts: JoinSet::new(),
        opening: HashMap::new(),
        queued: VecDeque::new(),
        topped_up: ToppedUp::default(),
    };
    let timer = tokio::time::sleep(PARKED);
    tokio::pin!(timer);
    driver.feed(Input::Tick, &mut timer).await;
    loop {
        let input = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(()) = wake.recv() => Input::Wake,
            Some(done) = driver.accepts.join_next_with_id(), if !driver.accepts.is_empty() => {
                driver.accepted(done)
            }
            Some(Ok((request_id, answer))) = driver.requests.join_next(), if !driver.requests.is_empty() => {
                Input::Answer { request_id, answer }
            }
            Some(found) = driver.lookups.join_next(), if !driver.lookups.is_empty() => {
                match found {
                    Ok((Found::Nearby, Ok(peers))) => Input::Nearby(peers),
                    // The lookup still answers.
                    Ok((Found::Nearby, Err(_))) => continue,
                    Ok((Found::Lookup, Ok(peers))) => Input::Holders(peers),
                    Ok((Found::Lookup, Err(e))) => {
                        tracing::debug!(error = %e, "no mailbox servers found");
                        Input::LookupFailed
                    }
                    Err(_) => Input::LookupFailed,
                }
            }
            () = &mut timer => {
                // An elapsed sleep stays ready: park it until the machine asks again
                // (it asks at once for any wake-up still due), or this loop would spin.
                timer.as_mut().reset(tokio::time::Instant::now() + PARKED);
                Input::Tick
            }
        };
        driver.feed(input, &mut timer).await;
    }
}

/// The timer's setting while the machine wants no wake-up.
const PARKED: Duration = Duration::from_secs(3600);

/// Where a list of holders came from.
#[derive(Debug, Clone, Copy)]
enum Found {
    /// The routing table, at once ([`Input::Nearby`]).
    Nearby,
    /// The network lookup ([`Input::Holders`]).
    Lookup,
}

/// The fetcher's state around the machine: the work out for it.
struct Driver {
    machine: Client<PeerId, Signer>,
    inner: Arc<Inner>,
    lookups: JoinSet<(Found, Result<Vec<PeerId>, communitas_net::Error>)>,
    requests: JoinSet<(RequestId, Result<MboxResponse, NoAnswer>)>,
    accepts: JoinSet<([u8; 32], Acceptance)>,
    /// The envelope each accept task is for, so that a task that dies still answers.
    opening: HashMap<tokio::task::Id, [u8; 32]>,
    /// Envelopes to accept once a task is free.
    queued: VecDeque<([u8; 32], Vec<u8>)>,
    /// When our one-time prekeys were last looked at, per server.
    topped_up: ToppedUp,
}

/// How often a mailbox server's count of our one-time prekeys is looked at (after a
/// fetch there): a claim takes one of each, so a day's first messages from strangers
/// and new contacts rarely empty 20.
const TOP_UP_EVERY: Duration = Duration::from_secs(3600);
/// Servers remembered; more are looked at again.
const TOP_UP_SERVERS: usize = 64;

/// The servers whose count of our one-time prekeys was looked at lately.
#[derive(Clone, Default)]
struct ToppedUp(Arc<std::sync::Mutex<HashMap<PeerId, std::time::Instant>>>);

impl ToppedUp {
    /// Whether `holder` is due a look, marking it looked at if so.
    fn due(&self, holder: PeerId) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        if seen.get(&holder).is_some_and(|at| now.duration_since(*at) < TOP_UP_EVERY) {
            return false;
        }
        if seen.len() >= TOP_UP_SERVERS {
            seen.retain(|_, at| now.duration_since(*at) < TOP_UP_EVERY);
        }
        seen.insert(holder, now);
        true
    }
}

/// Asks `holder` how many of this device's one-time prekeys it holds (an empty
/// deposit), and deposits new ones when a kind runs low (decision 0064). Their
/// secrets are saved before they leave. Best effort: a server that refuses or is gone
/// only means fewer first messages with one-time prekeys.
async fn deposit_prekeys(inner: Arc<Inner>, holder: PeerId) {
    let mailbox = inner.secrets.identity.public().mailbox_id();
    let device = inner.secrets.device.public_bytes();
    let ask = |prekeys| MboxRequest::Deposit { mailbox, device, prekeys };
    let held = match inner.net.mailbox(holder, ask(Vec::new())).await {
        Ok(MboxResponse::Held { dh, kem }) => (dh, kem),
        other => {
            tracing::debug!(%holder, ?other, "a mailbox server holds none of our prekeys");
            return;
        }
    };
    let count = client::prekeys_wanted(held.0, held.1);
    if count == 0 {
        return;
    }
    let Ok(mut rng) = crate::rng::Os::new() else { return };
    let minted = match inner.prekeys.mint(&inner, count, Timestamp::now(), &mut rng).await {
        Ok(minted) => minted,
        Err(e) => {
            tracing::warn!(error = %e, "cannot make one-time prekeys");
            return;
        }
    };
    let prekeys = minted.iter().map(|p| p.to_bytes().to_vec()).collect();
    match inner.net.mailbox(holder, ask(prekeys)).await {
        Ok(MboxResponse::Held { dh, kem }) => {
            inner.metrics.session("one_time_deposited");
            tracing::debug!(%holder, dh, kem, "one-time prekeys deposited");
        }
        other => tracing::debug!(%holder, ?other, "one-time prekeys not taken"),
    }
}

impl Driver {
    /// Feeds one input and carries out what the machine asks, in order.
    async fn feed(
        &mut self,
        input: Input<PeerId>,
        timer: &mut std::pin::Pin<&mut tokio::time::Sleep>,
    ) {
        let outputs: Vec<Output<PeerId>> = self.machine.handle(input, Timestamp::now()).collect();
        for output in outputs {
            match output {
                Output::FindHolders => {
                    let key = self.inner.secrets.identity.public().mailbox_id().as_bytes().to_vec();
                    let inner = self.inner.clone();
                    let near = key.clone();
                    self.lookups.spawn(async move {
                        (Found::Nearby, inner.net.closest_known_peers(near).await)
                    });
                    let inner = self.inner.clone();
                    self.lookups.spawn(async move {
                        let asked = std::time::Instant::now();
                        let found = inner.net.closest_peers(key).await;
                        let candidates = found.as_ref().map_or(0, Vec::len);
                        tracing::debug!(candidates, took = ?asked.elapsed(), "mailbox servers found");
                        (Found::Lookup, found)
                    });
                }
                Output::Send { holder, request_id, request } => {
                    let inner = self.inner.clone();
                    let fetch = matches!(request, MboxRequest::Fetch { .. });
                    let top_up = self.topped_up.clone();
                    self.requests.spawn(async move {
                        let asked = inner.net.mailbox(holder, request);
                        let answer = match tokio::time::timeout(REQUEST_TASK_LIMIT, asked).await {
                            Ok(Ok(response @ MboxResponse::Envelopes(_))) if fetch => {
                                // A fetch session is open there now: our one-time
                                // prekeys may be topped up in it.
                                if top_up.due(holder) && inner.sessions.enabled() {
                                    tokio::spawn(deposit_prekeys(inner.clone(), holder));
                                }
                                Ok(response)
                            }
                            Ok(Ok(response)) => Ok(response),
                            Ok(Err(e)) => {
                                tracing::debug!(%holder, error = %e, "mailbox server did not answer");
                                Err(NoAnswer)
                            }
                            Err(_) => Err(NoAnswer),
                        };
                        (request_id, answer)
                    });
                }
                Output::Accept { hash, envelope } => {
                    tracing::trace!(queued = self.queued.len(), "mailbox envelope to accept");
                    self.queued.push_back((hash, envelope));
                    self.spawn_accepts();
                }
                Output::Receipts { to, keys, ids } => {
                    if let Err(e) = crate::receipts::send(&self.inner, to, &keys, &ids).await {
                        tracing::warn!(error = %e, "cannot queue a receipt");
                    }
                }
                Output::Count(Metric::Duplicate) => {
                    self.inner.metrics.duplicates.inc();
                }
                Output::RoundDone { answered } => {
                    let accepting = self.accepts.len();
                    tracing::debug!(answered, accepting, "mailbox round done");
                }
                Output::WakeAt(at) => {
                    let wait = at.as_millis().saturating_sub(Timestamp::now().as_millis());
                    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
                    timer.as_mut().reset(deadline);
                }
                _ => {}
            }
        }
    }

    /// Starts accept tasks for queued envelopes while fewer than [`ACCEPT_AT_ONCE`]
    /// run. Opening is CPU work, and tasks spread it over the runtime's threads, while
    /// their commits share transactions (group commit).
    fn spawn_accepts(&mut self) {
        while self.accepts.len() < ACCEPT_AT_ONCE {
            let Some((hash, envelope)) = self.queued.pop_front() else { break };
            let inner = self.inner.clone();
            let task = self.accepts.spawn(async move {
                let acceptance = acceptance(&inner, accept(&inner, &envelope).await);
                (hash, acceptance)
            });
            self.opening.insert(task.id(), hash);
        }
    }

    /// An accept task finished (or died: its envelope stays for a later round).
    fn accepted(
        &mut self,
        done: Result<(tokio::task::Id, ([u8; 32], Acceptance)), tokio::task::JoinError>,
    ) -> Input<PeerId> {
        let (id, hash, acceptance) = match done {
            Ok((id, (hash, acceptance))) => (id, hash, acceptance),
            Err(e) => {
                let id = e.id();
                (id, self.opening.get(&id).copied().unwrap_or_default(), Acceptance::Busy)
            }
        };
        self.opening.remove(&id);
        tracing::trace!(left = self.opening.len() + self.queued.len(), "mailbox envelope accepted");
        self.spawn_accepts();
        Input::Accepted { hash, acceptance }
    }
}

/// What acceptance did, as the machine needs it; counted and logged here.
fn acceptance(inner: &Inner, result: Result<Accepted, InboundRefusal>) -> Acceptance {
    match result {
        Ok(Accepted { text_from, inserted, .. }) => {
            if inserted == communitas_store::Inserted::Duplicate {
                inner.metrics.duplicates.inc();
            }
            let receipt =
                text_from.map(|(from, keys, id)| Delivered { from, keys: Box::new(keys), id });
            Acceptance::Accepted { receipt }
        }
        // Refused for good (not ours, forged, stale): drop it from the mailbox.
        Err(InboundRefusal::Rejected(why, reason)) => {
            tracing::debug!(?why, %reason, "mailbox envelope refused");
            inner.metrics.rejected.inc();
            Acceptance::Rejected
        }
        // Could not store now: leave it there for the next round.
        Err(InboundRefusal::Busy(reason)) => {
            tracing::warn!(%reason, "mailbox envelope not stored yet");
            Acceptance::Busy
        }
    }
}
