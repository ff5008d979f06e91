//! Communitas' network: the one libp2p `Swarm` of a node, owned by an [`EventLoop`],
//! driven through a cloneable [`Client`], reporting through a stream of [`Event`]s.
//!
//! Shape (rust-libp2p's file-sharing example, ARCHITECTURE §5): the client sends
//! `Command`s, each with a `oneshot` reply, over a bounded channel; the event loop
//! owns the swarm and every piece of network state, and is the only task that
//! touches them. Inbound messages go out on a bounded channel with `try_send`: when
//! the node is behind, the loop answers `Busy` and counts the drop instead of
//! waiting, so a flood never stalls the swarm.
//!
//! Protocols: QUIC and TCP (Noise + Yamux), Kademlia on `/communitas/kad/1.0.0` with
//! every inbound record validated before it is stored (`records.rs`), identify, ping,
//! AutoNAT, relay client (relay server with `server`), DCUtR, mDNS (opt-in),
//! connection limits, `/communitas/msg/1` ([`codec`]), `/communitas/mbox/1` ([`mbox`]),
//! and raw streams ([`Client::streams`]) for `/communitas/file/1`.

#![deny(missing_docs)]

mod behaviour;
mod client;
pub mod codec;
mod dial;
mod error;
mod event_loop;
mod inflight;
mod links;
pub mod mbox;
mod metrics;
mod records;
mod swarm;

use libp2p::{Multiaddr, PeerId};

pub use behaviour::{KAD_PROTOCOL, PROTOCOL_VERSION};
pub use client::{Client, MboxResponder, Responder, Status};
pub use codec::{MSG_PROTOCOL, Receipt, Rejection};
pub use error::{Cause, Error, ListenFailure, PublishFailure, Setup, Unreachable};
pub use event_loop::EventLoop;
pub use libp2p;
pub use libp2p_stream as stream;
pub use links::{ConnectionKind, PeerLink};
pub use metrics::{NetMetrics, RefusedLabels};

/// How a node joins the network.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on (`/ip4/127.0.0.1/tcp/0`, `/ip4/0.0.0.0/udp/0/quic-v1`,
    /// or `/memory/N` with [`Transport::Memory`]).
    pub listen: Vec<Multiaddr>,
    /// Nodes to join through; each must end in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// A server node: Kademlia server, relay, mailbox (ARCHITECTURE §5 roles).
    pub server: bool,
    /// Announce and discover on the LAN by mDNS. Its multicast leaves the machine:
    /// tests enable it only inside a network namespace.
    pub mdns: bool,
    /// Which transports.
    pub transport: Transport,
    /// Established connections in total.
    pub max_connections: u32,
    /// Established connections to one peer.
    pub max_connections_per_peer: u32,
    /// Concurrent message streams per connection.
    pub max_concurrent_messages: usize,
    /// Let AutoNAT count only global addresses (false for loopback test networks).
    pub only_global_ips: bool,
    /// Events buffered for the node before inbound work is shed.
    pub event_buffer: usize,
    /// Relay servers to take a reservation on and listen through (`…/p2p/<id>`):
    /// for a node behind NAT, so that others can reach it (issue 6).
    pub relays: Vec<Multiaddr>,
    /// How often each connection is pinged; a failed ping closes it, so a
    /// half-open connection is noticed (issue 6).
    pub ping_interval: std::time::Duration,
    /// How long a ping may take before it counts as failed.
    pub ping_timeout: std::time::Duration,
    /// Addresses others reach this node on, declared by its operator (a public server
    /// node knows them; AutoNAT would otherwise have to confirm them first). The relay
    /// serves reservations only once the node has an external address.
    pub external_addrs: Vec<Multiaddr>,
    /// Refuse new connections while the process uses more than this much memory
    /// (libp2p's memory-connection-limits); `None`: no memory limit.
    pub max_memory_bytes: Option<usize>,
    /// Relay reservations and circuits one IP address may open at once before it is
    /// rate-limited (refilled one per second); 0 turns the per-IP limit off (a
    /// loopback benchmark, where every client shares 127.0.0.1).
    pub relay_ip_burst: u32,
    /// If not empty, the only addresses this node gives out (`run --announce`): they
    /// are its external addresses, identify hides the listen addresses, and AutoNAT is
    /// off. For a node behind a forwarder it knows about (a proxy, a port mapping).
    pub announce: Vec<Multiaddr>,
    /// Dial any address a peer gives us. Off, peer-supplied private, loopback,
    /// link-local and other non-global addresses and `/dns*` names are not dialled;
    /// the addresses in `bootstrap` and `relays` always are. On for a network on
    /// loopback or a LAN (`demo`, `testnet`, tests).
    pub dial_any_peer_addr: bool,
}

