//! The outbox: delivers queued messages, retries with backoff, gives up after the TTL.
//!
//! One actor owns the schedule (which message is due when), the device cache (where
//! each recipient's devices were last seen) and the running deliveries. Each delivery
//! is a child task: resolve devices if unknown, send over `/communitas/msg/1`, and
//! report. The actor then commits the outcome (`delivered`, another attempt later,
//! or a dead letter) before acting on it.
//!
//! Retries: exponential backoff with full jitter, from 1 s to a 5-minute cap, until the
//! message's TTL (30 days) ends (ARCHITECTURE §6). A peer that connects makes its
//! queued messages due at once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use communitas_crypto::IdentityRecord;
use communitas_net::libp2p::PeerId;
use communitas_net::{Receipt, Rejection};
use communitas_store::{OutboxEntry, Status};
use communitas_types::{Address, MessageId, Timestamp};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{Event, Inner};

/// How long resolved device addresses are trusted before a fresh lookup.
const DEVICE_CACHE_TTL: Duration = Duration::from_secs(600);
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// Shortest wait between attempts, so a zero draw of the jitter never spins.
const BACKOFF_FLOOR: Duration = Duration::from_millis(100);

pub(crate) enum Command {
    /// A message was queued (or re-queued from dead letters).
    Enqueue(Box<OutboxEntry>),
    /// A control message (a receipt) was queued: delivered like a message, but not
    /// one the user sent, so it moves no message counter and no message status.
    EnqueueControl(Box<OutboxEntry>),
    /// A lookup found this record: remember its devices.
    Learned { address: Address, record: Box<IdentityRecord> },
    /// A connection to this device opened.
    PeerOnline(PeerId),
    /// An end-to-end receipt says this message arrived: stop trying.
    Delivered(MessageId),
}

/// Where a recipient's devices are.
#[derive(Clone)]
struct Devices {
    list: crate::devices::Devices,
    fetched: Instant,
}

enum Outcome {
    Delivered {
        devices: Devices,
    },
    /// Not reachable directly, but left in `copies` mailboxes.
    Stored {
        copies: usize,
        error: String,
    },
    Retry {
        error: String,
        devices: Option<Devices>,
    },
    Reject {
        reason: String,
    },
}

pub(crate) struct Actor {
    inner: Arc<Inner>,
    commands: mpsc::Receiver<Command>,
    entries: HashMap<MessageId, OutboxEntry>,
    due: BinaryHeap<Reverse<(Timestamp, MessageId)>>,
    devices: HashMap<Address, Devices>,
    peer_addresses: HashMap<PeerId, Address>,
    running: JoinSet<(MessageId, Outcome)>,
    in_flight: std::collections::HashSet<MessageId>,
    /// Entries that are control messages (receipts), not the user's messages.
    control: std::collections::HashSet<MessageId>,
    max_running: usize,
}

impl Actor {
    pub(crate) fn new(
        inner: Arc<Inner>,
        commands: mpsc::Receiver<Command>,
        pending: Vec<OutboxEntry>,
        control: std::collections::HashSet<MessageId>,
        max_running: usize,
    ) -> Self {
        let mut actor = Self {
            inner,
            commands,
            entries: HashMap::new(),
            due: BinaryHeap::new(),
            devices: HashMap::new(),
            peer_addresses: HashMap::new(),
            running: JoinSet::new(),
            in_flight: Default::default(),
            control,
            max_running: max_running.max(1),
        };
        for entry in pending {
            actor.schedule(entry);
        }
        actor
    }

