//! The two threads behind a [`Store`](crate::Store): the writer, which owns the writing
//! connection and batches writes into transactions, and the reader, which owns a second
//! connection that only reads.
//!
//! Neither thread knows any query. A write arrives as a [`Job`]: the handle's closure
//! over the connection, together with the reply it owes. The writer blocks for one,
//! takes every write already waiting (up to [`MAX_BATCH`]) and commits them together,
//! each in its own savepoint, so a failing write is rolled back alone; replies go out
//! after the commit, so `Ok` always means "on disk". A read arrives as a [`ReadJob`],
//! which runs on the reader's connection and sends its own reply.

use std::path::Path;

use communitas_crypto::at_rest::StorageKey;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::{Error, schema};

/// Most writes committed in one transaction: bounds the latency a big burst adds to
/// the first write in it.
const MAX_BATCH: usize = 256;

pub(crate) type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// What the writer thread takes in.
pub(crate) enum Write {
    /// One write.
    Run(Box<dyn Job>),
    /// Commit what came before, then take nothing more (the node stopped).
    Close(Reply<()>),
}

/// What the reader thread takes in.
pub(crate) enum Read {
    /// One read.
    Run(ReadJob),
    /// Answer nothing more.
    Close(Reply<()>),
}

/// A read: runs on the reader's connection and sends its own reply (a dropped
/// receiver means its caller gave up; nothing to do then).
pub(crate) type ReadJob = Box<dyn FnOnce(&Connection, &StorageKey) + Send>;

/// A write waiting for the writer thread: its rows first, its reply once the
/// transaction holding them is committed (or not).
pub(crate) trait Job: Send {
    /// Writes the rows (inside the job's own savepoint); false if they must be
    /// rolled back.
    fn apply(&mut self, conn: &Connection, key: &StorageKey) -> bool;

    /// Sends the reply, now the commit's fate is known.
    fn finish(self: Box<Self>, commit_error: Option<&Error>);
}

/// A write as the handle makes it: the closure, then the outcome it had.
pub(crate) struct Pending<F, T> {
    op: Option<F>,
    outcome: Option<Result<T, Error>>,
    reply: Reply<T>,
}

impl<F, T> Pending<F, T> {
    pub(crate) fn new(op: F, reply: Reply<T>) -> Self {
        Self { op: Some(op), outcome: None, reply }
    }
}

impl<F, T> Job for Pending<F, T>
where
    F: FnOnce(&Connection, &StorageKey) -> Result<T, Error> + Send,
    T: Send,
{
    fn apply(&mut self, conn: &Connection, key: &StorageKey) -> bool {
        let Some(op) = self.op.take() else { return false };
        let outcome = op(conn, key);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, commit_error: Option<&Error>) {
        let result = match (commit_error, self.outcome) {
            (Some(e), _) => Err(Error::CommitFailed { reason: e.to_string() }),
            (None, Some(outcome)) => outcome,
            // Not reached: the writer finishes only the jobs it applied.
            (None, None) => Err(Error::ActorGone),
        };
        // The caller may have stopped waiting; the write stands all the same.
        let _ = self.reply.send(result);
    }
}

pub(crate) fn connect(path: &Path) -> Result<Connection, Error> {
    let mut conn = Connection::open(path)?;
    restrict_permissions(path);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk when it returns, which is what `send` promises.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    schema::migrate(&mut conn)?;
    Ok(conn)
}

/// The database holds contacts and (sealed) messages: only the user may read it.
/// SQLite gives its -wal and -shm files the same mode.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(error = %e, "could not make the database private to its owner");
        }
    }
}

/// The writer thread.
pub(crate) struct Actor {
    conn: Connection,
    key: StorageKey,
    inbox: mpsc::Receiver<Write>,
}

impl Actor {
    pub(crate) fn new(conn: Connection, key: StorageKey, inbox: mpsc::Receiver<Write>) -> Self {
        Self { conn, key, inbox }
    }

