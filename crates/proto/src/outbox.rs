//! The outbox: when each queued message is tried, how often, and when to give up
//! (ARCHITECTURE §6).
//!
//! [`Outbox`] owns the schedule of queued messages (the next due time of each, the
//! attempts so far, the expiry), the attempts in flight and their limit, which
//! entries are control messages (receipts: delivered like a message, but the user
//! sees no status and no counter moves for them), and a bounded cache of where each
//! recipient's devices are ([`devices`]). It does no I/O: one attempt, the driver's
//! child task, resolves the devices if the cache has none, sends, falls back to the
//! recipient's mailboxes, and reports an [`Outcome`].
//!
//! # The flow of one message
//!
//! ```text
//! Enqueue(entry) ──▶ Attempt{entry, devices} ──▶ (driver: send / mailbox) ──▶ AttemptDone
//!    Delivered ──▶ Status(Delivered) ──▶ Persist(Delivered) ──▶ Persisted ──▶ forgotten
//!    Stored    ──▶ Stored(id) ─┐
//!    Retry     ────────────────┴▶ Persist(Attempt{next, status}) ──▶ Persisted ──▶ Status, due at next
//!    Reject, or failed at/after the TTL ──▶ Persist(DeadLetter) ──▶ Persisted ──▶ Status(Failed), forgotten
//! ```
//!
//! - Retries back off with full jitter ([`Backoff::DELIVERY`](crate::backoff::Backoff::DELIVERY): 1 s doubling to a
//!   5-minute cap), and the last wait is cut short to end on the expiry, so a
//!   message nobody can reach becomes a dead letter when its TTL (30 days) ends.
//! - A device of a recipient connecting ([`Input::PeerOnline`]) makes that
//!   recipient's waiting messages due at once; one already in flight is left alone.
//! - Commit, then act: the machine forgets an entry, or schedules its next attempt,
//!   only on [`Input::Persisted`]. One exception is deliberate: a delivery is
//!   announced *before* its commit, because the receipt proves the recipient's node
//!   committed the message — that is "delivered", whatever our bookkeeping. Should
//!   the commit be lost, the message goes out again and the recipient deduplicates.
//! - A write that fails ([`Input::PersistFailed`]) is asked again after a backoff;
//!   the entry waits meanwhile (an outcome once decided is not re-attempted).
//!
//! The enums here are exhaustive on purpose (unlike the crate's other public enums):
//! a driver must carry out every output and answer every write, and the compiler
//! should tell it when one is added.
//!
//! # What survives a crash
//!
//! Exactly the outbox rows: each [`Entry`] as the sender inserted it, updated by
//! every write this machine asked for and the store acknowledged. Rebuild with
//! [`Outbox::restore`]. Lost, by design: the device cache and the peer map (the
//! next attempt looks up again), attempts in flight (they go out again; receivers
//! deduplicate), writes asked but not acknowledged (a delivery whose commit was lost
//! is sent again; a failed attempt not recorded is attempted sooner), and the
//! backoff of failed writes.

pub mod devices;
mod schedule;
#[cfg(test)]
mod tests;

use std::time::Duration;

use communitas_types::{Address, MessageId, Timestamp};

pub use devices::{DEVICE_TTL, Devices, MAX_DEVICES, MAX_RECIPIENTS};
pub use schedule::Outbox;

/// One queued message, as its outbox row holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The message.
    pub id: MessageId,
    /// To whom.
    pub recipient: Address,
    /// The sealed envelope, sent as is by every attempt (the machine never reads it).
    pub envelope: Vec<u8>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When to try next.
    pub next_attempt_at: Timestamp,
    /// When it was queued.
    pub created_at: Timestamp,
    /// When to give up.
    pub expires_at: Timestamp,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// A control message (a receipt), not one the user sent: no status, no counter.
    pub control: bool,
}

/// A message's status, as the user sees it (only for messages that are not control).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for another attempt.
    Queued,
    /// Not delivered yet, but left in the recipient's mailboxes.
    Stored,
    /// The recipient's node committed it.
    Delivered,
    /// Given up: a dead letter.
    Failed,
}

