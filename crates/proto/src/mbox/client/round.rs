//! One fetch round: up to R holders asked at once, each walked through challenge →
//! fetch → ack (→ challenge again while it had more), with one shared view of what the
//! round has opened, so that an envelope waiting at five holders is opened once.

use std::collections::{BTreeSet, VecDeque};

use communitas_crypto::PublicIdentity;
use communitas_types::{Address, MailboxId, MessageId, Timestamp};

use super::io::{Acceptance, Metric, NoAnswer, Output, RequestId};
use super::{Config, MAX_FETCHES, Sign};
use crate::mbox::{MAX_ACK, MboxRequest, MboxResponse, fetch_signed_bytes};

/// Who fetches: what the fetch request carries and signs.
#[derive(Debug)]
pub(super) struct Owner<S> {
    pub(super) signer: S,
    /// Our device's peer id in its binary form (the signature covers it).
    pub(super) me: Vec<u8>,
    /// Our public identity's bytes.
    pub(super) identity: Vec<u8>,
    pub(super) mailbox: MailboxId,
}

/// What the round's steps need from the client around it.
pub(super) struct Io<'a, P, S> {
    pub(super) owner: &'a Owner<S>,
    pub(super) config: &'a Config,
    pub(super) out: &'a mut Vec<Output<P>>,
    pub(super) next_id: &'a mut u64,
    pub(super) now: Timestamp,
}

/// The request a holder has out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Challenge,
    Fetch,
    /// Acks still to send after this one, and whether to fetch again after them.
    Ack {
        rest: Vec<Vec<[u8; 32]>>,
        again: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// A request is out, to be answered by `deadline`.
    Asking { request_id: RequestId, deadline: Timestamp, step: Step },
    /// The last fetch's envelopes are being opened (for this holder or another).
    Opening { list: Vec<[u8; 32]> },
    /// Served the round to the end.
    Done,
    /// Not a server, refused, failed or too slow: out of this round.
    Dropped,
}

#[derive(Debug)]
struct Holder<P> {
    peer: P,
    state: State,
    /// Hashes acknowledged here this round.
    acked: BTreeSet<[u8; 32]>,
    fetches: usize,
}

/// The round (see the module docs of [`super`]).
#[derive(Debug)]
pub(super) struct Round<P> {
    spare: VecDeque<P>,
    holders: Vec<Holder<P>>,
    /// Envelopes accepted or refused for good this round, in that order: to be
    /// acknowledged at every holder.
    ackable: Vec<[u8; 32]>,
    ackable_set: BTreeSet<[u8; 32]>,
    /// Envelopes acceptance could not store now: left at every holder.
    busy: BTreeSet<[u8; 32]>,
    /// Envelopes out for acceptance.
    opening: BTreeSet<[u8; 32]>,
    /// Receipts owed, by sender, in the order the senders came.
    receipts: Vec<(Address, Box<PublicIdentity>, Vec<MessageId>)>,
}

impl<P: Copy + Into<Vec<u8>>> Round<P> {
    /// A round over `candidates`, nearest first (already without ourselves, at most
    /// the configured number).
    pub(super) fn new(candidates: Vec<P>) -> Self {
        Self {
            spare: candidates.into(),
            holders: Vec::new(),
            ackable: Vec::new(),
            ackable_set: BTreeSet::new(),
            busy: BTreeSet::new(),
            opening: BTreeSet::new(),
            receipts: Vec::new(),
        }
    }

    /// Adds candidates the lookup found (nearest first) as spares: those not asked or
    /// waiting already, up to `most` candidates in all.
    pub(super) fn more(&mut self, peers: impl Iterator<Item = P>, most: usize)
    where
        P: PartialEq,
    {
        for peer in peers {
            if self.holders.len() + self.spare.len() >= most {
                break;
            }
            if !self.spare.contains(&peer) && !self.holders.iter().any(|h| h.peer == peer) {
                self.spare.push_back(peer);
            }
        }
    }

