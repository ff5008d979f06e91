//! Inbound acceptance (ARCHITECTURE §4, §6; docs/protocol.md §3, §7): what a node does
//! with an envelope that reached it, directly or from a mailbox, and what the sender
//! hears back.
//!
//! This module owns the rules: opening ([`open`]: mailbox, decryption, signature,
//! recipient), the freshness window ([`is_fresh`]), routing by payload kind
//! ([`decide`]), replay (a seen id is remembered for [`MESSAGE_TTL`]), and the answer
//! ([`Answer`]). The node's `inbound` driver owns the I/O: the sender's address (from
//! the contacts, or derived and pinned on first contact — the costly Argon2
//! derivation is CPU work the driver schedules), the store's transactions, the events.
//!
//! # Shape: a plan, then a reply only from the commit
//!
//! One envelope is a straight line with two waits (the sender's address and the
//! commit), and nothing of it outlives the envelope: replay state is the store's
//! seen-id table, not memory. So instead of a long-lived machine with `handle`, the
//! rules are a consuming plan:
//!
//! ```text
//! open(bytes) → Opened → decide(&opened, now) → Plan
//!   Plan::Record(r)  → driver: sender's address, (file row), seen id + message in ONE
//!                      transaction → r.committed(Inserted) → Reply (answer, show?, …)
//!   Plan::Receipt(r) → driver: sender's address, seen id → r.committed(Inserted)
//!                      → Reply (apply the receipt if new, then answer)
//!   Plan::Presence   → driver: the sender is a contact? → heard(&opened, now) → Body
//!                      → the presence driver (never stored, no seen id)
//!   Plan::Ignore     → answered `Delivered`, nothing stored (a newer version's kind)
//! ```
//!
//! "Commit, then answer" is then a matter of types: a [`Reply`], and so the
//! `Delivered` answer to a message, exists only as the result of `committed`, which
//! takes the [`Inserted`] that only the store's commit returns, and consumes the plan,
//! so a message cannot be answered twice or before it is on disk. A failure on the
//! way is a [`Busy`] refusal (the sender retries), never a rejection.

use std::time::Duration;

use communitas_crypto::{Envelope, Identity, Kind, OpenError, Opened};
use communitas_types::{DecodeError, Timestamp};

use crate::file::Manifest;
use crate::presence::{self, Body, Update};
use crate::receipts::Receipt;

/// How long a message is kept trying, and how long its id is remembered
/// (ARCHITECTURE §6): 30 days. An envelope older than this is refused, so that a replay
/// can never outlive the seen id that would catch it.
pub const MESSAGE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How far ahead of ours a sender's clock may be (ARCHITECTURE §4): 5 minutes.
pub const MAX_CLOCK_AHEAD: Duration = Duration::from_secs(5 * 60);

/// What the sender hears: the code of the `/communitas/msg/1` response. Through a
/// mailbox, `Delivered` and `Rejected` remove the envelope there and `Busy` leaves it
/// for the next round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// Committed (or already there): the sender marks it delivered.
    Delivered,
    /// Not now: the sender retries with backoff.
    Busy,
    /// Never: the sender gives up on it.
    Rejected(Rejection),
}

/// Why an envelope is refused for good, as the wire says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Not addressed to this identity.
    WrongRecipient,
    /// Malformed, undecryptable, badly signed, or a body that does not decode.
    Invalid,
    /// Timestamp outside the accepted window.
    Stale,
    /// A session message that no session of ours opens: the sender should start
    /// a new session and seal it again (issue 14 item 6).
    NoSession,
    /// A first contact without the proof of work strangers owe (issue 15 item 4).
    NoWork,
}

/// An envelope refused for good, and why (for logs; the sender hears a [`Rejection`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// The envelope does not parse.
    #[error("malformed envelope: {0}")]
    Malformed(DecodeError),
    /// It does not open: another mailbox or recipient, tampered, badly signed.
    #[error("{0}")]
    Unopened(OpenError),
    /// Older than [`MESSAGE_TTL`] or more than [`MAX_CLOCK_AHEAD`] ahead.
    #[error("timestamp outside the accepted window")]
    Stale,
    /// A file message whose manifest does not decode.
    #[error("malformed file manifest: {0}")]
    BadManifest(DecodeError),
    /// A receipt whose body does not decode.
    #[error("bad receipt: {0}")]
    BadReceipt(DecodeError),
    /// Presence or typing from someone who is not a contact.
    #[error("presence from someone who is not a contact")]
    NotAContact,
    /// A presence update older than the presence window.
    #[error("an old presence update")]
    OldPresence,
    /// A presence body that does not decode.
    #[error("bad presence body: {0}")]
    BadPresence(DecodeError),
    /// A typing body that does not decode.
    #[error("bad typing body: {0}")]
    BadTyping(DecodeError),
    /// Keys other than the pinned ones claim a contact's (or a request's) address:
    /// someone imitating it (issue 15). Never stored under that address.
    #[error("other keys claim a pinned address")]
    Impersonating,
    /// A version-2 envelope that no session of ours opens, or whose contents are bad.
    #[error("session message refused: {0}")]
    Session(SessionRejected),
    /// Keys never seen, without a valid first-contact proof of work: nothing is
    /// derived for them (issue 15 item 4, decision 0062).
    #[error("a first contact without proof of work")]
    NoWork,
}

