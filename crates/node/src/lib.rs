//! The Communitas node: everything a running `communitas run` does besides serving
//! its API.
//!
//! [`Node::start`] wires the pieces: the network ([`communitas_net`]), the store, the
//! identity publisher, the inbound message handler and the outbox. The returned
//! [`Handle`] is what the API and tests use: `send_text`, `history`, `contacts`,
//! `status`, `subscribe` to [`Event`]s.
//!
//! Flow of a text (ARCHITECTURE §2): `send_text` validates, finds the recipient's
//! pinned keys (resolving and pinning them on first contact), seals, and stores the
//! message and its outbox row in one transaction before it returns; the outbox then
//! delivers over `/communitas/msg/1` and marks it `delivered` when the receipt arrives.
//! On the other side, `inbound` opens, checks freshness and replay, commits, and only
//! then answers with the receipt.

#![deny(missing_docs)]

mod devices;
mod files;
mod inbound;
mod limits;
mod mailbox;
mod metrics;
mod outbox;
mod pinned;
pub mod presence;
mod publisher;
mod reading;
mod receipts;
mod replicate;
mod rng;
mod seal;
mod send;

use std::sync::Arc;
use std::time::Duration;

use communitas_crypto::{KeystorePublic, SafetyNumber, Secrets};
use communitas_net::libp2p::Multiaddr;
use communitas_store::{Contact, DeadLetter, Direction, OutboxEntry, Status, Store};
use communitas_types::{Address, MessageId, Timestamp};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use files::{Attachment, FileError, FilesConfig};
pub use limits::{Rate, RateLimits};
pub use metrics::Metrics;
pub use reading::Settings;
pub use send::SendError;

/// How long a message is kept trying, and how long its id is remembered (ARCHITECTURE §6).
pub const MESSAGE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How far in the future a sender's clock may be.
pub const MAX_CLOCK_AHEAD: Duration = Duration::from_secs(5 * 60);

/// How to run a node.
#[derive(Debug, Clone)]
pub struct Config {
    /// The network's configuration.
    pub net: communitas_net::Config,
    /// Outbox deliveries running at once.
    pub max_deliveries: usize,
    /// Inbound messages processed at once; more are answered `Busy`.
    pub max_inbound: usize,
    /// Per-peer request rates.
    pub rate_limits: RateLimits,
    /// Mailbox quotas (server role).
    pub mailbox_limits: communitas_store::MailboxLimits,
    /// Attachments: where they go, how big they may be.
    pub files: FilesConfig,
    /// Presence heartbeats (issue 6).
    pub presence: presence::Config,
    /// How often a server offers the envelopes it keeps to the other servers closest
    /// to their mailbox, so that R copies remain when holders leave (decision 0020).
    pub mailbox_replicate_every: Duration,
    /// How often a user node looks in its mailboxes when no server told it of new
    /// mail (servers tell online owners at once).
    pub mailbox_fetch_every: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            net: communitas_net::Config::default(),
            max_deliveries: 64,
            max_inbound: 256,
            rate_limits: RateLimits::default(),
            mailbox_limits: mailbox::LIMITS,
            files: FilesConfig::default(),
            presence: presence::Config::default(),
            mailbox_replicate_every: replicate::EVERY,
            mailbox_fetch_every: mailbox::FETCH_EVERY,
        }
    }
}

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The network did not start.
    #[error(transparent)]
    Net(#[from] communitas_net::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] communitas_store::Error),
    /// A worker thread could not be started.
    #[error("cannot start worker threads: {0}")]
    Threads(std::io::Error),
    /// The operating system's random source failed.
    #[error(transparent)]
    Random(#[from] communitas_crypto::random::RandomError),
}

/// Something that happened, for `/v1/events` and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A message arrived.
    MessageReceived {
        /// Its id.
        id: MessageId,
        /// The sender.
        from: Address,
        /// Its text.
        text: String,
        /// The sender's clock, unix ms.
        timestamp: Timestamp,
        /// The file it carries, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        attachment: Option<Attachment>,
    },
    /// A file transfer moved: bytes on disk (received) or fetched by the recipient.
    FileProgress {
        /// The file.
        file_id: communitas_types::FileId,
        /// The message that carries it.
        message_id: MessageId,
        /// The other side.
        peer: Address,
        /// `"in"` or `"out"`.
        direction: &'static str,
        /// Bytes done.
        bytes: u64,
        /// The file's size.
        size: u64,
        /// The transfer's status (see [`Attachment::status`]).
        status: &'static str,
    },
    /// A file being sent is being read and hashed.
    FilePreparing {
        /// The path being read.
        path: String,
        /// Bytes read.
        bytes: u64,
        /// Its size.
        size: u64,
    },
    /// An outgoing message changed state.
    StatusChanged {
        /// The message.
        id: MessageId,
        /// To whom.
        to: Address,
        /// Its new state.
        status: &'static str,
    },
    /// A contact's presence changed (issue 6).
    Presence {
        /// The contact.
        address: Address,
        /// `online`, `away`, `busy` or `offline`.
        status: &'static str,
        /// When we last heard from it, unix ms.
        last_seen: Option<Timestamp>,
    },
    /// A contact started or stopped typing to us; a "typing" lasts 6 s unless renewed.
    Typing {
        /// The contact.
        from: Address,
        /// Typing now.
        typing: bool,
    },
    /// A connection opened or closed.
    Connection {
        /// The peer (device) id.
        peer: String,
        /// Open now.
        open: bool,
        /// Peers connected in total.
        connected: usize,
    },
}

