//! The driver of the mailbox server: feeds requests, finished store work and timers
//! into [`communitas_proto::mbox::server::Server`] and carries out what it asks for.
//!
//! The machine decides (nonces, sessions, put rules, answers, notifications, when to
//! sweep); this loop only does the I/O, in the order the machine gives:
//!
//! - `Respond` goes to the request's responder; the loop holds the responder of the
//!   request it is handling, or of the store work that just finished.
//! - `Store(work)` runs on a bounded set of tasks ([`MAX_STORE_WORK`]), so concurrent
//!   puts share the store's group commit instead of paying one fsync each in a row;
//!   the task takes the responder along and brings it back with the outcome. When the
//!   set is full the loop stops reading requests; its bounded inbox then fills and the
//!   dispatcher answers `Unavailable`.
//! - `Notify` becomes a `notify` request to the owner, at most [`MAX_NOTIFYING`] in
//!   flight (beyond, dropped: the owner polls anyway).
//! - `WakeFetcher` wakes our own mailbox fetcher; `Count` bumps a metric; `WakeAt`
//!   arms the one timer.

use std::sync::Arc;
use std::time::Duration;

use communitas_net::MboxResponder;
use communitas_net::libp2p::PeerId;
use communitas_net::mbox::MboxRequest;
use communitas_proto::mbox::server::{
    Config, Input, Metric, Outcome, Output, PutOutcome, RequestId, Server, Work,
};
use communitas_store::{Deposited, MailboxPut, PrekeyDeposit, PutOutcome as Stored};
use communitas_types::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{HELD, MAX_NOTIFYING, Request};
use crate::{Inner, MESSAGE_TTL};

/// Puts, fetches and acks at the store at once (server role): enough to fill the
/// store writer's batches under load, bounded so a flood waits in the inbox instead.
const MAX_STORE_WORK: usize = 128;

/// Store work that finished, with the responder of its request.
struct Done {
    request_id: RequestId,
    outcome: Outcome,
    responder: MboxResponder,
}

/// The server side. Runs on every node; the machine answers `NotServer` unless it is
/// one.
pub(crate) async fn serve(
    inner: Arc<Inner>,
    server: bool,
    mut requests: mpsc::Receiver<Request>,
    wake_fetcher: mpsc::Sender<()>,
    shutdown: CancellationToken,
) {
    let mut rng = match crate::rng::Os::new() {
        Ok(rng) => rng,
        Err(e) => {
            // Without nonces nothing can be fetched; the dispatcher answers
            // `Unavailable` once this inbox is gone, and senders use other holders.
            tracing::error!(error = %e, "no OS randomness: the mailbox server stops");
            return;
        }
    };
    let config = Config { envelope_ttl: MESSAGE_TTL, ..Config::new(server) };
    let own_mailbox = inner.secrets.identity.public().mailbox_id();
    let mut machine = Server::new(config, inner.secrets.device.peer_id(), own_mailbox);
    let mut notifying: JoinSet<()> = JoinSet::new();
    let mut work: JoinSet<Option<Done>> = JoinSet::new();
    let mut next_id = 0u64;
    // The machine's one timer; the first tick is at once (it sweeps at start).
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut armed = true;
    loop {
        let (input, mut held) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = &mut timer, if armed => {
                armed = false;
                (Input::Tick, None)
            }
            Some(_) = notifying.join_next(), if !notifying.is_empty() => continue,
            Some(done) = work.join_next(), if !work.is_empty() => match done {
                Ok(Some(Done { request_id, outcome, responder })) => {
                    (Input::StoreDone { request_id, outcome }, Some((request_id, responder)))
                }
                // A sweep, or work whose answer nobody waits for.
                Ok(None) | Err(_) => continue,
            },
            r = requests.recv(), if work.len() < MAX_STORE_WORK => match r {
                Some(Request { peer, request, responder }) => {
                    next_id += 1;
                    let request_id = RequestId(next_id);
                    (Input::Request { peer, request_id, request }, Some((request_id, responder)))
                }
                None => break,
            },
        };
        for output in machine.handle(input, Timestamp::now(), &mut rng) {
            match output {
                Output::Respond { request_id, response } => match held.take() {
                    Some((id, responder)) if id == request_id => {
                        let _ = responder.send(response).await;
                    }
                    other => {
                        tracing::debug!(?request_id, "an answer for a request not in hand");
                        held = other;
                    }
                },
                Output::Store(job) => {
                    let id = job_id(&job);
                    let responder = match held.take() {
                        Some((held_id, responder)) if Some(held_id) == id => Some(responder),
                        other => {
                            held = other;
                            None
                        }
                    };
                    spawn(&inner, &mut work, job, responder);
                }
                // Beyond the bound, dropped: the owner polls anyway.
                Output::Notify { owner, mailbox } if notifying.len() < MAX_NOTIFYING => {
                    let net = inner.net.clone();
                    notifying.spawn(async move {
                        let _ = net.mailbox(owner, MboxRequest::Notify { mailbox }).await;
                    });
                }
                Output::WakeFetcher => {
                    let _ = wake_fetcher.try_send(());
                }
                Output::Count(metric) => count(&inner, metric),
                Output::WakeAt(at) => {
                    timer.as_mut().reset(deadline(at));
                    armed = true;
                }
                _ => {}
            }
        }
    }
    work.shutdown().await;
}

