//! The node's connections (issue 6): which are direct and which go through a relay,
//! which are duplicates, and which ping found dead.
//!
//! Duplicates: after hole punching (DCUtR) a peer has a relayed and a direct
//! connection, often two direct ones (both sides' punches can succeed over QUIC).
//! Once a direct connection exists the relayed ones are closed (after a grace period
//! for requests in flight on them), and for such a hole-punched peer only the
//! oldest direct connection is kept. Only one side
//! prunes (the one with the smaller PeerId), so the two never close different
//! connections and lose both. Other peers' duplicate direct connections are left
//! alone: some belong to a protocol (a relay server must not close the connection a
//! client's reservation lives on), and the swarm closes idle ones by itself. They
//! are rare: a relay reservation waits for the bootstrap connection and reuses it
//! (`event_loop`), and requests reuse open connections.

use std::collections::{HashMap, HashSet};

use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;

/// How a connection reaches its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionKind {
    /// Straight to the peer (hole-punched or not).
    Direct,
    /// Through a relay server's circuit.
    Relayed,
}

impl ConnectionKind {
    /// `direct` or `relayed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Direct => "direct",
            ConnectionKind::Relayed => "relayed",
        }
    }
}

/// One peer's connections, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerLink {
    /// The peer.
    pub peer: PeerId,
    /// Direct if any of its connections is direct.
    pub kind: ConnectionKind,
    /// Open connections to it.
    pub connections: usize,
}

struct Link {
    peer: PeerId,
    kind: ConnectionKind,
    /// When a ping last came back (or the connection opened).
    alive: Instant,
    /// When to close it as a duplicate (see the module doc).
    prune_at: Option<Instant>,
}

/// A duplicate is closed this long after it became one, so that requests already in
/// flight on it (the first message, usually, on the relayed connection) complete.
const PRUNE_GRACE: Duration = Duration::from_secs(3);

#[derive(Default)]
pub(crate) struct Links {
    /// By connection id; ids grow, so a smaller id is an older connection.
    conns: HashMap<ConnectionId, Link>,
    /// Peers that had a relayed connection while connected (hole-punch candidates).
    relayed: HashSet<PeerId>,
}

impl Links {
    /// A connection opened; returns the connections now scheduled to be closed as
    /// duplicates (see the module doc and [`Links::due`]).
    pub(crate) fn opened(
        &mut self,
        local: &PeerId,
        id: ConnectionId,
        peer: PeerId,
        kind: ConnectionKind,
    ) -> Vec<ConnectionId> {
        let now = Instant::now();
        self.conns.insert(id, Link { peer, kind, alive: now, prune_at: None });
        if kind == ConnectionKind::Relayed {
            self.relayed.insert(peer);
        }
        if *local >= peer || !self.relayed.contains(&peer) {
            return Vec::new();
        }
        let mut mine: Vec<(ConnectionId, ConnectionKind)> = self
            .conns
            .iter()
            .filter(|(_, l)| l.peer == peer)
            .map(|(id, l)| (*id, l.kind))
            .collect();
        mine.sort_by_key(|(id, _)| *id);
        let Some(keep) = mine.iter().find(|(_, k)| *k == ConnectionKind::Direct).map(|(id, _)| *id)
        else {
            return Vec::new();
        };
        let extra: Vec<ConnectionId> =
            mine.into_iter().map(|(id, _)| id).filter(|id| *id != keep).collect();
        for id in &extra {
            if let Some(link) = self.conns.get_mut(id) {
                link.prune_at.get_or_insert(now + PRUNE_GRACE);
            }
        }
        extra
    }