/// Why a version-2 (session) envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejected {
    /// For another mailbox than ours.
    #[error("for another mailbox")]
    WrongMailbox,
    /// No session of ours opens it (another device's, tampered, or a session this
    /// device no longer has).
    #[error("no session opens it")]
    NoSession,
    /// The session that owns it refused it (tampered body, too many skipped keys…).
    #[error(transparent)]
    Decrypt(crate::session::DecryptError),
    /// An initial message that does not start a session.
    #[error(transparent)]
    Accept(crate::session::AcceptError),
    /// An initial message naming prekeys this device does not have (or no longer).
    #[error(transparent)]
    Prekeys(crate::session::prekeys::PrekeyLookupError),
    /// The letter inside does not decode.
    #[error("bad letter: {0}")]
    Letter(DecodeError),
    /// A new session whose first letter does not say who is calling.
    #[error("a new session without an intro")]
    NoIntro,
    /// The intro is not a valid identity record.
    #[error("bad intro: {0}")]
    Intro(communitas_crypto::record::RecordError),
    /// The intro's record does not list the device the handshake authenticated.
    #[error("the intro does not list the handshake's device")]
    IntroDevice,
}

impl Rejected {
    /// The reason the sender is told.
    pub fn rejection(&self) -> Rejection {
        match self {
            Rejected::Unopened(OpenError::WrongMailbox | OpenError::WrongRecipient)
            | Rejected::Session(SessionRejected::WrongMailbox) => Rejection::WrongRecipient,
            Rejected::Stale | Rejected::OldPresence => Rejection::Stale,
            Rejected::Session(SessionRejected::NoSession) => Rejection::NoSession,
            Rejected::NoWork => Rejection::NoWork,
            _ => Rejection::Invalid,
        }
    }
}

/// What the driver could not do now; the sender is told [`Answer::Busy`] and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Busy {
    /// The store failed or is closing (the driver logs its error).
    #[error("cannot store now")]
    Store,
    /// Too many new senders' addresses are being derived at once.
    #[error("too many new senders at once")]
    NewSenders,
    /// The node is stopping.
    #[error("shutting down")]
    ShuttingDown,
    /// The presence driver's inbox is full.
    #[error("presence is behind")]
    Presence,
}

/// Why an envelope was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// For good.
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// For now.
    #[error(transparent)]
    Busy(#[from] Busy),
}

impl Refusal {
    /// What the sender hears.
    pub fn answer(&self) -> Answer {
        match self {
            Refusal::Rejected(why) => Answer::Rejected(why.rejection()),
            Refusal::Busy(_) => Answer::Busy,
        }
    }
}

/// Opens envelope bytes as `me`: parse, mailbox, decryption, signature, recipient.
pub fn open(bytes: &[u8], me: &Identity) -> Result<Opened, Rejected> {
    let envelope = Envelope::from_bytes(bytes).map_err(Rejected::Malformed)?;
    envelope.open(me).map_err(Rejected::Unopened)
}

/// Whether a sender's `timestamp` is inside the window at `now`: younger than
/// [`MESSAGE_TTL`] and at most [`MAX_CLOCK_AHEAD`] ahead.
///
/// A message exactly [`MESSAGE_TTL`] old is refused: its seen id is kept until
/// `timestamp + MESSAGE_TTL`, and the store drops ids whose time has come
/// (`expires_at <= now`), so at that very millisecond a replay could find no seen id.
pub fn is_fresh(timestamp: Timestamp, now: Timestamp) -> bool {
    now.saturating_sub(MESSAGE_TTL) < timestamp && timestamp <= now.saturating_add(MAX_CLOCK_AHEAD)
}

/// Whether a store write was the first of its seen id (the store's answer to "record
/// the seen id and the message in one transaction").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// First time: stored.
    New,
    /// Seen before: nothing stored.
    Duplicate,
}

/// What to do with an opened letter.
#[derive(Debug)]
#[non_exhaustive]
pub enum Plan {
    /// Text or a file: history. The driver finds the sender's address, records a
    /// file's transfer first (a crash in between leaves a transfer without a message,
    /// harmless; never a message whose file is not fetched), then the seen id and the
    /// message in one transaction, and hands the result to [`Record::committed`].
    Record(Record),
    /// A receipt: the driver finds the sender's address, records the seen id alone,
    /// and hands the result to [`ReceiptPlan::committed`].
    Receipt(ReceiptPlan),
    /// Presence or typing: to the presence driver, which hears contacts only. Never
    /// stored and without a seen id (each update carries its own freshness).
    Presence,
    /// A kind this build stores nothing for (system, or a newer version's): answered
    /// [`Answer::Delivered`] so that its sender does not retry (docs/protocol.md §3,
    /// "ignored"), with no address derived and nothing stored.
    Ignore,
}

