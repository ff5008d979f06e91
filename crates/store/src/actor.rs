//! The writer thread: owns the connection, batches writes into transactions.
//!
//! Loop: block for one command; if it is a write, take every write already waiting
//! (up to [`MAX_BATCH`]) and commit them together, each in its own savepoint. Replies
//! go out after the commit, so `Ok` always means "on disk". Reads run between batches
//! on the same connection and so always see every write acknowledged before them.

use std::path::Path;

use communitas_crypto::at_rest::StorageKey;
use communitas_types::{Address, FileId, Fingerprint, MailboxId, MessageId, Timestamp};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::files::{self, FileRow, HeldShards, ShardLimits, ShardPut, StoredShard};
use crate::model::{
    Contact, DeadLetter, IdentityRow, Inserted, NewMessage, OutboxEntry, Status, StoredMessage,
};
use crate::ops::{MailboxEntry, MailboxLimits, PutOutcome};
use crate::replica::{ReplicaEntry, Wanted};
use crate::{Error, ops, replica, schema, settings};

/// Most writes committed in one transaction: bounds the latency a big burst adds to
/// the first write in it.
const MAX_BATCH: usize = 256;

type Reply<T> = oneshot::Sender<Result<T, Error>>;

pub(crate) enum Write {
    /// Commit what came before, then take nothing more (the node stopped).
    Close {
        reply: Reply<()>,
    },
    SetIdentity {
        row: IdentityRow,
        reply: Reply<()>,
    },
    AddContact {
        contact: Box<Contact>,
        reply: Reply<()>,
    },
    SetVerified {
        address: Address,
        verified: bool,
        reply: Reply<bool>,
    },
    Outgoing {
        message: NewMessage,
        outbox: OutboxEntry,
        reply: Reply<()>,
    },
    Incoming {
        message: NewMessage,
        sender: Fingerprint,
        seen_until: Timestamp,
        reply: Reply<Inserted>,
    },
    SetStatus {
        id: MessageId,
        status: Status,
        reply: Reply<()>,
    },
    Delivered {
        id: MessageId,
        reply: Reply<bool>,
    },
    Control {
        outbox: OutboxEntry,
        reply: Reply<()>,
    },
    Seen {
        sender: Fingerprint,
        id: MessageId,
        seen_until: Timestamp,
        reply: Reply<Inserted>,
    },
    MboxPut {
        put: Box<MboxPut>,
        reply: Reply<PutOutcome>,
    },
    MboxAck {
        mailbox: MailboxId,
        hashes: Vec<[u8; 32]>,
        reply: Reply<usize>,
    },
    MboxExpire {
        now: Timestamp,
        reply: Reply<usize>,
    },
    Attempt {
        id: MessageId,
        attempts: u32,
        next_attempt_at: Timestamp,
        error: String,
        status: Status,
        reply: Reply<()>,
    },
    DeadLetter {
        id: MessageId,
        reason: String,
        reply: Reply<()>,
    },
    Retry {
        id: MessageId,
        now: Timestamp,
        expires_at: Timestamp,
        reply: Reply<OutboxEntry>,
    },
    FilePut {
        row: Box<FileRow>,
        reply: Reply<()>,
    },
    FileAdd {
        row: Box<FileRow>,
        reply: Reply<Inserted>,
    },
    ShardPut {
        shard: Box<StoredShard>,
        limits: ShardLimits,
        reply: Reply<ShardPut>,
    },
    ShardsDrop {
        file_id: communitas_types::FileId,
        sender: String,
        reply: Reply<usize>,
    },
    ShardsExpire {
        now: Timestamp,
        reply: Reply<usize>,
    },
    // Settings and read state (issue 6).
    SetSetting {
        key: &'static str,
        value: String,
        reply: Reply<()>,
    },
    ReadIncoming {
        peer: Address,
        reply: Reply<Vec<MessageId>>,
    },
    MarkRead {
        peer: Address,
        id: MessageId,
        reply: Reply<bool>,
    },
}

