//! The outbox driver: runs [`communitas_proto::outbox::Outbox`] against the store, the
//! network and the UI.
//!
//! The machine decides (which message is due when, backoff, TTL, dead letters, the
//! device cache); this actor carries it out. Its loop feeds the machine commands from
//! the rest of the node, the reports of finished deliveries and its own wake-ups,
//! and executes what comes out, in order: store writes (awaited, their answer fed
//! straight back), delivery tasks, status events, metrics. A delivery is a child
//! task: resolve the devices if the machine had none, send over `/communitas/msg/1`,
//! fall back to the recipient's mailboxes, and report an [`Outcome`].
//!
//! The send path has no extra hop: `send` stores the message and its row, sends
//! [`Command::Enqueue`], and the machine's `Attempt` is spawned in the same turn.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use communitas_net::libp2p::{Multiaddr, PeerId};
use communitas_net::{Receipt, Rejection};
use communitas_proto::outbox::{self as machine, Entry, Input, Metric, Output, Write};
use communitas_store::{OutboxEntry, Status};
use communitas_types::{Address, MessageId, Timestamp};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub(crate) use crate::commands::outbox::Command;
use crate::devices::Devices;
use crate::rng::Os;
use crate::{Event, Inner};

type Outbox = machine::Outbox<PeerId, Vec<Multiaddr>>;
type Outcome = machine::Outcome<PeerId, Vec<Multiaddr>>;

/// How a delivery task ended: its outcome, and the envelope it sealed again if the
/// recipient's device had lost the session.
struct Done {
    id: MessageId,
    outcome: Outcome,
    resealed: Option<Vec<u8>>,
}

pub(crate) struct Actor {
    inner: Arc<Inner>,
    commands: mpsc::Receiver<Command>,
    machine: Outbox,
    rng: Os,
    running: JoinSet<Done>,
    /// Which message each running task delivers, to report one that panicked.
    tasks: HashMap<tokio::task::Id, MessageId>,
    wake: Option<Timestamp>,
}

