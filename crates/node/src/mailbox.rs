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
//! mailbox id; `fetcher` collects our own mail at start, when a server notifies us
//! that mail is waiting (servers notify owners that fetched from them lately), and
//! periodically; it feeds
//! each envelope through the same acceptance as direct messages, acknowledges, and
//! sends end-to-end receipts to the senders.

mod client;
mod server;

use std::time::Duration;

use communitas_net::MboxResponder;
use communitas_net::libp2p::PeerId;
use communitas_net::mbox::MboxRequest;
use communitas_store::MailboxLimits;
use communitas_types::MailboxId;

pub(crate) use client::{deposit, fetcher};
pub(crate) use server::serve;

/// Copies of each envelope: the R closest server nodes (ARCHITECTURE §6).
pub(crate) const REPLICAS: usize = 5;
/// Default quotas per recipient and per sending peer.
pub(crate) const LIMITS: MailboxLimits = MailboxLimits {
    max_envelopes: 10_000,
    max_bytes: 256 * 1024 * 1024,
    max_per_sender: 20_000,
    max_total_bytes: 16 << 30,
};
/// Bytes asked for per fetch: as much as a server answers.
pub(crate) const FETCH_BYTES: u32 = communitas_proto::mbox::server::MAX_FETCH_BYTES;
/// Owner notifications in flight at once.
pub(crate) const MAX_NOTIFYING: usize = 64;
/// Fetched envelopes accepted concurrently.
pub(crate) const ACCEPT_AT_ONCE: usize = 32;
/// How long after start a node keeps looking for mailbox servers every half second.
pub(crate) const JOINING: Duration = Duration::from_secs(30);
/// How often a node looks in its mailboxes while running.
pub(crate) const FETCH_EVERY: Duration = Duration::from_secs(15);

pub(crate) struct Request {
    pub(crate) peer: PeerId,
    pub(crate) request: MboxRequest,
    pub(crate) responder: MboxResponder,
}

pub(crate) fn fetch_signed_bytes(
    server: &PeerId,
    requester: &PeerId,
    nonce: &[u8; 32],
    mailbox: &MailboxId,
) -> Vec<u8> {
    communitas_proto::mbox::fetch_signed_bytes(
        &server.to_bytes(),
        &requester.to_bytes(),
        nonce,
        mailbox,
    )
}
