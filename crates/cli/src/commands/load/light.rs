//! A light client for `bench load`: a real libp2p peer with its own identity, as thin
//! as a user's node can be while still doing what a user's node asks of a server.
//!
//! Each one owns a minimal swarm (TCP + Noise + Yamux, relay client, identify, ping,
//! `/communitas/msg/1`, `/communitas/mbox/1`; no Kademlia, no AutoNAT, no DCUtR — on
//! loopback DCUtR would upgrade every circuit to a direct connection and take the
//! server out of the path we want to measure) and no store: it answers direct
//! messages at once and fetches its mailbox when the server notifies it, plus a poll
//! every 15 s. Thousands share one tokio runtime; an idle one costs a few timers and
//! two connections.
//!
//! Its mailbox rounds are the node's: it drives the same machine,
//! `communitas_proto::mbox::client` (challenge, signed fetch, ack, again while there
//! was mail), with one candidate, the server it joined, and a request deadline as
//! long as the transport's timeout (a loaded server is slow, not dead). Every fetched
//! envelope counts as delivered and is accepted at once.
//!
//! What happens to each message is written to the shared [`Ledger`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use communitas_crypto::Identity;
use communitas_net::codec::MsgCodec;
use communitas_net::libp2p::multiaddr::Protocol;
use communitas_net::libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use communitas_net::libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use communitas_net::libp2p::{
    Multiaddr, PeerId, Swarm, identify, identity, noise, ping, relay, tcp, yamux,
};
use communitas_net::mbox::client::{self, Acceptance, Input, NoAnswer, Output, RequestId};
use communitas_net::mbox::{MBOX_PROTOCOL, MboxCodec, MboxRequest, MboxResponse};
use communitas_net::{MSG_PROTOCOL, Receipt};
use communitas_types::{MailboxId, Timestamp};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::ledger::Ledger;

/// How often a client looks in its mailbox without being told (as the node does).
const POLL_EVERY: Duration = Duration::from_secs(15);
/// Bytes asked for per fetch.
const FETCH_BYTES: u32 = 1024 * 1024;
/// How long a request may take: libp2p's request timeout below, the same for the
/// mailbox machine's deadline (a server under load answers late, and late still
/// counts).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The mailbox machine's settings for a light client: one holder, the server.
fn fetch_config() -> client::Config {
    client::Config {
        replicas: 1,
        candidates: 1,
        request_deadline: REQUEST_TIMEOUT,
        fetch_bytes: FETCH_BYTES,
        // It starts on the relay reservation (a wake-up), and a refused or failed
        // round waits for the next notice or poll, as a joined client does.
        joining: Duration::ZERO,
        every: POLL_EVERY,
        ..client::Config::default()
    }
}

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "communitas_net::libp2p::swarm::derive_prelude")]
struct Light {
    relay: relay::client::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    msg: request_response::Behaviour<MsgCodec>,
    mbox: request_response::Behaviour<MboxCodec>,
}

/// What the driver asks of a client.
#[derive(Debug)]
pub(crate) enum Command {
    /// Connect to the server, reserve a relay slot, register for mailbox notices.
    Join { reply: oneshot::Sender<Result<(), String>> },
    /// Open a relayed connection to `peer` (through the server) and keep it.
    Dial { peer: PeerId, reply: oneshot::Sender<Result<(), String>> },
    /// Send `payload` to `to` over the relayed connection.
    Direct { to: PeerId, payload: Vec<u8>, key: [u8; 32] },
    /// Leave a sealed envelope in the server's mailbox.
    Put { envelope: Vec<u8>, key: [u8; 32] },
    /// Fetch the mailbox now and answer when the round is over.
    Sweep { reply: oneshot::Sender<()> },
}

/// One light client. Run it with [`Client::run`].
pub(crate) struct Client {
    swarm: Swarm<Light>,
    mailbox: MailboxId,
    server: PeerId,
    server_addr: Multiaddr,
    ledger: Arc<Mutex<Ledger>>,
    join: Option<oneshot::Sender<Result<(), String>>>,
    reserved: bool,
    dials: HashMap<PeerId, oneshot::Sender<Result<(), String>>>,
    directs: HashMap<OutboundRequestId, [u8; 32]>,
    puts: HashMap<OutboundRequestId, [u8; 32]>,
    /// The mailbox rounds (see the module docs).
    fetch: client::Client<PeerId, Arc<Identity>>,
    /// The machine's requests out, by the transport's id.
    fetches: HashMap<OutboundRequestId, RequestId>,
    /// The machine's last [`Output::WakeAt`].
    wake: Option<Timestamp>,
    /// Sweeps answered when the round under way is over.
    sweeps: Vec<oneshot::Sender<()>>,
    /// Sweeps asked during a round: answered when the round after it is over.
    sweeps_next: Vec<oneshot::Sender<()>>,
}