/// A message as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// Its id.
    pub id: MessageId,
    /// Sender.
    pub from: Address,
    /// Recipient.
    pub to: Address,
    /// `"in"` or `"out"`.
    pub direction: &'static str,
    /// The text.
    pub text: String,
    /// The sender's clock, unix ms.
    pub timestamp: Timestamp,
    /// `queued`, `sent`, `stored`, `delivered`, `read` or `failed`.
    pub status: &'static str,
    /// The file it carries, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// Paging cursor: pass as `before` to get older messages.
    #[serde(skip)]
    pub seq: i64,
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// Own address.
    pub address: Address,
    /// This device.
    pub peer_id: String,
    /// Where it listens.
    pub listen_addrs: Vec<String>,
    /// Peers with an open connection.
    pub connected_peers: usize,
    /// Messages waiting to be delivered.
    pub outbox: usize,
    /// This build's version.
    pub version: &'static str,
    /// Every connected peer: `{"peer_id","connection":"direct"|"relayed","connections"}`.
    pub peers: Vec<PeerStatus>,
}

/// One connected peer, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerStatus {
    /// Its device (PeerId).
    pub peer_id: String,
    /// `direct` if any connection to it is direct, else `relayed`.
    pub connection: &'static str,
    /// Open connections to it (more than one only briefly).
    pub connections: usize,
}

/// State shared by the node's tasks. Immutable, or internally synchronised handles.
pub(crate) struct Inner {
    pub(crate) secrets: Secrets,
    pub(crate) public: KeystorePublic,
    pub(crate) net: communitas_net::Client,
    pub(crate) store: Store,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) metrics: Metrics,
    pub(crate) outbox: mpsc::Sender<outbox::Command>,
    pub(crate) pinned: pinned::Pinned,
    pub(crate) limiters: limits::Limiters,
    pub(crate) mailbox_limits: communitas_store::MailboxLimits,
    pub(crate) files: mpsc::Sender<files::Command>,
    pub(crate) files_config: FilesConfig,
    pub(crate) serving: files::Sources,
    /// A server node: keeps mailboxes and file shards for others.
    pub(crate) server: bool,
    /// Threads for the file pipeline's CPU and disk work.
    pub(crate) cpu: files::Cpu,
    pub(crate) presence: mpsc::Sender<presence::Command>,
    /// The addresses the identity record lists, if announced (`net::Config::announce`).
    pub(crate) announce: Vec<Multiaddr>,
}

impl Inner {
    pub(crate) fn emit(&self, event: Event) {
        // No subscriber is fine: events are a view, not a record.
        let _ = self.events.send(event);
    }
}

/// A running node. Dropping it does not stop it: call [`Node::shutdown`].
pub struct Node {
    handle: Handle,
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
}

