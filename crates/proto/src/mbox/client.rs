//! The mailbox client (ARCHITECTURE §6, issue 13 points 1 and 6) as a sans-IO
//! machine: when a node looks in its mailboxes, whom it asks, and how one round over
//! the holders goes. The driver looks holders up, sends the requests, runs acceptance
//! and queues receipts; this machine decides all of it.
//!
//! # Pacing
//!
//! The first round starts [`FIRST_LOOK`] after start; then one every
//! [`FETCH_EVERY`], at once when a server says mail is waiting ([`Input::Wake`]; during
//! a round, right after it), and every [`JOINING_RETRY`] while no holder has answered
//! yet in the first [`JOINING`] (the node is still joining the network). A failed
//! lookup is retried after [`RETRY_AFTER_ERROR`].
//!
//! # A round
//!
//! Of the server nodes nearest the mailbox (at most 2 × R, R = [`REPLICAS`]), R are
//! asked **at once** — from the routing table's nearest ([`Input::Nearby`]) if the
//! driver has them, without waiting for the lookup, whose answer adds spares — each walked through challenge → fetch → ack, again while it had
//! more. Every request has a deadline ([`REQUEST_DEADLINE`]): a holder that does not
//! answer by then, refuses (`NotServer`, ...) or fails is dropped for this round and
//! the next spare candidate is asked instead, so a dead holder costs the round one
//! deadline, not a transport timeout, and delays nobody else.
//!
//! The same envelope waits at up to R holders. The round opens each envelope once
//! (the first holder to bring it hands it to acceptance; a holder that brings it
//! while it is being opened waits for the verdict) and acknowledges it at every
//! holder. A holder asked after others already accepted envelopes fetches one
//! envelope first (it opens the session acks need), acknowledges all of them at once,
//! then fetches the rest. Acks go out in chunks of [`MAX_ACK`](crate::mbox::MAX_ACK).
//! An envelope acceptance could not store now (busy) is not acknowledged anywhere:
//! it stays for a later round. The fetch signature is built by
//! [`fetch_signed_bytes`](crate::mbox::fetch_signed_bytes), the one copy.
//!
//! # Message flow
//!
//! ```text
//! Tick / Wake ──────────────▶ FindHolders
//! Nearby / Holders(peers) ──▶ Send{holder, Challenge} × R, WakeAt(deadline)
//! Answer{Nonce} ────────────▶ Send{holder, Fetch}
//! Answer{Envelopes} ────────▶ Accept{hash, envelope}… (new ones only), Count(Duplicate)
//! Accepted{hash, verdict} ──▶ Send{holder, Ack}… (once a fetch is all decided)
//! Answer{Acked} ────────────▶ Send{holder, Challenge} (more?) | holder done
//! Tick past a deadline ─────▶ holder dropped, Send{spare, Challenge}
//! last holder done ─────────▶ Receipts{to, ids}…, RoundDone{answered}, WakeAt(next)
//! ```

mod io;
mod round;
#[cfg(test)]
mod tests;

use std::time::Duration;

use communitas_crypto::{Identity, PublicIdentity};
use communitas_types::Timestamp;

pub use io::{Acceptance, Delivered, Input, Metric, NoAnswer, Output, RequestId};
use round::{Io, Owner, Round};

/// Copies of each envelope: the R closest server nodes (ARCHITECTURE §6).
pub const REPLICAS: usize = 5;
/// Candidates looked at per round: R, and as many spares.
pub const CANDIDATES: usize = 2 * REPLICAS;
/// How long a holder has to answer one request before it is dropped for the round.
/// A live holder answers a challenge in a round trip and a 4 MiB fetch in well under
/// a second on any link we serve; a dead one never does, and the catch-up budget
/// (issue 13: all mail within 2 s of start) leaves room for about one such wait.
pub const REQUEST_DEADLINE: Duration = Duration::from_millis(1500);
/// The first round, this long after start (the node has dialled its bootstrap).
pub const FIRST_LOOK: Duration = Duration::from_millis(200);
/// How long after start a node with no holder answering yet keeps looking often.
pub const JOINING: Duration = Duration::from_secs(30);
/// How often it looks while joining.
pub const JOINING_RETRY: Duration = Duration::from_millis(500);
/// How often a running node looks in its mailboxes without being told.
pub const FETCH_EVERY: Duration = Duration::from_secs(15);
/// The next look after a failed lookup.
pub const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);
/// Bytes asked for per fetch: as much as a server answers.
pub const FETCH_BYTES: u32 = super::server::MAX_FETCH_BYTES;
/// One-time prekeys of each kind an owner keeps deposited per device at each of its
/// mailbox servers (decision 0064); it tops up when a server holds fewer than half.
pub const PREKEYS_TARGET: u32 = 20;