    fn schedule(&mut self, entry: OutboxEntry) {
        self.due.push(Reverse((entry.next_attempt_at, entry.message_id)));
        self.entries.insert(entry.message_id, entry);
    }

    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        loop {
            self.start_due();
            let next_due = self.next_due_in();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(command) = self.commands.recv() => self.handle_command(command),
                Some(done) = self.running.join_next(), if !self.running.is_empty() => match done {
                    Ok((id, outcome)) => self.handle_outcome(id, outcome).await,
                    Err(e) => tracing::error!(error = %e, "delivery task failed"),
                },
                () = tokio::time::sleep(next_due), if next_due < Duration::MAX => {}
            }
        }
        // Running deliveries are dropped: their messages stay in the outbox (the store
        // has them) and go out again at the next start; receivers deduplicate.
        self.running.shutdown().await;
    }

    fn next_due_in(&self) -> Duration {
        if self.running.len() >= self.max_running {
            return Duration::MAX;
        }
        match self.due.peek() {
            Some(Reverse((at, _))) => {
                Duration::from_millis(at.as_millis().saturating_sub(Timestamp::now().as_millis()))
            }
            None => Duration::MAX,
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Enqueue(entry) => self.schedule(*entry),
            Command::EnqueueControl(entry) => {
                self.control.insert(entry.message_id);
                self.schedule(*entry);
            }
            Command::Learned { address, record } => {
                let devices = devices_of(&record);
                self.remember(address, devices);
            }
            Command::Delivered(id) => {
                if self.entries.remove(&id).is_some() {
                    self.control.remove(&id);
                    self.inner.metrics.outbox_depth.dec();
                }
            }
            Command::PeerOnline(peer) => {
                let Some(address) = self.peer_addresses.get(&peer).copied() else { return };
                let now = Timestamp::now();
                for entry in self.entries.values_mut() {
                    if entry.recipient == address && !self.in_flight.contains(&entry.message_id) {
                        entry.next_attempt_at = now;
                        self.due.push(Reverse((now, entry.message_id)));
                    }
                }
            }
        }
    }

    fn remember(&mut self, address: Address, devices: Devices) {
        for (peer, _) in &devices.list {
            self.peer_addresses.insert(*peer, address);
        }
        self.devices.insert(address, devices);
    }

    /// Starts every delivery that is due, as far as the concurrency limit allows.
    fn start_due(&mut self) {
        let now = Timestamp::now();
        while self.running.len() < self.max_running {
            let Some(Reverse((at, id))) = self.due.peek().copied() else { break };
            if at > now {
                break;
            }
            self.due.pop();
            // Stale heap entries (rescheduled, delivered, duplicate kicks) are skipped.
            let Some(entry) = self.entries.get(&id) else { continue };
            if at < entry.next_attempt_at || self.in_flight.contains(&id) {
                continue;
            }
            let entry = entry.clone();
            let cached = self
                .devices
                .get(&entry.recipient)
                .filter(|d| d.fetched.elapsed() < DEVICE_CACHE_TTL)
                .cloned();
            self.in_flight.insert(id);
            let control = self.control.contains(&id);
            self.running.spawn(deliver(self.inner.clone(), entry, cached, control));
        }
    }

    async fn handle_outcome(&mut self, id: MessageId, outcome: Outcome) {
        self.in_flight.remove(&id);
        let Some(entry) = self.entries.get(&id).cloned() else { return };
        let inner = self.inner.clone();
        let store = &inner.store;
        match outcome {
            Outcome::Delivered { devices } => {
                self.remember(entry.recipient, devices);
                // The receipt proves bob's node committed the message: that is
                // "delivered", whether or not our own bookkeeping below is on disk
                // yet. (Should it be lost in a crash, the message goes out again and
                // bob's node deduplicates it.) So the user hears it first.
                let metrics = &self.inner.metrics;
                if !self.control.contains(&id) {
                    metrics.delivered.inc();
                    let ms =
                        Timestamp::now().as_millis().saturating_sub(entry.created_at.as_millis());
                    metrics.delivery_latency.observe(ms as f64 / 1000.0);
                    self.inner.emit(Event::StatusChanged {
                        id,
                        to: entry.recipient,
                        status: Status::Delivered,
                    });
                }
                match store.mark_delivered(id).await {
                    Ok(_) => {
                        self.entries.remove(&id);
                        self.control.remove(&id);
                        metrics.outbox_depth.dec();
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot record a delivery; will resend");
                        self.retry_later(entry, e.to_string(), Status::Queued).await;
                    }
                }
            }
            Outcome::Retry { error, devices } => {
                match devices {
                    Some(d) => self.remember(entry.recipient, d),
                    None => {
                        self.devices.remove(&entry.recipient);
                    }
                }
                if Timestamp::now() >= entry.expires_at {
                    self.give_up(
                        entry,
                        format!("not delivered within 30 days; last error: {error}"),
                    )
                    .await;
                } else {
                    self.retry_later(entry, error, Status::Queued).await;
                }
            }
            Outcome::Reject { reason } => self.give_up(entry, reason).await,
            Outcome::Stored { copies, error } => {
                self.devices.remove(&entry.recipient);
                tracing::debug!(id = %id.fmt_short(), copies, "left in mailboxes");
                let _ = self.inner.files.try_send(crate::files::Command::Stored(id));
                if Timestamp::now() >= entry.expires_at {
                    self.give_up(
                        entry,
                        format!("not delivered within 30 days; last error: {error}"),
                    )
                    .await;
                } else {
                    self.retry_later(entry, error, Status::Stored).await;
                }
            }
        }
    }

    async fn retry_later(&mut self, mut entry: OutboxEntry, error: String, status: Status) {
        entry.attempts = entry.attempts.saturating_add(1);
        entry.next_attempt_at = Timestamp::now().saturating_add(backoff(entry.attempts));
        entry.last_error = Some(error.clone());
        if let Err(e) = self
            .inner
            .store
            .record_attempt(entry.message_id, entry.attempts, entry.next_attempt_at, error, status)
            .await
        {
            tracing::error!(error = %e, "cannot record a delivery attempt");
        }
        tracing::debug!(id = %entry.message_id.fmt_short(), attempts = entry.attempts, "delivery will be retried");
        if !self.control.contains(&entry.message_id) {
            self.inner.emit(Event::StatusChanged {
                id: entry.message_id,
                to: entry.recipient,
                status,
            });
        }
        self.schedule(entry);
    }

    async fn give_up(&mut self, entry: OutboxEntry, reason: String) {
        let id = entry.message_id;
        match self.inner.store.dead_letter(id, reason).await {
            Ok(()) => {
                self.entries.remove(&id);
                self.inner.metrics.outbox_depth.dec();
                if !self.control.remove(&id) {
                    self.inner.metrics.failed.inc();
                    self.inner.emit(Event::StatusChanged {
                        id,
                        to: entry.recipient,
                        status: Status::Failed,
                    });
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot move a message to dead letters");
                self.retry_later(entry, e.to_string(), Status::Queued).await;
            }
        }
    }
}

