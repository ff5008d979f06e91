//! The world: a virtual clock, one queue of everything that is due, the nodes, and
//! the network model between them.
//!
//! Everything that happens is an entry in the queue, ordered by (time, sequence
//! number): a command from the scenario, a timer, a commit of a durable write, a
//! request, response or message arriving, a crash, a restart. [`World::step`] pops
//! the earliest entry, moves the clock to it and hands it to its node; the node's
//! answer is a list of [`Effect`]s (through [`Cx`]) that the world turns into new
//! entries. Nothing reads a real clock and every draw comes from a [`Seeded`] source,
//! so one seed replays exactly.
//!
//! Durability: a node's disk is exactly the writes it asked for ([`Cx::persist`]) that
//! were committed, in order, `disk_latency` later. A crash drops the node's memory,
//! its timers, its outstanding requests and its writes not yet committed; a restart
//! rebuilds it with [`Node::boot`] from the disk alone.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};
use std::fmt::Debug;
use std::time::Duration;

use communitas_proto::random::Seeded;
use communitas_types::Timestamp;

use super::net::{Fate, Link, Network};
use super::seed;

/// A simulated node's index in the world.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodeId(pub u16);

impl NodeId {
    /// The index into the world's nodes.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// One request on the wire: who asked, in which life, and a number of its own.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ReqId {
    caller: NodeId,
    incarnation: u32,
    n: u64,
}

/// Why a request got no answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NetError {
    /// The peer is down or offline, or we are (a failed dial), after `dial_timeout`.
    Unreachable,
    /// No answer within `request_timeout` (the request or the answer was lost, or the
    /// two sides were cut apart).
    Timeout,
}

/// A composition of machines: what one simulated device runs. Each callback gets a
/// [`Cx`] to act through; the node's adapters turn machine outputs into its calls.
pub trait Node: Sized {
    /// What travels on the network (requests, responses and one-way messages).
    type Msg: Clone + Debug;
    /// A timer the node sets (usually: which machine wants waking).
    type Timer: Clone + Debug + Ord;
    /// One durable write.
    type Write: Debug;
    /// The durable state: what survives a crash. Its initial value is the node's
    /// provisioning (identity, role, settings).
    type Disk: Debug;
    /// A command from the scenario (the user, or the test).
    type Command: Debug;
    /// What the node reports for the scenario to check.
    type Event: Clone + Debug;