/// How many one-time prekeys of each kind to deposit at a server that holds `dh` and
/// `kem` of ours: none while both are at least half [`PREKEYS_TARGET`], else enough to
/// bring the emptier kind back to it.
pub fn prekeys_wanted(dh: u32, kem: u32) -> usize {
    let low = dh.min(kem);
    if low >= PREKEYS_TARGET / 2 {
        return 0;
    }
    usize::try_from(PREKEYS_TARGET - low).unwrap_or(0)
}
/// Fetches from one holder in one round at most: 64 × 4 MiB is more than a mailbox
/// holds, and a holder that keeps handing out fresh junk cannot keep the round going.
pub const MAX_FETCHES: usize = 64;

/// The client's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Holders that serve a round (see [`REPLICAS`]).
    pub replicas: usize,
    /// Candidates per round (see [`CANDIDATES`]).
    pub candidates: usize,
    /// See [`REQUEST_DEADLINE`].
    pub request_deadline: Duration,
    /// See [`FETCH_BYTES`].
    pub fetch_bytes: u32,
    /// See [`FIRST_LOOK`].
    pub first_look: Duration,
    /// See [`JOINING`].
    pub joining: Duration,
    /// See [`JOINING_RETRY`].
    pub joining_retry: Duration,
    /// How often to look (see [`FETCH_EVERY`]).
    pub every: Duration,
    /// See [`RETRY_AFTER_ERROR`].
    pub retry_after_error: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            replicas: REPLICAS,
            candidates: CANDIDATES,
            request_deadline: REQUEST_DEADLINE,
            fetch_bytes: FETCH_BYTES,
            first_look: FIRST_LOOK,
            joining: JOINING,
            joining_retry: JOINING_RETRY,
            every: FETCH_EVERY,
            retry_after_error: RETRY_AFTER_ERROR,
        }
    }
}

/// Signs the fetch proof with the mailbox owner's identity. The machine holds the
/// signer, never the key: the node's signer borrows its identity from the keystore.
pub trait Sign {
    /// The identity's Ed25519 signature over `message`.
    fn sign(&self, message: &[u8]) -> [u8; 64];
}

impl Sign for Identity {
    fn sign(&self, message: &[u8]) -> [u8; 64] {
        Identity::sign(self, message)
    }
}

impl<T: Sign + ?Sized> Sign for std::sync::Arc<T> {
    fn sign(&self, message: &[u8]) -> [u8; 64] {
        (**self).sign(message)
    }
}

#[derive(Debug)]
enum Phase<P> {
    /// Between rounds; the next is due at `at` (`None`: not started).
    Idle { at: Option<Timestamp> },
    /// The holders are being looked up.
    Finding,
    /// A round is under way; `looking`: it started from [`Input::Nearby`] and the
    /// lookup has not answered yet.
    Fetching { round: Round<P>, looking: bool },
}

/// The mailbox client machine (see the module docs). `P` is a peer: the transport's
/// id, whose binary form the fetch signature covers.
#[derive(Debug)]
pub struct Client<P, S> {
    config: Config,
    me: P,
    owner: Owner<S>,
    started: Option<Timestamp>,
    phase: Phase<P>,
    /// A wake-up came during a round: look again right after it.
    again: bool,
    next_id: u64,
    /// The last [`Output::WakeAt`] given.
    wake: Option<Timestamp>,
    out: Vec<Output<P>>,
}

impl<P: Copy + PartialEq + Into<Vec<u8>>, S: Sign> Client<P, S> {
    /// The client of device `me` for `identity`'s mailbox, signing with `signer`.
    pub fn new(config: Config, me: P, identity: &PublicIdentity, signer: S) -> Self {
        let owner = Owner {
            signer,
            me: me.into(),
            identity: identity.to_bytes(),
            mailbox: identity.mailbox_id(),
        };
        Self {
            config,
            me,
            owner,
            started: None,
            phase: Phase::Idle { at: None },
            again: false,
            next_id: 0,
            wake: None,
            out: Vec::new(),
        }
    }

    /// Whether a round is under way (holders being looked up or asked).
    pub fn in_round(&self) -> bool {
        !matches!(self.phase, Phase::Idle { .. })
    }

