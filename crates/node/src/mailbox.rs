//! Mailboxes (ARCHITECTURE §6): the server side that keeps sealed envelopes for
//! offline recipients, and the client side that deposits and fetches them.
//!
//! Server: the rules are the machine `communitas_proto::mbox::server` (nonces, sessions,
//! put rules, answers, owner notifications, the expiry sweep); `server` drives it.
//! Envelopes live in the store (SQLite), so a restarted server still has them; the
//! store deduplicates puts by the envelope's BLAKE3 hash and holds them to quotas per
//! mailbox and per sending peer. Only the owner can fetch or acknowledge.
//!
//! Client: `deposit` puts an envelope at the R closest server nodes to the recipient's
//! mailbox id; `fetcher` drives the machine `communitas_proto::mbox::client`, which
//! collects our own mail at start, when a server notifies us that mail is waiting
//! (servers notify owners that fetched from them lately), and periodically, asking
//! the holders at once; the driver feeds each envelope through the same acceptance as
//! direct messages, and queues end-to-end receipts to the senders.

mod client;
mod server;

use std::time::Duration;

use communitas_net::MboxResponder;
use communitas_net::libp2p::PeerId;
use communitas_net::mbox::MboxRequest;
use communitas_store::{HeldLimits, MailboxLimits};

pub(crate) use client::{deposit, fetcher};
pub(crate) use server::serve;

/// Copies of each envelope: the R closest server nodes (ARCHITECTURE §6).
pub(crate) const REPLICAS: usize = communitas_proto::mbox::client::REPLICAS;
/// Default quotas per recipient and per sending peer (decision 0044): a sender may
/// hold a tenth of any one mailbox, a holder's copies half of it.
pub(crate) const LIMITS: MailboxLimits = MailboxLimits {
    max_envelopes: 10_000,
    max_bytes: 256 * 1024 * 1024,
    max_per_sender: 20_000,
    max_per_sender_in_mailbox: 1_000,
    max_replicas_per_peer: 100_000,
    max_replicas_per_peer_in_mailbox: 5_000,
    max_total_bytes: 16 << 30,
};
/// One-time prekeys a server holds (decision 0064): an owner tops each of its
/// devices up to [`communitas_proto::mbox::client::PREKEYS_TARGET`] of each kind;
/// the server takes up to twice that, for four devices per mailbox, and 1 GiB in all
/// (about 40,000 devices at the target: 20 × (102 + 1,254) bytes each).
pub(crate) const HELD: HeldLimits =
    HeldLimits { per_kind: 40, devices_per_mailbox: 4, max_total_bytes: 1 << 30 };
/// Owner notifications in flight at once.
pub(crate) const MAX_NOTIFYING: usize = 64;
/// Fetched envelopes accepted concurrently.
pub(crate) const ACCEPT_AT_ONCE: usize = 32;
/// How often a node looks in its mailboxes while running.
pub(crate) const FETCH_EVERY: Duration = communitas_proto::mbox::client::FETCH_EVERY;

pub(crate) struct Request {
    pub(crate) peer: PeerId,
    pub(crate) request: MboxRequest,
    pub(crate) responder: MboxResponder,
}