    /// Duplicates whose grace period is over: close them.
    pub(crate) fn due(&mut self) -> Vec<ConnectionId> {
        let now = Instant::now();
        let due: Vec<ConnectionId> = self
            .conns
            .iter()
            .filter(|(_, l)| l.prune_at.is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in &due {
            if let Some(link) = self.conns.get_mut(id) {
                link.prune_at = None;
            }
        }
        due
    }

    /// A connection closed; its peer and kind, if it was known.
    pub(crate) fn closed(&mut self, id: ConnectionId) -> Option<(PeerId, ConnectionKind)> {
        let link = self.conns.remove(&id)?;
        if !self.conns.values().any(|l| l.peer == link.peer) {
            self.relayed.remove(&link.peer);
        }
        Some((link.peer, link.kind))
    }

    /// The kind of a connection, if it is open.
    pub(crate) fn kind(&self, id: ConnectionId) -> Option<ConnectionKind> {
        self.conns.get(&id).map(|l| l.kind)
    }

    /// A ping on `id` came back.
    pub(crate) fn alive(&mut self, id: ConnectionId) {
        if let Some(link) = self.conns.get_mut(&id) {
            link.alive = Instant::now();
        }
    }

    /// Connections whose last ping came back longer than `limit` ago. A ping's own
    /// timeout covers only the ping, not opening its stream: on a half-open
    /// connection the stream negotiation itself stalls (10 s), so this watchdog is
    /// what bounds the time a dead connection is kept.
    pub(crate) fn stale(&self, limit: Duration) -> Vec<(ConnectionId, PeerId)> {
        self.conns
            .iter()
            .filter(|(_, l)| l.alive.elapsed() > limit)
            .map(|(id, l)| (*id, l.peer))
            .collect()
    }

    /// Every connected peer, sorted.
    pub(crate) fn peers(&self) -> Vec<PeerLink> {
        let mut by_peer: HashMap<PeerId, PeerLink> = HashMap::new();
        for l in self.conns.values() {
            let entry = by_peer.entry(l.peer).or_insert(PeerLink {
                peer: l.peer,
                kind: ConnectionKind::Relayed,
                connections: 0,
            });
            entry.connections += 1;
            if l.kind == ConnectionKind::Direct {
                entry.kind = ConnectionKind::Direct;
            }
        }
        let mut peers: Vec<PeerLink> = by_peer.into_values().collect();
        peers.sort_by_key(|p| p.peer);
        peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ordered() -> (PeerId, PeerId) {
        let (a, b) = (PeerId::random(), PeerId::random());
        if a < b { (a, b) } else { (b, a) }
    }

    #[test]
    fn the_smaller_side_closes_relayed_once_direct() {
        let (small, large) = ordered();
        let mut links = Links::default();
        let c = ConnectionId::new_unchecked;
        assert!(links.opened(&small, c(1), large, ConnectionKind::Relayed).is_empty());
        assert!(links.opened(&small, c(2), large, ConnectionKind::Relayed).is_empty());
        assert_eq!(links.opened(&small, c(3), large, ConnectionKind::Direct), vec![c(1), c(2)]);
        assert_eq!(links.closed(c(1)), Some((large, ConnectionKind::Relayed)));
        links.closed(c(2));
        // Both sides' punches succeeded: the newer direct connection goes.
        assert_eq!(links.opened(&small, c(4), large, ConnectionKind::Direct), vec![c(4)]);
        // Not at once: requests in flight on it get the grace period.
        assert!(links.due().is_empty());
        std::thread::sleep(PRUNE_GRACE + Duration::from_millis(10));
        assert_eq!(links.due(), vec![c(4)]);
        assert!(links.due().is_empty(), "reported once");
        links.closed(c(4));
        assert_eq!(
            links.peers(),
            vec![PeerLink { peer: large, kind: ConnectionKind::Direct, connections: 1 }]
        );
    }

    #[test]
    fn duplicate_direct_connections_of_other_peers_are_left_alone() {
        let (small, large) = ordered();
        let mut links = Links::default();
        let c = ConnectionId::new_unchecked;
        assert!(links.opened(&small, c(1), large, ConnectionKind::Direct).is_empty());
        assert!(links.opened(&small, c(2), large, ConnectionKind::Direct).is_empty());
    }

    #[test]
    fn the_larger_side_never_closes() {
        let (small, large) = ordered();
        let mut links = Links::default();
        let c = ConnectionId::new_unchecked;
        assert!(links.opened(&large, c(1), small, ConnectionKind::Relayed).is_empty());
        assert!(links.opened(&large, c(2), small, ConnectionKind::Direct).is_empty());
        assert!(links.opened(&large, c(3), small, ConnectionKind::Direct).is_empty());
        assert_eq!(links.peers()[0].connections, 3);
    }
}