    /// Handles one input at `now`; returns what to do, in order.
    pub fn handle(
        &mut self,
        input: Input<P>,
        now: Timestamp,
    ) -> impl Iterator<Item = Output<P>> + use<'_, P, S> {
        let started = *self.started.get_or_insert(now);
        if let Phase::Idle { at: at @ None } = &mut self.phase {
            *at = Some(started.saturating_add(self.config.first_look));
        }
        match input {
            Input::Tick => self.tick(now),
            Input::Wake => match self.phase {
                Phase::Idle { .. } => self.begin(),
                _ => self.again = true,
            },
            Input::Holders(peers) => match &mut self.phase {
                Phase::Finding => self.start(peers, false, now),
                Phase::Fetching { looking: looking @ true, .. } => {
                    *looking = false;
                    let (me, most) = (self.me, self.config.candidates);
                    self.with_round(now, |round, io| {
                        round.more(peers.into_iter().filter(|p| *p != me), most);
                        round.fill(io);
                    });
                }
                _ => {}
            },
            Input::Nearby(peers) => {
                if let Phase::Finding = self.phase
                    && peers.iter().any(|p| *p != self.me)
                {
                    self.start(peers, true, now);
                }
            }
            Input::LookupFailed => match &mut self.phase {
                Phase::Finding => {
                    let at = now.saturating_add(self.config.retry_after_error);
                    self.phase = Phase::Idle { at: Some(at) };
                }
                Phase::Fetching { looking, .. } => *looking = false,
                Phase::Idle { .. } => {}
            },
            Input::Answer { request_id, answer } => {
                self.with_round(now, |round, io| round.answer(request_id, answer, io));
            }
            Input::Accepted { hash, acceptance } => {
                self.with_round(now, |round, io| round.accepted(hash, acceptance, io));
            }
        }
        // Over when nothing is out, unless fewer than R answered and the lookup may
        // still bring more holders.
        if let Phase::Fetching { round, looking } = &self.phase
            && round.is_over()
            && !(*looking && round.answered() < self.config.replicas)
        {
            self.finish(now, started);
        }
        self.timer();
        self.out.drain(..)
    }

    fn tick(&mut self, now: Timestamp) {
        // A tick is the timer firing: the wake-up asked for is spent (even one that
        // fired early by the driver's clock), so the next due time is asked again.
        self.wake = None;
        match self.phase {
            Phase::Idle { at: Some(at) } if at <= now => self.begin(),
            Phase::Fetching { .. } => self.with_round(now, |round, io| round.tick(io)),
            _ => {}
        }
    }

    fn begin(&mut self) {
        self.phase = Phase::Finding;
        self.again = false;
        self.out.push(Output::FindHolders);
    }

    /// A round over `peers` (nearest first), asking the first R at once.
    fn start(&mut self, peers: Vec<P>, looking: bool, now: Timestamp) {
        let me = self.me;
        let peers = peers.into_iter().filter(|p| *p != me);
        let round = Round::new(peers.take(self.config.candidates).collect());
        self.phase = Phase::Fetching { round, looking };
        self.with_round(now, |round, io| round.fill(io));
    }

    fn with_round(&mut self, now: Timestamp, f: impl FnOnce(&mut Round<P>, &mut Io<'_, P, S>)) {
        let Phase::Fetching { round, .. } = &mut self.phase else { return };
        let mut io = Io {
            owner: &self.owner,
            config: &self.config,
            out: &mut self.out,
            next_id: &mut self.next_id,
            now,
        };
        f(round, &mut io);
    }

    /// The round is over: receipts, the count, and when to look next.
    fn finish(&mut self, now: Timestamp, started: Timestamp) {
        let Phase::Fetching { mut round, .. } =
            std::mem::replace(&mut self.phase, Phase::Idle { at: None })
        else {
            return;
        };
        round.receipts(&mut self.out);
        let answered = round.answered();
        self.out.push(Output::RoundDone { answered });
        if self.again {
            return self.begin();
        }
        let joining = now < started.saturating_add(self.config.joining);
        let wait =
            if answered == 0 && joining { self.config.joining_retry } else { self.config.every };
        self.phase = Phase::Idle { at: Some(now.saturating_add(wait)) };
    }

    /// Asks for the next tick when it changed: the next round, or the next deadline.
    fn timer(&mut self) {
        let due = match &self.phase {
            Phase::Idle { at } => *at,
            Phase::Finding => None,
            Phase::Fetching { round, .. } => round.next_deadline(),
        };
        if due.is_some() && due != self.wake {
            self.wake = due;
            if let Some(at) = due {
                self.out.push(Output::WakeAt(at));
            }
        }
    }
}
