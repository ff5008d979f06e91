//! The task that owns the swarm.
//!
//! `run` loops over, in order: shutdown, commands from the [`Client`], swarm events,
//! and finished address derivations. Every arm hands off to a `handle_*` method and
//! never awaits anything that can block on a peer: inbound messages are passed on with
//! `try_send`, and derivations run on blocking threads.

use std::collections::HashMap;

use communitas_crypto::IdentityRecord;
use communitas_crypto::record::{RecordSet, dht_key};
use communitas_types::Address;
use futures::StreamExt;
use libp2p::kad::{self, GetRecordOk, QueryId, QueryResult, Quorum, Record, RecordKey};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::{ListenError, SwarmEvent};
use libp2p::{
    PeerId, Swarm, connection_limits, dcutr, identify, memory_connection_limits, ping, relay,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::client::{Client, Command, MboxResponder, Responder, Status};
use crate::codec::Receipt;
use crate::links::{ConnectionKind, Links};
use crate::mbox::{MboxRequest, MboxResponse, Refusal};
use crate::records::{Checked, Validator, Waiter};
use crate::{Config, Error, Event, NetMetrics};

/// Record puts accepted from one peer per minute; more are dropped (ARCHITECTURE §3:
/// validation is costly on purpose, so it is rationed).
const PUTS_PER_PEER_PER_MINUTE: u32 = 30;

/// A lookup in progress.
struct Lookup {
    address: Address,
    reply: oneshot::Sender<Result<Vec<IdentityRecord>, Error>>,
    /// Records waiting for the validator.
    pending: usize,
    /// The DHT query is over.
    finished: bool,
    /// Valid records so far, by identity.
    found: Vec<IdentityRecord>,
}

/// A relay we keep a reservation on (issue 6).
struct Relay {
    addr: libp2p::Multiaddr,
    /// The circuit listener, once asked for.
    listener: Option<libp2p::core::transport::ListenerId>,
}

/// How often connections are checked for pings that stopped coming back.
const LIVENESS_CHECK: std::time::Duration = std::time::Duration::from_millis(500);

/// How often relay reservations are checked (and re-made after a relay restart).
const RELAY_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Owns the swarm. Run it with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    client: Client,
    validator: Validator,
    sends: HashMap<OutboundRequestId, oneshot::Sender<Result<Receipt, Error>>>,
    mbox_requests: HashMap<OutboundRequestId, oneshot::Sender<Result<MboxResponse, Error>>>,
    closest: HashMap<QueryId, oneshot::Sender<Vec<PeerId>>>,
    publishes: HashMap<QueryId, oneshot::Sender<Result<(), Error>>>,
    lookups: HashMap<u64, Lookup>,
    lookup_queries: HashMap<QueryId, u64>,
    next_token: u64,
    puts_this_minute: HashMap<PeerId, u32>,
    minute_started: tokio::time::Instant,
    shed_messages: u64,
    links: Links,
    /// Relays we listen through (by relay PeerId).
    relays: HashMap<PeerId, Relay>,
    /// A connection with no ping back for this long is closed (ping interval +
    /// timeout).
    ping_limit: std::time::Duration,
    /// A server node: its listen addresses are its external addresses.
    server: bool,
    only_global_ips: bool,
    metrics: NetMetrics,
}