/// A new outbox row: due now, no attempts yet, alive for the message TTL.
pub(crate) fn fresh_entry(
    id: MessageId,
    to: Address,
    envelope: Vec<u8>,
    now: Timestamp,
) -> OutboxEntry {
    OutboxEntry {
        message_id: id,
        recipient: to,
        envelope,
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
        expires_at: now.saturating_add(crate::MESSAGE_TTL),
        last_error: None,
    }
}

/// Full jitter: uniform in `[0, min(cap, base · 2^attempts)]`, at least the floor.
fn backoff(attempts: u32) -> Duration {
    let ceiling =
        BACKOFF_BASE.saturating_mul(2u32.saturating_pow(attempts.min(16))).min(BACKOFF_CAP);
    let draw =
        communitas_crypto::random::bytes::<8>().map(u64::from_le_bytes).unwrap_or(u64::MAX / 2);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(draw % ceiling_ms.max(1)).max(BACKOFF_FLOOR)
}

fn devices_of(record: &IdentityRecord) -> Devices {
    Devices { list: crate::devices::of(record), fetched: Instant::now() }
}

/// One delivery attempt: find the recipient's devices, send, read the receipt.
/// `control`: a receipt, not a message of the user's (no status, no counter).
async fn deliver(
    inner: Arc<Inner>,
    entry: OutboxEntry,
    cached: Option<Devices>,
    control: bool,
) -> (MessageId, Outcome) {
    let id = entry.message_id;
    let devices = match cached {
        Some(d) => d,
        None => match lookup(&inner, entry.recipient).await {
            Ok(d) => d,
            Err(error) => return mailbox_fallback(&inner, id, &entry, error).await,
        },
    };
    let mut last_error = String::from("no device to deliver to");
    for (peer, addrs) in &devices.list {
        let sent = inner.store.set_status(id, Status::Sent);
        let request = inner.net.send(*peer, addrs.clone(), entry.envelope.clone());
        let (sent, receipt) = tokio::join!(sent, request);
        if sent.is_ok() && !control {
            inner.metrics.sent.inc();
            inner.emit(Event::StatusChanged { id, to: entry.recipient, status: Status::Sent });
        }
        match receipt {
            Ok(Receipt::Delivered) => return (id, Outcome::Delivered { devices }),
            Ok(Receipt::Busy) => last_error = "recipient busy".into(),
            Ok(Receipt::RateLimited) => last_error = "over the recipient's rate limit".into(),
            Ok(Receipt::Rejected(why)) => {
                let reason = match why {
                    Rejection::WrongRecipient => {
                        "the recipient's device refused it: not for its identity"
                    }
                    Rejection::Stale => "the recipient's device refused it: timestamp out of range",
                    _ => "the recipient's device refused it as invalid",
                };
                return (id, Outcome::Reject { reason: reason.into() });
            }
            Ok(_) => last_error = "unknown receipt".into(),
            Err(e) => last_error = e.to_string(),
        }
    }
    mailbox_fallback(&inner, id, &entry, last_error).await
}

/// Direct delivery failed: leave the envelope in the recipient's mailboxes.
async fn mailbox_fallback(
    inner: &Inner,
    id: MessageId,
    entry: &OutboxEntry,
    direct_error: String,
) -> (MessageId, Outcome) {
    match crate::mailbox::deposit(inner, &entry.envelope).await {
        Ok(copies) => (id, Outcome::Stored { copies, error: direct_error }),
        Err(e) => {
            (id, Outcome::Retry { error: format!("{direct_error}; mailboxes: {e}"), devices: None })
        }
    }
}

/// Resolves the recipient's devices, using only records with the pinned keys.
async fn lookup(inner: &Inner, recipient: Address) -> Result<Devices, String> {
    let pinned = inner.pinned.keys(&inner.store, recipient).await.map_err(|e| e.to_string())?;
    let list = crate::devices::resolve(inner, recipient, pinned.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    Ok(Devices { list, fetched: Instant::now() })
}