/// The transports a swarm is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP and QUIC on real sockets.
    Sockets,
    /// libp2p's in-process memory transport (with real Noise and Yamux): for tests.
    Memory,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            bootstrap: Vec::new(),
            server: false,
            mdns: false,
            transport: Transport::Sockets,
            max_connections: 2_000,
            max_connections_per_peer: 4,
            max_concurrent_messages: 256,
            only_global_ips: true,
            event_buffer: 1_024,
            relays: Vec::new(),
            ping_interval: std::time::Duration::from_secs(15),
            ping_timeout: std::time::Duration::from_secs(20),
            external_addrs: Vec::new(),
            max_memory_bytes: None,
            relay_ip_burst: 256,
            announce: Vec::new(),
            dial_any_peer_addr: false,
        }
    }
}

/// What the network tells the node.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A sealed envelope arrived over `/communitas/msg/1`. Answer through `responder`
    /// after committing it; dropping the responder makes the sender retry.
    Message {
        /// The authenticated sending device.
        peer: PeerId,
        /// The envelope bytes (at most 256 KiB, not yet parsed).
        envelope: Vec<u8>,
        /// Where the receipt goes.
        responder: Responder,
    },
    /// A mailbox request (`/communitas/mbox/1`). Answer through `responder`.
    Mailbox {
        /// The authenticated requesting peer.
        peer: PeerId,
        /// The request.
        request: mbox::MboxRequest,
        /// Where the answer goes.
        responder: MboxResponder,
    },
    /// Our reachable addresses changed: republish the identity record.
    AddressesChanged,
    /// One connection opened or closed (every connection, unlike [`Event::Connection`]).
    Link {
        /// The peer.
        peer: PeerId,
        /// Direct or relayed.
        kind: ConnectionKind,
        /// Opened (or closed).
        open: bool,
    },
    /// A hole punch (DCUtR) to `peer` ended.
    HolePunch {
        /// The peer.
        peer: PeerId,
        /// A direct connection resulted.
        ok: bool,
    },
    /// A connection failed its ping and was closed (it was half-open or dead).
    PingFailed {
        /// The peer.
        peer: PeerId,
    },
    /// A connection to `peer` opened or closed; `connected` peers in total now.
    Connection {
        /// The peer.
        peer: PeerId,
        /// Whether a connection is open to it now.
        open: bool,
        /// Peers connected in total.
        connected: usize,
    },
}

/// Builds the swarm and starts listening. Run the returned [`EventLoop`] on a task.
pub fn new(
    key: libp2p::identity::Keypair,
    config: Config,
) -> Result<(Client, tokio::sync::mpsc::Receiver<Event>, EventLoop), Error> {
    let metrics = NetMetrics::default();
    let swarm = swarm::build(key, &config, &metrics)?;
    let (commands_tx, commands_rx) = tokio::sync::mpsc::channel(256);
    let (events_tx, events_rx) = tokio::sync::mpsc::channel(config.event_buffer);
    let client = Client::new(commands_tx, swarm.behaviour().stream.new_control());
    let event_loop =
        EventLoop::new(swarm, commands_rx, events_tx, client.clone(), &config, metrics)?;
    Ok((client, events_rx, event_loop))
}