    /// Builds the node from its disk: at the start, and after every crash.
    fn boot(disk: &Self::Disk, cx: &mut Cx<'_, Self>) -> Self;
    /// Applies one committed write to the disk. A write that is a store job with an
    /// answer (a put that may find a duplicate, a read) records the answer in `write`
    /// for [`on_committed`](Self::on_committed).
    fn commit(disk: &mut Self::Disk, write: &mut Self::Write);
    /// A write asked for by this life of the node is on disk.
    fn on_committed(&mut self, _write: Self::Write, _cx: &mut Cx<'_, Self>) {}
    /// A command from the scenario.
    fn on_command(&mut self, command: Self::Command, cx: &mut Cx<'_, Self>);
    /// A request from a peer; answer with [`Cx::respond`], now or later.
    fn on_request(&mut self, from: NodeId, id: ReqId, msg: Self::Msg, cx: &mut Cx<'_, Self>);
    /// The answer to a request this life of the node sent, or why there is none.
    fn on_response(
        &mut self,
        peer: NodeId,
        id: ReqId,
        result: Result<Self::Msg, NetError>,
        cx: &mut Cx<'_, Self>,
    );
    /// A one-way message from a peer.
    fn on_message(&mut self, _from: NodeId, _msg: Self::Msg, _cx: &mut Cx<'_, Self>) {}
    /// A timer set by this life of the node is due.
    fn on_timer(&mut self, timer: Self::Timer, cx: &mut Cx<'_, Self>);
}

/// What a node asks the world to do.
pub enum Effect<N: Node> {
    /// Send a request; the answer comes to [`Node::on_response`].
    Request(NodeId, ReqId, N::Msg),
    /// Answer a request.
    Respond(ReqId, N::Msg),
    /// Send a one-way message.
    Send(NodeId, N::Msg),
    /// Write this to disk, then call [`Node::on_committed`].
    Persist(N::Write),
    /// Call [`Node::on_timer`] at this time (a pending identical timer is not doubled).
    Wake(Timestamp, N::Timer),
    /// The same, cancelling any pending wake-up of this timer.
    SetTimer(Timestamp, N::Timer),
    /// Report something for the scenario.
    Observe(N::Event),
}

/// A node's handle on the world during one callback.
pub struct Cx<'a, N: Node> {
    now: Timestamp,
    me: NodeId,
    incarnation: u32,
    rng: &'a mut Seeded,
    next_req: &'a mut u64,
    effects: Vec<Effect<N>>,
}

impl<N: Node> Cx<'_, N> {
    /// The virtual time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// This node.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// This node's seeded randomness (its own stream, so nodes do not perturb each
    /// other's draws).
    pub fn rng(&mut self) -> &mut Seeded {
        self.rng
    }

    /// Sends a request to `to`.
    pub fn request(&mut self, to: NodeId, msg: N::Msg) -> ReqId {
        *self.next_req += 1;
        let id = ReqId { caller: self.me, incarnation: self.incarnation, n: *self.next_req };
        self.effects.push(Effect::Request(to, id, msg));
        id
    }

    /// Answers a request (a second answer to the same request is dropped).
    pub fn respond(&mut self, id: ReqId, msg: N::Msg) {
        self.effects.push(Effect::Respond(id, msg));
    }

    /// Sends a one-way message.
    pub fn send(&mut self, to: NodeId, msg: N::Msg) {
        self.effects.push(Effect::Send(to, msg));
    }

    /// Asks for a durable write.
    pub fn persist(&mut self, write: N::Write) {
        self.effects.push(Effect::Persist(write));
    }

    /// Asks to be woken at `at` (now, if `at` has passed), in addition to any other
    /// wake-up already asked for.
    pub fn wake_at(&mut self, at: Timestamp, timer: N::Timer) {
        self.effects.push(Effect::Wake(at, timer));
    }

    /// Asks to be woken at `at` instead of any pending wake-up of the same `timer`
    /// (a machine whose `WakeAt` replaces its previous wish).
    pub fn set_timer(&mut self, at: Timestamp, timer: N::Timer) {
        self.effects.push(Effect::SetTimer(at, timer));
    }

    /// Reports an event for the scenario.
    pub fn observe(&mut self, event: N::Event) {
        self.effects.push(Effect::Observe(event));
    }
}

/// The knobs of a world.
#[derive(Clone, Debug)]
pub struct Config {
    /// The link between any two nodes unless [`World::link`] says otherwise.
    pub link: Link,
    /// A request with no answer fails with [`NetError::Timeout`] this long after it
    /// was sent (libp2p request-response's timeout).
    pub request_timeout: Duration,
    /// A request to a node that is down or offline fails with
    /// [`NetError::Unreachable`] this long after it was sent.
    pub dial_timeout: Duration,
    /// How long a write takes to commit.
    pub disk_latency: Duration,
    /// A scenario that processes more entries than this has run away.
    pub max_steps: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            link: Link::default(),
            request_timeout: Duration::from_secs(10),
            dial_timeout: Duration::from_secs(5),
            disk_latency: Duration::from_millis(1),
            max_steps: 5_000_000,
        }
    }
}

/// The clock of every world starts here (a plausible unix time, so TTL arithmetic
/// looks like production's).
pub const EPOCH: Timestamp = Timestamp::from_millis(1_750_000_000_000);

/// Something that happened, for the scenario to check.
#[derive(Clone, Debug)]
pub struct Record<E> {
    /// When.
    pub at: Timestamp,
    /// Where.
    pub node: NodeId,
    /// What.
    pub what: Happened<E>,
}

/// What a [`Record`] says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Happened<E> {
    /// The node reported this.
    Event(E),
    /// The node crashed (or was stopped for good).
    Crashed,
    /// The node was rebuilt from its disk.
    Booted,
}

enum Due<N: Node> {
    Command(NodeId, N::Command),
    Timer(NodeId, u32, N::Timer),
    Commit(NodeId, u32, N::Write),
    Request { from: NodeId, to: NodeId, id: ReqId, msg: N::Msg },
    Response { from: NodeId, id: ReqId, result: Result<N::Msg, NetError> },
    Message { from: NodeId, to: NodeId, msg: N::Msg },
    Crash(NodeId),
    Restart(NodeId),
}

// By hand: a derive would ask `N: Debug` of the node itself.
impl<N: Node> std::fmt::Debug for Due<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Due::Command(n, c) => write!(f, "{n:?} command {c:?}"),
            Due::Timer(n, i, t) => write!(f, "{n:?}/{i} timer {t:?}"),
            Due::Commit(n, i, w) => write!(f, "{n:?}/{i} commit {w:?}"),
            Due::Request { from, to, id, msg } => {
                write!(f, "{from:?} -> {to:?} request {id:?} {msg:?}")
            }
            Due::Response { from, id, result } => {
                write!(f, "{from:?} -> {:?} response {id:?} {result:?}", id.caller)
            }
            Due::Message { from, to, msg } => write!(f, "{from:?} -> {to:?} message {msg:?}"),
            Due::Crash(n) => write!(f, "{n:?} crash"),
            Due::Restart(n) => write!(f, "{n:?} restart"),
        }
    }
}

