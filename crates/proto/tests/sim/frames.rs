//! The framework's own proof: the real `/communitas/mbox/1` frames
//! ([`communitas_proto::mbox`], encoded and decoded at every hop) and the real
//! [`Backoff::DELIVERY`], between three stand-in machines small enough to read at a
//! glance — a depositor that retries puts, a holder, and an owner that fetches and
//! acknowledges — over a lossy link, with all three crashing and restarting.
//!
//! It shows the shape every scenario follows: each role is a sans-IO machine
//! (`handle(input, now, rng) -> Vec<Output>`), a node is the machines it runs, and a
//! few lines of adapter route each machine's outputs onto the world (sends to the
//! network, persists to the disk, wake-ups to the queue) and feed the world's
//! callbacks back in as inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use communitas_proto::Random;
use communitas_proto::backoff::Backoff;
use communitas_proto::mbox::{MboxRequest, MboxResponse, Refusal};
use communitas_types::{MailboxId, Timestamp};

use super::net::Link;
use super::seed::sweep;
use super::world::{Config, Cx, EPOCH, NetError, Node, NodeId, ReqId, World};

type Hash = [u8; 32];

const SENDER: NodeId = NodeId(0);
const HOLDER: NodeId = NodeId(1);
const OWNER: NodeId = NodeId(2);
const MAILBOX: MailboxId = MailboxId::from_bytes([7; 32]);

fn hash(envelope: &[u8]) -> Hash {
    *blake3::hash(envelope).as_bytes()
}

// --- the depositor: puts each envelope until a holder keeps it -------------------

#[derive(Debug)]
enum DepositIn {
    Deposit(Vec<u8>),
    Queued(Hash, Vec<u8>),
    Answer(Hash, Result<MboxResponse, NetError>),
    Removed(Hash),
    Tick,
}

#[derive(Debug)]
enum DepositOut {
    Persist(Write),
    Put(Hash, Vec<u8>),
    WakeAt(Timestamp),
    Accepted(Hash),
    Deposited(Hash),
}

struct Pending {
    envelope: Vec<u8>,
    failures: u32,
    retry_at: Option<Timestamp>,
}

#[derive(Default)]
struct Depositor {
    pending: BTreeMap<Hash, Pending>,
}

impl Depositor {
    fn boot(queued: &BTreeMap<Hash, Vec<u8>>, now: Timestamp) -> (Self, Vec<DepositOut>) {
        let pending = queued
            .iter()
            .map(|(h, e)| (*h, Pending { envelope: e.clone(), failures: 0, retry_at: Some(now) }))
            .collect();
        (Self { pending }, vec![DepositOut::WakeAt(now)])
    }

    fn handle(
        &mut self,
        input: DepositIn,
        now: Timestamp,
        rng: &mut impl Random,
    ) -> Vec<DepositOut> {
        match input {
            DepositIn::Deposit(envelope) => {
                vec![DepositOut::Persist(Write::Queue(hash(&envelope), envelope))]
            }
            DepositIn::Queued(h, envelope) => {
                let out = vec![DepositOut::Accepted(h), DepositOut::Put(h, envelope.clone())];
                self.pending.insert(h, Pending { envelope, failures: 0, retry_at: None });
                out
            }
            DepositIn::Answer(h, Ok(MboxResponse::Stored)) => {
                vec![DepositOut::Persist(Write::Unqueue(h))]
            }
            DepositIn::Answer(h, _) => {
                let Some(p) = self.pending.get_mut(&h) else { return vec![] };
                let at = now.saturating_add(Backoff::DELIVERY.wait(p.failures, rng));
                p.failures += 1;
                p.retry_at = Some(at);
                vec![DepositOut::WakeAt(at)]
            }
            DepositIn::Removed(h) => {
                self.pending.remove(&h);
                vec![DepositOut::Deposited(h)]
            }
            DepositIn::Tick => {
                let mut out = Vec::new();
                for (h, p) in &mut self.pending {
                    match p.retry_at {
                        Some(at) if at <= now => {
                            p.retry_at = None;
                            out.push(DepositOut::Put(*h, p.envelope.clone()));
                        }
                        Some(at) => out.push(DepositOut::WakeAt(at)),
                        None => {}
                    }
                }
                out
            }
        }
    }
}

