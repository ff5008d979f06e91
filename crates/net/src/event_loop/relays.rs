//! Connections and reachability (issue 6): which connections are direct or relayed,
//! which are duplicates and which stopped answering pings; the relay reservations we
//! listen through; hole punches; and the addresses we call ours.
//!
//! Flow: a connection opens → [`Links`](crate::links::Links) records its kind and
//! schedules duplicates for closing → a direct connection to a relay we have no
//! reservation on reserves at once. The liveness timer closes duplicates whose grace
//! ended and connections with no ping back within the ping limit; the relay timer
//! re-dials relays and renews reservations that ended (a relay restart).

use std::collections::HashMap;
use std::time::Duration;

use libp2p::core::ConnectedPoint;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{ConnectionId, ListenError};
use libp2p::{Multiaddr, PeerId, connection_limits, dcutr, memory_connection_limits, ping, relay};

use super::EventLoop;
use crate::links::ConnectionKind;
use crate::{Error, Event};

/// How often connections are checked for pings that stopped coming back.
pub(super) const LIVENESS_CHECK: Duration = Duration::from_millis(500);

/// How often relay reservations are checked (and re-made after a relay restart).
pub(super) const RELAY_CHECK: Duration = Duration::from_secs(5);

/// A relay we keep a reservation on (issue 6).
pub(super) struct Relay {
    addr: Multiaddr,
    /// The circuit listener, once asked for.
    listener: Option<ListenerId>,
}

/// The relays of the configuration, by PeerId; each address must end in `/p2p/<id>`.
pub(super) fn from_config(relays: &[Multiaddr]) -> Result<HashMap<PeerId, Relay>, Error> {
    let mut by_peer = HashMap::new();
    for relay in relays {
        let Some(Protocol::P2p(peer)) = relay.iter().last() else {
            return Err(Error::BootstrapWithoutPeerId(relay.clone()));
        };
        by_peer.insert(peer, Relay { addr: relay.clone(), listener: None });
    }
    Ok(by_peer)
}

impl EventLoop {
    /// Reserves on every relay we are connected to and have no listener on; dials
    /// the others. Reserving over the open connection (instead of letting the relay
    /// client dial its own) keeps one connection per relay.
    pub(super) fn check_relays(&mut self) {
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
    pub(super) fn close_stale(&mut self) {
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

    pub(super) fn handle_opened(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        established: u32,
        endpoint: &ConnectedPoint,
    ) {
        let kind =
            if endpoint.is_relayed() { ConnectionKind::Relayed } else { ConnectionKind::Direct };
        tracing::debug!(%peer, kind = kind.as_str(), "connection opened");
        let local = *self.swarm.local_peer_id();
        let duplicates = self.links.opened(&local, id, peer, kind);
        if !duplicates.is_empty() {
            tracing::debug!(%peer, count = duplicates.len(), "duplicate connections will be closed");
        }
        self.notify(Event::Link { peer, kind, open: true });
        if kind == ConnectionKind::Direct
            && self.relays.get(&peer).is_some_and(|r| r.listener.is_none())
        {
            self.check_relays();
        }
        if established == 1 {
            let connected = self.swarm.connected_peers().count();
            self.notify(Event::Connection { peer, open: true, connected });
        }
    }

    pub(super) fn handle_closed(&mut self, peer: PeerId, id: ConnectionId, established: u32) {
        if let Some((_, kind)) = self.links.closed(id) {
            self.notify(Event::Link { peer, kind, open: false });
        }
        if established == 0 {
            let connected = self.swarm.connected_peers().count();
            self.notify(Event::Connection { peer, open: false, connected });
        }
    }

    pub(super) fn handle_ping(&mut self, event: ping::Event) {
        match event.result {
            Ok(_) => self.links.alive(event.connection),
            Err(error) => {
                // Since libp2p-ping 0.44 a failed ping no longer closes the connection:
                // we do, or a half-open one would linger until the idle timeout.
                let peer = event.peer;
                tracing::debug!(%peer, %error, "ping failed: closing the connection");
                if self.swarm.close_connection(event.connection) {
                    self.notify(Event::PingFailed { peer });
                }
            }
        }
    }

    pub(super) fn handle_dcutr(&mut self, event: dcutr::Event) {
        let peer = event.remote_peer_id;
        match &event.result {
            Ok(_) => tracing::info!(%peer, "hole punch: direct connection"),
            Err(e) => tracing::info!(%peer, error = %e, "hole punch failed"),
        }
        self.notify(Event::HolePunch { peer, ok: event.result.is_ok() });
    }

    /// Counts inbound connections our limits turned away.
    pub(super) fn handle_refused(&mut self, error: &ListenError) {
        let ListenError::Denied { cause } = error else { return };
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

    /// Counts what the relay server turned away (limits and rate limits).
    pub(super) fn handle_relay(&mut self, event: &relay::Event) {
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

    pub(super) fn handle_listening(&mut self, address: Multiaddr) {
        tracing::info!(%address, "listening");
        // A server is reachable where it listens (that is what `server` means); the
        // relay serves reservations only with a confirmed external address. Loopback
        // only on a loopback test network.
        if self.server && !is_circuit(&address) && (!self.only_global_ips || !is_loopback(&address))
        {
            self.swarm.add_external_address(address);
        }
        self.notify(Event::AddressesChanged);
    }

    /// A listener ended; a relay's circuit listener is renewed by the relay timer.
    pub(super) fn handle_listener_closed(
        &mut self,
        listener: ListenerId,
        reason: &Result<(), std::io::Error>,
    ) {
        for (peer, relay) in &mut self.relays {
            if relay.listener == Some(listener) {
                tracing::info!(relay = %peer, ?reason, "relay reservation ended; renewing");
                relay.listener = None;
            }
        }
        self.notify(Event::AddressesChanged);
    }
}

fn is_circuit(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}