/// The cloneable interface to a running node.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("address", &self.inner.public.address)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Starts a node for the unlocked identity, on an open store.
    pub async fn start(
        config: Config,
        secrets: Secrets,
        public: KeystorePublic,
        store: Store,
    ) -> Result<Self, StartError> {
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let keypair = secrets.device.keypair();
        let (net, net_events, event_loop) = communitas_net::new(keypair, config.net.clone())?;
        let net_metrics = event_loop.metrics();
        tasks.spawn(event_loop.run(shutdown.child_token()));

        let (events, _) = broadcast::channel(1024);
        let (outbox_tx, outbox_rx) = mpsc::channel(1024);
        let (files_tx, files_rx) = mpsc::channel(256);
        let (presence_tx, presence_rx) = mpsc::channel(256);
        let inner = Arc::new(Inner {
            secrets,
            public,
            net,
            store,
            events,
            metrics: Metrics::with_net(net_metrics),
            outbox: outbox_tx,
            pinned: pinned::Pinned::default(),
            limiters: limits::Limiters::new(config.rate_limits),
            mailbox_limits: config.mailbox_limits,
            files: files_tx,
            files_config: config.files.clone(),
            serving: files::Sources::default(),
            server: config.net.server,
            cpu: files::Cpu::start().map_err(StartError::Threads)?,
            presence: presence_tx,
            announce: config.net.announce.clone(),
        });
        let pending = inner.store.outbox().await?;
        inner.metrics.outbox_depth.set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
        let control = inner.store.control_ids().await?.into_iter().collect();
        let outbox = outbox::Actor::new(
            inner.clone(),
            outbox_rx,
            pending,
            &control,
            config.max_deliveries,
            rng::Os::new()?,
        );
        tasks.spawn(outbox.run(shutdown.child_token()));
        tasks.spawn(files::Actor::new(inner.clone(), files_rx).run(shutdown.child_token()));
        tasks.spawn(files::serve(inner.clone(), shutdown.child_token()));
        tasks.spawn(files::sweep::run(config.files.uploads.clone(), shutdown.child_token()));
        let presence = presence::Actor::new(inner.clone(), presence_rx, config.presence);
        tasks.spawn(presence.run(shutdown.child_token()));
        let (publish_tx, publish_rx) = mpsc::channel(8);
        tasks.spawn(publisher::run(inner.clone(), publish_rx, shutdown.child_token()));
        let (mbox_tx, mbox_rx) = mpsc::channel(256);
        let (wake_tx, wake_rx) = mpsc::channel(1);
        let server = config.net.server;
        tasks.spawn(mailbox::serve(
            inner.clone(),
            server,
            mbox_rx,
            wake_tx,
            shutdown.child_token(),
        ));
        tasks.spawn(mailbox::fetcher(
            inner.clone(),
            config.mailbox_fetch_every,
            wake_rx,
            shutdown.child_token(),
        ));
        if server {
            let every = config.mailbox_replicate_every;
            tasks.spawn(replicate::run(inner.clone(), every, shutdown.child_token()));
        }
        let channels = inbound::Channels { publish: publish_tx, mailbox: mbox_tx };
        tasks.spawn(inbound::run(
            inner.clone(),
            net_events,
            channels,
            config.max_inbound,
            shutdown.child_token(),
        ));
        Ok(Self { handle: Handle { inner }, tasks, shutdown })
    }

    /// The node's handle.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Stops every task and waits for them. Nothing durable is lost: the outbox and
    /// history live in the store, which commits before it acknowledges.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        // Handles still held elsewhere (a request in flight) can no longer write.
        self.handle.inner.store.close().await;
    }
}

impl Handle {
    /// Own address.
    pub fn address(&self) -> Address {
        self.inner.public.address
    }

    /// The display name chosen when the identity was made, if any.
    pub fn name(&self) -> Option<&str> {
        self.inner.public.name.as_deref()
    }

