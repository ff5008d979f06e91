//! A mailbox node: what a node runs for `/communitas/mbox/1`.
//!
//! - Every node runs the mailbox server machine ([`Server`]); one that keeps no
//!   mailboxes answers `NotServer`, and turns a `notify` for its own mailbox into a
//!   wake-up of its fetcher. The adapter ([`MboxNode::route_server`]) numbers
//!   requests, runs the machine's store work as writes on the disk's
//!   [`MailboxStore`], and answers from the commit.
//! - A server also runs re-replication ([`replicate`](super::replicate)): the
//!   policy of `communitas_proto::mbox::replicate` driven as `communitas_node`'s
//!   `replicate` driver does.
//! - A scenario can send any frame itself ([`Command::Ask`]) and read the answer
//!   ([`Event::Answer`]): that is how the server's rules are probed from outside.

use std::collections::BTreeMap;
use std::time::Duration;

use communitas_proto::mbox::server::{self, Input, Metric, Output, RequestId, Server, Work};
use communitas_proto::mbox::{MboxRequest, MboxResponse, Refusal};
use communitas_types::{MailboxId, Timestamp};

use super::fixtures;
use super::mstore::MailboxStore;
use super::replicate::{self, Replicator};
use super::world::{Cx, NetError, Node, NodeId, ReqId};

/// A node's provisioning and durable state.
#[derive(Debug, Clone)]
pub struct Disk {
    /// Whether it keeps mailboxes.
    pub serving: bool,
    /// The server's settings (TTLs).
    pub server: server::Config,
    /// The servers it knows (the simulator's stand-in for the DHT's closest peers).
    pub servers: Vec<NodeId>,
    /// How often re-replication runs (`communitas_node::replicate::EVERY`: 5 min).
    pub replicate_every: Duration,
    /// The mailbox tables (server role).
    pub mbox: MailboxStore,
}

impl Disk {
    /// A node with the default settings that knows `servers`.
    pub fn new(serving: bool, servers: &[NodeId]) -> Self {
        Self {
            serving,
            server: server::Config::new(serving),
            servers: servers.to_vec(),
            replicate_every: Duration::from_secs(5 * 60),
            mbox: MailboxStore::default(),
        }
    }
}

/// A write, or a read: every store call goes through the disk in order and answers
/// from its commit.
#[derive(Debug)]
pub enum Write {
    /// The server machine's store work, and what the store answered.
    Store(Work<NodeId>, Option<server::Outcome>),
    /// Re-replication: which mailboxes are kept at this time, with their hashes.
    Held(Timestamp, Vec<(MailboxId, Vec<[u8; 32]>)>),
    /// Re-replication: the entries of `mailbox` among `hashes` unexpired at this time.
    Entries(MailboxId, Vec<[u8; 32]>, Timestamp, Vec<(Vec<u8>, Timestamp)>),
}

/// What a scenario asks.
#[derive(Debug)]
pub enum Command {
    /// Send this frame to that node; the answer comes as [`Event::Answer`].
    Ask(NodeId, MboxRequest),
}

/// What a scenario sees.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The answer to a [`Command::Ask`].
    Answer(NodeId, Result<MboxResponse, NetError>),
    /// The server counted this.
    Count(Metric),
    /// A `notify` for our own mailbox arrived (the fetcher should look).
    WakeFetcher,
    /// A re-replication copy was taken by `to`.
    Replicated { to: NodeId },
}

/// Which machine a timer wakes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// The server machine's `WakeAt`.
    Server,
    /// The re-replication period.
    Replicate,
}

/// What an outgoing request was for.
#[derive(Debug)]
enum Purpose {
    Ask,
    Notify,
    Replicate(replicate::Step),
}

/// See the module docs.
pub struct MboxNode {
    server: Server<NodeId>,
    /// The server machine's request ids, and the network request each answers.
    requests: BTreeMap<RequestId, ReqId>,
    next_request: u64,
    replicator: Option<Replicator>,
    outgoing: BTreeMap<ReqId, Purpose>,
}

impl MboxNode {
    fn route_server(&mut self, outputs: Vec<Output<NodeId>>, cx: &mut Cx<'_, Self>) {
        for output in outputs {
            match output {
                Output::Respond { request_id, response } => {
                    if let Some(id) = self.requests.remove(&request_id) {
                        cx.respond(id, response.encode());
                    }
                }
                Output::Store(work) => cx.persist(Write::Store(work, None)),
                Output::Notify { owner, mailbox } => {
                    let id = cx.request(owner, MboxRequest::Notify { mailbox }.encode());
                    self.outgoing.insert(id, Purpose::Notify);
                }
                Output::WakeFetcher => cx.observe(Event::WakeFetcher),
                Output::Count(metric) => cx.observe(Event::Count(metric)),
                Output::WakeAt(at) => cx.set_timer(at, Timer::Server),
                other => panic!("an output the simulator does not know: {other:?}"),
            }
        }
    }

