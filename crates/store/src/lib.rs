//! Communitas' store: one SQLite file per home, owned by one writer thread.
//!
//! [`Store`] is a cloneable handle. Every write is a command sent over a bounded
//! channel to the thread that owns the writing connection; writes that arrive together
//! are committed in one transaction (group commit), each inside its own savepoint so
//! one failing write never takes the others down. Reads go to a second thread with a
//! read-only connection, so they never wait behind a commit's fsync. A write's reply is sent only after
//! its transaction is durable (WAL, `synchronous = FULL`), so a caller that got `Ok`
//! may promise the user that the row survives a crash.
//!
//! Message bodies are sealed at rest under the [`StorageKey`] from the keystore, bound
//! to their row, so the file alone does not reveal what anybody wrote.
//!
//! ```no_run
//! # async fn example(key: communitas_crypto::at_rest::StorageKey) -> Result<(), communitas_store::Error> {
//! use communitas_store::Store;
//!
//! let store = Store::open(std::path::Path::new("communitas.db"), key)?;
//! for contact in store.contacts().await? {
//!     println!("{} verified={}", contact.address, contact.verified);
//! }
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod actor;
mod files;
mod model;
mod ops;
mod replica;
pub mod schema;
mod settings;

use std::path::Path;

use communitas_crypto::at_rest::StorageKey;
use communitas_types::{Address, MessageId};
use tokio::sync::{mpsc, oneshot};

pub use files::{FileRow, FileStatus, HeldShards, ShardLimits, ShardPut, StoredShard};
pub use model::{
    Contact, Conversation, DeadLetter, Direction, IdentityRow, Inserted, NewMessage, OutboxEntry,
    Status, StoredMessage,
};
pub use ops::{MailboxEntry, MailboxLimits, PutOutcome};
pub use replica::{ReplicaEntry, Wanted};

use actor::{Read, Write};

/// Commands that may wait for the writer thread; senders wait for room beyond this.
const INBOX: usize = 1024;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite failed (disk full, I/O error, corruption...).
    #[error("database error: {0}")]
    Sqlite(#[from] SqliteError),
    /// The database was written by a newer Communitas.
    #[error("database schema {found} is newer than this build's {supported}; upgrade Communitas")]
    SchemaTooNew {
        /// Version found in the file.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
    /// A stored value does not decrypt with this storage key.
    #[error("a stored message does not decrypt: wrong keystore or damaged database")]
    Decrypt,
    /// A contact with this address is pinned to other keys.
    #[error("contact {address} is pinned to other keys")]
    KeyChanged {
        /// The contact.
        address: Address,
    },
    /// No such message.
    #[error("no message {0}")]
    NoSuchMessage(MessageId),
    /// A stored value is not what this build wrote.
    #[error("stored {field} is invalid")]
    Corrupt {
        /// Which column.
        field: &'static str,
    },
    /// The transaction holding this write failed to commit; the write is not stored.
    #[error("commit failed: {reason}")]
    CommitFailed {
        /// SQLite's message.
        reason: String,
    },
    /// The writer thread has stopped (the store was closed or crashed).
    #[error("the store has shut down")]
    ActorGone,
}

/// A SQLite error, wrapped so that `rusqlite` stays out of this crate's API.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SqliteError(#[from] rusqlite::Error);

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sqlite(SqliteError(e))
    }
}