// --- the holder: keeps envelopes, answers challenges, fetches and acks ------------

#[derive(Debug)]
enum HoldIn {
    Request(ReqId, MboxRequest),
    Committed(Write),
}

#[derive(Debug)]
enum HoldOut {
    Persist(Write),
    Respond(ReqId, MboxResponse),
}

#[derive(Default)]
struct Holder {
    kept: BTreeMap<Hash, Vec<u8>>,
    nonces: BTreeSet<[u8; 32]>,
    /// Answers that wait for a commit: puts for their keep, acks for their drop.
    waiting: BTreeMap<Hash, Vec<ReqId>>,
    acking: Vec<(ReqId, Vec<Hash>)>,
}

impl Holder {
    fn handle(&mut self, input: HoldIn, rng: &mut impl Random) -> Vec<HoldOut> {
        match input {
            HoldIn::Request(id, MboxRequest::Put { envelope }) => {
                let h = hash(&envelope);
                if self.kept.contains_key(&h) {
                    return vec![HoldOut::Respond(id, MboxResponse::Stored)];
                }
                let first = !self.waiting.contains_key(&h);
                self.waiting.entry(h).or_default().push(id);
                if first { vec![HoldOut::Persist(Write::Keep(h, envelope))] } else { vec![] }
            }
            HoldIn::Request(id, MboxRequest::Challenge { .. }) => {
                let nonce = rng.bytes::<32>();
                self.nonces.insert(nonce);
                vec![HoldOut::Respond(id, MboxResponse::Nonce(nonce))]
            }
            HoldIn::Request(id, MboxRequest::Fetch { nonce, .. }) => {
                let answer = if self.nonces.remove(&nonce) {
                    MboxResponse::Envelopes(
                        self.kept.iter().map(|(h, e)| (*h, e.clone())).collect(),
                    )
                } else {
                    MboxResponse::Refused(Refusal::Unauthorized)
                };
                vec![HoldOut::Respond(id, answer)]
            }
            HoldIn::Request(id, MboxRequest::Ack { hashes, .. }) => {
                self.acking.push((id, hashes.clone()));
                vec![HoldOut::Persist(Write::Drop(hashes))]
            }
            HoldIn::Request(id, _) => {
                vec![HoldOut::Respond(id, MboxResponse::Refused(Refusal::Invalid))]
            }
            HoldIn::Committed(Write::Keep(h, envelope)) => {
                self.kept.insert(h, envelope);
                let ids = self.waiting.remove(&h).unwrap_or_default();
                ids.into_iter().map(|id| HoldOut::Respond(id, MboxResponse::Stored)).collect()
            }
            HoldIn::Committed(Write::Drop(hashes)) => {
                let n = hashes.iter().filter(|h| self.kept.remove(*h).is_some()).count();
                let mut out = Vec::new();
                if let Some(i) = self.acking.iter().position(|(_, hs)| *hs == hashes) {
                    let (id, _) = self.acking.remove(i);
                    out.push(HoldOut::Respond(id, MboxResponse::Acked(n as u32)));
                }
                out
            }
            HoldIn::Committed(_) => vec![],
        }
    }
}

// --- the owner: a fetch round every few seconds ----------------------------------

const ROUND_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
enum OwnIn {
    Tick,
    Answer(Result<MboxResponse, NetError>),
    Committed(Hash),
}

#[derive(Debug)]
enum OwnOut {
    Ask(MboxRequest),
    Persist(Write),
    WakeAt(Timestamp),
    Received(Hash),
}

#[derive(Default)]
struct Owner {
    got: BTreeSet<Hash>,
    busy: bool,
    /// This round's fetched hashes, and those still to commit before the ack.
    fetched: Vec<Hash>,
    committing: BTreeSet<Hash>,
}

