//! The mailbox server (ARCHITECTURE §6, decisions 0010 and 0020) as a sans-IO machine:
//! every rule a server node applies to `/communitas/mbox/1` requests, and none of the
//! I/O. The envelopes themselves live in the store; the store enforces the quotas (per
//! mailbox, per sending peer, over all mailboxes) and keeps the tombstones of acked
//! envelopes. This machine decides what to ask of the store and what to answer.
//!
//! # What it owns
//!
//! - **Challenge nonces**: a fresh random nonce per `challenge`, good **once**, for
//!   [`NONCE_TTL`] (60 s), for the peer and mailbox it was issued to.
//! - **Fetch sessions**: a `fetch` proven with a nonce and the owner's signature (over
//!   [`fetch_signed_bytes`]) opens a session of that peer for that mailbox for
//!   [`SESSION_TTL`] (600 s); acks are taken only inside one.
//! - **Owner notifications**: when a put for a mailbox is kept, the owners with a live
//!   session here (likely online) are told (`Notify`), at most [`NOTIFY_PER_PUT`].
//! - **The expiry sweep**: every [`SWEEP_EVERY`] (600 s) the store drops expired
//!   envelopes and tombstones.
//!
//! # Bounds: what a peer can make the server hold
//!
//! Per peer at most [`NONCES_PER_PEER`] nonces and [`SESSIONS_PER_PEER`] sessions
//! (a new one pushes out that peer's own oldest); in all at most [`MAX_PENDING`] of
//! each (when full, the oldest tenth is dropped, not everybody's). Every entry dies
//! after its TTL. Envelopes are held by the store within its quotas; the store work in
//! flight is bounded by the driver, which stops reading requests when it is full. The
//! machine keeps nothing per request in flight: a finished store task brings back what
//! the machine needs to answer.
//!
//! # Message flow
//!
//! ```text
//! Request{peer, request_id, request} ─▶ checks here ─▶ Respond{request_id, ..}
//!                                                   └▶ Store(Work{request_id, ..})
//! StoreDone{request_id, outcome} ──────▶ Respond{request_id, ..}, Notify{owner, ..},
//!                                        Count(metric)
//! Tick ────────────────────────────────▶ Store(Expire{now}), WakeAt(next sweep)
//! ```
//!
//! A `notify` from another server for our own mailbox comes out as `WakeFetcher`.
//! Every node runs this machine; one that is not a server answers `NotServer` to all
//! but `notify`.

mod io;
mod table;
#[cfg(test)]
mod tests;

use std::time::Duration;

use communitas_crypto::PublicIdentity;
use communitas_crypto::prekey::{OneTimeKey, OneTimePrekey};
use communitas_types::{MailboxId, Timestamp};

use super::{MboxRequest, MboxResponse, Refusal, fetch_signed_bytes};
use crate::Random;
pub use io::{HeldPrekey, Input, Metric, Outcome, Output, PutOutcome, RequestId, Work};
use table::Table;

/// A challenge's nonce is good this long, once.
pub const NONCE_TTL: Duration = Duration::from_secs(60);
/// After a proven fetch, acks from that peer for that mailbox are taken this long.
pub const SESSION_TTL: Duration = Duration::from_secs(600);
/// Outstanding nonces, and sessions, kept in all; beyond, the oldest tenth goes.
pub const MAX_PENDING: usize = 10_000;
/// Outstanding nonces one peer may have (an owner asks for one or two mailboxes): a
/// peer asking for many cannot push everybody else's out.
pub const NONCES_PER_PEER: usize = 8;
/// Live sessions one peer may have (one per mailbox it owns and fetched lately).
pub const SESSIONS_PER_PEER: usize = 8;
/// The most a fetch answers, in envelope bytes (about; the store stops after the
/// envelope that crosses it).
pub const MAX_FETCH_BYTES: u32 = 4 * 1024 * 1024;
/// Owners told about one kept put (the most recent sessions first).
pub const NOTIFY_PER_PUT: usize = 8;
/// How often expired envelopes and tombstones are swept.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// How long a put is kept: the message TTL (ARCHITECTURE §6).
pub const ENVELOPE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a deposited one-time prekey is held unclaimed: the owner tops its
/// deposits up well within it, and a device gone for longer leaves nothing behind.
pub const PREKEY_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The server's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Whether this node keeps mailboxes; if not, it answers `NotServer`.
    pub serving: bool,
    /// How long a put is kept (a replica: at most until its original's expiry).
    pub envelope_ttl: Duration,
    /// See [`NONCE_TTL`].
    pub nonce_ttl: Duration,
    /// See [`SESSION_TTL`].
    pub session_ttl: Duration,
    /// See [`MAX_PENDING`].
    pub max_pending: usize,
    /// See [`NONCES_PER_PEER`].
    pub nonces_per_peer: usize,
    /// See [`SESSIONS_PER_PEER`].
    pub sessions_per_peer: usize,
    /// See [`MAX_FETCH_BYTES`].
    pub max_fetch_bytes: u32,
    /// See [`NOTIFY_PER_PUT`].
    pub notify_per_put: usize,
    /// See [`SWEEP_EVERY`].
    pub sweep_every: Duration,
    /// See [`PREKEY_TTL`].
    pub prekey_ttl: Duration,
}