/// A handle to the store. Cheap to clone; the last clone dropped stops the thread.
#[derive(Clone, Debug)]
pub struct Store {
    commands: mpsc::Sender<Write>,
    reads: mpsc::Sender<Read>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and starts its writer thread.
    pub fn open(path: &Path, key: StorageKey) -> Result<Self, Error> {
        let conn = actor::connect(path)?;
        let (commands, inbox) = mpsc::channel(INBOX);
        let (reads, read_inbox) = mpsc::channel(INBOX);
        let reader = actor::Reader::new(path, key.clone(), read_inbox)?;
        std::thread::Builder::new()
            .name("communitas-store".into())
            .spawn(move || actor::Actor::new(conn, key, inbox).run())
            .map_err(|_| Error::ActorGone)?;
        std::thread::Builder::new()
            .name("communitas-store-read".into())
            .spawn(move || reader.run())
            .map_err(|_| Error::ActorGone)?;
        Ok(Self { commands, reads })
    }

    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Write,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).await.map_err(|_| Error::ActorGone)?;
        answer.await.map_err(|_| Error::ActorGone)?
    }

    async fn read<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Read,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.reads.send(make(reply)).await.map_err(|_| Error::ActorGone)?;
        answer.await.map_err(|_| Error::ActorGone)?
    }

    /// Closes the database for every clone of this handle: writes sent before are
    /// committed, every call after fails with [`Error::ActorGone`]. A node that stops
    /// closes its store, so a request still holding the old node cannot write while a
    /// new one (after an unlock) has the database.
    pub async fn close(&self) {
        let _ = self.write(|reply| Write::Close { reply }).await;
        let _ = self.read(|reply| Read::Close { reply }).await;
    }

    /// Sets a per-user setting (issue 6: `read_receipts`, `presence`).
    pub async fn set_setting(&self, key: &'static str, value: String) -> Result<(), Error> {
        self.write(|reply| Write::SetSetting { key, value, reply }).await
    }

    /// A per-user setting, if it was ever set.
    pub async fn setting(&self, key: &'static str) -> Result<Option<String>, Error> {
        self.read(|reply| Read::Setting { key, reply }).await
    }

    /// Marks every unread incoming message from `peer` read; returns their ids.
    pub async fn read_incoming(&self, peer: Address) -> Result<Vec<MessageId>, Error> {
        self.write(|reply| Write::ReadIncoming { peer, reply }).await
    }

    /// Every conversation with its unread count, newest first.
    pub async fn conversations(&self) -> Result<Vec<Conversation>, Error> {
        self.read(|reply| Read::Conversations { reply }).await
    }

    /// `peer` read our message `id`: it becomes `read`. False if it is not an outgoing
    /// message to `peer`, or was read already.
    pub async fn mark_read(&self, peer: Address, id: MessageId) -> Result<bool, Error> {
        self.write(|reply| Write::MarkRead { peer, id, reply }).await
    }

    /// Records the local identity (replacing any earlier row).
    pub async fn set_identity(&self, row: IdentityRow) -> Result<(), Error> {
        self.write(|reply| Write::SetIdentity { row, reply }).await
    }

    /// The local identity, if recorded.
    pub async fn identity(&self) -> Result<Option<IdentityRow>, Error> {
        self.read(|reply| Read::Identity { reply }).await
    }

    /// Adds a contact, pinning its keys. Adding it again with the same keys updates
    /// the name; with other keys it fails with [`Error::KeyChanged`].
    pub async fn add_contact(&self, contact: Contact) -> Result<(), Error> {
        self.write(|reply| Write::AddContact { contact: Box::new(contact), reply }).await
    }

    /// Marks a contact's safety number as verified.
    pub async fn set_verified(&self, address: Address, verified: bool) -> Result<bool, Error> {
        self.write(|reply| Write::SetVerified { address, verified, reply }).await
    }

    /// All contacts, by address.
    pub async fn contacts(&self) -> Result<Vec<Contact>, Error> {
        self.read(|reply| Read::Contacts { reply }).await
    }

    /// Stores an outgoing message and its outbox entry in one transaction.
    pub async fn insert_outgoing(
        &self,
        message: NewMessage,
        outbox: OutboxEntry,
    ) -> Result<(), Error> {
        self.write(|reply| Write::Outgoing { message, outbox, reply }).await
    }

    /// Stores an incoming message unless `(sender, id)` was seen before; the seen id
    /// is kept until `seen_until` (unix ms), in the same transaction.
    pub async fn insert_incoming(
        &self,
        message: NewMessage,
        sender: communitas_types::Fingerprint,
        seen_until: communitas_types::Timestamp,
    ) -> Result<Inserted, Error> {
        self.write(|reply| Write::Incoming { message, sender, seen_until, reply }).await
    }

    /// Moves an outgoing message to a new status.
    pub async fn set_status(&self, id: MessageId, status: Status) -> Result<(), Error> {
        self.write(|reply| Write::SetStatus { id, status, reply }).await
    }

    /// A conversation, oldest first: up to `limit` messages before `before_seq`.
    pub async fn history(
        &self,
        peer: Address,
        limit: u32,
        before_seq: Option<i64>,
    ) -> Result<Vec<StoredMessage>, Error> {
        self.read(|reply| Read::History { peer, limit, before_seq, reply }).await
    }

    /// The outbox entries that are control messages (receipts), not messages.
    pub async fn control_ids(&self) -> Result<Vec<MessageId>, Error> {
        self.read(|reply| Read::ControlIds { reply }).await
    }

    /// Every outbox entry, oldest first.
    pub async fn outbox(&self) -> Result<Vec<OutboxEntry>, Error> {
        self.read(|reply| Read::Outbox { reply }).await
    }

    /// A contact by address.
    pub async fn contact(&self, address: Address) -> Result<Option<Contact>, Error> {
        self.read(|reply| Read::Contact { address, reply }).await
    }

    /// A contact by the fingerprint of its keys.
    pub async fn contact_by_fingerprint(
        &self,
        fingerprint: communitas_types::Fingerprint,
    ) -> Result<Option<Contact>, Error> {
        self.read(|reply| Read::ContactByFingerprint { fingerprint, reply }).await
    }

    /// One outgoing or incoming message by id (outgoing first).
    pub async fn message(&self, id: MessageId) -> Result<Option<StoredMessage>, Error> {
        self.read(|reply| Read::Message { id, reply }).await
    }

    /// The recipient committed the message: status `delivered`, outbox row gone, in
    /// one transaction.
    /// Returns whether anything changed (false: it was already delivered).
    pub async fn mark_delivered(&self, id: MessageId) -> Result<bool, Error> {
        self.write(|reply| Write::Delivered { id, reply }).await
    }

    /// A delivery attempt failed: count it, schedule the next, note why.
    pub async fn record_attempt(
        &self,
        id: MessageId,
        attempts: u32,
        next_attempt_at: communitas_types::Timestamp,
        error: String,
        status: Status,
    ) -> Result<(), Error> {
        self.write(|reply| Write::Attempt { id, attempts, next_attempt_at, error, status, reply })
            .await
    }

    /// Gives up on a message: outbox row to dead letters, status `failed`.
    pub async fn dead_letter(&self, id: MessageId, reason: String) -> Result<(), Error> {
        self.write(|reply| Write::DeadLetter { id, reason, reply }).await
    }

    /// Puts a dead letter back in the outbox for another round, due `now`.
    pub async fn retry_dead_letter(
        &self,
        id: MessageId,
        now: communitas_types::Timestamp,
        expires_at: communitas_types::Timestamp,
    ) -> Result<OutboxEntry, Error> {
        self.write(|reply| Write::Retry { id, now, expires_at, reply }).await
    }

    /// Every dead letter, newest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, Error> {
        self.read(|reply| Read::DeadLetters { reply }).await
    }

    /// Queues a control message (a receipt): an outbox row with no history row.
    pub async fn insert_control(&self, outbox: OutboxEntry) -> Result<(), Error> {
        self.write(|reply| Write::Control { outbox, reply }).await
    }

    /// Records that `(sender, id)` was seen, for messages that leave no history row.
    pub async fn mark_seen(
        &self,
        sender: communitas_types::Fingerprint,
        id: MessageId,
        seen_until: communitas_types::Timestamp,
    ) -> Result<Inserted, Error> {
        self.write(|reply| Write::Seen { sender, id, seen_until, reply }).await
    }

    /// Server role: keeps an envelope for `mailbox`, within `limits`.
    #[allow(clippy::too_many_arguments)]
    pub async fn mailbox_put(
        &self,
        hash: [u8; 32],
        mailbox: communitas_types::MailboxId,
        envelope: Vec<u8>,
        sender: String,
        now: communitas_types::Timestamp,
        expires_at: communitas_types::Timestamp,
        limits: MailboxLimits,
    ) -> Result<PutOutcome, Error> {
        let put =
            Box::new(actor::MboxPut { hash, mailbox, envelope, sender, now, expires_at, limits });
        self.write(|reply| Write::MboxPut { put, reply }).await
    }

    /// Server role: the envelopes waiting in `mailbox`, oldest first, up to about
    /// `max_bytes` (at least one).
    pub async fn mailbox_fetch(
        &self,
        mailbox: communitas_types::MailboxId,
        now: communitas_types::Timestamp,
        max_bytes: usize,
    ) -> Result<Vec<MailboxEntry>, Error> {
        self.read(|reply| Read::MboxFetch { mailbox, now, max_bytes, reply }).await
    }

    /// Server role: deletes acknowledged envelopes, keeping a tombstone of each until
    /// its expiry so it cannot be put back; returns how many were there.
    pub async fn mailbox_ack(
        &self,
        mailbox: communitas_types::MailboxId,
        hashes: Vec<[u8; 32]>,
    ) -> Result<usize, Error> {
        self.write(|reply| Write::MboxAck { mailbox, hashes, reply }).await
    }

    /// Server role: up to `limit` mailboxes holding unexpired envelopes, in id order,
    /// after `after` (to page through them all).
    pub async fn mailbox_held(
        &self,
        after: Option<communitas_types::MailboxId>,
        now: communitas_types::Timestamp,
        limit: usize,
    ) -> Result<Vec<communitas_types::MailboxId>, Error> {
        self.read(|reply| Read::MboxHeld { after, now, limit, reply }).await
    }

    /// Server role: the hashes of the unexpired envelopes in `mailbox`, oldest first.
    pub async fn mailbox_hashes(
        &self,
        mailbox: communitas_types::MailboxId,
        now: communitas_types::Timestamp,
        limit: usize,
    ) -> Result<Vec<[u8; 32]>, Error> {
        self.read(|reply| Read::MboxHashes { mailbox, now, limit, reply }).await
    }

    /// Server role: of the `offered` hashes, those neither kept here nor acknowledged
    /// here by their owner (a re-replication offer's answer).
    pub async fn mailbox_wanted(&self, offered: Vec<[u8; 32]>) -> Result<Wanted, Error> {
        self.read(|reply| Read::MboxWanted { offered, reply }).await
    }

    /// Server role: the unexpired envelopes of `mailbox` among `hashes`, with expiry.
    pub async fn mailbox_entries(
        &self,
        mailbox: communitas_types::MailboxId,
        hashes: Vec<[u8; 32]>,
        now: communitas_types::Timestamp,
    ) -> Result<Vec<ReplicaEntry>, Error> {
        self.read(|reply| Read::MboxEntries { mailbox, hashes, now, reply }).await
    }

    /// Drops expired mailbox envelopes, tombstones and seen ids.
    pub async fn expire(&self, now: communitas_types::Timestamp) -> Result<usize, Error> {
        self.write(|reply| Write::MboxExpire { now, reply }).await
    }

    /// Records a file transfer (or its progress).
    pub async fn put_file(&self, row: FileRow) -> Result<(), Error> {
        self.write(|reply| Write::FilePut { row: Box::new(row), reply }).await
    }

    /// Records a new file transfer; a file already known is left as it is.
    pub async fn add_file(&self, row: FileRow) -> Result<Inserted, Error> {
        self.write(|reply| Write::FileAdd { row: Box::new(row), reply }).await
    }

    /// A file transfer by file id.
    pub async fn file(&self, file_id: communitas_types::FileId) -> Result<Option<FileRow>, Error> {
        self.read(|reply| Read::File { file_id, reply }).await
    }

    /// The file transfer a message carries, if any.
    pub async fn file_by_message(&self, id: MessageId) -> Result<Option<FileRow>, Error> {
        self.read(|reply| Read::FileByMessage { id, reply }).await
    }

    /// Received files not yet fetched (pending or interrupted), to resume at start.
    pub async fn unfinished_files(&self) -> Result<Vec<FileRow>, Error> {
        self.read(|reply| Read::FilesUnfinished { reply }).await
    }

    /// Server role: keeps a file shard, within `limits`.
    pub async fn put_shard(
        &self,
        shard: StoredShard,
        limits: ShardLimits,
    ) -> Result<ShardPut, Error> {
        self.write(|reply| Write::ShardPut { shard: Box::new(shard), limits, reply }).await
    }

    /// Server role: the held shards of a stripe named by `mask`, with its hashes.
    pub async fn shards(
        &self,
        file_id: communitas_types::FileId,
        stripe: u32,
        mask: u16,
        now: communitas_types::Timestamp,
    ) -> Result<Option<HeldShards>, Error> {
        self.read(|reply| Read::Shards { file_id, stripe, mask, now, reply }).await
    }

    /// Server role: `(stripe, mask)` of the shards of a file held here.
    pub async fn shards_held(
        &self,
        file_id: communitas_types::FileId,
        now: communitas_types::Timestamp,
    ) -> Result<Vec<(u32, u16)>, Error> {
        self.read(|reply| Read::ShardsHeld { file_id, now, reply }).await
    }

    /// Server role: drops the shards of `file_id` that `sender` (a PeerId) put here,
    /// once the recipient has the file; returns how many.
    pub async fn drop_shards(
        &self,
        file_id: communitas_types::FileId,
        sender: String,
    ) -> Result<usize, Error> {
        self.write(|reply| Write::ShardsDrop { file_id, sender, reply }).await
    }

    /// Server role: drops expired shards.
    pub async fn expire_shards(&self, now: communitas_types::Timestamp) -> Result<usize, Error> {
        self.write(|reply| Write::ShardsExpire { now, reply }).await
    }

    /// Checks that the database file is sound (`PRAGMA integrity_check`).
    pub async fn integrity_check(&self) -> Result<bool, Error> {
        self.read(|reply| Read::IntegrityCheck { reply }).await
    }
}