impl Owner {
    fn handle(&mut self, input: OwnIn, now: Timestamp) -> Vec<OwnOut> {
        match input {
            OwnIn::Tick => {
                let mut out = vec![OwnOut::WakeAt(now.saturating_add(ROUND_EVERY))];
                if !self.busy {
                    self.busy = true;
                    out.push(OwnOut::Ask(MboxRequest::Challenge { mailbox: MAILBOX }));
                }
                out
            }
            OwnIn::Answer(Ok(MboxResponse::Nonce(nonce))) => {
                vec![OwnOut::Ask(MboxRequest::Fetch {
                    identity: vec![0; communitas_crypto::identity::PUBLIC_IDENTITY_LEN],
                    nonce,
                    signature: [0; 64],
                    max_bytes: 1 << 20,
                })]
            }
            OwnIn::Answer(Ok(MboxResponse::Envelopes(list))) if !list.is_empty() => {
                self.fetched = list.iter().map(|(h, _)| *h).collect();
                let mut out = Vec::new();
                for (h, envelope) in list {
                    // The envelope arrived intact (the frame carried its bytes), and is
                    // new: commit it before acknowledging anything.
                    assert_eq!(hash(&envelope), h, "a frame changed an envelope");
                    if !self.got.contains(&h) && self.committing.insert(h) {
                        out.push(OwnOut::Persist(Write::Got(h)));
                    }
                }
                out.extend(self.ack_when_committed());
                out
            }
            OwnIn::Committed(h) => {
                self.committing.remove(&h);
                let mut out = Vec::new();
                if self.got.insert(h) {
                    out.push(OwnOut::Received(h));
                }
                out.extend(self.ack_when_committed());
                out
            }
            // Acked, an empty mailbox, a refusal or no answer: the round is over.
            OwnIn::Answer(_) => {
                self.busy = false;
                vec![]
            }
        }
    }

    fn ack_when_committed(&mut self) -> Option<OwnOut> {
        (self.committing.is_empty() && !self.fetched.is_empty()).then(|| {
            OwnOut::Ask(MboxRequest::Ack {
                mailbox: MAILBOX,
                hashes: std::mem::take(&mut self.fetched),
            })
        })
    }
}

// --- the node: the machines its role runs, and their adapters --------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Sender,
    Holder,
    Owner,
}

#[derive(Debug)]
struct Disk {
    role: Role,
    queued: BTreeMap<Hash, Vec<u8>>,
    kept: BTreeMap<Hash, Vec<u8>>,
    got: BTreeSet<Hash>,
}

#[derive(Debug)]
enum Write {
    Queue(Hash, Vec<u8>),
    Unqueue(Hash),
    Keep(Hash, Vec<u8>),
    Drop(Vec<Hash>),
    Got(Hash),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// The sender's queue holds it: from here on it must arrive.
    Accepted(Hash),
    Deposited(Hash),
    Received(Hash),
}

enum Machine {
    Sender(Depositor, BTreeMap<ReqId, Hash>),
    Holder(Holder),
    Owner(Owner),
}

struct Toy(Machine);

fn route_deposit(outs: Vec<DepositOut>, puts: &mut BTreeMap<ReqId, Hash>, cx: &mut Cx<'_, Toy>) {
    for out in outs {
        match out {
            DepositOut::Persist(w) => cx.persist(w),
            DepositOut::Put(h, envelope) => {
                let id = cx.request(HOLDER, MboxRequest::Put { envelope }.encode());
                puts.insert(id, h);
            }
            DepositOut::WakeAt(at) => cx.wake_at(at, ()),
            DepositOut::Accepted(h) => cx.observe(Event::Accepted(h)),
            DepositOut::Deposited(h) => cx.observe(Event::Deposited(h)),
        }
    }
}

fn route_hold(outs: Vec<HoldOut>, cx: &mut Cx<'_, Toy>) {
    for out in outs {
        match out {
            HoldOut::Persist(w) => cx.persist(w),
            HoldOut::Respond(id, answer) => cx.respond(id, answer.encode()),
        }
    }
}