/// Decides what an opened letter is, at `now`: refuses it if stale or if its body does
/// not decode, else routes it by kind.
pub fn decide(opened: &Opened, now: Timestamp) -> Result<Plan, Rejected> {
    if !is_fresh(opened.timestamp, now) {
        return Err(Rejected::Stale);
    }
    let seen_until = opened.timestamp.saturating_add(MESSAGE_TTL);
    Ok(match opened.kind {
        Kind::Text => Plan::Record(Record { seen_until, file: None }),
        Kind::File => {
            let manifest =
                Manifest::from_bytes(&opened.body, communitas_crypto::envelope::MAX_BODY_LEN)
                    .map_err(Rejected::BadManifest)?;
            Plan::Record(Record { seen_until, file: Some(manifest) })
        }
        Kind::Receipt => {
            let receipt = Receipt::from_bytes(&opened.body).map_err(Rejected::BadReceipt)?;
            Plan::Receipt(ReceiptPlan { seen_until, receipt })
        }
        Kind::Presence | Kind::Typing => Plan::Presence,
        // System, a newer version's kind, and any kind added to the enum later.
        _ => Plan::Ignore,
    })
}

/// Judges a presence or typing update (a [`Plan::Presence`]) at `now`, once the driver
/// found its sender among the contacts (else [`Rejected::NotAContact`]): refused if
/// older than the presence window ([`presence::is_stale`]) or if its body does not
/// decode, else its body for the presence machine.
pub fn heard(opened: &Opened, now: Timestamp) -> Result<Body, Rejected> {
    if presence::is_stale(opened.timestamp, now) {
        return Err(Rejected::OldPresence);
    }
    match opened.kind {
        Kind::Presence => {
            Body::decode(Update::Presence, &opened.body).map_err(Rejected::BadPresence)
        }
        _ => Body::decode(Update::Typing, &opened.body).map_err(Rejected::BadTyping),
    }
}

/// A text or file letter on its way into history.
#[derive(Debug)]
pub struct Record {
    seen_until: Timestamp,
    file: Option<Manifest>,
}

impl Record {
    /// Until when its seen id is kept: its timestamp plus [`MESSAGE_TTL`].
    pub fn seen_until(&self) -> Timestamp {
        self.seen_until
    }

    /// The file it carries, if it is a file message.
    pub fn file(&self) -> Option<&Manifest> {
        self.file.as_ref()
    }

    /// The text shown for it: a file's caption, else the body as UTF-8.
    pub fn text(&self, body: &[u8]) -> String {
        match &self.file {
            Some(manifest) => manifest.caption.clone(),
            None => String::from_utf8_lossy(body).into_owned(),
        }
    }

    /// The seen id and the message are committed (or the id was seen before).
    pub fn committed(self, inserted: Inserted) -> Reply {
        // A duplicate is answered `Delivered` too — its sender missed our first answer
        // and would otherwise retry for the whole TTL — but shown only once.
        Reply {
            answer: Answer::Delivered,
            show: inserted == Inserted::New,
            acknowledge: true,
            apply: None,
        }
    }
}

/// A receipt letter on its way to being applied.
#[derive(Debug)]
pub struct ReceiptPlan {
    seen_until: Timestamp,
    receipt: Receipt,
}

impl ReceiptPlan {
    /// Until when its seen id is kept.
    pub fn seen_until(&self) -> Timestamp {
        self.seen_until
    }

    /// The receipt it carries.
    pub fn receipt(&self) -> &Receipt {
        &self.receipt
    }

    /// The seen id is committed (or was seen before).
    pub fn committed(self, inserted: Inserted) -> Reply {
        Reply {
            answer: Answer::Delivered,
            show: false,
            // A receipt is never acknowledged by a receipt: that would never end.
            acknowledge: false,
            // A replayed receipt was applied the first time.
            apply: (inserted == Inserted::New).then_some(self.receipt),
        }
    }
}

/// What follows a commit, in order: apply, show, then answer (and acknowledge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// A receipt to carry out ([`Receipt::steps`]) before answering; if that fails,
    /// the answer is [`Answer::Busy`] instead.
    pub apply: Option<Receipt>,
    /// A new message: one event for the UI, counted as received. False for a
    /// duplicate, which was shown the first time.
    pub show: bool,
    /// What the sender hears.
    pub answer: Answer,
    /// Whether the sender should also get a delivery receipt letter when there is no
    /// response to carry the answer (the envelope came from a mailbox).
    pub acknowledge: bool,
}

#[cfg(test)]
mod tests;