struct Queued<N: Node> {
    at: Timestamp,
    seq: u64,
    due: Due<N>,
}

impl<N: Node> PartialEq for Queued<N> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<N: Node> Eq for Queued<N> {}
impl<N: Node> PartialOrd for Queued<N> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<N: Node> Ord for Queued<N> {
    // Reversed: the heap pops the earliest (time, sequence) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct Slot<N: Node> {
    state: Option<N>,
    disk: N::Disk,
    incarnation: u32,
    rng: Seeded,
    next_req: u64,
    /// Requests of this life still waiting for their answer.
    outstanding: BTreeSet<ReqId>,
    /// Timers of this life not yet fired.
    timers: BTreeSet<(Timestamp, N::Timer)>,
    /// When the last write asked for commits: writes commit in order.
    commit_tail: Timestamp,
}

/// The simulated world. See the module docs.
pub struct World<N: Node> {
    now: Timestamp,
    seq: u64,
    steps: u64,
    queue: BinaryHeap<Queued<N>>,
    slots: Vec<Slot<N>>,
    net: Network,
    net_rng: Seeded,
    config: Config,
    trace: bool,
    /// Everything the nodes reported, and their crashes and boots, in order.
    pub log: Vec<Record<N::Event>>,
}

impl<N: Node> World<N> {
    /// A world of `disks.len()` nodes, each booted from its provisioning at [`EPOCH`].
    pub fn new(seed: u64, config: Config, disks: Vec<N::Disk>) -> Self {
        Self::with_down(seed, config, disks, &[])
    }

    /// The same, but the nodes in `down` are not started (start them with
    /// [`restart_at`](Self::restart_at)).
    pub fn with_down(seed: u64, config: Config, disks: Vec<N::Disk>, down: &[NodeId]) -> Self {
        let slots = disks
            .into_iter()
            .enumerate()
            .map(|(i, disk)| Slot {
                state: None,
                disk,
                incarnation: 0,
                rng: Seeded::new(mix(seed, i as u64 + 1)),
                next_req: 0,
                outstanding: BTreeSet::new(),
                timers: BTreeSet::new(),
                commit_tail: EPOCH,
            })
            .collect();
        let mut world = Self {
            now: EPOCH,
            seq: 0,
            steps: 0,
            queue: BinaryHeap::new(),
            slots,
            net: Network::new(config.link),
            net_rng: Seeded::new(mix(seed, 0)),
            config,
            trace: std::env::var_os("SIM_TRACE").is_some(),
            log: Vec::new(),
        };
        for i in 0..world.slots.len() {
            let node = NodeId(u16::try_from(i).expect("fewer than 65536 nodes"));
            if !down.contains(&node) {
                world.boot(node);
            }
        }
        world
    }

    /// The virtual time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Time since [`EPOCH`].
    pub fn elapsed(&self) -> Duration {
        Duration::from_millis(self.now.as_millis() - EPOCH.as_millis())
    }