fn route_own(outs: Vec<OwnOut>, cx: &mut Cx<'_, Toy>) {
    for out in outs {
        match out {
            OwnOut::Ask(request) => {
                cx.request(HOLDER, request.encode());
            }
            OwnOut::Persist(w) => cx.persist(w),
            OwnOut::WakeAt(at) => cx.wake_at(at, ()),
            OwnOut::Received(h) => cx.observe(Event::Received(h)),
        }
    }
}

impl Node for Toy {
    type Msg = Vec<u8>;
    type Timer = ();
    type Write = Write;
    type Disk = Disk;
    type Command = Vec<u8>;
    type Event = Event;

    fn boot(disk: &Disk, cx: &mut Cx<'_, Self>) -> Self {
        match disk.role {
            Role::Sender => {
                let (machine, outs) = Depositor::boot(&disk.queued, cx.now());
                let mut puts = BTreeMap::new();
                route_deposit(outs, &mut puts, cx);
                Toy(Machine::Sender(machine, puts))
            }
            Role::Holder => {
                Toy(Machine::Holder(Holder { kept: disk.kept.clone(), ..Holder::default() }))
            }
            Role::Owner => {
                cx.wake_at(cx.now(), ());
                Toy(Machine::Owner(Owner { got: disk.got.clone(), ..Owner::default() }))
            }
        }
    }

    fn commit(disk: &mut Disk, write: &mut Write) {
        match write {
            Write::Queue(h, e) => drop(disk.queued.insert(*h, e.clone())),
            Write::Unqueue(h) => drop(disk.queued.remove(h)),
            Write::Keep(h, e) => drop(disk.kept.insert(*h, e.clone())),
            Write::Drop(hs) => hs.iter().for_each(|h| drop(disk.kept.remove(h))),
            Write::Got(h) => drop(disk.got.insert(*h)),
        }
    }

    fn on_committed(&mut self, write: Write, cx: &mut Cx<'_, Self>) {
        match (&mut self.0, write) {
            (Machine::Sender(m, puts), Write::Queue(h, e)) => {
                let outs = m.handle(DepositIn::Queued(h, e), cx.now(), cx.rng());
                route_deposit(outs, puts, cx)
            }
            (Machine::Sender(m, puts), Write::Unqueue(h)) => {
                let outs = m.handle(DepositIn::Removed(h), cx.now(), cx.rng());
                route_deposit(outs, puts, cx)
            }
            (Machine::Holder(m), w) => route_hold(m.handle(HoldIn::Committed(w), cx.rng()), cx),
            (Machine::Owner(m), Write::Got(h)) => {
                route_own(m.handle(OwnIn::Committed(h), cx.now()), cx)
            }
            _ => {}
        }
    }

    fn on_command(&mut self, envelope: Vec<u8>, cx: &mut Cx<'_, Self>) {
        if let Machine::Sender(m, puts) = &mut self.0 {
            let outs = m.handle(DepositIn::Deposit(envelope), cx.now(), cx.rng());
            route_deposit(outs, puts, cx);
        }
    }

    fn on_request(&mut self, _from: NodeId, id: ReqId, msg: Vec<u8>, cx: &mut Cx<'_, Self>) {
        if let (Machine::Holder(m), Ok(request)) = (&mut self.0, MboxRequest::decode(&msg)) {
            route_hold(m.handle(HoldIn::Request(id, request), cx.rng()), cx);
        }
    }

    fn on_response(
        &mut self,
        _peer: NodeId,
        id: ReqId,
        result: Result<Vec<u8>, NetError>,
        cx: &mut Cx<'_, Self>,
    ) {
        let answer =
            result.map(|bytes| MboxResponse::decode(&bytes).expect("a holder's frame decodes"));
        match &mut self.0 {
            Machine::Sender(m, puts) => {
                if let Some(h) = puts.remove(&id) {
                    let outs = m.handle(DepositIn::Answer(h, answer), cx.now(), cx.rng());
                    route_deposit(outs, puts, cx);
                }
            }
            Machine::Owner(m) => route_own(m.handle(OwnIn::Answer(answer), cx.now()), cx),
            Machine::Holder(_) => {}
        }
    }