/// The request a piece of work answers, if any.
fn job_id(job: &Work<PeerId>) -> Option<RequestId> {
    match job {
        Work::Put { request_id, .. }
        | Work::Fetch { request_id, .. }
        | Work::Ack { request_id, .. }
        | Work::Wanted { request_id, .. }
        | Work::Deposit { request_id, .. }
        | Work::Claim { request_id, .. } => Some(*request_id),
        _ => None,
    }
}

/// Runs `job` at the store on its own task; the task brings back the outcome with the
/// request's responder.
fn spawn(
    inner: &Arc<Inner>,
    work: &mut JoinSet<Option<Done>>,
    job: Work<PeerId>,
    responder: Option<MboxResponder>,
) {
    let inner = inner.clone();
    work.spawn(async move {
        let store = &inner.store;
        let (request_id, outcome) = match job {
            Work::Put { request_id, hash, mailbox, envelope, sender, replica, now, expires_at } => {
                let sender = sender.to_string();
                let put = MailboxPut { hash, mailbox, envelope, sender, replica, now, expires_at };
                let put = store.mailbox_put(put, inner.mailbox_limits);
                let outcome = put.await.map_or(PutOutcome::Failed, put_outcome);
                (request_id, Outcome::Put { mailbox, outcome })
            }
            Work::Fetch { request_id, mailbox, now, max_bytes } => {
                let fetched = store.mailbox_fetch(mailbox, now, max_bytes).await;
                (request_id, fetched.map_or(Outcome::Failed, Outcome::Fetched))
            }
            Work::Ack { request_id, mailbox, hashes } => {
                let acked = store.mailbox_ack(mailbox, hashes).await;
                (request_id, acked.map_or(Outcome::Failed, Outcome::Acked))
            }
            Work::Wanted { request_id, hashes } => {
                let outcome = match store.mailbox_wanted(hashes).await {
                    Ok(w) => Outcome::Wanted { hashes: w.hashes, acked: w.acked },
                    Err(_) => Outcome::Failed,
                };
                (request_id, outcome)
            }
            Work::Deposit { request_id, mailbox, device, prekeys, now, expires_at } => {
                let prekeys = prekeys.into_iter().map(|p| (p.kind, p.id, p.bytes)).collect();
                let deposit = PrekeyDeposit { mailbox, device, prekeys, now, expires_at };
                let outcome = match store.deposit_prekeys(deposit, HELD).await {
                    Ok(Deposited::Held(dh, kem)) => Outcome::Held { dh, kem },
                    Ok(Deposited::Full) => Outcome::HeldFull,
                    Err(_) => Outcome::Failed,
                };
                (request_id, outcome)
            }
            Work::Claim { request_id, mailbox, device, now } => {
                let claimed = store.claim_prekeys(mailbox, device, now).await;
                (request_id, claimed.map_or(Outcome::Failed, Outcome::Claimed))
            }
            Work::Expire { now } => {
                if let Err(e) = store.expire(now).await {
                    tracing::warn!(error = %e, "cannot expire mailbox entries");
                }
                return None;
            }
            _ => return None,
        };
        Some(Done { request_id, outcome, responder: responder? })
    });
}

fn put_outcome(stored: Stored) -> PutOutcome {
    match stored {
        Stored::Stored => PutOutcome::Stored,
        Stored::AlreadyStored => PutOutcome::AlreadyStored,
        Stored::AlreadyAcked => PutOutcome::AlreadyAcked,
        Stored::MailboxFull => PutOutcome::MailboxFull,
        Stored::SenderOverQuota => PutOutcome::SenderOverQuota,
        Stored::ServerFull => PutOutcome::ServerFull,
        _ => PutOutcome::Failed,
    }
}

fn count(inner: &Inner, metric: Metric) {
    let metrics = &inner.metrics;
    match metric {
        Metric::AckedRefused(n) => {
            metrics.mailbox_acked_refused.inc_by(n);
        }
        Metric::MailboxFull => {
            metrics.mailbox_full.inc();
            metrics.refuse("mailbox_full");
        }
        Metric::SenderOverQuota => metrics.refuse("mailbox_sender_quota"),
        Metric::ServerFull => metrics.refuse("mailbox_server_full"),
        Metric::Unavailable => metrics.refuse("mailbox_unavailable"),
        Metric::PrekeysClaimed(n) => metrics.held_prekeys("claimed", n),
        Metric::PrekeysExhausted => metrics.held_prekeys("exhausted", 1),
        Metric::PrekeysFull => metrics.held_prekeys("full", 1),
        _ => {}
    }
}

/// The monotonic instant of the wall-clock time `at`.
fn deadline(at: Timestamp) -> tokio::time::Instant {
    let wait = at.as_millis().saturating_sub(Timestamp::now().as_millis());
    tokio::time::Instant::now() + Duration::from_millis(wait)
}
