//! The task that owns the swarm.
//!
//! `run` loops over, in order: shutdown, the relay and liveness timers, commands from
//! the [`Client`], swarm events, and finished address derivations. Every arm hands off
//! to a method and never awaits anything that can block on a peer: inbound requests are
//! passed on with `try_send`, and derivations run on blocking threads.
//!
//! This file is the loop and its dispatch; the work is by concern:
//! - [`relays`]: connections (direct or relayed, duplicates, pings that stopped coming
//!   back), relay reservations, hole punches and our addresses;
//! - [`records`]: the DHT: publishing and looking up identity records, validating the
//!   records other nodes put here (rate-limited per peer, in their own bounded queue
//!   so that they never delay our lookups), closest peers;
//! - [`requests`]: `/communitas/msg/1` and `/communitas/mbox/1`: our requests waiting
//!   for their answers, and inbound ones handed to the node or shed when it is behind.

mod records;
mod relays;
mod requests;

use std::collections::HashMap;

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{PeerId, Swarm};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::client::{Client, Command, Status};
use crate::links::Links;
use crate::{Config, Error, Event, NetMetrics};

/// Owns the swarm. Run it with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    client: Client,
    records: records::Records,
    requests: requests::Requests,
    links: Links,
    /// Relays we listen through (by relay PeerId).
    relays: HashMap<PeerId, relays::Relay>,
    /// A connection with no ping back for this long is closed (ping interval +
    /// timeout).
    ping_limit: std::time::Duration,
    /// A server node: its listen addresses are its external addresses.
    server: bool,
    only_global_ips: bool,
    /// What may be dialled: the transport enforces it; identify's addresses that it
    /// refuses are not even added to the routing table.
    dial_policy: crate::dial::DialPolicy,
    metrics: NetMetrics,
}

impl EventLoop {
    pub(crate) fn new(
        mut swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Event>,
        client: Client,
        config: &Config,
        metrics: NetMetrics,
    ) -> Result<Self, Error> {
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| Error::Listen { addr: addr.clone(), reason: e.into() })?;
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
        Ok(Self {
            swarm,
            commands,
            events,
            client,
            records: records::Records::default(),
            requests: requests::Requests::default(),
            links: Links::default(),
            relays: relays::from_config(&config.relays)?,
            ping_limit: config.ping_interval + config.ping_timeout,
            server: config.server,
            only_global_ips: config.only_global_ips,
            dial_policy: crate::dial::DialPolicy::from_config(config),
            metrics,
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
        let mut relay_check = tokio::time::interval_at(
            tokio::time::Instant::now() + relays::RELAY_CHECK,
            relays::RELAY_CHECK,
        );
        let mut liveness = tokio::time::interval(relays::LIVENESS_CHECK);
        liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut forget = tokio::time::interval(records::FORGET_PUTS);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                _ = relay_check.tick(), if !self.relays.is_empty() => self.check_relays(),
                _ = liveness.tick() => self.close_stale(),
                _ = forget.tick() => self.records.forget_idle_putters(),
                command = self.commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.handle_swarm_event(event),
                checked = self.records.validated(), if self.records.validating() => {
                    for c in checked {
                        self.handle_checked(c, true);
                    }
                }
            }
        }
        tracing::debug!("network event loop stopped");
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Listen { addr, reply } => {
                let result = self
                    .swarm
                    .listen_on(addr.clone())
                    .map(|_| ())
                    .map_err(|e| Error::Listen { addr, reason: e.into() });
                let _ = reply.send(result);
            }
            Command::Publish { address, record_set, reply } => {
                self.publish(address, record_set, reply)
            }
            Command::Resolve { address, reply } => self.resolve(address, reply),
            Command::ClosestPeers { key, reply } => self.closest_peers(key, reply),
            Command::ClosestKnownPeers { key, reply } => self.closest_known_peers(key, reply),
            Command::Send { peer, addrs, envelope, reply } => {
                self.send(peer, addrs, envelope, reply)
            }
            Command::Respond { channel, receipt } => {
                // Fails only if the sender hung up; it will retry and we deduplicate.
                let _ = self.swarm.behaviour_mut().msg.send_response(channel, receipt);
            }
            Command::Mbox { peer, request, reply } => self.mailbox(peer, request, reply),
            Command::MboxRespond { channel, response } => {
                let _ = self.swarm.behaviour_mut().mbox.send_response(channel, response);
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
                    shed_messages: self.requests.shed(),
                    peers: self.links.peers(),
                });
            }
        }
    }

    fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Msg(event)) => self.handle_msg(event),
            SwarmEvent::Behaviour(BehaviourEvent::Mbox(event)) => self.handle_mbox(event),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.handle_kad(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => self.handle_identify(event),
            SwarmEvent::Behaviour(BehaviourEvent::RelayServer(event)) => self.handle_relay(&event),
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(event)) => {
                tracing::info!(?event, "relay client");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => self.handle_ping(event),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => self.handle_dcutr(event),
            SwarmEvent::IncomingConnectionError { error, .. } => self.handle_refused(&error),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                endpoint,
                ..
            } => self.handle_opened(peer_id, connection_id, num_established.get(), &endpoint),
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } => {
                self.handle_closed(peer_id, connection_id, num_established)
            }
            SwarmEvent::NewListenAddr { address, .. } => self.handle_listening(address),
            SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                self.handle_listener_closed(listener_id, &reason)
            }
            SwarmEvent::ExpiredListenAddr { .. }
            | SwarmEvent::ExternalAddrConfirmed { .. }
            | SwarmEvent::ExternalAddrExpired { .. } => self.notify(Event::AddressesChanged),
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
}