    fn on_timer(&mut self, (): (), cx: &mut Cx<'_, Self>) {
        match &mut self.0 {
            Machine::Sender(m, puts) => {
                let outs = m.handle(DepositIn::Tick, cx.now(), cx.rng());
                route_deposit(outs, puts, cx);
            }
            Machine::Owner(m) => route_own(m.handle(OwnIn::Tick, cx.now()), cx),
            Machine::Holder(_) => {}
        }
    }
}

// --- the scenario ----------------------------------------------------------------

/// 50 envelopes deposited over a 10 % loss link while the sender, the holder and the
/// owner crash (three, six and three times) (the owner is offline for the first minute): the
/// owner receives every envelope exactly once, the holder ends empty, and the
/// sender's queue ends empty.
#[test]
fn mailbox_frames_over_lossy_links_with_crashes() {
    sweep("mailbox_frames_over_lossy_links_with_crashes", |seed| {
        // Slow commits (a busy disk) widen the window between asking for a write and
        // having it, where a crash must not lose what was promised.
        let config = Config { disk_latency: Duration::from_millis(30), ..Config::default() };
        let disk = |role| Disk {
            role,
            queued: BTreeMap::new(),
            kept: BTreeMap::new(),
            got: BTreeSet::new(),
        };
        let mut world: World<Toy> = World::new(
            seed,
            config,
            vec![disk(Role::Sender), disk(Role::Holder), disk(Role::Owner)],
        );
        let lossy = Link {
            latency: Duration::from_millis(40),
            jitter: Duration::from_millis(30),
            loss: 0.10,
        };
        world.link(SENDER, HOLDER, lossy);
        world.link(OWNER, HOLDER, lossy);
        world.net().offline(OWNER, EPOCH..EPOCH.saturating_add(Duration::from_secs(60)));

        let mut plan = communitas_proto::random::Seeded::new(seed ^ 0xC0FFEE);
        for (node, crashes) in [(SENDER, 3), (HOLDER, 6), (OWNER, 3)] {
            for _ in 0..crashes {
                let at = EPOCH.saturating_add(Duration::from_millis(plan.below(120_000)));
                world.crash_at(at, node, Some(Duration::from_millis(100 + plan.below(5_000))));
            }
        }
        for i in 0..50u32 {
            let envelope =
                [b"envelope ".as_slice(), &i.to_be_bytes(), &plan.bytes::<16>()].concat();
            world.command_at(
                EPOCH.saturating_add(Duration::from_millis(u64::from(i) * 500)),
                SENDER,
                envelope,
            );
        }
        // What the sender's queue took (a command to a crashed sender, or one whose
        // row a crash dropped before its commit, was never accepted).
        let accepted = |w: &World<Toy>| -> BTreeSet<Hash> {
            w.events_of(SENDER)
                .filter_map(|e| if let Event::Accepted(h) = e { Some(*h) } else { None })
                .collect()
        };
        world.run_until(EPOCH.saturating_add(Duration::from_secs(25)));
        let sent = accepted(&world);
        assert!(sent.len() >= 20, "most commands were accepted: {}", sent.len());

        let deadline = EPOCH.saturating_add(Duration::from_secs(3600));
        let done = world.run_until_true(deadline, |w| {
            w.disk(OWNER).got.len() == sent.len()
                && w.disk(HOLDER).kept.is_empty()
                && w.disk(SENDER).queued.is_empty()
        });
        assert!(
            done.is_some(),
            "not all delivered: owner has {} of {}",
            world.disk(OWNER).got.len(),
            sent.len()
        );

        let mut received: BTreeMap<Hash, usize> = BTreeMap::new();
        for e in world.events_of(OWNER) {
            if let Event::Received(h) = e {
                *received.entry(*h).or_default() += 1;
            }
        }
        assert_eq!(
            received.keys().copied().collect::<BTreeSet<_>>(),
            sent,
            "the owner received what was sent"
        );
        assert!(
            received.values().all(|n| *n == 1),
            "each envelope received exactly once: {received:?}"
        );
        assert!(world.events_of(SENDER).any(|e| matches!(e, Event::Deposited(_))));
    });
}
