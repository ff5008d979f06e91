//! What the node's actors are asked to do: the outbox's, the files actor's and the
//! presence actor's commands, kept apart from the actors that carry them out.
//!
//! `Inner` holds a bounded sender for each actor. Any driver queues work for another
//! through it, naming only these types: inbound acceptance asks the presence actor to
//! hear an update and the files actor to fetch a file, receipts ask the outbox to stop
//! trying a message and the files actor to release a file's shards, `send` asks the
//! outbox to deliver. None of them imports the actor it asks, which is what keeps the
//! node's modules free of import circles (docs/architecture.md, "Modules").

/// The outbox actor's commands (`crate::outbox`).
pub(crate) mod outbox {
    use communitas_store::OutboxEntry;
    use communitas_types::{Address, MessageId, Timestamp};

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
    use tokio::sync::oneshot;

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
    }
}