    fn active(&self) -> usize {
        let active =
            |h: &&Holder<P>| matches!(h.state, State::Asking { .. } | State::Opening { .. });
        self.holders.iter().filter(active).count()
    }

    /// Holders that served the whole round.
    pub(super) fn answered(&self) -> usize {
        self.holders.iter().filter(|h| h.state == State::Done).count()
    }

    /// Nothing is out: every holder asked is done or dropped, and no spare is left to
    /// ask (or R answered).
    pub(super) fn is_over(&self) -> bool {
        self.active() == 0
    }

    /// The earliest deadline of a request out.
    pub(super) fn next_deadline(&self) -> Option<Timestamp> {
        self.holders
            .iter()
            .filter_map(|h| match h.state {
                State::Asking { deadline, .. } => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// Asks spare candidates until R holders are busy or done, or none is left.
    pub(super) fn fill<S: Sign>(&mut self, io: &mut Io<'_, P, S>) {
        while self.active() + self.answered() < io.config.replicas {
            let Some(peer) = self.spare.pop_front() else { break };
            let holder = Holder { peer, state: State::Dropped, acked: BTreeSet::new(), fetches: 0 };
            self.holders.push(holder);
            let at = self.holders.len() - 1;
            let challenge = MboxRequest::Challenge { mailbox: io.owner.mailbox };
            self.ask(at, Step::Challenge, challenge, io);
        }
    }

    fn ask<S>(&mut self, at: usize, step: Step, request: MboxRequest, io: &mut Io<'_, P, S>) {
        let Some(holder) = self.holders.get_mut(at) else { return };
        let request_id = RequestId(*io.next_id);
        *io.next_id += 1;
        let deadline = io.now.saturating_add(io.config.request_deadline);
        holder.state = State::Asking { request_id, deadline, step };
        io.out.push(Output::Send { holder: holder.peer, request_id, request });
    }

    /// Drops the holders whose request is past its deadline, and asks spares instead.
    pub(super) fn tick<S: Sign>(&mut self, io: &mut Io<'_, P, S>) {
        for holder in &mut self.holders {
            if matches!(holder.state, State::Asking { deadline, .. } if deadline <= io.now) {
                holder.state = State::Dropped;
            }
        }
        self.fill(io);
    }

    /// A holder's answer (ignored unless it is for the request that holder has out).
    pub(super) fn answer<S: Sign>(
        &mut self,
        request_id: RequestId,
        answer: Result<MboxResponse, NoAnswer>,
        io: &mut Io<'_, P, S>,
    ) {
        let at = self.holders.iter().position(
            |h| matches!(&h.state, State::Asking { request_id: id, .. } if *id == request_id),
        );
        let Some(at) = at else { return };
        let Some(holder) = self.holders.get_mut(at) else { return };
        let State::Asking { step, .. } = std::mem::replace(&mut holder.state, State::Dropped)
        else {
            return;
        };
        match (step, answer) {
            (Step::Challenge, Ok(MboxResponse::Nonce(nonce))) => {
                let server: Vec<u8> = holder.peer.into();
                let owner = io.owner;
                let signed = fetch_signed_bytes(&server, &owner.me, &nonce, &owner.mailbox);
                let signature = owner.signer.sign(&signed);
                // With acks to send here first, a fetch of one envelope opens the session
                // they need, and the next fetch (after them) brings only the rest.
                let first = holder.fetches == 0;
                let max_bytes =
                    if first && !self.ackable.is_empty() { 1 } else { io.config.fetch_bytes };
                holder.fetches += 1;
                let identity = owner.identity.clone();
                let fetch = MboxRequest::Fetch { identity, nonce, signature, max_bytes };
                self.ask(at, Step::Fetch, fetch, io);
            }
            (Step::Fetch, Ok(MboxResponse::Envelopes(list))) => {
                if list.is_empty() {
                    holder.state = State::Done;
                } else {
                    let hashes = list.iter().map(|(hash, _)| *hash).collect();
                    holder.state = State::Opening { list: hashes };
                    self.open(list, io);
                    self.acknowledge(at, io);
                }
            }
            (Step::Ack { mut rest, again }, Ok(_)) => {
                if let Some(next) = rest.pop() {
                    let ack = MboxRequest::Ack { mailbox: io.owner.mailbox, hashes: next };
                    self.ask(at, Step::Ack { rest, again }, ack, io);
                } else if again && holder.fetches < MAX_FETCHES {
                    let challenge = MboxRequest::Challenge { mailbox: io.owner.mailbox };
                    self.ask(at, Step::Challenge, challenge, io);
                } else {
                    holder.state = State::Done;
                }
            }
            // Not a server, refused, an unexpected answer or none: out of this round.
            _ => {}
        }
        self.fill(io);
    }

    /// Hands out for acceptance what no holder of this round brought before.
    fn open<S>(&mut self, list: Vec<([u8; 32], Vec<u8>)>, io: &mut Io<'_, P, S>) {
        for (hash, envelope) in list {
            if self.ackable_set.contains(&hash) || self.opening.contains(&hash) {
                io.out.push(Output::Count(Metric::Duplicate));
            } else if !self.busy.contains(&hash) {
                self.opening.insert(hash);
                io.out.push(Output::Accept { hash, envelope });
            }
        }
    }

    /// What acceptance made of an envelope; holders waiting for it acknowledge.
    pub(super) fn accepted<S: Sign>(
        &mut self,
        hash: [u8; 32],
        acceptance: Acceptance,
        io: &mut Io<'_, P, S>,
    ) {
        if !self.opening.remove(&hash) {
            return;
        }
        match acceptance {
            Acceptance::Accepted { receipt } => {
                self.ackable.push(hash);
                self.ackable_set.insert(hash);
                if let Some(r) = receipt {
                    match self.receipts.iter_mut().find(|(from, _, _)| *from == r.from) {
                        Some((_, _, ids)) => ids.push(r.id),
                        None => self.receipts.push((r.from, r.keys, vec![r.id])),
                    }
                }
            }
            Acceptance::Rejected => {
                self.ackable.push(hash);
                self.ackable_set.insert(hash);
            }
            Acceptance::Busy => {
                self.busy.insert(hash);
            }
        }
        for at in 0..self.holders.len() {
            self.acknowledge(at, io);
        }
        self.fill(io);
    }

    /// A holder whose last fetch is all decided acknowledges everything the round
    /// may acknowledge that it has not yet, in chunks of [`MAX_ACK`]; then it
    /// fetches again if it gave nothing that stays (busy), or is done.
    fn acknowledge<S>(&mut self, at: usize, io: &mut Io<'_, P, S>) {
        let Some(holder) = self.holders.get_mut(at) else { return };
        let State::Opening { list } = &holder.state else { return };
        if list.iter().any(|h| self.opening.contains(h)) {
            return;
        }
        let again = list.iter().all(|h| self.ackable_set.contains(h));
        let fresh: Vec<[u8; 32]> =
            self.ackable.iter().filter(|h| !holder.acked.contains(*h)).copied().collect();
        holder.acked.extend(fresh.iter().copied());
        // Last chunk first in the stack: they go out in order.
        let mut chunks: Vec<Vec<[u8; 32]>> = fresh.chunks(MAX_ACK).map(<[_]>::to_vec).collect();
        chunks.reverse();
        match chunks.pop() {
            Some(first) => {
                let ack = MboxRequest::Ack { mailbox: io.owner.mailbox, hashes: first };
                self.ask(at, Step::Ack { rest: chunks, again }, ack, io);
            }
            // Nothing new to acknowledge: what it gave was acked here already (a
            // holder that keeps handing it out), or stays; either way, done here.
            None => holder.state = State::Done,
        }
    }

    /// The receipts owed, one output per sender.
    pub(super) fn receipts(&mut self, out: &mut Vec<Output<P>>) {
        for (to, keys, ids) in self.receipts.drain(..) {
            out.push(Output::Receipts { to, keys, ids });
        }
    }
}