impl Config {
    /// The defaults above; `serving` says whether this node keeps mailboxes.
    pub const fn new(serving: bool) -> Self {
        Self {
            serving,
            envelope_ttl: ENVELOPE_TTL,
            nonce_ttl: NONCE_TTL,
            session_ttl: SESSION_TTL,
            max_pending: MAX_PENDING,
            nonces_per_peer: NONCES_PER_PEER,
            sessions_per_peer: SESSIONS_PER_PEER,
            max_fetch_bytes: MAX_FETCH_BYTES,
            notify_per_put: NOTIFY_PER_PUT,
            sweep_every: SWEEP_EVERY,
            prekey_ttl: PREKEY_TTL,
        }
    }
}

/// The mailbox server machine (see the module docs). `P` is a peer: the transport's
/// authenticated id, whose binary form the fetch signature covers.
#[derive(Debug)]
pub struct Server<P> {
    config: Config,
    /// Our own peer id in its binary form, for the fetch signature.
    me: Vec<u8>,
    own_mailbox: MailboxId,
    nonces: Table<P, [u8; 32]>,
    sessions: Table<P, ()>,
    /// When the next sweep is due; `None` before the first tick (due at once).
    next_sweep: Option<Timestamp>,
    out: Vec<Output<P>>,
}

impl<P: Copy + Ord + Into<Vec<u8>>> Server<P> {
    /// A server running as `me`, whose own identity owns `own_mailbox`.
    pub fn new(config: Config, me: P, own_mailbox: MailboxId) -> Self {
        Self {
            me: me.into(),
            own_mailbox,
            nonces: Table::new(config.nonce_ttl, config.nonces_per_peer, config.max_pending),
            sessions: Table::new(config.session_ttl, config.sessions_per_peer, config.max_pending),
            next_sweep: None,
            out: Vec::new(),
            config,
        }
    }

    /// Nonces and sessions held now (live or not yet pruned), for tests and metrics.
    pub fn pending(&self) -> (usize, usize) {
        (self.nonces.len(), self.sessions.len())
    }