impl EventLoop {
    pub(crate) fn new(
        mut swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Event>,
        client: Client,
        config: &Config,
    ) -> Result<Self, Error> {
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| Error::Listen { addr: addr.clone(), reason: e.to_string() })?;
        }
        // Declared (`--external-addr`) and announced (`--announce`) addresses are ours
        // by decree: external from the start (announced ones, with AutoNAT off, the
        // only ones).
        for addr in config.external_addrs.iter().chain(&config.announce) {
            swarm.add_external_address(addr.clone());
        }
        for addr in &config.bootstrap {
            let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                return Err(Error::BootstrapWithoutPeerId(addr.clone()));
            };
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            if let Some(autonat) = swarm.behaviour_mut().autonat.as_mut() {
                autonat.add_server(peer, Some(addr.clone()));
            }
            if let Err(e) = swarm.dial(addr.clone()) {
                tracing::warn!(%addr, error = %e, "cannot dial bootstrap node");
            }
        }
        let mut relays = HashMap::new();
        for relay in &config.relays {
            let Some(Protocol::P2p(peer)) = relay.iter().last() else {
                return Err(Error::BootstrapWithoutPeerId(relay.clone()));
            };
            relays.insert(peer, Relay { addr: relay.clone(), listener: None });
        }
        Ok(Self {
            swarm,
            commands,
            events,
            client,
            validator: Validator::default(),
            sends: HashMap::new(),
            mbox_requests: HashMap::new(),
            closest: HashMap::new(),
            publishes: HashMap::new(),
            lookups: HashMap::new(),
            lookup_queries: HashMap::new(),
            next_token: 0,
            puts_this_minute: HashMap::new(),
            minute_started: tokio::time::Instant::now(),
            shed_messages: 0,
            links: Links::default(),
            relays,
            ping_limit: config.ping_interval + config.ping_timeout,
            server: config.server,
            only_global_ips: config.only_global_ips,
            metrics: NetMetrics::default(),
        })
    }

    /// The local PeerId.
    pub fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// The network's counters (refusals), to register with the node's metrics.
    pub fn metrics(&self) -> NetMetrics {
        self.metrics.clone()
    }

    /// Runs until `shutdown` is cancelled or every client is dropped.
    pub async fn run(mut self, shutdown: CancellationToken) {
        // Fails only without known peers, which is fine for the first node.
        let _ = self.swarm.behaviour_mut().kad.bootstrap();
        // The first reservation is made as soon as the bootstrap connection to the
        // relay opens; the timer only catches relays that were not connected.
        let mut relay_check =
            tokio::time::interval_at(tokio::time::Instant::now() + RELAY_CHECK, RELAY_CHECK);
        let mut liveness = tokio::time::interval(LIVENESS_CHECK);
        liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                _ = relay_check.tick(), if !self.relays.is_empty() => self.check_relays(),
                _ = liveness.tick() => self.close_stale(),
                command = self.commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.handle_swarm_event(event),
                checked = self.validator.next(), if self.validator.is_busy() => {
                    for c in checked {
                        self.handle_checked(c, true);
                    }
                }
            }
        }
        tracing::debug!("network event loop stopped");
    }

    /// Reserves on every relay we are connected to and have no listener on; dials
    /// the others. Reserving over the open connection (instead of letting the relay
    /// client dial its own) keeps one connection per relay.
    fn check_relays(&mut self) {
        let mut listen = Vec::new();
        for (peer, relay) in &self.relays {
            if relay.listener.is_some() {
                continue;
            }
            if self.swarm.is_connected(peer) {
                listen.push(*peer);
            } else if let Err(e) = self.swarm.dial(relay.addr.clone()) {
                tracing::debug!(relay = %peer, error = %e, "cannot dial the relay");
            }
        }
        for peer in listen {
            let Some(relay) = self.relays.get_mut(&peer) else { continue };
            let circuit = relay.addr.clone().with(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit) {
                Ok(id) => relay.listener = Some(id),
                Err(e) => {
                    tracing::warn!(relay = %peer, error = %e, "cannot listen through the relay")
                }
            }
        }
    }

    /// Closes duplicates whose grace ended, and connections whose pings stopped
    /// coming back (half-open or dead).
    fn close_stale(&mut self) {
        for id in self.links.due() {
            self.swarm.close_connection(id);
        }
        for (id, peer) in self.links.stale(self.ping_limit) {
            tracing::debug!(%peer, "no ping back: closing the connection");
            self.links.alive(id);
            if self.swarm.close_connection(id) {
                self.notify(Event::PingFailed { peer });
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Listen { addr, reply } => {
                let result = self
                    .swarm
                    .listen_on(addr.clone())
                    .map(|_| ())
                    .map_err(|e| Error::Listen { addr, reason: e.to_string() });
                let _ = reply.send(result);
            }
            Command::Publish { address, record_set, reply } => {
                let record = Record::new(RecordKey::new(&dht_key(&address)), record_set);
                match self.swarm.behaviour_mut().kad.put_record(record, Quorum::One) {
                    Ok(query) => {
                        self.publishes.insert(query, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(Error::Publish(e.to_string())));
                    }
                }
            }
            Command::Resolve { address, reply } => {
                let token = self.next_token;
                self.next_token += 1;
                let query =
                    self.swarm.behaviour_mut().kad.get_record(RecordKey::new(&dht_key(&address)));
                self.lookup_queries.insert(query, token);
                self.lookups.insert(
                    token,
                    Lookup { address, reply, pending: 0, finished: false, found: Vec::new() },
                );
            }
            Command::Send { peer, addrs, envelope, reply } => {
                for addr in addrs {
                    self.swarm.add_peer_address(peer, addr);
                }
                let id = self.swarm.behaviour_mut().msg.send_request(&peer, envelope);
                self.sends.insert(id, reply);
            }
            Command::Respond { channel, receipt } => {
                // Fails only if the sender hung up; it will retry and we deduplicate.
                let _ = self.swarm.behaviour_mut().msg.send_response(channel, receipt);
            }
            Command::Mbox { peer, request, reply } => {
                let id = self.swarm.behaviour_mut().mbox.send_request(&peer, request);
                self.mbox_requests.insert(id, reply);
            }
            Command::MboxRespond { channel, response } => {
                let _ = self.swarm.behaviour_mut().mbox.send_response(channel, response);
            }
            Command::ClosestPeers { key, reply } => {
                let query = self.swarm.behaviour_mut().kad.get_closest_peers(key);
                self.closest.insert(query, reply);
            }
            Command::AddAddresses { peer, addrs } => {
                for addr in addrs {
                    self.swarm.add_peer_address(peer, addr);
                }
            }
            Command::Status { reply } => {
                let _ = reply.send(Status {
                    peer_id: *self.swarm.local_peer_id(),
                    listen_addrs: self.swarm.listeners().cloned().collect(),
                    external_addrs: self.swarm.external_addresses().cloned().collect(),
                    connected_peers: self.swarm.connected_peers().count(),
                    shed_messages: self.shed_messages,
                    peers: self.links.peers(),
                });
            }
        }
    }

    fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Msg(event)) => self.handle_msg(event),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.handle_kad(event),
            SwarmEvent::Behaviour(BehaviourEvent::Mbox(event)) => self.handle_mbox(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocols.contains(&crate::KAD_PROTOCOL) => {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::RelayServer(event)) => self.handle_relay(&event),
            SwarmEvent::IncomingConnectionError {
                error: ListenError::Denied { cause }, ..
            } => {
                let what = if cause.downcast_ref::<connection_limits::Exceeded>().is_some() {
                    "connection_limit"
                } else if cause
                    .downcast_ref::<memory_connection_limits::MemoryUsageLimitExceeded>()
                    .is_some()
                {
                    "memory_limit"
                } else {
                    "connection_other"
                };
                tracing::debug!(what, "inbound connection refused");
                self.metrics.refuse(what);
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                // A server is reachable where it listens (that is what `server`
                // means); the relay serves reservations only with a confirmed
                // external address. Loopback only on a loopback test network.
                if self.server
                    && !is_circuit(&address)
                    && (!self.only_global_ips || !is_loopback(&address))
                {
                    self.swarm.add_external_address(address.clone());
                }
                self.notify(Event::AddressesChanged);
            }
            SwarmEvent::ExpiredListenAddr { .. }
            | SwarmEvent::ExternalAddrConfirmed { .. }
            | SwarmEvent::ExternalAddrExpired { .. } => self.notify(Event::AddressesChanged),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                endpoint,
                ..
            } => {
                let kind = if endpoint.is_relayed() {
                    ConnectionKind::Relayed
                } else {
                    ConnectionKind::Direct
                };
                tracing::debug!(peer = %peer_id, kind = kind.as_str(), "connection opened");
                let local = *self.swarm.local_peer_id();
                let duplicates = self.links.opened(&local, connection_id, peer_id, kind);
                if !duplicates.is_empty() {
                    tracing::debug!(peer = %peer_id, count = duplicates.len(), "duplicate connections will be closed");
                }
                self.notify(Event::Link { peer: peer_id, kind, open: true });
                if kind == ConnectionKind::Direct
                    && self.relays.get(&peer_id).is_some_and(|r| r.listener.is_none())
                {
                    self.check_relays();
                }
                if num_established.get() == 1 {
                    let connected = self.swarm.connected_peers().count();
                    self.notify(Event::Connection { peer: peer_id, open: true, connected });
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } => {
                if let Some((_, kind)) = self.links.closed(connection_id) {
                    self.notify(Event::Link { peer: peer_id, kind, open: false });
                }
                if num_established == 0 {
                    let connected = self.swarm.connected_peers().count();
                    self.notify(Event::Connection { peer: peer_id, open: false, connected });
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                connection,
                result: Ok(_),
                ..
            })) => self.links.alive(connection),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(error),
            })) => {
                // Since libp2p-ping 0.44 a failed ping no longer closes the connection:
                // we do, or a half-open one would linger until the idle timeout.
                tracing::debug!(%peer, %error, "ping failed: closing the connection");
                if self.swarm.close_connection(connection) {
                    self.notify(Event::PingFailed { peer });
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result,
            })) => {
                let ok = result.is_ok();
                match &result {
                    Ok(_) => {
                        tracing::info!(peer = %remote_peer_id, "hole punch: direct connection")
                    }
                    Err(e) => {
                        tracing::info!(peer = %remote_peer_id, error = %e, "hole punch failed")
                    }
                }
                self.notify(Event::HolePunch { peer: remote_peer_id, ok });
            }
            SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                for (peer, relay) in &mut self.relays {
                    if relay.listener == Some(listener_id) {
                        tracing::info!(relay = %peer, ?reason, "relay reservation ended; renewing");
                        relay.listener = None;
                    }
                }
                self.notify(Event::AddressesChanged);
            }
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(event)) => {
                tracing::info!(?event, "relay client");
            }
            _ => {}
        }
    }

    /// Passes an event to the node without waiting; control events are rare and
    /// small, so a full buffer only drops them (the node re-reads status anyway).
    fn notify(&mut self, event: Event) {
        if self.events.try_send(event).is_err() {
            tracing::debug!("event buffer full: dropped a control event");
        }
    }

    /// Counts what the relay server turned away (limits and rate limits).
    fn handle_relay(&mut self, event: &relay::Event) {
        match event {
            relay::Event::ReservationReqDenied { src_peer_id, .. } => {
                tracing::debug!(peer = %src_peer_id, "relay reservation refused");
                self.metrics.refuse("relay_reservation");
            }
            relay::Event::CircuitReqDenied { src_peer_id, .. } => {
                tracing::debug!(peer = %src_peer_id, "relay circuit refused");
                self.metrics.refuse("relay_circuit");
            }
            _ => {}
        }
    }

    fn handle_msg(&mut self, event: request_response::Event<Vec<u8>, Receipt>) {
        match event {
            request_response::Event::Message { peer, message, connection_id } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    if self.links.kind(connection_id) == Some(ConnectionKind::Relayed) {
                        // Rare (only until hole punching succeeds), so worth a line.
                        tracing::info!(%peer, "message arrived through a relay circuit");
                    }
                    let responder = Responder::new(channel, self.client.clone());
                    let event = Event::Message { peer, envelope: request, responder };
                    if let Err(
                        mpsc::error::TrySendError::Full(event)
                        | mpsc::error::TrySendError::Closed(event),
                    ) = self.events.try_send(event)
                    {
                        self.shed_messages += 1;
                        if let Event::Message { responder, .. } = event {
                            let _ = self
                                .swarm
                                .behaviour_mut()
                                .msg
                                .send_response(responder.into_channel(), Receipt::Busy);
                        }
                    }
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(reply) = self.sends.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, .. } => {
                if let Some(reply) = self.sends.remove(&request_id) {
                    let _ = reply.send(Err(Error::Unreachable(error.to_string())));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound message failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn handle_mbox(&mut self, event: request_response::Event<MboxRequest, MboxResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let responder = MboxResponder::new(channel, self.client.clone());
                    let event = Event::Mailbox { peer, request, responder };
                    if let Err(
                        mpsc::error::TrySendError::Full(event)
                        | mpsc::error::TrySendError::Closed(event),
                    ) = self.events.try_send(event)
                    {
                        self.shed_messages += 1;
                        if let Event::Mailbox { responder, .. } = event {
                            let busy = MboxResponse::Refused(Refusal::Unavailable);
                            let _ = self
                                .swarm
                                .behaviour_mut()
                                .mbox
                                .send_response(responder.into_channel(), busy);
                        }
                    }
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(reply) = self.mbox_requests.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, .. } => {
                if let Some(reply) = self.mbox_requests.remove(&request_id) {
                    let _ = reply.send(Err(Error::Unreachable(error.to_string())));
                }
            }
            _ => {}
        }
    }

    fn handle_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest {
                request: kad::InboundRequest::PutRecord { source, record: Some(record), .. },
            } => {
                self.handle_inbound_put(source, record);
            }
            kad::Event::OutboundQueryProgressed { id, result, step, .. } => match result {
                QueryResult::GetRecord(Ok(GetRecordOk::FoundRecord(found))) => {
                    self.handle_found(id, &found.record.value);
                    if step.last {
                        self.finish_query(id);
                    }
                }
                QueryResult::GetRecord(_) => self.finish_query(id),
                QueryResult::GetClosestPeers(result) => {
                    if let Some(reply) = self.closest.remove(&id) {
                        let peers = match result {
                            Ok(ok) => ok.peers,
                            Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                        };
                        let mut ids = Vec::with_capacity(peers.len());
                        for info in peers {
                            for addr in info.addrs {
                                self.swarm.add_peer_address(info.peer_id, addr);
                            }
                            ids.push(info.peer_id);
                        }
                        let _ = reply.send(ids);
                    }
                }
                QueryResult::PutRecord(result) => {
                    if let Some(reply) = self.publishes.remove(&id) {
                        let _ = reply
                            .send(result.map(|_| ()).map_err(|e| Error::Publish(e.to_string())));
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn handle_inbound_put(&mut self, source: PeerId, record: Record) {
        if self.minute_started.elapsed() >= std::time::Duration::from_secs(60) {
            self.puts_this_minute.clear();
            self.minute_started = tokio::time::Instant::now();
        }
        let count = self.puts_this_minute.entry(source).or_default();
        *count += 1;
        if *count > PUTS_PER_PEER_PER_MINUTE {
            tracing::debug!(peer = %source, "record put over the rate limit: dropped");
            return;
        }
        let set = match RecordSet::from_bytes(&record.value) {
            Ok(set) => set,
            Err(e) => {
                tracing::debug!(peer = %source, error = %e, "invalid record put: dropped");
                return;
            }
        };
        for identity_record in set.records {
            let waiter = Waiter::Put {
                key: record.key.clone(),
                expires: record.expires,
                publisher: record.publisher,
            };
            match self.validator.check(identity_record, waiter) {
                Ok(Some(checked)) => self.handle_checked(checked, false),
                Ok(None) => {}
                Err(_) => {
                    tracing::debug!(peer = %source, "record validator overloaded: put dropped")
                }
            }
        }
    }

    fn handle_found(&mut self, query: QueryId, value: &[u8]) {
        let Some(&token) = self.lookup_queries.get(&query) else { return };
        let Ok(set) = RecordSet::from_bytes(value) else { return };
        for record in set.records {
            match self.validator.check(record, Waiter::Resolve { token }) {
                Ok(Some(checked)) => self.handle_checked(checked, false),
                Ok(None) => {
                    if let Some(lookup) = self.lookups.get_mut(&token) {
                        lookup.pending += 1;
                    }
                }
                Err(_) => tracing::debug!("record validator overloaded: lookup record skipped"),
            }
        }
    }

    fn finish_query(&mut self, query: QueryId) {
        if let Some(token) = self.lookup_queries.remove(&query) {
            if let Some(lookup) = self.lookups.get_mut(&token) {
                lookup.finished = true;
            }
            self.maybe_answer(token);
        }
    }

    /// A record whose keys were hashed; `queued` if it waited for the validator.
    fn handle_checked(&mut self, checked: Checked, queued: bool) {
        let Checked { address, record, waiter } = checked;
        match waiter {
            Waiter::Put { key, expires, publisher } => {
                if key.as_ref() != dht_key(&address) {
                    tracing::debug!("record put under another address's key: dropped");
                    return;
                }
                let store = self.swarm.behaviour_mut().kad.store_mut();
                let mut set = kad::store::RecordStore::get(store, &key)
                    .and_then(|r| RecordSet::from_bytes(&r.value).ok())
                    .unwrap_or_default();
                if set.merge(record) {
                    let value = set.to_bytes();
                    let stored = Record { key, value, publisher, expires };
                    if let Err(e) = kad::store::RecordStore::put(store, stored) {
                        tracing::warn!(error = %e, "record store full");
                    }
                }
            }
            Waiter::Resolve { token } => {
                if let Some(lookup) = self.lookups.get_mut(&token) {
                    if queued {
                        lookup.pending = lookup.pending.saturating_sub(1);
                    }
                    if address == lookup.address {
                        keep_highest(&mut lookup.found, record);
                    }
                }
                self.maybe_answer(token);
            }
        }
    }

    fn maybe_answer(&mut self, token: u64) {
        let done = self.lookups.get(&token).is_some_and(|l| l.finished && l.pending == 0);
        if done && let Some(lookup) = self.lookups.remove(&token) {
            let result =
                if lookup.found.is_empty() { Err(Error::NotFound) } else { Ok(lookup.found) };
            let _ = lookup.reply.send(result);
        }
    }
}

fn is_circuit(addr: &libp2p::Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

fn is_loopback(addr: &libp2p::Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

/// Keeps one record per identity, the one with the highest `seq`.
fn keep_highest(found: &mut Vec<IdentityRecord>, record: IdentityRecord) {
    match found.iter_mut().find(|r| r.identity == record.identity) {
        Some(present) if record.seq > present.seq => *present = record,
        Some(_) => {}
        None => found.push(record),
    }
}
