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
//! - A user's node (its disk has a [`Disk::fetcher`]) runs the mailbox client machine
//!   (`communitas_proto::mbox::client`) as `communitas_node`'s fetcher drives it: its
//!   lookups answered by the servers it knows, nearest its mailbox first (the DHT's
//!   stand-in), the requests to holders on the network, and acceptance a durable
//!   write that opens the real envelope and answers from the commit.

use std::collections::BTreeMap;
use std::time::Duration;

use communitas_crypto::Envelope;
use communitas_proto::mbox::client::{self, Acceptance, Client, Delivered, NoAnswer, Sign};
use communitas_proto::mbox::server::{self, Input, Metric, Output, RequestId, Server, Work};
use communitas_proto::mbox::{MboxRequest, MboxResponse, Refusal};
use communitas_types::{MailboxId, MessageId, Timestamp};

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
    /// A user's node: the mailbox client's settings (`None`: it fetches nothing).
    pub fetcher: Option<client::Config>,
    /// A user's node: the messages acceptance stored, by id, with the hash of the
    /// envelope that brought each.
    pub inbox: BTreeMap<MessageId, [u8; 32]>,
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
            fetcher: None,
            inbox: BTreeMap::new(),
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
    /// A user's node: acceptance of a fetched envelope by `me`, and its verdict.
    Accept { me: NodeId, hash: [u8; 32], envelope: Vec<u8>, verdict: Option<Acceptance> },
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
    /// The mailbox client sent a challenge (`true`) or another frame to a holder.
    Asked { holder: NodeId, challenge: bool },
    /// The mailbox client handed this envelope to acceptance.
    Accepting([u8; 32]),
    /// Acceptance committed its verdict on this envelope.
    Accepted([u8; 32], Acceptance),
    /// The mailbox client queued a receipt for these messages.
    Receipts { to: NodeId, ids: Vec<MessageId> },
    /// The mailbox client counted a duplicate.
    Duplicate,
    /// A mailbox round is over.
    RoundDone { answered: usize },
}

/// Which machine a timer wakes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// The server machine's `WakeAt`.
    Server,
    /// The re-replication period.
    Replicate,
    /// The mailbox client's `WakeAt`.
    Client,
}

/// What an outgoing request was for.
#[derive(Debug)]
enum Purpose {
    Ask,
    Notify,
    Replicate(replicate::Step),
    Fetch(client::RequestId),
}

/// Signs fetch proofs with the node's identity (as the node's signer borrows it).
#[derive(Debug)]
pub struct Signer(NodeId);

impl Sign for Signer {
    fn sign(&self, message: &[u8]) -> [u8; 64] {
        fixtures::identity(self.0).sign(message)
    }
}

/// See the module docs.
pub struct MboxNode {
    server: Server<NodeId>,
    /// The server machine's request ids, and the network request each answers.
    requests: BTreeMap<RequestId, ReqId>,
    next_request: u64,
    replicator: Option<Replicator>,
    outgoing: BTreeMap<ReqId, Purpose>,
    /// A user's node: the mailbox client, and the servers it knows.
    client: Option<(Client<NodeId, Signer>, Vec<NodeId>)>,
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
                Output::WakeFetcher => {
                    cx.observe(Event::WakeFetcher);
                    self.client(client::Input::Wake, cx);
                }
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

    fn client(&mut self, input: client::Input<NodeId>, cx: &mut Cx<'_, Self>) {
        let Some((machine, servers)) = self.client.as_mut() else { return };
        let outputs: Vec<_> = machine.handle(input, cx.now()).collect();
        let servers = servers.clone();
        self.route_client(outputs, &servers, cx);
    }

    /// Carries out the mailbox client's outputs, in order.
    fn route_client(
        &mut self,
        outputs: Vec<client::Output<NodeId>>,
        servers: &[NodeId],
        cx: &mut Cx<'_, Self>,
    ) {
        let me = cx.me();
        for output in outputs {
            match output {
                client::Output::FindHolders => {
                    let found = fixtures::closest(fixtures::mailbox(me), servers, servers.len());
                    self.client(client::Input::Holders(found), cx);
                }
                client::Output::Send { holder, request_id, request } => {
                    let challenge = matches!(request, MboxRequest::Challenge { .. });
                    cx.observe(Event::Asked { holder, challenge });
                    let id = cx.request(holder, request.encode());
                    self.outgoing.insert(id, Purpose::Fetch(request_id));
                }
                client::Output::Accept { hash, envelope } => {
                    cx.observe(Event::Accepting(hash));
                    cx.persist(Write::Accept { me, hash, envelope, verdict: None });
                }
                client::Output::Receipts { to, ids, .. } => {
                    cx.observe(Event::Receipts { to: fixtures::node_of(to), ids });
                }
                client::Output::Count(_) => cx.observe(Event::Duplicate),
                client::Output::RoundDone { answered } => {
                    cx.observe(Event::RoundDone { answered });
                }
                client::Output::WakeAt(at) => cx.set_timer(at, Timer::Client),
                other => panic!("an output the simulator does not know: {other:?}"),
            }
        }
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
            client: disk.fetcher.map(|config| {
                let identity = fixtures::identity(me).public();
                (Client::new(config, me, identity, Signer(me)), disk.servers.clone())
            }),
        };
        // The driver starts the machine with a tick (its first sweep).
        node.server(Input::Tick, cx);
        // The fetcher too: its first input is its start.
        node.client(client::Input::Tick, cx);
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
            Write::Accept { me, hash, envelope, verdict } => {
                *verdict = Some(accept(disk, *me, *hash, envelope));
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
            Write::Accept { hash, verdict: Some(acceptance), .. } => {
                cx.observe(Event::Accepted(hash, acceptance.clone()));
                self.client(client::Input::Accepted { hash, acceptance }, cx);
            }
            Write::Accept { .. } => {}
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
            Some(Purpose::Fetch(request_id)) => {
                let answer = answer.map_err(|_| NoAnswer);
                self.client(client::Input::Answer { request_id, answer }, cx);
            }
            Some(Purpose::Notify) | None => {}
        }
    }

    fn on_timer(&mut self, timer: Timer, cx: &mut Cx<'_, Self>) {
        match timer {
            Timer::Server => self.server(Input::Tick, cx),
            Timer::Client => self.client(client::Input::Tick, cx),
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

/// Acceptance on a user's node, as the node's inbound path decides it: an envelope
/// that opens for `me` is stored (a duplicate of a stored one is accepted again, and
/// owes no receipt); one that does not is refused for good.
fn accept(disk: &mut Disk, me: NodeId, hash: [u8; 32], envelope: &[u8]) -> Acceptance {
    let Ok(envelope) = Envelope::from_bytes(envelope) else { return Acceptance::Rejected };
    let Ok(opened) = envelope.open(fixtures::identity(me)) else { return Acceptance::Rejected };
    if disk.inbox.contains_key(&opened.message_id) {
        return Acceptance::Accepted { receipt: None };
    }
    disk.inbox.insert(opened.message_id, hash);
    let from = (0..64u16).map(NodeId).find(|n| fixtures::identity(*n).public() == &opened.sender);
    let receipt = from.map(|from| Delivered {
        from: fixtures::address(from),
        keys: Box::new(opened.sender.clone()),
        id: opened.message_id,
    });
    Acceptance::Accepted { receipt }
}