    /// Handles one input at `now`; returns what to do, in order.
    pub fn handle<'a, R: Random>(
        &'a mut self,
        input: Input<P>,
        now: Timestamp,
        rng: &mut R,
    ) -> impl Iterator<Item = Output<P>> + use<'a, P, R> {
        match input {
            Input::Request { peer, request_id, request } => {
                self.request(peer, request_id, request, now, rng);
            }
            Input::StoreDone { request_id, outcome } => self.done(request_id, outcome, now),
            Input::Tick => self.tick(now),
        }
        self.out.drain(..)
    }

    fn respond(&mut self, request_id: RequestId, response: MboxResponse) {
        self.out.push(Output::Respond { request_id, response });
    }

    fn refuse(&mut self, request_id: RequestId, why: Refusal) {
        self.respond(request_id, MboxResponse::Refused(why));
    }

    fn request(
        &mut self,
        peer: P,
        request_id: RequestId,
        request: MboxRequest,
        now: Timestamp,
        rng: &mut impl Random,
    ) {
        if let MboxRequest::Notify { mailbox } = request {
            // Any node: mail waits for us somewhere. It only prompts an authenticated
            // fetch, so anyone may send it (the dispatcher rate-limits it).
            if mailbox == self.own_mailbox {
                self.out.push(Output::WakeFetcher);
            }
            return self.respond(request_id, MboxResponse::Acked(0));
        }
        if !self.config.serving {
            return self.refuse(request_id, Refusal::NotServer);
        }
        match request {
            MboxRequest::Put { envelope } => self.put(peer, request_id, envelope, None, now),
            MboxRequest::Replicate { expires_at, envelope } => {
                let until = Some(Timestamp::from_millis(expires_at));
                self.put(peer, request_id, envelope, until, now);
            }
            // The offer's mailbox is not needed: the store answers by hash.
            MboxRequest::Offer { hashes, .. } => {
                self.out.push(Output::Store(Work::Wanted { request_id, hashes }));
            }
            MboxRequest::Challenge { mailbox } => {
                let nonce: [u8; 32] = rng.bytes();
                self.nonces.insert(peer, mailbox, nonce, now);
                self.respond(request_id, MboxResponse::Nonce(nonce));
            }
            MboxRequest::Fetch { identity, nonce, signature, max_bytes } => {
                self.fetch(peer, request_id, &identity, nonce, &signature, max_bytes, now);
            }
            MboxRequest::Ack { mailbox, hashes } => {
                if self.sessions.get(peer, mailbox, now).is_some() {
                    self.out.push(Output::Store(Work::Ack { request_id, mailbox, hashes }));
                } else {
                    self.refuse(request_id, Refusal::Unauthorized);
                }
            }
            MboxRequest::Deposit { mailbox, device, prekeys } => {
                self.deposit(peer, request_id, mailbox, device, &prekeys, now);
            }
            MboxRequest::Claim { mailbox, device } => {
                self.out.push(Output::Store(Work::Claim { request_id, mailbox, device, now }));
            }
            _ => self.refuse(request_id, Refusal::Invalid),
        }
    }

    /// A put, or a replica that must not outlive `until` (its original's expiry), so
    /// that bouncing between holders never extends an envelope's life.
    fn put(
        &mut self,
        sender: P,
        request_id: RequestId,
        envelope: Vec<u8>,
        until: Option<Timestamp>,
        now: Timestamp,
    ) {
        // Either envelope version; a direct (version 2) one names no mailbox.
        let Ok(mailbox) = crate::session::letter::mailbox_of(&envelope) else {
            return self.refuse(request_id, Refusal::Invalid);
        };
        let ours = now.saturating_add(self.config.envelope_ttl);
        let expires_at = until.map_or(ours, |until| until.min(ours));
        if expires_at <= now {
            return self.refuse(request_id, Refusal::Invalid);
        }
        let hash = *blake3::hash(&envelope).as_bytes();
        let replica = until.is_some();
        let work =
            Work::Put { request_id, hash, mailbox, envelope, sender, replica, now, expires_at };
        self.out.push(Output::Store(work));
    }

    /// Checks the proof of ownership: the identity parses, the nonce is the one issued
    /// to this peer for that identity's mailbox (taken: good once) and still fresh, and
    /// the identity signed the layout binding both peers, the nonce and the mailbox.
    #[allow(clippy::too_many_arguments)]
    fn fetch(
        &mut self,
        peer: P,
        request_id: RequestId,
        identity: &[u8],
        nonce: [u8; 32],
        signature: &[u8; 64],
        max_bytes: u32,
        now: Timestamp,
    ) {
        let Ok(identity) = PublicIdentity::from_bytes(identity) else {
            return self.refuse(request_id, Refusal::Invalid);
        };
        let mailbox = identity.mailbox_id();
        let issued = self.nonces.take(peer, mailbox, now);
        let requester: Vec<u8> = peer.into();
        let signed = fetch_signed_bytes(&self.me, &requester, &nonce, &mailbox);
        if issued != Some(nonce) || !identity.verify(&signed, signature) {
            return self.refuse(request_id, Refusal::Unauthorized);
        }
        self.sessions.insert(peer, mailbox, (), now);
        let max_bytes = usize::try_from(max_bytes.min(self.config.max_fetch_bytes)).unwrap_or(0);
        self.out.push(Output::Store(Work::Fetch { request_id, mailbox, now, max_bytes }));
    }

    /// One-time prekeys from a mailbox's owner: taken only inside its fetch session
    /// (as an ack), and only if every one is signed by the device it is filed under —
    /// one bad key refuses the deposit, so a server never hands out a key its device
    /// did not make.
    fn deposit(
        &mut self,
        peer: P,
        request_id: RequestId,
        mailbox: MailboxId,
        device: [u8; 32],
        prekeys: &[Vec<u8>],
        now: Timestamp,
    ) {
        if self.sessions.get(peer, mailbox, now).is_none() {
            return self.refuse(request_id, Refusal::Unauthorized);
        }
        let mut held = Vec::with_capacity(prekeys.len());
        for bytes in prekeys {
            let Ok(prekey) = OneTimePrekey::from_bytes(bytes, &device) else {
                return self.refuse(request_id, Refusal::Invalid);
            };
            let kind = match prekey.key {
                OneTimeKey::Dh(_) => 1,
                OneTimeKey::Kem(_) => 2,
            };
            held.push(HeldPrekey { kind, id: prekey.id.0, bytes: bytes.clone() });
        }
        let expires_at = now.saturating_add(self.config.prekey_ttl);
        let work = Work::Deposit { request_id, mailbox, device, prekeys: held, now, expires_at };
        self.out.push(Output::Store(work));
    }

    fn done(&mut self, request_id: RequestId, outcome: Outcome, now: Timestamp) {
        let response = match outcome {
            Outcome::Put { mailbox, outcome } => {
                return self.put_done(request_id, mailbox, outcome, now);
            }
            Outcome::Fetched(list) => MboxResponse::Envelopes(list),
            Outcome::Acked(n) => MboxResponse::Acked(u32::try_from(n).unwrap_or(u32::MAX)),
            Outcome::Wanted { hashes, acked } => {
                if acked > 0 {
                    let acked = u64::try_from(acked).unwrap_or(u64::MAX);
                    self.out.push(Output::Count(Metric::AckedRefused(acked)));
                }
                MboxResponse::Wanted(hashes)
            }
            Outcome::Held { dh, kem } => MboxResponse::Held { dh, kem },
            Outcome::HeldFull => {
                self.out.push(Output::Count(Metric::PrekeysFull));
                MboxResponse::Refused(Refusal::MailboxFull)
            }
            Outcome::Claimed(prekeys) => {
                self.out.push(Output::Count(if prekeys.is_empty() {
                    Metric::PrekeysExhausted
                } else {
                    Metric::PrekeysClaimed(u64::try_from(prekeys.len()).unwrap_or(u64::MAX))
                }));
                MboxResponse::Prekeys(prekeys)
            }
            Outcome::Failed => MboxResponse::Refused(Refusal::Unavailable),
        };
        self.respond(request_id, response);
    }

    /// Maps what the store did with a put to the answer; tells the owners with a live
    /// session when the envelope is kept here.
    fn put_done(
        &mut self,
        request_id: RequestId,
        mailbox: MailboxId,
        outcome: PutOutcome,
        now: Timestamp,
    ) {
        let (response, metric) = match outcome {
            PutOutcome::Stored | PutOutcome::AlreadyStored => (MboxResponse::Stored, None),
            // Delivered already: the put's purpose is served, and it is not kept again.
            PutOutcome::AlreadyAcked => (MboxResponse::Stored, Some(Metric::AckedRefused(1))),
            PutOutcome::MailboxFull => {
                (MboxResponse::Refused(Refusal::MailboxFull), Some(Metric::MailboxFull))
            }
            PutOutcome::SenderOverQuota => {
                (MboxResponse::Refused(Refusal::SenderOverQuota), Some(Metric::SenderOverQuota))
            }
            // The sender tries the other holders, as for a full mailbox.
            PutOutcome::ServerFull => {
                (MboxResponse::Refused(Refusal::MailboxFull), Some(Metric::ServerFull))
            }
            PutOutcome::Failed => {
                (MboxResponse::Refused(Refusal::Unavailable), Some(Metric::Unavailable))
            }
        };
        if let Some(metric) = metric {
            self.out.push(Output::Count(metric));
        }
        self.respond(request_id, response);
        if matches!(outcome, PutOutcome::Stored | PutOutcome::AlreadyStored) {
            // Owners that fetched here lately are likely online: tell them.
            for owner in self.sessions.peers_of(mailbox, now, self.config.notify_per_put) {
                self.out.push(Output::Notify { owner, mailbox });
            }
        }
    }

    fn tick(&mut self, now: Timestamp) {
        if !self.config.serving {
            return;
        }
        self.nonces.prune(now);
        self.sessions.prune(now);
        let due = self.next_sweep.is_none_or(|at| now >= at);
        if due {
            self.out.push(Output::Store(Work::Expire { now }));
            self.next_sweep = Some(now.saturating_add(self.config.sweep_every));
        }
        if let Some(at) = self.next_sweep {
            self.out.push(Output::WakeAt(at));
        }
    }
}