    pub(crate) fn run(mut self) {
        while let Some(first) = self.inbox.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.inbox.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
            // A close ends it: what came before is committed, what comes after is
            // refused (its caller gets `ActorGone`), and the connection closes.
            if let Some(at) = batch.iter().position(|w| matches!(w, Write::Close(_))) {
                let rest = batch.split_off(at);
                self.commit(batch);
                self.inbox.close();
                for write in rest {
                    if let Write::Close(reply) = write {
                        let _ = reply.send(Ok(()));
                    }
                }
                while self.inbox.try_recv().is_ok() {}
                return;
            }
            self.commit(batch);
        }
    }

    fn commit(&mut self, batch: Vec<Write>) {
        let mut applied = Vec::with_capacity(batch.len());
        let outcome = (|| -> Result<(), Error> {
            let mut tx = self.conn.transaction()?;
            for write in batch {
                // Closes were taken out of the batch by `run`.
                let Write::Run(mut job) = write else { continue };
                let sp = tx.savepoint()?;
                if job.apply(&sp, &self.key) {
                    sp.commit()?
                } else {
                    sp.finish()?
                }
                applied.push(job);
            }
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "store transaction failed");
        }
        for job in applied {
            job.finish(outcome.as_ref().err());
        }
    }
}

/// The reader thread: a second, read-only connection. WAL lets it read while the
/// writer commits, so a read never waits behind an fsync; it sees every write that
/// was acknowledged before the read was sent.
pub(crate) struct Reader {
    conn: Connection,
    key: StorageKey,
    inbox: mpsc::Receiver<Read>,
}

impl Reader {
    pub(crate) fn new(
        path: &Path,
        key: StorageKey,
        inbox: mpsc::Receiver<Read>,
    ) -> Result<Self, Error> {
        // Not opened read-only: the last connection to close checkpoints the WAL, which
        // a read-only one cannot do. `query_only` keeps it from writing all the same.
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "query_only", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Self { conn, key, inbox })
    }

    pub(crate) fn run(mut self) {
        while let Some(read) = self.inbox.blocking_recv() {
            match read {
                Read::Run(job) => job(&self.conn, &self.key),
                Read::Close(reply) => {
                    self.inbox.close();
                    while self.inbox.try_recv().is_ok() {}
                    let _ = reply.send(Ok(()));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    type Answer<T> = oneshot::Receiver<Result<T, Error>>;

    fn writer() -> Actor {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (
                 parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED
             );",
        )
        .unwrap();
        let (_, inbox) = mpsc::channel(1);
        Actor::new(conn, StorageKey::from_bytes([7; 32]), inbox)
    }

    /// A write that inserts `row` into `table`, then fails if `fail`.
    fn insert(table: &'static str, row: i64, fail: bool) -> (Write, Answer<()>) {
        let (reply, answer) = oneshot::channel();
        let op = move |conn: &Connection, _: &StorageKey| {
            let column = if table == "parent" { "id" } else { "parent" };
            conn.execute(&format!("INSERT INTO {table} ({column}) VALUES (?1)"), [row])?;
            if fail {
                Err(Error::NoSuchMessage(communitas_types::MessageId::from_bytes([0; 16])))
            } else {
                Ok(())
            }
        };
        (Write::Run(Box::new(Pending::new(op, reply))), answer)
    }

    fn count(actor: &Actor, table: &str) -> i64 {
        actor.conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_failing_write_is_rolled_back_alone_and_the_rest_of_its_batch_commits() {
        let mut actor = writer();
        let (a, answer_a) = insert("parent", 1, false);
        let (b, mut answer_b) = insert("parent", 2, true);
        let (c, answer_c) = insert("parent", 3, false);
        actor.commit(vec![a, b, c]);
        assert!(answer_a.blocking_recv().unwrap().is_ok());
        assert!(matches!(answer_b.try_recv().unwrap(), Err(Error::NoSuchMessage(_))));
        assert!(answer_c.blocking_recv().unwrap().is_ok());
        let ids: Vec<i64> = {
            let mut stmt = actor.conn.prepare("SELECT id FROM parent ORDER BY id").unwrap();
            stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
        };
        assert_eq!(ids, [1, 3]);
    }

    #[test]
    fn when_the_commit_fails_no_write_of_the_batch_is_answered_ok() {
        let mut actor = writer();
        // Each write is fine in its savepoint; the orphan child fails the deferred
        // foreign key only at COMMIT, which takes the whole batch down.
        let (a, answer_a) = insert("parent", 1, false);
        let (b, answer_b) = insert("child", 99, false);
        actor.commit(vec![a, b]);
        for answer in [answer_a, answer_b] {
            assert!(matches!(answer.blocking_recv().unwrap(), Err(Error::CommitFailed { .. })));
        }
        assert_eq!(count(&actor, "parent"), 0);
        assert_eq!(count(&actor, "child"), 0);
    }
}
