//! What the node's actors are asked to do: the outbox's, the files actor's and the
//! presence actor's commands, kept apart from the actors that carry them out.
//!
//! `Inner` holds a typed handle for each actor (`OutboxHandle`, `FilesHandle`,
//! `PresenceHandle`): one method per thing it can be asked, over a bounded queue.
//! A method that waits for room is `async` and fails only when the actor has stopped
//! ([`Stopped`]); one named `offer_*`/`hint_*` is best effort (a full queue drops it, and
//! says so): the actor recovers what a dropped hint would have told it on its own
//! (a periodic pass, the next start). Any driver queues work for another through them,
//! naming only these types: inbound acceptance asks the presence actor to
//! hear an update and the files actor to fetch a file, receipts ask the outbox to stop
//! trying a message and the files actor to release a file's shards, `send` asks the
//! outbox to deliver. None of them imports the actor it asks, which is what keeps the
//! node's modules free of import circles (docs/architecture.md, "Modules").

/// The actor has stopped (the node is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stopped;

/// An actor's bounded inbox, under each typed handle.
pub(crate) struct Queue<C>(tokio::sync::mpsc::Sender<C>);

impl<C> std::fmt::Debug for Queue<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("capacity", &self.0.capacity()).finish()
    }
}

impl<C> Clone for Queue<C> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<C> Queue<C> {
    /// The queue and the actor's end, with room for `capacity` commands.
    fn channel(capacity: usize) -> (Self, tokio::sync::mpsc::Receiver<C>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity);
        (Self(tx), rx)
    }

    /// Queues `command`, waiting for room.
    async fn send(&self, command: C) -> Result<(), Stopped> {
        self.0.send(command).await.map_err(|_| Stopped)
    }

    /// Queues `command` if there is room; `false` if it was dropped.
    fn offer(&self, command: C) -> bool {
        self.0.try_send(command).is_ok()
    }
}

/// The outbox actor's commands (`crate::outbox`).
pub(crate) mod outbox {
    use communitas_store::OutboxEntry;
    use communitas_types::{Address, MessageId, Timestamp};
    use tokio::sync::mpsc;

    use super::{Queue, Stopped};

    /// The outbox, as other drivers see it.
    #[derive(Debug, Clone)]
    pub(crate) struct OutboxHandle(Queue<Command>);

    impl OutboxHandle {
        /// The handle and the actor's end, with room for `capacity` commands.
        pub(crate) fn channel(capacity: usize) -> (Self, mpsc::Receiver<Command>) {
            let (queue, rx) = Queue::channel(capacity);
            (Self(queue), rx)
        }

        /// Deliver this message (its row is already in the store).
        pub(crate) async fn enqueue(&self, entry: OutboxEntry) -> Result<(), Stopped> {
            self.0.send(Command::Enqueue(Box::new(entry))).await
        }

        /// Deliver this control message (a receipt; its row is already in the store).
        pub(crate) async fn enqueue_control(&self, entry: OutboxEntry) -> Result<(), Stopped> {
            self.0.send(Command::EnqueueControl(Box::new(entry))).await
        }

        /// A receipt says this message arrived: stop trying.
        pub(crate) async fn delivered(&self, id: MessageId) -> Result<(), Stopped> {
            self.0.send(Command::Delivered(id)).await
        }

        /// A hint: a lookup found this record (the outbox looks devices up itself
        /// otherwise). `false` if it was dropped.
        pub(crate) fn hint_learned(
            &self,
            address: Address,
            record: communitas_crypto::IdentityRecord,
        ) -> bool {
            self.0.offer(Command::Learned { address, record: Box::new(record) })
        }

        /// A hint: a connection to this device opened (retry what waits for it now,
        /// not at its next due time). `false` if it was dropped.
        pub(crate) fn hint_online(&self, peer: communitas_net::libp2p::PeerId) -> bool {
            self.0.offer(Command::PeerOnline(peer))
        }
    }

    /// What the outbox is asked to do.
    pub(crate) enum Command {
        /// A message was queued (or re-queued from dead letters).
        Enqueue(Box<OutboxEntry>),
        /// A control message (a receipt) was queued: delivered like a message, but not
        /// one the user sent, so it moves no message counter and no message status.
        EnqueueControl(Box<OutboxEntry>),
        /// A lookup found this record: remember its devices.
        Learned { address: Address, record: Box<communitas_crypto::IdentityRecord> },
        /// A connection to this device opened.
        PeerOnline(communitas_net::libp2p::PeerId),
        /// An end-to-end receipt says this message arrived: stop trying.
        Delivered(MessageId),
    }

    /// A new outbox row: due now, no attempts yet, alive for the message TTL.
    pub(crate) fn fresh_entry(
        id: MessageId,
        to: Address,
        envelope: Vec<u8>,
        now: Timestamp,
    ) -> OutboxEntry {
        OutboxEntry {
            message_id: id,
            recipient: to,
            envelope,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
            expires_at: now.saturating_add(crate::MESSAGE_TTL),
            last_error: None,
        }
    }
}

/// The files actor's commands (`crate::files`).
pub(crate) mod files {
    use communitas_types::{Address, FileId, MessageId};
    use tokio::sync::mpsc;

    use super::{Queue, Stopped};

