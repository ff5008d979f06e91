//! Communitas' store: one SQLite file per home, owned by one writer thread.
//!
//! [`Store`] is a cloneable handle. Every write is a closure over the connection, sent
//! over a bounded channel to the thread that owns the writing connection; writes that
//! arrive together are committed in one transaction (group commit), each inside its
//! own savepoint so one failing write never takes the others down. Reads go to a
//! second thread with a read-only connection, so they never wait behind a commit's
//! fsync. A write's reply is sent only after its transaction is durable (WAL,
//! `synchronous = FULL`), so a caller that got `Ok` may promise the user that the row
//! survives a crash.
//!
//! The threads know no query: each table's module under `ops/` holds its `Store`
//! methods and the SQL behind them, so a new query is written in one place
//! (decision 0041).
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
mod model;
mod ops;
pub mod schema;

use std::path::Path;

use communitas_crypto::at_rest::StorageKey;
use communitas_types::{Address, MessageId};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

pub use model::{
    Contact, Conversation, Cursor, DeadLetter, Direction, IdentityRow, Inserted, NewMessage,
    OutboxEntry, Place, Status, StoredMessage,
};
pub use ops::blocks::{Block, Blocked, MAX_BLOCKS};
pub use ops::files::{FileRow, FileStatus};
pub use ops::held_prekeys::{Deposited, HeldLimits, PrekeyDeposit};
pub use ops::mailbox::{MailboxEntry, MailboxLimits, MailboxPut, PutOutcome};
pub use ops::replica::{ReplicaEntry, Wanted};
pub use ops::requests::{Request, RequestAdded, RequestLimits, RequestMessage};
pub use ops::sessions::{SessionUpdate, StoredSession};
pub use ops::shards::{HeldShards, ShardLimits, ShardPut, StoredShard};

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
    /// The block list is full.
    #[error("at most {max} addresses can be blocked")]
    TooManyBlocks {
        /// The limit.
        max: u32,
    },
    /// No such message.
    #[error("no message {0}")]
    NoSuchMessage(MessageId),
    /// A session state was not made from the stored one (an earlier write it was
    /// made from failed): nothing was written.
    #[error("the session changed since this state was made from it")]
    SessionConflict,
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

/// A write queued in order behind every write before it: [`Committing::done`] waits
/// until it is committed (or failed). Writes are committed in the order they were
/// handed over, so a caller may let the next write go once this one is queued.
#[must_use = "a write's outcome must be awaited"]
pub struct Committing<T>(oneshot::Receiver<Result<T, Error>>);

impl<T> Committing<T> {
    /// Waits for the write's outcome.
    pub async fn done(self) -> Result<T, Error> {
        self.0.await.map_err(|_| Error::ActorGone)?
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

    /// Runs `op` on the writer thread, in the next transaction, inside a savepoint of
    /// its own: an `Err` rolls back its rows alone. Answers once the transaction is
    /// committed, so an `Ok` is on disk.
    async fn write<T, F>(&self, op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &StorageKey) -> Result<T, Error> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(actor::Pending::new(op, reply));
        self.commands.send(Write::Run(job)).await.map_err(|_| Error::ActorGone)?;
        answer.await.map_err(|_| Error::ActorGone)?
    }

    /// Hands `op` to the writer thread, after every write handed to it before, and
    /// returns at once; [`Committing::done`] waits for its answer.
    async fn submit<T, F>(&self, op: F) -> Result<Committing<T>, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &StorageKey) -> Result<T, Error> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(actor::Pending::new(op, reply));
        self.commands.send(Write::Run(job)).await.map_err(|_| Error::ActorGone)?;
        Ok(Committing(answer))
    }

    /// Runs `op` on the reader thread's connection, which cannot write; it sees every
    /// write acknowledged before.
    async fn read<T, F>(&self, op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &StorageKey) -> Result<T, Error> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: actor::ReadJob = Box::new(move |conn, key| {
            // A dropped receiver means the caller gave up; nothing to do.
            let _ = reply.send(op(conn, key));
        });
        self.reads.send(Read::Run(job)).await.map_err(|_| Error::ActorGone)?;
        answer.await.map_err(|_| Error::ActorGone)?
    }

    /// Closes the database for every clone of this handle: writes sent before are
    /// committed, every call after fails with [`Error::ActorGone`]. A node that stops
    /// closes its store, so a request still holding the old node cannot write while a
    /// new one (after an unlock) has the database.
    pub async fn close(&self) {
        // Each thread answers its close once it took nothing more; a thread that
        // stopped already has nothing to close.
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Write::Close(reply)).await.is_ok() {
            let _ = answer.await;
        }
        let (reply, answer) = oneshot::channel();
        if self.reads.send(Read::Close(reply)).await.is_ok() {
            let _ = answer.await;
        }
    }

    /// Checks that the database file is sound (`PRAGMA integrity_check`).
    pub async fn integrity_check(&self) -> Result<bool, Error> {
        self.read(|conn, _| {
            let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            Ok(verdict == "ok")
        })
        .await
    }
}
