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

mod commands;
mod config;
mod consent;
mod devices;
mod dispatch;
mod event;
mod files;
mod handle;
#[cfg(any(test, feature = "test-hooks"))]
mod hooks;
mod inbound;
mod joined;
mod lanes;
mod limits;
mod mailbox;
mod metrics;
mod names;
mod order;
mod outbox;
mod pinned;
mod prekeys;
pub mod presence;
mod publisher;
mod reading;
mod receipts;
mod replicate;
mod rng;
mod seal;
mod seen;
mod send;
mod sessions;
mod system;

use std::sync::Arc;

use communitas_crypto::{KeystorePublic, Secrets};
use communitas_net::libp2p::Multiaddr;
use communitas_store::Store;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{Config, StartError};
pub use event::{Attachment, ContactChange, Event, HistoryEntry, NodeStatus, PeerStatus};
pub use files::{FileError, FilesConfig};
pub use handle::{ConversationView, Handle, MessageRequest, PREVIEW_CHARS};
pub use limits::{Rate, RateLimits};
pub use metrics::Metrics;
pub use names::{NameError, check_name};
pub use reading::Settings;
pub use send::{Queued, SendError};
pub use system::SystemLine;

// The acceptance window is the inbound rules' (one copy).
pub use communitas_proto::inbound::{MAX_CLOCK_AHEAD, MESSAGE_TTL};

/// State shared by the node's tasks. Immutable, or internally synchronised handles.
pub(crate) struct Inner {
    pub(crate) secrets: Secrets,
    pub(crate) public: KeystorePublic,
    /// Our display name now: the keystore's, unless changed since (kept in the
    /// store's identity row, issue 23 item 3). The publisher reads it at each publish.
    pub(crate) name: tokio::sync::watch::Sender<Option<String>>,
    /// Asks the publisher for a fresh record soon (a new name).
    pub(crate) republish: mpsc::Sender<()>,
    pub(crate) net: communitas_net::Client,
    pub(crate) store: Store,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) metrics: Metrics,
    pub(crate) outbox: commands::outbox::OutboxHandle,
    pub(crate) pinned: pinned::Pinned,
    pub(crate) limiters: limits::Limiters,
    pub(crate) mailbox_limits: communitas_store::MailboxLimits,
    pub(crate) files: commands::files::FilesHandle,
    pub(crate) files_config: FilesConfig,
    pub(crate) serving: files::Sources,
    /// A server node: keeps mailboxes and file shards for others.
    pub(crate) server: bool,
    /// Threads for the file pipeline's CPU and disk work.
    pub(crate) cpu: files::Cpu,
    pub(crate) presence: commands::presence::PresenceHandle,
    /// The addresses the identity record lists, if announced (`net::Config::announce`).
    pub(crate) announce: Vec<Multiaddr>,
    /// The block list and refused impostors, mirrored for inbound (issue 15).
    pub(crate) consent: consent::Consent,
    /// How much strangers may leave as message requests.
    pub(crate) request_limits: communitas_store::RequestLimits,
    /// End-to-end sessions (`Config::sessions`): prekeys made and published, letters
    /// sealed and opened with sessions.
    pub(crate) sessions: sessions::Sessions,
    /// The one owner of this device's prekey secrets.
    pub(crate) prekeys: prekeys::Prekeys,
    /// Each conversation's clock (issue 23 item 1).
    pub(crate) clocks: order::Clocks,
    /// The slow lane of first contacts without a proof of work (decision 0062).
    pub(crate) unpaid: inbound::Unpaid,
    /// Peers known to be contacts' devices: their envelopes skip the strangers' lane.
    pub(crate) familiar: lanes::Familiar,
    /// Addresses tests inject for keys, in place of deriving them.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) injected: hooks::Injected,
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
        let (outbox_tx, outbox_rx) = commands::outbox::OutboxHandle::channel(1024);
        let (files_tx, files_rx) = commands::files::FilesHandle::channel(256);
        let (presence_tx, presence_rx) = commands::presence::PresenceHandle::channel(256);
        let stored = if config.sessions { store.sessions().await? } else { Vec::new() };
        let sessions = sessions::Sessions::new(config.sessions, stored);
        let (publish_tx, publish_rx) = mpsc::channel(8);
        // A name changed after setup is in the store; the keystore has the first one.
        let name = match store.identity().await? {
            Some(row) if row.address == public.address => row.name,
            _ => public.name.clone(),
        };
        let own = public.address;
        let inner = Arc::new(Inner {
            secrets,
            name: tokio::sync::watch::Sender::new(name),
            republish: publish_tx.clone(),
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
            consent: consent::Consent::default(),
            request_limits: config.request_limits,
            clocks: order::Clocks::new(own),
            unpaid: inbound::Unpaid::default(),
            familiar: lanes::Familiar::default(),
            sessions,
            prekeys: prekeys::Prekeys::default(),
            #[cfg(any(test, feature = "test-hooks"))]
            injected: hooks::Injected::default(),
        });
        inner.consent.load(&inner.store.blocks().await?);
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
        let presence =
            presence::Actor::new(inner.clone(), presence_rx, config.presence, rng::Os::new()?);
        tasks.spawn(presence.run(shutdown.child_token()));
        let publisher =
            publisher::run(inner.clone(), publish_rx, rng::Os::new()?, shutdown.child_token());
        tasks.spawn(publisher);
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
        tasks.spawn(sessions::claimer(inner.clone(), shutdown.child_token()));
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
        let every = config.seen_sweep_every;
        tasks.spawn(seen::run(inner.clone(), every, shutdown.child_token()));
        let channels = dispatch::Channels { publish: publish_tx, mailbox: mbox_tx };
        tasks.spawn(dispatch::run(
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
