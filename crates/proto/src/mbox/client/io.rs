//! The mailbox client's inputs and outputs: what happens to it (timers, wake-ups, the
//! holders found, their answers, what acceptance made of an envelope) and what it
//! wants done (look holders up, send requests, open envelopes, send receipts).

use communitas_crypto::PublicIdentity;
use communitas_types::{Address, MessageId, Timestamp};

use crate::mbox::{MboxRequest, MboxResponse};

/// Identifies one request to a holder; the machine picks it and the driver repeats it
/// with the answer. An answer whose id the machine no longer waits for (its deadline
/// passed, or its round is over) is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A request got no answer: the transport failed, the peer is unreachable, or the
/// connection dropped. (The deadline is the machine's own: see
/// [`Config::request_deadline`](super::Config::request_deadline).)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoAnswer;

/// What acceptance (the same as for direct messages) made of a fetched envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Acceptance {
    /// Stored now, or it was already (a duplicate): acknowledge it at every holder.
    Accepted {
        /// A new text that came through a mailbox: its sender gets a "delivered"
        /// receipt when the round is over.
        receipt: Option<Delivered>,
    },
    /// Refused for good (not ours, forged, stale): acknowledge it too, so that the
    /// holders drop it.
    Rejected,
    /// Could not be stored now: left at the holders (not acknowledged) for a later
    /// round.
    Busy,
}

/// A new text whose sender is owed a "delivered" receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The sender's address.
    pub from: Address,
    /// The sender's public identity (the receipt is sealed to it; boxed: it is
    /// large, and most inputs carry none).
    pub keys: Box<PublicIdentity>,
    /// The message.
    pub id: MessageId,
}

/// What happens to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input<P> {
    /// A timer asked for by [`Output::WakeAt`] fired, or the driver started (the first
    /// input, whatever it is, is the client's start).
    Tick,
    /// A server told us mail is waiting (`notify`), or a user asked: look now, or
    /// again right after the round under way.
    Wake,
    /// The answer to [`Output::FindHolders`]: the server nodes nearest our mailbox,
    /// nearest first, as the network lookup found them.
    Holders(Vec<P>),
    /// An early answer to [`Output::FindHolders`], before [`Input::Holders`]: the
    /// nearest server nodes the routing table knows now. The round starts with them
    /// at once; the lookup's answer, when it comes, adds the ones it finds as spares.
    /// (A lookup waits for every peer it asks, so one hung peer holds it for the
    /// transport's timeout; the mail must not wait for that.)
    Nearby(Vec<P>),
    /// [`Output::FindHolders`] failed.
    LookupFailed,
    /// A holder answered a [`Output::Send`], or could not.
    Answer {
        /// The request's id.
        request_id: RequestId,
        /// The answer.
        answer: Result<MboxResponse, NoAnswer>,
    },
    /// An [`Output::Accept`] finished.
    Accepted {
        /// The envelope's hash, as in the output.
        hash: [u8; 32],
        /// What acceptance made of it.
        acceptance: Acceptance,
    },
}

/// A counter the node exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Metric {
    /// A holder gave us an envelope this round already accepted from another (it is
    /// acknowledged there, not opened again).
    Duplicate,
}

/// What the client wants done, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output<P> {
    /// Look up the server nodes nearest our mailbox; answer with [`Input::Holders`]
    /// or [`Input::LookupFailed`], and, if the driver knows some at once, first with
    /// [`Input::Nearby`].
    FindHolders,
    /// Send a request to a holder; answer with [`Input::Answer`] and the same id.
    Send {
        /// The holder.
        holder: P,
        /// Repeated in the answer.
        request_id: RequestId,
        /// The request.
        request: MboxRequest,
    },
    /// Run a fetched envelope through acceptance; answer with [`Input::Accepted`].
    /// Many may be out at once: each is checked on its own, in any order.
    Accept {
        /// Its hash, as the holder gave it.
        hash: [u8; 32],
        /// The sealed envelope.
        envelope: Vec<u8>,
    },
    /// Queue a "delivered" receipt to a sender for these messages (after the round;
    /// one output per sender).
    Receipts {
        /// The sender's address.
        to: Address,
        /// The sender's public identity (boxed: it is large).
        keys: Box<PublicIdentity>,
        /// The messages, in the order they were accepted.
        ids: Vec<MessageId>,
    },
    /// Count this.
    Count(Metric),
    /// A round is over: this many holders answered to the end.
    RoundDone {
        /// Holders that served the whole round.
        answered: usize,
    },
    /// Feed [`Input::Tick`] at this time (it replaces any earlier one).
    WakeAt(Timestamp),
}