/// How one attempt ended, as the driver's delivery task reports it.
///
/// `looked_up` is the device list the attempt resolved, or `None` if it used the
/// devices the machine handed it. The error and reason texts are what the outbox
/// row and the dead letter record, for the user to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<P, D> {
    /// A device's receipt says its node committed the message.
    Delivered {
        /// What the attempt resolved.
        looked_up: Option<Devices<P, D>>,
    },
    /// No device took it, but the recipient's mailboxes did.
    Stored {
        /// Why no device took it.
        error: String,
        /// What the attempt resolved.
        looked_up: Option<Devices<P, D>>,
    },
    /// Neither a device nor a mailbox took it.
    Retry {
        /// What failed.
        error: String,
        /// What the attempt resolved.
        looked_up: Option<Devices<P, D>>,
    },
    /// A device refused it for good: retrying cannot help.
    Reject {
        /// Why.
        reason: String,
    },
}

/// Everything that happens to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<P, D> {
    /// A message was queued (its row is on disk), or re-queued from dead letters.
    Enqueue(Entry),
    /// An end-to-end receipt says this message arrived (and the store already took it
    /// out of the outbox): stop trying.
    Delivered(MessageId),
    /// A write found no outbox row for this message: something else (a receipt) took
    /// it out meanwhile. Forget it.
    Gone(MessageId),
    /// A connection to this device opened.
    PeerOnline(P),
    /// A lookup elsewhere found these devices for `address`.
    Learned {
        /// Whose.
        address: Address,
        /// Where.
        devices: Devices<P, D>,
    },
    /// An [`Output::Attempt`] ended.
    AttemptDone {
        /// The message.
        id: MessageId,
        /// How.
        outcome: Outcome<P, D>,
    },
    /// The driver sealed this message again (a new session with its recipient) and
    /// stored the new envelope in its row: later attempts send this one.
    Resealed {
        /// The message.
        id: MessageId,
        /// Its new envelope.
        envelope: Vec<u8>,
    },
    /// The [`Output::Persist`] asked for this message is on disk.
    Persisted(MessageId),
    /// The [`Output::Persist`] asked for this message failed.
    PersistFailed(MessageId),
    /// Time passed (an [`Output::WakeAt`] came due).
    Tick,
}

/// A write the machine asks for; it acts on the answer ([`Input::Persisted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// The message was delivered: take it out of the outbox, status delivered.
    Delivered(MessageId),
    /// An attempt failed: count it, note the next due time and why, set the status.
    Attempt {
        /// The message.
        id: MessageId,
        /// Failed attempts so far.
        attempts: u32,
        /// When to try next.
        next_attempt_at: Timestamp,
        /// What failed.
        error: String,
        /// [`Status::Queued`] or [`Status::Stored`].
        status: Status,
    },
    /// Give up: move the row to dead letters, status failed.
    DeadLetter {
        /// The message.
        id: MessageId,
        /// Why, for the user.
        reason: String,
    },
}

impl Write {
    /// The message written.
    pub fn id(&self) -> MessageId {
        match self {
            Self::Delivered(id) | Self::Attempt { id, .. } | Self::DeadLetter { id, .. } => *id,
        }
    }
}

/// A counter the driver keeps (the node's metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// One of the user's messages was delivered, this long after it was queued.
    Delivered {
        /// Queued to delivered.
        latency: Duration,
    },
    /// One of the user's messages became a dead letter.
    Failed,
    /// An entry left the outbox (the outbox's depth is one less).
    Left,
}

/// Everything the outbox wants done, in the order it must be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<P, D> {
    /// Start one delivery attempt; report it as [`Input::AttemptDone`].
    Attempt {
        /// What to send, to whom.
        entry: Entry,
        /// Devices to dial without a lookup, if the cache trusts some.
        devices: Option<Devices<P, D>>,
    },
    /// Write this; answer [`Input::Persisted`] or [`Input::PersistFailed`] (or
    /// [`Input::Gone`] if the row is no longer there).
    Persist(Write),
    /// Tell the user a message's status changed (never for control messages).
    Status {
        /// The message.
        id: MessageId,
        /// Its recipient.
        to: Address,
        /// The new status.
        status: Status,
    },
    /// A message was left in mailboxes (a file it offers may now be fetched from
    /// there).
    Stored(MessageId),
    /// Move a counter.
    Metric(Metric),
    /// Feed [`Input::Tick`] at this time. Each `handle` ends with at most one; none
    /// means no timer is needed (anything running will report back).
    WakeAt(Timestamp),
}