    fn server(&mut self, input: Input<NodeId>, cx: &mut Cx<'_, Self>) {
        let outputs: Vec<_> = self.server.handle(input, cx.now(), cx.rng()).collect();
        self.route_server(outputs, cx);
    }

    fn route_replicator(&mut self, steps: Vec<replicate::Do>, cx: &mut Cx<'_, Self>) {
        for step in steps {
            match step {
                replicate::Do::Read(write) => cx.persist(write),
                replicate::Do::Ask(to, request, step) => {
                    let id = cx.request(to, request.encode());
                    self.outgoing.insert(id, Purpose::Replicate(step));
                }
                replicate::Do::Copied(to) => cx.observe(Event::Replicated { to }),
            }
        }
    }
}

impl Node for MboxNode {
    type Msg = Vec<u8>;
    type Timer = Timer;
    type Write = Write;
    type Disk = Disk;
    type Command = Command;
    type Event = Event;

    fn boot(disk: &Disk, cx: &mut Cx<'_, Self>) -> Self {
        let me = cx.me();
        let mut node = Self {
            server: Server::new(disk.server, me, fixtures::mailbox(me)),
            requests: BTreeMap::new(),
            next_request: 0,
            replicator: disk
                .serving
                .then(|| Replicator::new(me, disk.servers.clone(), disk.replicate_every)),
            outgoing: BTreeMap::new(),
        };
        // The driver starts the machine with a tick (its first sweep).
        node.server(Input::Tick, cx);
        if disk.serving {
            // The node skips the interval's immediate first tick: it is still joining.
            cx.set_timer(cx.now().saturating_add(disk.replicate_every), Timer::Replicate);
        }
        node
    }

    fn commit(disk: &mut Disk, write: &mut Write) {
        match write {
            Write::Store(work, outcome) => *outcome = disk.mbox.run(work),
            Write::Held(now, held) => {
                let now = *now;
                *held = disk
                    .mbox
                    .mailboxes(now)
                    .into_iter()
                    .map(|m| (m, disk.mbox.hashes(m, now)))
                    .collect();
            }
            Write::Entries(mailbox, hashes, now, entries) => {
                *entries = disk.mbox.entries(*mailbox, hashes, *now);
            }
        }
    }

    fn on_committed(&mut self, write: Write, cx: &mut Cx<'_, Self>) {
        match write {
            Write::Store(work, Some(outcome)) => {
                let request_id = match &work {
                    Work::Put { request_id, .. }
                    | Work::Fetch { request_id, .. }
                    | Work::Ack { request_id, .. }
                    | Work::Wanted { request_id, .. } => *request_id,
                    _ => return,
                };
                self.server(Input::StoreDone { request_id, outcome }, cx);
            }
            Write::Store(..) => {}
            read => {
                if let Some(r) = self.replicator.as_mut() {
                    let steps = r.read_done(read, cx.now());
                    self.route_replicator(steps, cx);
                }
            }
        }
    }

    fn on_command(&mut self, Command::Ask(to, request): Command, cx: &mut Cx<'_, Self>) {
        let id = cx.request(to, request.encode());
        self.outgoing.insert(id, Purpose::Ask);
    }

    fn on_request(&mut self, from: NodeId, id: ReqId, msg: Vec<u8>, cx: &mut Cx<'_, Self>) {
        let Ok(request) = MboxRequest::decode(&msg) else {
            return cx.respond(id, MboxResponse::Refused(Refusal::Invalid).encode());
        };
        self.next_request += 1;
        let request_id = RequestId(self.next_request);
        self.requests.insert(request_id, id);
        self.server(Input::Request { peer: from, request_id, request }, cx);
    }

    fn on_response(
        &mut self,
        peer: NodeId,
        id: ReqId,
        result: Result<Vec<u8>, NetError>,
        cx: &mut Cx<'_, Self>,
    ) {
        let answer = result.map(|b| MboxResponse::decode(&b).expect("a server's answer decodes"));
        match self.outgoing.remove(&id) {
            Some(Purpose::Ask) => cx.observe(Event::Answer(peer, answer)),
            Some(Purpose::Replicate(step)) => {
                if let Some(r) = self.replicator.as_mut() {
                    let steps = r.answered(step, answer, cx.now());
                    self.route_replicator(steps, cx);
                }
            }
            Some(Purpose::Notify) | None => {}
        }
    }

    fn on_timer(&mut self, timer: Timer, cx: &mut Cx<'_, Self>) {
        match timer {
            Timer::Server => self.server(Input::Tick, cx),
            Timer::Replicate => {
                if let Some(r) = self.replicator.as_mut() {
                    let every = r.every();
                    let steps = r.start(cx.now());
                    self.route_replicator(steps, cx);
                    cx.set_timer(cx.now().saturating_add(every), Timer::Replicate);
                }
            }
        }
    }
}