    /// The files actor, as other drivers see it.
    #[derive(Debug, Clone)]
    pub(crate) struct FilesHandle(Queue<Command>);

    impl FilesHandle {
        /// The handle and the actor's end, with room for `capacity` commands.
        pub(crate) fn channel(capacity: usize) -> (Self, mpsc::Receiver<Command>) {
            let (queue, rx) = Queue::channel(capacity);
            (Self(queue), rx)
        }

        /// Fetch this file (the user asked), waiting for room.
        pub(crate) async fn fetch(&self, file: FileId) -> Result<(), Stopped> {
            self.0.send(Command::Fetch(file)).await
        }

        /// The receipt step "`from` has the whole file of our `message`", in order
        /// with the receipt's other steps.
        pub(crate) async fn fetched(
            &self,
            from: Address,
            message: MessageId,
        ) -> Result<(), Stopped> {
            self.0.send(Command::Fetched { from, message }).await
        }

        /// A hint: a manifest arrived, fetch its file (pending rows are picked up at
        /// the next start otherwise). `false` if it was dropped.
        pub(crate) fn offer_fetch(&self, file: FileId) -> bool {
            self.0.offer(Command::Fetch(file))
        }

        /// A hint: our message went to mailboxes; if it carries a file, store its
        /// shards on server nodes too. `false` if it was dropped.
        pub(crate) fn offer_stored(&self, message: MessageId) -> bool {
            self.0.offer(Command::Stored(message))
        }

        /// A hint: release a file's stored shards. `false` if it was dropped.
        pub(crate) fn offer_release(&self, file: FileId) -> bool {
            self.0.offer(Command::Release(file))
        }

        /// A hint: a peer connected, retry waiting transfers now. `false` if dropped.
        pub(crate) fn hint_online(&self) -> bool {
            self.0.offer(Command::PeerOnline)
        }
    }

    /// What the files actor is asked to do.
    #[derive(Debug)]
    pub(crate) enum Command {
        /// A manifest arrived (or `files get` asked): fetch this file.
        Fetch(FileId),
        /// A message of ours was left in mailboxes: if it carries a file, put the file's
        /// shards on server nodes too.
        Stored(MessageId),
        /// A peer connected: retry waiting transfers now.
        PeerOnline,
        /// The recipient has a file we stored on server nodes: release its shards.
        Release(FileId),
        /// A receipt from `from` says it has the whole file our message `message`
        /// carried: if the message is ours to `from`, its file is `fetched`, and shards
        /// we put on server nodes are released.
        Fetched { from: Address, message: MessageId },
    }
}

/// The presence actor's commands (`crate::presence`).
pub(crate) mod presence {
    use communitas_net::libp2p::PeerId;
    use communitas_proto::presence::{Body, Presence, Status};
    use communitas_types::{Address, Timestamp};
    use tokio::sync::{mpsc, oneshot};

    use super::{Queue, Stopped};

    /// The presence actor, as other drivers see it.
    #[derive(Debug, Clone)]
    pub(crate) struct PresenceHandle(Queue<Command>);

    impl PresenceHandle {
        /// The handle and the actor's end, with room for `capacity` commands.
        pub(crate) fn channel(capacity: usize) -> (Self, mpsc::Receiver<Command>) {
            let (queue, rx) = Queue::channel(capacity);
            (Self(queue), rx)
        }

        /// Asks something that answers on `reply` (`Set`, `Get`, `All`, `Typing`...),
        /// waiting for room.
        pub(crate) async fn ask<T>(
            &self,
            make: impl FnOnce(oneshot::Sender<T>) -> Command,
        ) -> Result<T, Stopped> {
            let (reply, answer) = oneshot::channel();
            self.0.send(make(reply)).await?;
            answer.await.map_err(|_| Stopped)
        }

        /// Tells it something, waiting for room.
        pub(crate) async fn tell(&self, command: Command) -> Result<(), Stopped> {
            self.0.send(command).await
        }

        /// A contact's update, judged by inbound acceptance. `false` if the queue is
        /// full (the sender is told busy and sends again).
        pub(crate) fn offer_heard(&self, from: Address, timestamp: Timestamp, body: Body) -> bool {
            self.0.offer(Command::Heard { from, timestamp, body })
        }

        /// A hint: a connection opened or closed. `false` if it was dropped.
        pub(crate) fn hint_connection(&self, peer: PeerId, open: bool) -> bool {
            self.0.offer(Command::Connection { peer, open })
        }
    }

    /// What the presence actor is asked to do, or asked for.
    pub(crate) enum Command {
        /// Our own status changed.
        Set { status: Status, reply: oneshot::Sender<()> },
        /// A contact's presence.
        Get { address: Address, reply: oneshot::Sender<Presence> },
        /// Our status and every contact's presence.
        All { reply: oneshot::Sender<(Status, Vec<(Address, Presence)>)> },
        /// A contact's update, opened and judged by inbound acceptance.
        Heard { from: Address, timestamp: Timestamp, body: Body },
        /// We are typing to a contact (or stopped).
        Typing { to: Address, typing: bool },
        /// A connection to a device opened or closed.
        Connection { peer: PeerId, open: bool },
        /// A contact was just added: presence starts now, not at the next reload.
        ContactAdded(Address),
        /// A contact was blocked: nothing more goes to it (issue 15).
        ContactRemoved(Address),
    }
}