    /// This device's PeerId.
    pub fn peer_id(&self) -> communitas_net::libp2p::PeerId {
        self.inner.public.peer_id
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Live events. A slow subscriber loses the oldest events (and is told so by
    /// `RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Sends a text. Returns once the message is durably queued.
    pub async fn send_text(
        &self,
        to: Address,
        text: &str,
    ) -> Result<(MessageId, Status), SendError> {
        send::send_text(&self.inner, to, text).await
    }

    /// The status of an outgoing message.
    pub async fn message_status(
        &self,
        id: MessageId,
    ) -> Result<Option<Status>, communitas_store::Error> {
        Ok(self
            .inner
            .store
            .message(id)
            .await?
            .filter(|m| m.message.direction == Direction::Out)
            .map(|m| m.message.status))
    }

    /// The paging cursor of a stored message (for `history`'s `before`).
    pub async fn stored_message(
        &self,
        id: MessageId,
    ) -> Result<Option<i64>, communitas_store::Error> {
        Ok(self.inner.store.message(id).await?.map(|m| m.seq))
    }

    /// Every conversation with its unread count, newest first.
    pub async fn conversations(
        &self,
    ) -> Result<Vec<communitas_store::Conversation>, communitas_store::Error> {
        self.inner.store.conversations().await
    }

    /// A conversation, oldest first: at most `limit` messages before cursor `before`.
    pub async fn history(
        &self,
        peer: Address,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<HistoryEntry>, communitas_store::Error> {
        let me = self.inner.public.address;
        let rows = self.inner.store.history(peer, limit, before).await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let m = row.message;
            let (from, to, direction) = match m.direction {
                Direction::In => (m.peer, me, "in"),
                Direction::Out => (me, m.peer, "out"),
            };
            let manifest = (m.kind == communitas_crypto::Kind::File.to_u8())
                .then(|| files::manifest_of(&m.body))
                .flatten();
            let (text, attachment) = match manifest {
                Some(manifest) => {
                    let file = self.inner.store.file(manifest.file_id).await?;
                    (manifest.caption.clone(), Some(Attachment::new(&manifest, file.as_ref())))
                }
                None => (String::from_utf8_lossy(&m.body).into_owned(), None),
            };
            entries.push(HistoryEntry {
                id: m.id,
                from,
                to,
                direction,
                text,
                timestamp: m.timestamp,
                status: m.status.as_str(),
                attachment,
                seq: row.seq,
            });
        }
        Ok(entries)
    }

    /// Sends a file with an optional caption. Returns once the manifest is computed
    /// and the message durably queued; the recipient then pulls the file.
    pub async fn send_file(
        &self,
        to: Address,
        caption: &str,
        path: std::path::PathBuf,
    ) -> Result<(MessageId, communitas_types::FileId, Status), SendError> {
        send::send_file(&self.inner, to, caption, path).await
    }

    /// The largest file this node sends or accepts.
    pub fn max_file_size(&self) -> u64 {
        self.inner.files_config.max_size
    }

    /// A fresh path in the uploads folder for a file named `name` (sanitised).
    pub async fn upload_path(&self, name: &str) -> Result<std::path::PathBuf, FileError> {
        let dir = self.inner.files_config.uploads.join(
            communitas_types::FileId::from_bytes(communitas_crypto::random::bytes().map_err(
                |_| FileError::Unwritable {
                    path: "uploads".into(),
                    reason: "no randomness".into(),
                },
            )?)
            .to_string(),
        );
        tokio::fs::create_dir_all(&dir).await.map_err(|e| FileError::Unwritable {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(dir.join(files::sanitise(name.as_bytes())))
    }

    /// An attachment's state.
    pub async fn file(&self, file_id: communitas_types::FileId) -> Result<Attachment, FileError> {
        let (row, manifest) = self.file_parts(file_id).await?;
        Ok(Attachment::new(&manifest, Some(&row)))
    }

    async fn file_parts(
        &self,
        file_id: communitas_types::FileId,
    ) -> Result<(communitas_store::FileRow, communitas_proto::file::Manifest), FileError> {
        let row = self.inner.store.file(file_id).await?.ok_or(FileError::NoSuchFile(file_id))?;
        let message = self.inner.store.message(row.message_id).await?;
        let manifest = message
            .and_then(|m| files::manifest_of(&m.message.body))
            .ok_or(FileError::NoSuchFile(file_id))?;
        Ok((row, manifest))
    }

    /// Fetches a received file now, even above the auto-download size (or after a
    /// failure). Progress arrives as [`Event::FileProgress`].
    pub async fn fetch_file(
        &self,
        file_id: communitas_types::FileId,
    ) -> Result<Attachment, FileError> {
        let (mut row, manifest) = self.file_parts(file_id).await?;
        if row.direction == Direction::In
            && matches!(
                row.status,
                communitas_store::FileStatus::TooLarge | communitas_store::FileStatus::Failed
            )
        {
            row.status = communitas_store::FileStatus::Pending;
            row.error = None;
            row.updated_at = Timestamp::now();
            self.inner.store.put_file(row.clone()).await?;
        }
        if row.direction == Direction::In && row.status != communitas_store::FileStatus::Done {
            let _ = self.inner.files.send(files::Command::Fetch(file_id)).await;
        }
        Ok(Attachment::new(&manifest, Some(&row)))
    }

    /// Where a file's bytes are on this machine: the saved copy of a received file
    /// (once done), or the original of a sent one.
    pub async fn file_path(
        &self,
        file_id: communitas_types::FileId,
    ) -> Result<std::path::PathBuf, FileError> {
        let (row, _) = self.file_parts(file_id).await?;
        match (row.direction, row.status, row.path) {
            (Direction::In, communitas_store::FileStatus::Done, Some(path)) => Ok(path),
            (Direction::Out, _, Some(path)) => Ok(path),
            _ => Err(FileError::NotReady(file_id)),
        }
    }

    /// Every contact.
    pub async fn contacts(&self) -> Result<Vec<Contact>, communitas_store::Error> {
        self.inner.store.contacts().await
    }

    /// Adds a contact by address: looks its keys up in the DHT and pins them.
    pub async fn add_contact(
        &self,
        address: Address,
        name: Option<String>,
    ) -> Result<Contact, SendError> {
        send::add_contact(&self.inner, address, name).await
    }

    /// The safety number with a contact; with `confirm`, marks the contact verified.
    pub async fn verify_contact(
        &self,
        address: Address,
        confirm: bool,
    ) -> Result<SafetyNumber, SendError> {
        let contact =
            self.inner.store.contact(address).await?.ok_or(SendError::NotAContact(address))?;
        if confirm {
            self.inner.store.set_verified(address, true).await?;
        }
        Ok(SafetyNumber::new(self.inner.secrets.identity.public(), &contact.identity))
    }

    /// Messages waiting to be delivered.
    pub async fn outbox(&self) -> Result<Vec<OutboxEntry>, communitas_store::Error> {
        self.inner.store.outbox().await
    }

    /// Messages given up on.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, communitas_store::Error> {
        self.inner.store.dead_letters().await
    }

    /// Puts a dead letter back in the outbox.
    pub async fn retry(&self, id: MessageId) -> Result<(), SendError> {
        let now = Timestamp::now();
        let entry =
            self.inner.store.retry_dead_letter(id, now, now.saturating_add(MESSAGE_TTL)).await?;
        // A file it offers from the uploads folder lives as long again.
        if let Ok(Some(row)) = self.inner.store.file_by_message(id).await
            && let Some(folder) = row.path.as_deref().and_then(std::path::Path::parent)
            && folder.starts_with(&self.inner.files_config.uploads)
        {
            files::sweep::renew(folder);
        }
        self.inner
            .outbox
            .send(outbox::Command::Enqueue(Box::new(entry)))
            .await
            .map_err(|_| SendError::ShuttingDown)
    }

    /// The node's state now.
    pub async fn status(&self) -> Result<NodeStatus, communitas_net::Error> {
        let net = self.inner.net.status().await?;
        let outbox = usize::try_from(self.inner.metrics.outbox_depth.get()).unwrap_or(0);
        Ok(NodeStatus {
            address: self.inner.public.address,
            peer_id: net.peer_id.to_string(),
            listen_addrs: net.listen_addrs.iter().map(Multiaddr::to_string).collect(),
            connected_peers: net.connected_peers,
            outbox,
            version: env!("CARGO_PKG_VERSION"),
            peers: net
                .peers
                .iter()
                .map(|p| PeerStatus {
                    peer_id: p.peer.to_string(),
                    connection: p.kind.as_str(),
                    connections: p.connections,
                })
                .collect(),
        })
    }

    /// The multiaddrs others can dial this node on, each ending in `/p2p/<peer id>`.
    pub async fn dial_addrs(&self) -> Result<Vec<Multiaddr>, communitas_net::Error> {
        let net = self.inner.net.status().await?;
        Ok(net
            .listen_addrs
            .into_iter()
            .map(|a| a.with(communitas_net::libp2p::multiaddr::Protocol::P2p(net.peer_id)))
            .collect())
    }
}