pub(crate) enum Read {
    /// Answer nothing more.
    Close {
        reply: Reply<()>,
    },
    File {
        file_id: FileId,
        reply: Reply<Option<FileRow>>,
    },
    FileByMessage {
        id: MessageId,
        reply: Reply<Option<FileRow>>,
    },
    FilesUnfinished {
        reply: Reply<Vec<FileRow>>,
    },
    Shards {
        file_id: FileId,
        stripe: u32,
        mask: u16,
        now: Timestamp,
        reply: Reply<Option<HeldShards>>,
    },
    ShardsHeld {
        file_id: FileId,
        now: Timestamp,
        reply: Reply<Vec<(u32, u16)>>,
    },
    Identity {
        reply: Reply<Option<IdentityRow>>,
    },
    Contacts {
        reply: Reply<Vec<Contact>>,
    },
    History {
        peer: Address,
        limit: u32,
        before_seq: Option<i64>,
        reply: Reply<Vec<StoredMessage>>,
    },
    Outbox {
        reply: Reply<Vec<OutboxEntry>>,
    },
    ControlIds {
        reply: Reply<Vec<MessageId>>,
    },
    IntegrityCheck {
        reply: Reply<bool>,
    },
    Contact {
        address: Address,
        reply: Reply<Option<Contact>>,
    },
    ContactByFingerprint {
        fingerprint: Fingerprint,
        reply: Reply<Option<Contact>>,
    },
    Message {
        id: MessageId,
        reply: Reply<Option<StoredMessage>>,
    },
    DeadLetters {
        reply: Reply<Vec<DeadLetter>>,
    },
    MboxFetch {
        mailbox: MailboxId,
        now: Timestamp,
        max_bytes: usize,
        reply: Reply<Vec<MailboxEntry>>,
    },
    Conversations {
        reply: Reply<Vec<crate::Conversation>>,
    },
    Setting {
        key: &'static str,
        reply: Reply<Option<String>>,
    },
    MboxHeld {
        after: Option<MailboxId>,
        now: Timestamp,
        limit: usize,
        reply: Reply<Vec<MailboxId>>,
    },
    MboxHashes {
        mailbox: MailboxId,
        now: Timestamp,
        limit: usize,
        reply: Reply<Vec<[u8; 32]>>,
    },
    MboxWanted {
        offered: Vec<[u8; 32]>,
        reply: Reply<Wanted>,
    },
    MboxEntries {
        mailbox: MailboxId,
        hashes: Vec<[u8; 32]>,
        now: Timestamp,
        reply: Reply<Vec<ReplicaEntry>>,
    },
}

/// A mailbox put, boxed in its command (it carries a whole envelope).
pub(crate) struct MboxPut {
    pub(crate) hash: [u8; 32],
    pub(crate) mailbox: MailboxId,
    pub(crate) envelope: Vec<u8>,
    pub(crate) sender: String,
    pub(crate) now: Timestamp,
    pub(crate) expires_at: Timestamp,
    pub(crate) limits: MailboxLimits,
}

/// Sends a write's reply once the commit's fate is known.
type Finish = Box<dyn FnOnce(Option<&Error>) + Send>;

fn finish<T: Send + 'static>(outcome: Result<T, Error>, reply: Reply<T>) -> Finish {
    Box::new(move |commit_error| {
        let result = match commit_error {
            Some(e) => Err(Error::CommitFailed { reason: e.to_string() }),
            None => outcome,
        };
        // The caller may have stopped waiting; the write stands all the same.
        let _ = reply.send(result);
    })
}

