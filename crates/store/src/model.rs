//! The rows the store hands out and takes in.

use std::fmt;
use std::str::FromStr;

use communitas_crypto::PublicIdentity;
use communitas_types::{Address, Fingerprint, MessageId, Timestamp};

/// The local identity, as recorded in the database (the keys live in the keystore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRow {
    /// Own address.
    pub address: Address,
    /// Own fingerprint.
    pub fingerprint: Fingerprint,
    /// Display name.
    pub name: Option<String>,
    /// When the identity was created.
    pub created_at: Timestamp,
}

/// A contact with pinned keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Their address.
    pub address: Address,
    /// What the user calls them.
    pub name: Option<String>,
    /// Their keys, pinned on first contact.
    pub identity: PublicIdentity,
    /// Whether the safety number was compared.
    pub verified: bool,
    /// When they were added.
    pub added_at: Timestamp,
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received.
    In,
    /// Sent.
    Out,
}

impl Direction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self, crate::Error> {
        match text {
            "in" => Ok(Direction::In),
            "out" => Ok(Direction::Out),
            _ => Err(crate::Error::Corrupt { field: "direction" }),
        }
    }
}

/// Where a message is on its way (ARCHITECTURE §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Durably queued, not yet handed to the network.
    Queued,
    /// Handed to the recipient's device.
    Sent,
    /// Left in the recipient's mailboxes.
    Stored,
    /// The recipient's node committed it.
    Delivered,
    /// The recipient read it.
    Read,
    /// Gave up (see dead letters).
    Failed,
}

impl Status {
    /// The name used in the API and CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Sent => "sent",
            Status::Stored => "stored",
            Status::Delivered => "delivered",
            Status::Read => "read",
            Status::Failed => "failed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "queued" => Status::Queued,
            "sent" => Status::Sent,
            "stored" => Status::Stored,
            "delivered" => Status::Delivered,
            "read" => Status::Read,
            "failed" => Status::Failed,
            _ => return Err(crate::Error::Corrupt { field: "status" }),
        })
    }
}

/// A message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The sender's id for it.
    pub id: MessageId,
    /// The other party.
    pub peer: Address,
    /// Which way.
    pub direction: Direction,
    /// Wire kind number (`communitas_crypto::Kind`).
    pub kind: u8,
    /// Plaintext body; sealed before it reaches the file.
    pub body: Vec<u8>,
    /// The sender's clock.
    pub timestamp: Timestamp,
    /// Initial status.
    pub status: Status,
    /// Where it sorts in its conversation.
    pub place: Place,
}

/// Where a message sorts in its conversation (`communitas_proto::order`, decision
/// 0061): history is listed by `position`, then by arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Place {
    /// The sort key: the conversation clock, then the author.
    pub position: i64,
    /// The conversation clock it was written (or, without a stamp, read) at.
    pub clock: u64,
    /// The author's count of its messages in the conversation, if it carried one.
    pub n: Option<u64>,
}

/// Where a page of history ends, for asking the page before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// The message's position.
    pub position: i64,
    /// Its arrival (ties in position).
    pub seq: i64,
}

/// A conversation at a glance: what the contact list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Who it is with.
    pub peer: Address,
    /// Incoming messages the user has not read.
    pub unread: u64,
    /// The newest message's time (the sender's clock for incoming ones).
    pub last_at: Timestamp,
}

/// A stored message, body decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its row; increases with arrival.
    pub seq: i64,
    /// The message.
    pub message: NewMessage,
    /// When it was stored (our clock).
    pub stored_at: Timestamp,
}

impl StoredMessage {
    /// The cursor for the page before this message.
    pub fn cursor(&self) -> Cursor {
        Cursor { position: self.message.place.position, seq: self.seq }
    }
}

/// A message waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The message.
    pub message_id: MessageId,
    /// To whom.
    pub recipient: Address,
    /// The sealed envelope, ready to send again.
    pub envelope: Vec<u8>,
    /// Attempts so far.
    pub attempts: u32,
    /// When to try next.
    pub next_attempt_at: Timestamp,
    /// When it was queued.
    pub created_at: Timestamp,
    /// When to give up.
    pub expires_at: Timestamp,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// Whether an incoming message was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored.
    New,
    /// `(sender, id)` was seen before: nothing stored.
    Duplicate,
}

/// A message that could not be delivered before its time ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message.
    pub message_id: MessageId,
    /// To whom.
    pub recipient: Address,
    /// Attempts made.
    pub attempts: u32,
    /// Why it failed.
    pub reason: String,
    /// When it was given up.
    pub failed_at: Timestamp,
}