impl Actor {
    /// The actor for the outbox rows `pending` (`control`: those that are receipts).
    pub(crate) fn new(
        inner: Arc<Inner>,
        commands: mpsc::Receiver<Command>,
        pending: Vec<OutboxEntry>,
        control: &HashSet<MessageId>,
        max_running: usize,
        rng: Os,
    ) -> Self {
        let rows = pending.into_iter().map(|row| {
            let control = control.contains(&row.message_id);
            entry(row, control)
        });
        let machine = Outbox::restore(max_running, rows);
        Self {
            inner,
            commands,
            machine,
            rng,
            running: JoinSet::new(),
            tasks: HashMap::new(),
            wake: None,
        }
    }

    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        // Whatever the restored rows have due goes out now.
        self.feed(Input::Tick).await;
        loop {
            let wake = self.wake.map(|at| {
                Duration::from_millis(at.as_millis().saturating_sub(Timestamp::now().as_millis()))
            });
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(command) = self.commands.recv() => self.feed(input(command)).await,
                Some(done) = self.running.join_next_with_id(), if !self.running.is_empty() => {
                    for input in self.report(done) {
                        self.feed(input).await;
                    }
                }
                () = tokio::time::sleep(wake.unwrap_or_default()), if wake.is_some() => {
                    self.wake = None;
                    self.feed(Input::Tick).await;
                }
            }
        }
        // Running deliveries are dropped: their messages stay in the outbox (the store
        // has them) and go out again at the next start; receivers deduplicate.
        self.running.shutdown().await;
    }

    /// A delivery task ended: its outcome, or a retry if it panicked.
    fn report(
        &mut self,
        done: Result<(tokio::task::Id, Done), tokio::task::JoinError>,
    ) -> Vec<Input<PeerId, Vec<Multiaddr>>> {
        match done {
            Ok((task, Done { id, outcome, resealed })) => {
                self.tasks.remove(&task);
                let resealed = resealed.map(|envelope| Input::Resealed { id, envelope });
                resealed.into_iter().chain([Input::AttemptDone { id, outcome }]).collect()
            }
            Err(e) => {
                tracing::error!(error = %e, "delivery task failed");
                let Some(id) = self.tasks.remove(&e.id()) else { return Vec::new() };
                let error = "the delivery task failed".to_owned();
                vec![Input::AttemptDone { id, outcome: Outcome::Retry { error, looked_up: None } }]
            }
        }
    }

    /// Feeds `input`, carries out the outputs in order, and feeds the answers of the
    /// writes they asked for the same way.
    async fn feed(&mut self, input: Input<PeerId, Vec<Multiaddr>>) {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            let outputs = self.machine.handle(input, Timestamp::now(), &mut self.rng);
            // The machine's latest answer is the only timer: none means none needed.
            self.wake = None;
            for output in outputs {
                if let Some(answer) = self.execute(output).await {
                    inputs.push_back(answer);
                }
            }
        }
    }

    async fn execute(
        &mut self,
        output: Output<PeerId, Vec<Multiaddr>>,
    ) -> Option<Input<PeerId, Vec<Multiaddr>>> {
        let metrics = &self.inner.metrics;
        match output {
            Output::Attempt { entry, devices } => {
                let id = entry.id;
                let task = self.running.spawn(deliver(self.inner.clone(), entry, devices));
                self.tasks.insert(task.id(), id);
            }
            Output::Persist(write) => return Some(self.persist(write).await),
            Output::Status { id, to, status } => {
                self.inner.emit(Event::StatusChanged { id, to, status: status_of(status) });
            }
            Output::Stored(id) => {
                tracing::debug!(id = %id.fmt_short(), "left in mailboxes");
                self.inner.files.offer_stored(id);
            }
            Output::Metric(Metric::Delivered { latency }) => {
                metrics.delivered.inc();
                metrics.delivery_latency.observe(latency.as_secs_f64());
            }
            Output::Metric(Metric::Failed) => {
                metrics.failed.inc();
            }
            Output::Metric(Metric::Left) => {
                metrics.outbox_depth.dec();
            }
            Output::WakeAt(at) => self.wake = Some(at),
        }
        None
    }

    /// Carries out one write and answers the machine.
    async fn persist(&self, write: Write) -> Input<PeerId, Vec<Multiaddr>> {
        let id = write.id();
        let store = &self.inner.store;
        let done = match write {
            Write::Delivered(id) => store.mark_delivered(id).await.map(drop),
            Write::Attempt { id, attempts, next_attempt_at, error, status } => {
                tracing::debug!(id = %id.fmt_short(), attempts, "delivery will be retried");
                store.record_attempt(id, attempts, next_attempt_at, error, status_of(status)).await
            }
            Write::DeadLetter { id, reason } => store.dead_letter(id, reason).await,
        };
        match done {
            Ok(()) => Input::Persisted(id),
            Err(communitas_store::Error::NoSuchMessage(_)) => Input::Gone(id),
            Err(e) => {
                tracing::error!(error = %e, "cannot record a delivery outcome; will retry");
                Input::PersistFailed(id)
            }
        }
    }
}

fn input(command: Command) -> Input<PeerId, Vec<Multiaddr>> {
    match command {
        Command::Enqueue(row) => Input::Enqueue(entry(*row, false)),
        Command::EnqueueControl(row) => Input::Enqueue(entry(*row, true)),
        Command::Learned { address, record } => {
            Input::Learned { address, devices: crate::devices::of(&record) }
        }
        Command::PeerOnline(peer) => Input::PeerOnline(peer),
        Command::Delivered(id) => Input::Delivered(id),
    }
}

fn entry(row: OutboxEntry, control: bool) -> Entry {
    Entry {
        id: row.message_id,
        recipient: row.recipient,
        envelope: row.envelope,
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at,
        created_at: row.created_at,
        expires_at: row.expires_at,
        last_error: row.last_error,
        control,
    }
}

fn status_of(status: machine::Status) -> Status {
    match status {
        machine::Status::Queued => Status::Queued,
        machine::Status::Stored => Status::Stored,
        machine::Status::Delivered => Status::Delivered,
        machine::Status::Failed => Status::Failed,
    }
}