impl Client {
    /// A client that will join through `server_addr` (ending in `/p2p/<server>`).
    pub(crate) fn new(
        key: identity::Keypair,
        identity: Arc<Identity>,
        server: PeerId,
        server_addr: Multiaddr,
        ledger: Arc<Mutex<Ledger>>,
    ) -> Result<Self, String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let swarm = communitas_net::libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| err(&e))?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| err(&e))?
            .with_behaviour(|key, relay| Light {
                relay,
                identify: identify::Behaviour::new(identify::Config::new(
                    communitas_net::PROTOCOL_VERSION.into(),
                    key.public(),
                )),
                ping: ping::Behaviour::new(
                    ping::Config::new().with_interval(Duration::from_secs(15)),
                ),
                msg: request_response::Behaviour::with_codec(
                    MsgCodec::default(),
                    [(MSG_PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
                ),
                mbox: request_response::Behaviour::with_codec(
                    MboxCodec::default(),
                    [(MBOX_PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
                ),
            })
            .map_err(|e| err(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
            .build();
        let mailbox = identity.public().mailbox_id();
        let me = *swarm.local_peer_id();
        let fetch = client::Client::new(fetch_config(), me, identity.public(), identity.clone());
        Ok(Self {
            swarm,
            mailbox,
            server,
            server_addr,
            ledger,
            join: None,
            reserved: false,
            dials: HashMap::new(),
            directs: HashMap::new(),
            puts: HashMap::new(),
            fetch,
            fetches: HashMap::new(),
            wake: None,
            sweeps: Vec::new(),
            sweeps_next: Vec::new(),
        })
    }

    /// Runs until `stop` or until the driver drops its sender.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        stop: CancellationToken,
    ) {
        // The mailbox machine's one timer; armed once it asks (after the reservation).
        let timer = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(timer);
        let mut armed = None;
        loop {
            if self.wake != armed {
                armed = self.wake;
                if let Some(at) = armed {
                    let wait = at.as_millis().saturating_sub(Timestamp::now().as_millis());
                    timer.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(wait));
                }
            }
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                command = commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.handle_event(event),
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    // Early by a rounding: armed again at the top, the machine not fed.
                    if self.wake.is_some_and(|at| at <= Timestamp::now()) {
                        self.wake = None;
                        self.feed(Input::Tick);
                    }
                }
            }
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // Short synchronous bookkeeping, never held across an await.
        self.ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Join { reply } => {
                let circuit = self.server_addr.clone().with(Protocol::P2pCircuit);
                match self.swarm.listen_on(circuit) {
                    Ok(_) => self.join = Some(reply),
                    Err(e) => {
                        let _ = reply.send(Err(format!("listen on circuit: {e}")));
                    }
                }
            }
            Command::Dial { peer, reply } => {
                let addr =
                    self.server_addr.clone().with(Protocol::P2pCircuit).with(Protocol::P2p(peer));
                self.swarm.add_peer_address(peer, addr.clone());
                match self.swarm.dial(addr) {
                    Ok(()) => {
                        self.dials.insert(peer, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(format!("dial: {e}")));
                    }
                }
            }
            Command::Direct { to, payload, key } => {
                let id = self.swarm.behaviour_mut().msg.send_request(&to, payload);
                self.directs.insert(id, key);
            }
            Command::Put { envelope, key } => {
                let server = self.server;
                let id = self
                    .swarm
                    .behaviour_mut()
                    .mbox
                    .send_request(&server, MboxRequest::Put { envelope });
                self.puts.insert(id, key);
            }
            Command::Sweep { reply } => {
                if self.fetch.in_round() {
                    self.sweeps_next.push(reply);
                } else {
                    self.sweeps.push(reply);
                }
                self.start_fetch();
            }
        }
    }

    fn handle_event(&mut self, event: SwarmEvent<LightEvent>) {
        match event {
            SwarmEvent::Behaviour(LightEvent::Relay(
                relay::client::Event::ReservationReqAccepted { .. },
            )) if !self.reserved => {
                self.reserved = true;
                // Prove we own the mailbox once, so the server notifies us of mail.
                self.start_fetch();
            }
            SwarmEvent::Behaviour(LightEvent::Msg(event)) => self.handle_msg(event),
            SwarmEvent::Behaviour(LightEvent::Mbox(event)) => self.handle_mbox(event),
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                if let Some(reply) = self.dials.remove(&peer_id) {
                    let _ = reply.send(Ok(()));
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                let text = error.to_string();
                // A server at its limit cuts the connection while it is being set up.
                let reason = if text.contains("Failed to negotiate transport") {
                    "connection cut during the handshake".to_owned()
                } else {
                    short(&text)
                };
                if let Some(reply) = peer_id.and_then(|p| self.dials.remove(&p)) {
                    let _ = reply.send(Err(reason.clone()));
                }
                if peer_id == Some(self.server)
                    && let Some(reply) = self.join.take()
                {
                    let _ = reply.send(Err(reason));
                }
            }
            SwarmEvent::ListenerClosed { reason: Err(error), .. } => {
                if let Some(reply) = self.join.take() {
                    let _ = reply.send(Err(short(&error.to_string())));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. }
                if peer_id == self.server =>
            {
                if let Some(reply) = self.join.take() {
                    let _ = reply.send(Err("the server closed the connection".into()));
                }
            }
            _ => {}
        }
    }

    fn handle_msg(&mut self, event: request_response::Event<Vec<u8>, Receipt>) {
        match event {
            request_response::Event::Message { message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let key = *blake3::hash(&request).as_bytes();
                    self.ledger().delivered(key, Instant::now());
                    let _ =
                        self.swarm.behaviour_mut().msg.send_response(channel, Receipt::Delivered);
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(key) = self.directs.remove(&request_id) {
                        match response {
                            Receipt::Delivered => self.ledger().accepted(key),
                            other => self.ledger().refused(key, &format!("relayed_{other:?}")),
                        }
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, .. } => {
                if let Some(key) = self.directs.remove(&request_id) {
                    self.ledger().failed(key, &format!("relayed: {}", short(&error.to_string())));
                }
            }
            _ => {}
        }
    }

    fn handle_mbox(&mut self, event: request_response::Event<MboxRequest, MboxResponse>) {
        match event {
            request_response::Event::Message { message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .mbox
                        .send_response(channel, MboxResponse::Acked(0));
                    if matches!(request, MboxRequest::Notify { mailbox } if mailbox == self.mailbox)
                    {
                        self.start_fetch();
                    }
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(key) = self.puts.remove(&request_id) {
                        match response {
                            MboxResponse::Stored => self.ledger().accepted(key),
                            MboxResponse::Refused(why) => {
                                self.ledger().refused(key, &format!("mailbox_{why:?}"));
                            }
                            other => {
                                self.ledger().failed(key, &format!("mailbox answer {other:?}"))
                            }
                        }
                    } else {
                        self.fetch_answer(request_id, Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, .. } => {
                if let Some(key) = self.puts.remove(&request_id) {
                    self.ledger().failed(key, &format!("mailbox: {}", short(&error.to_string())));
                } else {
                    self.fetch_answer(request_id, Err(NoAnswer));
                }
            }
            _ => {}
        }
    }

    /// Feeds the mailbox machine `input` and carries out what it asks, in order;
    /// what comes back at once (the one holder, our verdicts) is fed next.
    fn feed(&mut self, input: Input<PeerId>) {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            let now = Timestamp::now();
            let outputs: Vec<Output<PeerId>> = self.fetch.handle(input, now).collect();
            for output in outputs {
                match output {
                    // Our one candidate is the server we joined.
                    Output::FindHolders => inputs.push_back(Input::Holders(vec![self.server])),
                    Output::Send { holder, request_id, request } => {
                        let id = self.swarm.behaviour_mut().mbox.send_request(&holder, request);
                        self.fetches.insert(id, request_id);
                    }
                    // Seen by the recipient: accepted at once (no store to commit to).
                    Output::Accept { hash, .. } => {
                        self.ledger().delivered(hash, Instant::now());
                        let acceptance = Acceptance::Accepted { receipt: None };
                        inputs.push_back(Input::Accepted { hash, acceptance });
                    }
                    Output::RoundDone { answered } => self.round_done(answered),
                    Output::WakeAt(at) => self.wake = Some(at),
                    // No receipts (no sender is told), no duplicates (one holder).
                    _ => {}
                }
            }
        }
    }

    /// Starts a mailbox round, or asks for another right after the one under way.
    fn start_fetch(&mut self) {
        self.feed(Input::Wake);
    }

    /// An answer (or none) to a mailbox request of a round.
    fn fetch_answer(&mut self, id: OutboundRequestId, answer: Result<MboxResponse, NoAnswer>) {
        if let Some(request_id) = self.fetches.remove(&id) {
            self.feed(Input::Answer { request_id, answer });
        }
    }

    /// A round is over: the first answers the join, and each answers the sweeps asked
    /// before it started.
    fn round_done(&mut self, answered: usize) {
        if answered == 0 {
            // Refused or failed: the next notice or poll retries.
            self.ledger().fetch_failed();
        }
        if let Some(reply) = self.join.take() {
            let result =
                if answered == 0 { Err("mailbox registration refused".into()) } else { Ok(()) };
            let _ = reply.send(result);
        }
        for reply in self.sweeps.drain(..) {
            let _ = reply.send(());
        }
        // Sweeps asked during this round: the machine runs another right after it.
        self.sweeps = std::mem::take(&mut self.sweeps_next);
    }
}

/// The first line of an error, short enough to count by.
fn short(error: &str) -> String {
    let first = error.lines().next().unwrap_or(error);
    first.chars().take(80).collect()
}
