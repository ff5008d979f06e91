//! The mailbox server's inputs and outputs: what happens to it, the store work it
//! asks for and what the store answers, the counters and timers it emits.

use communitas_types::{MailboxId, Timestamp};

use crate::mbox::{MboxRequest, MboxResponse};

/// Identifies one request across the store work it causes; the driver picks it and
/// the machine repeats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What happens to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input<P> {
    /// A request from an authenticated peer (the transport proved `peer`).
    Request {
        /// Who asks.
        peer: P,
        /// Picked by the driver; repeated in the answer and in any store work.
        request_id: RequestId,
        /// The decoded request.
        request: MboxRequest,
    },
    /// Store work asked for by [`Output::Store`] finished.
    StoreDone {
        /// The request it was for.
        request_id: RequestId,
        /// What the store said.
        outcome: Outcome,
    },
    /// A timer asked for by [`Output::WakeAt`] fired (or the driver started).
    Tick,
}

/// What the store did with a put or replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutOutcome {
    /// Kept now.
    Stored,
    /// The same envelope was already kept.
    AlreadyStored,
    /// Its owner already acknowledged it here (a tombstone): not taken back.
    AlreadyAcked,
    /// The mailbox is at its quota.
    MailboxFull,
    /// The sending peer is at its quota.
    SenderOverQuota,
    /// The server keeps as many envelope bytes as it may.
    ServerFull,
    /// The store failed.
    Failed,
}

/// The result of a piece of [`Work`], fed back as [`Input::StoreDone`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A [`Work::Put`] finished; `mailbox` is repeated from it.
    Put {
        /// The mailbox it was for.
        mailbox: MailboxId,
        /// What the store did.
        outcome: PutOutcome,
    },
    /// A [`Work::Fetch`] found these envelopes, with their hashes.
    Fetched(Vec<([u8; 32], Vec<u8>)>),
    /// A [`Work::Ack`] deleted this many envelopes.
    Acked(usize),
    /// A [`Work::Wanted`] answer.
    Wanted {
        /// The offered hashes neither kept nor acknowledged here.
        hashes: Vec<[u8; 32]>,
        /// How many offered hashes their owner already acknowledged here.
        acked: usize,
    },
    /// A [`Work::Deposit`] finished: the device's one-time prekeys held now, by kind.
    Held {
        /// X25519.
        dh: u32,
        /// ML-KEM-768.
        kem: u32,
    },
    /// A [`Work::Deposit`] was refused: the server holds as many prekey bytes as it
    /// may, or the mailbox as many devices.
    HeldFull,
    /// A [`Work::Claim`] handed out these (and deleted them here).
    Claimed(Vec<Vec<u8>>),
    /// A fetch, ack, wanted query, deposit or claim failed in the store.
    Failed,
}

/// A one-time prekey to hold, as the machine checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPrekey {
    /// 1: X25519, 2: ML-KEM-768 (`communitas_crypto::prekey::OneTimeKey`).
    pub kind: u8,
    /// Its id, unique per device and kind.
    pub id: u32,
    /// The signed bytes, handed out as they came.
    pub bytes: Vec<u8>,
}

/// Store work: the driver runs it and feeds back [`Input::StoreDone`] with the same
/// `request_id` (all but [`Work::Expire`], which answers nobody).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Work<P> {
    /// Keep an envelope, within the store's quotas.
    Put {
        /// The request.
        request_id: RequestId,
        /// The envelope's BLAKE3 hash (its key: puts are deduplicated by it).
        hash: [u8; 32],
        /// The recipient's mailbox, from the envelope's header.
        mailbox: MailboxId,
        /// The sealed envelope.
        envelope: Vec<u8>,
        /// The peer that put it (its quota is charged).
        sender: P,
        /// A copy handed over by another holder (`Replicate`), charged to that peer's
        /// replica quota rather than its sender quota.
        replica: bool,
        /// The time of the put.
        now: Timestamp,
        /// When it expires here.
        expires_at: Timestamp,
    },
    /// Read a mailbox's unexpired envelopes, up to about `max_bytes`.
    Fetch {
        /// The request.
        request_id: RequestId,
        /// The proven mailbox.
        mailbox: MailboxId,
        /// The time of the fetch.
        now: Timestamp,
        /// About this many envelope bytes at most.
        max_bytes: usize,
    },
    /// Delete acknowledged envelopes, leaving tombstones.
    Ack {
        /// The request.
        request_id: RequestId,
        /// The mailbox of the session.
        mailbox: MailboxId,
        /// The acknowledged hashes.
        hashes: Vec<[u8; 32]>,
    },
    /// Of these offered hashes, which are neither kept nor acknowledged here.
    Wanted {
        /// The request.
        request_id: RequestId,
        /// The offered hashes.
        hashes: Vec<[u8; 32]>,
    },
    /// Hold a device's one-time prekeys (their signatures checked), within the
    /// store's limits; answer how many of each kind it holds for the device.
    Deposit {
        /// The request.
        request_id: RequestId,
        /// The mailbox of the owner's session.
        mailbox: MailboxId,
        /// The device they are for.
        device: [u8; 32],
        /// The prekeys.
        prekeys: Vec<HeldPrekey>,
        /// The time of the deposit.
        now: Timestamp,
        /// When they are dropped if nobody claimed them.
        expires_at: Timestamp,
    },
    /// Hand out (and delete) the oldest unexpired one-time prekey of each kind held
    /// for the device.
    Claim {
        /// The request.
        request_id: RequestId,
        /// The owner's mailbox.
        mailbox: MailboxId,
        /// The device.
        device: [u8; 32],
        /// The time of the claim.
        now: Timestamp,
    },
    /// Drop expired envelopes, tombstones and one-time prekeys.
    Expire {
        /// The time of the sweep.
        now: Timestamp,
    },
}

/// A counter the node exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Metric {
    /// Envelopes refused, or not wanted, because their owner acknowledged them here.
    AckedRefused(u64),
    /// A put refused: the mailbox is full.
    MailboxFull,
    /// A put refused: the sender is over its quota.
    SenderOverQuota,
    /// A put refused: the server is full.
    ServerFull,
    /// A put refused: the store failed.
    Unavailable,
    /// One-time prekeys handed out by a claim.
    PrekeysClaimed(u64),
    /// A claim found no one-time prekey for the device.
    PrekeysExhausted,
    /// A deposit refused: the server, or the mailbox, holds all it may.
    PrekeysFull,
}

/// What the server wants done, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output<P> {
    /// Answer a request.
    Respond {
        /// The request.
        request_id: RequestId,
        /// The answer.
        response: MboxResponse,
    },
    /// Run store work.
    Store(Work<P>),
    /// Tell `owner` that mail waits in `mailbox` (a `notify` request; best effort).
    Notify {
        /// The owner's device.
        owner: P,
        /// Its mailbox.
        mailbox: MailboxId,
    },
    /// Mail waits for us somewhere: look in our own mailboxes now.
    WakeFetcher,
    /// Count this.
    Count(Metric),
    /// Feed [`Input::Tick`] at this time.
    WakeAt(Timestamp),
}