    /// The nodes' ids.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + use<N> {
        (0..self.slots.len()).map(|i| NodeId(i as u16))
    }

    /// The network model, to set links, partitions and offline intervals.
    pub fn net(&mut self) -> &mut Network {
        &mut self.net
    }

    /// Sets the link between `a` and `b` (both ways).
    pub fn link(&mut self, a: NodeId, b: NodeId, link: Link) {
        self.net.set_link(a, b, link);
    }

    /// The node, if it is up.
    pub fn node(&self, id: NodeId) -> Option<&N> {
        self.slots[id.index()].state.as_ref()
    }

    /// What is on the node's disk.
    pub fn disk(&self, id: NodeId) -> &N::Disk {
        &self.slots[id.index()].disk
    }

    /// Whether the node is up (not crashed or stopped).
    pub fn is_up(&self, id: NodeId) -> bool {
        self.slots[id.index()].state.is_some()
    }

    /// The events `id` reported, in order.
    pub fn events_of(&self, id: NodeId) -> impl Iterator<Item = &N::Event> {
        self.log.iter().filter(move |r| r.node == id).filter_map(|r| match &r.what {
            Happened::Event(e) => Some(e),
            _ => None,
        })
    }

    /// Hands `command` to `node` at `at` (dropped if the node is down then).
    pub fn command_at(&mut self, at: Timestamp, node: NodeId, command: N::Command) {
        self.push(at, Due::Command(node, command));
    }

    /// Hands `command` to `node` now, before anything else due now.
    pub fn command(&mut self, node: NodeId, command: N::Command) {
        self.deliver_command(node, command);
    }

    /// Crashes `node` at `at`; with `restart_after`, it boots from its disk that much
    /// later, else it stays down.
    pub fn crash_at(&mut self, at: Timestamp, node: NodeId, restart_after: Option<Duration>) {
        self.push(at, Due::Crash(node));
        if let Some(d) = restart_after {
            self.push(at.saturating_add(d), Due::Restart(node));
        }
    }

    /// Crashes `node` now; it stays down until [`restart_at`](Self::restart_at).
    pub fn crash(&mut self, node: NodeId) {
        self.do_crash(node);
    }

    /// Boots `node` from its disk at `at` (if it is down then).
    pub fn restart_at(&mut self, at: Timestamp, node: NodeId) {
        self.push(at, Due::Restart(node));
    }

    /// Runs everything due up to and including `at`; the clock then reads `at`.
    pub fn run_until(&mut self, at: Timestamp) {
        while self.queue.peek().is_some_and(|q| q.at <= at) {
            self.step();
        }
        self.now = self.now.max(at);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now.saturating_add(d));
    }

    /// Runs until `done` holds (checked after every step) or the clock passes
    /// `deadline`. Returns the time `done` first held.
    pub fn run_until_true(
        &mut self,
        deadline: Timestamp,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Option<Timestamp> {
        if done(self) {
            return Some(self.now);
        }
        while self.queue.peek().is_some_and(|q| q.at <= deadline) {
            self.step();
            if done(self) {
                return Some(self.now);
            }
        }
        self.now = self.now.max(deadline);
        None
    }

    /// Processes the earliest entry. Returns false when nothing is due any more.
    pub fn step(&mut self) -> bool {
        let Some(Queued { at, seq, due }) = self.queue.pop() else { return false };
        self.steps += 1;
        assert!(self.steps <= self.config.max_steps, "runaway: {} steps", self.steps);
        self.now = at;
        if self.trace || seed::tracing_digest() {
            let line = clipped(format_args!(
                "[{:>10} ms #{seq}] {due:?}",
                at.as_millis() - EPOCH.as_millis()
            ));
            if self.trace {
                eprintln!("{line}");
            }
            seed::digest(&line);
        }
        match due {
            Due::Command(node, command) => self.deliver_command(node, command),
            Due::Timer(node, incarnation, timer) => {
                let slot = &mut self.slots[node.index()];
                if slot.incarnation == incarnation && slot.timers.remove(&(at, timer.clone())) {
                    self.with_node(node, |n, cx| n.on_timer(timer, cx));
                }
            }
            Due::Commit(node, incarnation, mut write) => {
                let slot = &mut self.slots[node.index()];
                if slot.incarnation == incarnation && slot.state.is_some() {
                    N::commit(&mut slot.disk, &mut write);
                    self.with_node(node, |n, cx| n.on_committed(write, cx));
                }
            }
            Due::Request { from, to, id, msg } => {
                if self.is_up(to) && self.net.reachable(from, to, at) {
                    self.with_node(to, |n, cx| n.on_request(from, id, msg, cx));
                }
            }
            Due::Response { from, id, result } => {
                let slot = &mut self.slots[id.caller.index()];
                let arrived = result.is_err() || self.net.reachable(from, id.caller, at);
                if slot.incarnation == id.incarnation && arrived && slot.outstanding.remove(&id) {
                    self.with_node(id.caller, |n, cx| n.on_response(from, id, result, cx));
                }
            }
            Due::Message { from, to, msg } => {
                if self.is_up(to) && self.net.reachable(from, to, at) {
                    self.with_node(to, |n, cx| n.on_message(from, msg, cx));
                }
            }
            Due::Crash(node) => self.do_crash(node),
            Due::Restart(node) => {
                if !self.is_up(node) {
                    self.boot(node);
                }
            }
        }
        true
    }

    fn deliver_command(&mut self, node: NodeId, command: N::Command) {
        self.with_node(node, |n, cx| n.on_command(command, cx));
    }

    fn do_crash(&mut self, node: NodeId) {
        let slot = &mut self.slots[node.index()];
        if slot.state.take().is_some() {
            slot.incarnation += 1;
            slot.outstanding.clear();
            slot.timers.clear();
            self.log.push(Record { at: self.now, node, what: Happened::Crashed });
        }
    }

    fn boot(&mut self, node: NodeId) {
        let slot = &mut self.slots[node.index()];
        let mut cx = Cx {
            now: self.now,
            me: node,
            incarnation: slot.incarnation,
            rng: &mut slot.rng,
            next_req: &mut slot.next_req,
            effects: Vec::new(),
        };
        let state = N::boot(&slot.disk, &mut cx);
        let effects = cx.effects;
        slot.state = Some(state);
        slot.commit_tail = self.now;
        self.log.push(Record { at: self.now, node, what: Happened::Booted });
        self.apply(node, effects);
    }

    fn with_node(&mut self, node: NodeId, f: impl FnOnce(&mut N, &mut Cx<'_, N>)) {
        let slot = &mut self.slots[node.index()];
        let Some(state) = slot.state.as_mut() else { return };
        let mut cx = Cx {
            now: self.now,
            me: node,
            incarnation: slot.incarnation,
            rng: &mut slot.rng,
            next_req: &mut slot.next_req,
            effects: Vec::new(),
        };
        f(state, &mut cx);
        let effects = cx.effects;
        self.apply(node, effects);
    }

    fn apply(&mut self, me: NodeId, effects: Vec<Effect<N>>) {
        let now = self.now;
        for effect in effects {
            match effect {
                Effect::Request(to, id, msg) => {
                    self.slots[me.index()].outstanding.insert(id);
                    let timeout = Due::Response { from: to, id, result: Err(NetError::Timeout) };
                    self.push(now.saturating_add(self.config.request_timeout), timeout);
                    match self.fate(me, to) {
                        Fate::Arrives(d) => {
                            self.push(now.saturating_add(d), Due::Request { from: me, to, id, msg })
                        }
                        Fate::Lost => {}
                        Fate::Unreachable => {
                            let result = Err(NetError::Unreachable);
                            let at = now.saturating_add(self.config.dial_timeout);
                            self.push(at, Due::Response { from: to, id, result });
                        }
                    }
                }
                Effect::Respond(id, msg) => {
                    if let Fate::Arrives(d) = self.fate(me, id.caller) {
                        self.push(
                            now.saturating_add(d),
                            Due::Response { from: me, id, result: Ok(msg) },
                        );
                    }
                }
                Effect::Send(to, msg) => {
                    if let Fate::Arrives(d) = self.fate(me, to) {
                        self.push(now.saturating_add(d), Due::Message { from: me, to, msg });
                    }
                }
                Effect::Persist(write) => {
                    let slot = &mut self.slots[me.index()];
                    let at = now.saturating_add(self.config.disk_latency).max(slot.commit_tail);
                    slot.commit_tail = at;
                    let incarnation = slot.incarnation;
                    self.push(at, Due::Commit(me, incarnation, write));
                }
                Effect::SetTimer(at, timer) => {
                    self.slots[me.index()].timers.retain(|(_, t)| *t != timer);
                    self.apply(me, vec![Effect::Wake(at, timer)]);
                }
                Effect::Wake(at, timer) => {
                    let at = at.max(now);
                    let slot = &mut self.slots[me.index()];
                    if slot.timers.insert((at, timer.clone())) {
                        let incarnation = slot.incarnation;
                        self.push(at, Due::Timer(me, incarnation, timer));
                    }
                }
                Effect::Observe(event) => {
                    self.log.push(Record { at: now, node: me, what: Happened::Event(event) })
                }
            }
        }
    }

    fn fate(&mut self, from: NodeId, to: NodeId) -> Fate {
        let up = self.is_up(to);
        self.net.fate(from, to, up, self.now, &mut self.net_rng)
    }

    fn push(&mut self, at: Timestamp, due: Due<N>) {
        self.seq += 1;
        self.queue.push(Queued { at, seq: self.seq, due });
    }
}

/// A trace line: at most [`CLIP`] characters (formatting stops there, so a frame
/// carrying an envelope costs no more than a short one).
fn clipped(args: std::fmt::Arguments<'_>) -> String {
    struct Clip(String);
    impl std::fmt::Write for Clip {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let room = CLIP.saturating_sub(self.0.len());
            if s.len() <= room {
                self.0.push_str(s);
                return Ok(());
            }
            let cut = (0..=room).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            self.0.push_str(&s[..cut]);
            self.0.push('…');
            Err(std::fmt::Error)
        }
    }
    let mut clip = Clip(String::with_capacity(CLIP + 4));
    let _ = std::fmt::Write::write_fmt(&mut clip, args);
    clip.0
}

/// The longest trace line.
const CLIP: usize = 240;

/// Derives independent streams from one seed (SplitMix64's finaliser over a mix).
fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
