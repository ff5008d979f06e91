//! Re-replication on a simulated server: the policy of
//! `communitas_proto::mbox::replicate` (the ranking [`Walk`], [`offers`], [`answer`],
//! [`replica`]) driven the way `communitas_node::replicate` drives it — every period,
//! each kept mailbox in turn; for each, the walk over the known servers nearest to
//! it; to each, the offers chunk by chunk, then copies of what it lacks. An offer
//! that gets no answer does not count the peer as a holder (the walk goes further);
//! `NotServer` does not count; anything else does.
//!
//! The node's driver is async code; here it is a small state machine whose steps
//! ([`Do`]) the mailbox node's adapter carries out.

use std::collections::VecDeque;
use std::time::Duration;

use communitas_proto::mbox::replicate::{Answer, Walk, answer, offers, replica};
use communitas_proto::mbox::{MboxRequest, MboxResponse};
use communitas_types::{MailboxId, Timestamp};

use super::fixtures::{closest, dht_key, node_key};
use super::mnode::Write;
use super::world::{NetError, NodeId};

type Hash = [u8; 32];

/// Copies of each envelope (`communitas_node::mailbox::REPLICAS`).
pub const REPLICAS: usize = 5;
/// Candidates a DHT lookup returns (Kademlia's K).
const K: usize = 20;

/// What the replicator wants done.
#[derive(Debug)]
pub enum Do {
    /// A store read (answered through [`Replicator::read_done`]).
    Read(Write),
    /// A request (answered through [`Replicator::answered`]).
    Ask(NodeId, MboxRequest, Step),
    /// A copy was taken by this server.
    Copied(NodeId),
}

/// Which request an answer is for.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// An offer of the current chunk.
    Offer,
    /// A copy.
    Copy,
}

/// A kept mailbox and its hashes, as a round reads them.
type Held = (MailboxId, Vec<Hash>);

struct Current {
    mailbox: MailboxId,
    hashes: Vec<Hash>,
    walk: Walk<NodeId>,
    peer: NodeId,
    chunks: VecDeque<Vec<Hash>>,
    offered: Vec<Hash>,
    copies_waiting: usize,
}

/// One server's re-replication (see the module docs).
pub struct Replicator {
    me: NodeId,
    servers: Vec<NodeId>,
    every: Duration,
    /// A round in progress: the mailboxes still to do, and the current one.
    round: Option<(VecDeque<Held>, Option<Current>)>,
}

impl Replicator {
    /// The replicator of server `me`, which knows `servers`.
    pub fn new(me: NodeId, servers: Vec<NodeId>, every: Duration) -> Self {
        Self { me, servers, every, round: None }
    }

    /// The period.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// The period came: start a round (unless one still runs).
    pub fn start(&mut self, now: Timestamp) -> Vec<Do> {
        if self.round.is_some() {
            return vec![];
        }
        self.round = Some((VecDeque::new(), None));
        vec![Do::Read(Write::Held(now, Vec::new()))]
    }

    /// A read asked for is answered.
    pub fn read_done(&mut self, read: Write, now: Timestamp) -> Vec<Do> {
        match read {
            Write::Held(_, held) => {
                if let Some((queue, _)) = self.round.as_mut() {
                    queue.extend(held);
                }
                self.next_mailbox(now)
            }
            Write::Entries(_, _, _, entries) => {
                let Some(c) = self.current() else { return vec![] };
                if entries.is_empty() {
                    return self.next_chunk(now);
                }
                c.copies_waiting = entries.len();
                let peer = c.peer;
                entries
                    .into_iter()
                    .map(|(envelope, expires_at)| {
                        Do::Ask(peer, replica(expires_at, envelope), Step::Copy)
                    })
                    .collect()
            }
            Write::Store(..) | Write::Accept { .. } => vec![],
        }
    }

    /// A request's answer (or its failure) came.
    pub fn answered(
        &mut self,
        step: Step,
        result: Result<MboxResponse, NetError>,
        now: Timestamp,
    ) -> Vec<Do> {
        let Some(c) = self.current() else { return vec![] };
        match step {
            Step::Offer => match result.map(|r| answer(&c.offered, r)) {
                // No answer: not counted; the walk goes further.
                Err(_) | Ok(Answer::NotServer) => self.next_peer(now),
                Ok(Answer::Wants(wanted)) if wanted.is_empty() => self.next_chunk(now),
                Ok(Answer::Wants(wanted)) => {
                    vec![Do::Read(Write::Entries(c.mailbox, wanted, now, Vec::new()))]
                }
                Ok(_) => {
                    c.walk.holds();
                    self.next_peer(now)
                }
            },
            Step::Copy => {
                c.copies_waiting = c.copies_waiting.saturating_sub(1);
                let mut out = Vec::new();
                if matches!(result, Ok(MboxResponse::Stored)) {
                    out.push(Do::Copied(c.peer));
                }
                if c.copies_waiting == 0 {
                    out.extend(self.next_chunk(now));
                }
                out
            }
        }
    }

    fn current(&mut self) -> Option<&mut Current> {
        self.round.as_mut().and_then(|(_, c)| c.as_mut())
    }

    /// The next chunk to offer to the current peer, or, when all are offered, the
    /// peer counts and the walk goes on.
    fn next_chunk(&mut self, now: Timestamp) -> Vec<Do> {
        let Some(c) = self.current() else { return vec![] };
        match c.chunks.pop_front() {
            Some(chunk) => {
                let request = MboxRequest::Offer { mailbox: c.mailbox, hashes: chunk.clone() };
                c.offered = chunk;
                vec![Do::Ask(c.peer, request, Step::Offer)]
            }
            None => {
                c.walk.holds();
                self.next_peer(now)
            }
        }
    }

    fn next_peer(&mut self, now: Timestamp) -> Vec<Do> {
        let Some(c) = self.current() else { return vec![] };
        match c.walk.next() {
            Some(peer) => {
                c.peer = peer;
                c.chunks = offers(c.mailbox, &c.hashes).map(|(chunk, _)| chunk.to_vec()).collect();
                self.next_chunk(now)
            }
            None => self.next_mailbox(now),
        }
    }

    fn next_mailbox(&mut self, now: Timestamp) -> Vec<Do> {
        let Some((queue, current)) = self.round.as_mut() else { return vec![] };
        let Some((mailbox, hashes)) = queue.pop_front() else {
            self.round = None;
            return vec![];
        };
        let candidates = closest(mailbox, &self.servers, K).into_iter().map(|s| (s, node_key(s)));
        let walk = Walk::new(
            dht_key(mailbox.as_bytes()),
            (self.me, node_key(self.me)),
            candidates,
            REPLICAS,
        );
        *current = Some(Current {
            mailbox,
            hashes,
            walk,
            peer: self.me,
            chunks: VecDeque::new(),
            offered: Vec::new(),
            copies_waiting: 0,
        });
        self.next_peer(now)
    }
}
