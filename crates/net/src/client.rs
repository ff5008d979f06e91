//! The cloneable handle to the event loop.

use communitas_crypto::IdentityRecord;
use communitas_types::Address;
use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use crate::Error;
use crate::codec::Receipt;
use crate::inflight::Permit;
use crate::mbox::{MboxRequest, MboxResponse};

/// What the client asks of the event loop. Each carries its reply channel.
#[derive(Debug)]
pub(crate) enum Command {
    Mbox {
        peer: PeerId,
        request: MboxRequest,
        reply: oneshot::Sender<Result<MboxResponse, Error>>,
    },
    MboxRespond {
        channel: ResponseChannel<MboxResponse>,
        response: MboxResponse,
    },
    ClosestPeers {
        key: Vec<u8>,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    ClosestKnownPeers {
        key: Vec<u8>,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    Listen {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Publish {
        address: Address,
        record_set: Vec<u8>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Resolve {
        address: Address,
        reply: oneshot::Sender<Result<Vec<IdentityRecord>, Error>>,
    },
    Send {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        envelope: Vec<u8>,
        reply: oneshot::Sender<Result<Receipt, Error>>,
    },
    Respond {
        channel: ResponseChannel<Receipt>,
        receipt: Receipt,
    },
    Status {
        reply: oneshot::Sender<Status>,
    },
    AddAddresses {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    },
}

/// A snapshot of the network's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// This device.
    pub peer_id: PeerId,
    /// Where it listens.
    pub listen_addrs: Vec<Multiaddr>,
    /// Addresses others confirmed they reach us on.
    pub external_addrs: Vec<Multiaddr>,
    /// Peers with an open connection.
    pub connected_peers: usize,
    /// Inbound messages shed because the node was behind.
    pub shed_messages: u64,
    /// Every connected peer and how (direct or relayed).
    pub peers: Vec<crate::PeerLink>,
}

/// A handle to the network. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    streams: libp2p_stream::Control,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn new(commands: mpsc::Sender<Command>, streams: libp2p_stream::Control) -> Self {
        Self { commands, streams }
    }

    /// Opens and accepts raw protocol streams (bulk transfers) without going through
    /// the event loop. Each clone has its own slot for opening streams.
    pub fn streams(&self) -> libp2p_stream::Control {
        self.streams.clone()
    }

    /// Tells the swarm where `peer` can be dialled (for a stream opened later).
    pub async fn add_addresses(&self, peer: PeerId, addrs: Vec<Multiaddr>) -> Result<(), Error> {
        self.commands
            .send(Command::AddAddresses { peer, addrs })
            .await
            .map_err(|_| Error::ActorGone)
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).await.map_err(|_| Error::ActorGone)?;
        answer.await.map_err(|_| Error::ActorGone)
    }

    /// Starts listening on another address.
    pub async fn listen(&self, addr: Multiaddr) -> Result<(), Error> {
        self.ask(|reply| Command::Listen { addr, reply }).await?
    }

    /// Publishes an encoded `RecordSet` for `address` in the DHT.
    pub async fn publish(&self, address: Address, record_set: Vec<u8>) -> Result<(), Error> {
        self.ask(|reply| Command::Publish { address, record_set, reply }).await?
    }

    /// Looks up `address` in the DHT: every valid record found (signature checked,
    /// keys derive the address, highest `seq` per identity). Several means a forged
    /// collision: the caller must not choose silently.
    pub async fn resolve(&self, address: Address) -> Result<Vec<IdentityRecord>, Error> {
        self.ask(|reply| Command::Resolve { address, reply }).await?
    }

    /// Sends an envelope to a device, dialling it on `addrs` if not connected, and
    /// waits for its receipt.
    pub async fn send(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        envelope: Vec<u8>,
    ) -> Result<Receipt, Error> {
        self.ask(|reply| Command::Send { peer, addrs, envelope, reply }).await?
    }

    /// Sends a mailbox request to a server node and waits for its answer.
    pub async fn mailbox(&self, peer: PeerId, request: MboxRequest) -> Result<MboxResponse, Error> {
        self.ask(|reply| Command::Mbox { peer, request, reply }).await?
    }

    /// The DHT server nodes closest to `key`, nearest first (at most 20).
    pub async fn closest_peers(&self, key: Vec<u8>) -> Result<Vec<PeerId>, Error> {
        self.ask(|reply| Command::ClosestPeers { key, reply }).await
    }

    /// The DHT server nodes closest to `key` that our routing table holds now, nearest
    /// first (at most 20), without asking the network: at once, where
    /// [`closest_peers`](Self::closest_peers) waits for every peer it asks (a hung one
    /// holds the lookup until its timeout).
    pub async fn closest_known_peers(&self, key: Vec<u8>) -> Result<Vec<PeerId>, Error> {
        self.ask(|reply| Command::ClosestKnownPeers { key, reply }).await
    }

    /// The network's state now.
    pub async fn status(&self) -> Result<Status, Error> {
        self.ask(|reply| Command::Status { reply }).await
    }
}

/// Answers one inbound message. Dropping it unanswered makes the sender retry.
#[derive(Debug)]
pub struct Responder {
    channel: ResponseChannel<Receipt>,
    client: Client,
    /// The sender's share of waiting requests, held until this is answered or dropped.
    _permit: Option<Permit>,
}

impl Responder {
    pub(crate) fn new(
        channel: ResponseChannel<Receipt>,
        client: Client,
        permit: Option<Permit>,
    ) -> Self {
        Self { channel, client, _permit: permit }
    }

    /// Sends the receipt.
    pub async fn send(self, receipt: Receipt) -> Result<(), Error> {
        let Self { channel, client, .. } = self;
        client
            .commands
            .send(Command::Respond { channel, receipt })
            .await
            .map_err(|_| Error::ActorGone)
    }

    /// Takes the channel back (the event loop answers `Busy` with it when shedding).
    pub(crate) fn into_channel(self) -> ResponseChannel<Receipt> {
        self.channel
    }
}

/// Answers one mailbox request.
#[derive(Debug)]
pub struct MboxResponder {
    channel: ResponseChannel<MboxResponse>,
    client: Client,
    /// As [`Responder`]'s.
    _permit: Option<Permit>,
}

impl MboxResponder {
    pub(crate) fn new(
        channel: ResponseChannel<MboxResponse>,
        client: Client,
        permit: Option<Permit>,
    ) -> Self {
        Self { channel, client, _permit: permit }
    }

    /// Sends the answer.
    pub async fn send(self, response: MboxResponse) -> Result<(), Error> {
        let Self { channel, client, .. } = self;
        client
            .commands
            .send(Command::MboxRespond { channel, response })
            .await
            .map_err(|_| Error::ActorGone)
    }

    pub(crate) fn into_channel(self) -> ResponseChannel<MboxResponse> {
        self.channel
    }
}