/// One delivery attempt: find the recipient's devices, send, read the receipt, or
/// leave the envelope in the recipient's mailboxes.
async fn deliver(inner: Arc<Inner>, mut entry: Entry, cached: Option<Devices>) -> Done {
    let id = entry.id;
    let done = |outcome, resealed| Done { id, outcome, resealed };
    let (devices, looked_up) = match cached {
        Some(devices) => (devices, false),
        None => match lookup(&inner, entry.recipient).await {
            Ok(devices) => (devices, true),
            Err(error) => return done(mailbox_fallback(&inner, &entry, error, None).await, None),
        },
    };
    let mut resealed = None;
    let mut last_error = String::from("no device to deliver to");
    let mut delivered = false;
    for (peer, addrs) in &devices {
        let sent = inner.store.mark_sent(id);
        let request = inner.net.send(*peer, addrs.clone(), direct_form(&entry.envelope));
        let (sent, mut receipt) = tokio::join!(sent, request);
        // No session of the device opens it: sealed again with our current session
        // and sent at once; refused again, the device lost the session, so a new one
        // (the machine learns the new envelope from `Done`).
        for reset in [false, true] {
            if !matches!(receipt, Ok(Receipt::Rejected(Rejection::NoSession))) {
                break;
            }
            let Some(envelope) = inner.sessions.heal(&inner, *peer, &entry, reset).await else {
                break;
            };
            entry.envelope = envelope.clone();
            resealed = Some(envelope);
            receipt = inner.net.send(*peer, addrs.clone(), direct_form(&entry.envelope)).await;
        }
        if !entry.control {
            inner.metrics.sent.inc();
        }
        if matches!(sent, Ok(true)) {
            inner.emit(Event::StatusChanged { id, to: entry.recipient, status: Status::Sent });
        }
        match receipt {
            Ok(Receipt::Delivered) => {
                // A device of the contact's record took it: its envelopes to us
                // skip the strangers' lane (`lanes`).
                inner.familiar.learn(*peer);
                delivered = true;
                break;
            }
            Ok(Receipt::Busy) => last_error = "recipient busy".into(),
            Ok(Receipt::RateLimited) => last_error = "over the recipient's rate limit".into(),
            // Not for good: the next attempt seals it again.
            Ok(Receipt::Rejected(Rejection::NoSession)) => {
                last_error = "the recipient's device has no session for it".into();
            }
            Ok(Receipt::Rejected(why)) => {
                let reason = match why {
                    Rejection::WrongRecipient => {
                        "the recipient's device refused it: not for its identity"
                    }
                    Rejection::Stale => "the recipient's device refused it: timestamp out of range",
                    Rejection::NoWork => {
                        "the recipient's device refused it: a first contact needs a proof of \
                         work (this node sent none: sessions off, or no prekeys found)"
                    }
                    _ => "the recipient's device refused it as invalid",
                };
                return done(Outcome::Reject { reason: reason.into() }, resealed);
            }
            Ok(_) => last_error = "unknown receipt".into(),
            Err(e) => last_error = e.to_string(),
        }
    }
    let looked_up = looked_up.then_some(devices);
    if delivered {
        return done(Outcome::Delivered { looked_up }, resealed);
    }
    done(mailbox_fallback(&inner, &entry, last_error, looked_up).await, resealed)
}

/// What a device is sent: a session's envelope is kept in its mailbox form, and a
/// device gets the direct one; a version-1 envelope is the same either way.
fn direct_form(envelope: &[u8]) -> Vec<u8> {
    communitas_proto::session::letter::direct_from_mailbox(envelope)
        .unwrap_or_else(|| envelope.to_vec())
}

/// Direct delivery failed: leave the envelope in the recipient's mailboxes.
async fn mailbox_fallback(
    inner: &Inner,
    entry: &Entry,
    direct_error: String,
    looked_up: Option<Devices>,
) -> Outcome {
    match crate::mailbox::deposit(inner, &entry.envelope).await {
        Ok(copies) => {
            tracing::debug!(id = %entry.id.fmt_short(), copies, "deposited in mailboxes");
            Outcome::Stored { error: direct_error, looked_up }
        }
        Err(e) => Outcome::Retry { error: format!("{direct_error}; mailboxes: {e}"), looked_up },
    }
}

/// Resolves the recipient's devices, using only records with the pinned keys.
async fn lookup(inner: &Inner, recipient: Address) -> Result<Devices, String> {
    let pinned = inner.pinned.keys(&inner.store, recipient).await.map_err(|e| e.to_string())?;
    crate::devices::resolve(inner, recipient, pinned.as_ref()).await.map_err(|e| e.to_string())
}