impl Write {
    fn apply(self, conn: &Connection, key: &StorageKey) -> (bool, Finish) {
        fn done<T: Send + 'static>(r: Result<T, Error>, reply: Reply<T>) -> (bool, Finish) {
            (r.is_ok(), finish(r, reply))
        }
        match self {
            // Taken out of the batch by the writer before it commits (see `run`).
            Write::Close { reply } => done(Ok(()), reply),
            Write::FilePut { row, reply } => done(files::put(conn, &row), reply),
            Write::FileAdd { row, reply } => done(files::add(conn, &row), reply),
            Write::ShardPut { shard, limits, reply } => {
                done(files::shard_put(conn, &shard, limits), reply)
            }
            Write::ShardsDrop { file_id, sender, reply } => {
                done(files::shards_drop(conn, file_id, &sender), reply)
            }
            Write::ShardsExpire { now, reply } => done(files::shards_expire(conn, now), reply),
            Write::SetIdentity { row, reply } => done(ops::set_identity(conn, &row), reply),
            Write::AddContact { contact, reply } => done(ops::add_contact(conn, &contact), reply),
            Write::SetVerified { address, verified, reply } => {
                done(ops::set_verified(conn, address, verified), reply)
            }
            Write::Outgoing { message, outbox, reply } => {
                done(ops::insert_outgoing(conn, key, &message, &outbox), reply)
            }
            Write::Incoming { message, sender, seen_until, reply } => {
                done(ops::insert_incoming(conn, key, &message, &sender, seen_until), reply)
            }
            Write::SetStatus { id, status, reply } => {
                done(ops::set_status(conn, id, status), reply)
            }
            Write::Delivered { id, reply } => done(ops::mark_delivered(conn, id), reply),
            Write::SetSetting { key, value, reply } => {
                done(settings::set_setting(conn, key, &value), reply)
            }
            Write::ReadIncoming { peer, reply } => done(settings::read_incoming(conn, peer), reply),
            Write::MarkRead { peer, id, reply } => done(settings::mark_read(conn, peer, id), reply),
            Write::Control { outbox, reply } => done(ops::insert_control(conn, &outbox), reply),
            Write::Seen { sender, id, seen_until, reply } => {
                done(ops::mark_seen(conn, &sender, id, seen_until), reply)
            }
            Write::MboxPut { put, reply } => {
                let p = *put;
                let outcome = ops::mbox_put(
                    conn,
                    &p.hash,
                    &p.mailbox,
                    &p.envelope,
                    &p.sender,
                    p.now,
                    p.expires_at,
                    p.limits,
                );
                done(outcome, reply)
            }
            Write::MboxAck { mailbox, hashes, reply } => {
                done(ops::mbox_ack(conn, &mailbox, &hashes), reply)
            }
            Write::MboxExpire { now, reply } => done(ops::mbox_expire(conn, now), reply),
            Write::Attempt { id, attempts, next_attempt_at, error, status, reply } => done(
                ops::record_attempt(conn, id, attempts, next_attempt_at, &error, status),
                reply,
            ),
            Write::DeadLetter { id, reason, reply } => {
                done(ops::dead_letter(conn, id, &reason), reply)
            }
            Write::Retry { id, now, expires_at, reply } => {
                done(ops::retry_dead_letter(conn, id, now, expires_at), reply)
            }
        }
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
            if let Some(at) = batch.iter().position(|w| matches!(w, Write::Close { .. })) {
                let rest = batch.split_off(at);
                self.commit(batch);
                self.inbox.close();
                for write in rest {
                    if let Write::Close { reply } = write {
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
        let mut finishes = Vec::with_capacity(batch.len());
        let outcome = (|| -> Result<(), Error> {
            let mut tx = self.conn.transaction()?;
            for write in batch {
                let sp = tx.savepoint()?;
                let (ok, finish) = write.apply(&sp, &self.key);
                if ok {
                    sp.commit()?
                } else {
                    sp.finish()?
                }
                finishes.push(finish);
            }
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "store transaction failed");
        }
        for finish in finishes {
            finish(outcome.as_ref().err());
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
            if let Read::Close { reply } = read {
                self.inbox.close();
                while self.inbox.try_recv().is_ok() {}
                let _ = reply.send(Ok(()));
                return;
            }
            self.read(read);
        }
    }

    fn read(&self, read: Read) {
        let (conn, key) = (&self.conn, &self.key);
        // A dropped receiver means the caller gave up; nothing to do.
        match read {
            Read::Close { reply } => drop(reply.send(Ok(()))),
            Read::File { file_id, reply } => drop(reply.send(files::get(conn, file_id))),
            Read::FileByMessage { id, reply } => drop(reply.send(files::by_message(conn, id))),
            Read::FilesUnfinished { reply } => drop(reply.send(files::unfinished(conn))),
            Read::Shards { file_id, stripe, mask, now, reply } => {
                drop(reply.send(files::shards_get(conn, file_id, stripe, mask, now)))
            }
            Read::ShardsHeld { file_id, now, reply } => {
                drop(reply.send(files::shards_held(conn, file_id, now)))
            }
            Read::Identity { reply } => drop(reply.send(ops::identity(conn))),
            Read::Contacts { reply } => drop(reply.send(ops::contacts(conn))),
            Read::History { peer, limit, before_seq, reply } => {
                drop(reply.send(ops::history(conn, key, peer, limit, before_seq)))
            }
            Read::Outbox { reply } => drop(reply.send(ops::outbox(conn))),
            Read::ControlIds { reply } => drop(reply.send(ops::control_ids(conn))),
            Read::IntegrityCheck { reply } => drop(reply.send(ops::integrity_check(conn))),
            Read::Contact { address, reply } => drop(reply.send(ops::contact(conn, &address))),
            Read::ContactByFingerprint { fingerprint, reply } => {
                drop(reply.send(ops::contact_by_fingerprint(conn, &fingerprint)))
            }
            Read::Message { id, reply } => drop(reply.send(ops::message(conn, key, id))),
            Read::DeadLetters { reply } => drop(reply.send(ops::dead_letters(conn))),
            Read::Conversations { reply } => drop(reply.send(settings::conversations(conn))),
            Read::Setting { key, reply } => drop(reply.send(settings::setting(conn, key))),
            Read::MboxFetch { mailbox, now, max_bytes, reply } => {
                drop(reply.send(ops::mbox_fetch(conn, &mailbox, now, max_bytes)))
            }
            Read::MboxHeld { after, now, limit, reply } => {
                drop(reply.send(replica::held_mailboxes(conn, after, now, limit)))
            }
            Read::MboxHashes { mailbox, now, limit, reply } => {
                drop(reply.send(replica::hashes(conn, &mailbox, now, limit)))
            }
            Read::MboxWanted { offered, reply } => {
                drop(reply.send(replica::wanted(conn, &offered)))
            }
            Read::MboxEntries { mailbox, hashes, now, reply } => {
                drop(reply.send(replica::entries(conn, &mailbox, &hashes, now)))
            }
        }
    }
}
