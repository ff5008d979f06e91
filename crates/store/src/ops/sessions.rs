//! The `prekey_secrets` and `sessions` tables (issue 14, decision 0053): this device's
//! prekey secrets (the bytes of the proto `PrekeySecrets`) and one session state per
//! peer device (the bytes of the proto `Session`). Both are secrets: sealed at rest
//! under the storage key, each bound to its row, and handed out in [`Zeroizing`]
//! buffers.
//!
//! A session advances when a message is sealed or opened with it, so its new state is
//! committed in the same transaction as that message (issue 14 item 6): the outgoing
//! message with its outbox row, or the incoming message with its seen id. A crash
//! either keeps both or neither, so no message is left undecryptable or opened twice.

use communitas_crypto::at_rest::StorageKey;
use communitas_types::{Fingerprint, MessageId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

use super::{messages, ms, outbox, seen, select, ts};
use crate::{Committing, Error, Inserted, NewMessage, OutboxEntry, Store};

/// The migration that creates both tables.
pub(crate) const SCHEMA: &str = "
    CREATE TABLE prekey_secrets (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        secrets    BLOB NOT NULL,           -- sealed under the storage key
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        peer_device BLOB PRIMARY KEY,       -- the peer device's public key, 32 bytes
        state       BLOB NOT NULL,          -- sealed under the storage key
        updated_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
";

/// Migration 14: the commit count of each session row.
pub(crate) const GENERATION: &str = "
    ALTER TABLE sessions ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
";

/// A session's new state, to be committed with the message that advanced it.
#[derive(Clone)]
pub struct SessionUpdate {
    /// The peer device the session is with (its public device key).
    pub peer_device: [u8; 32],
    /// The generation of the stored state this one was made from (0: none). The
    /// write fails with [`Error::SessionConflict`], writing nothing, unless the row
    /// holds exactly that generation; the new state is `made_from + 1`. `None` writes
    /// whatever is stored (tests, a session set up before any message).
    pub made_from: Option<u64>,
    /// The session's state bytes (proto `Session::to_bytes`).
    pub state: Zeroizing<Vec<u8>>,
    /// This device's prekey secrets after accepting the session, when accepting it
    /// used some up (proto `PrekeySecrets::consume`); `None` leaves them as they are.
    pub prekeys: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for SessionUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The state is secret: only its size and whose it is.
        f.debug_struct("SessionUpdate")
            .field("state_len", &self.state.len())
            .field("prekeys", &self.prekeys.is_some())
            .finish_non_exhaustive()
    }
}

/// A stored session: whose, and when it last advanced.
#[derive(Clone)]
pub struct StoredSession {
    /// The peer device's public key.
    pub peer_device: [u8; 32],
    /// The state bytes.
    pub state: Zeroizing<Vec<u8>>,
    /// When it was last committed (our clock).
    pub updated_at: Timestamp,
    /// How many times it was committed.
    pub generation: u64,
}

impl std::fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSession")
            .field("state_len", &self.state.len())
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// This device's prekey secrets, if any were saved.
    pub async fn prekey_secrets(&self) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        self.read(load_prekeys).await
    }

    /// Saves this device's prekey secrets (made, rotated), replacing the old ones.
    pub async fn save_prekey_secrets(&self, secrets: Zeroizing<Vec<u8>>) -> Result<(), Error> {
        self.write(move |conn, key| save_prekeys(conn, key, &secrets)).await
    }

    /// The session with a peer device, if there is one.
    pub async fn session(&self, peer_device: [u8; 32]) -> Result<Option<StoredSession>, Error> {
        self.read(move |conn, key| load(conn, key, &peer_device)).await
    }

    /// Every stored session (newest first), for listing and migration.
    pub async fn sessions(&self) -> Result<Vec<StoredSession>, Error> {
        self.read(|conn, key| {
            let rows = select(
                conn,
                "SELECT peer_device, state, updated_at, generation FROM sessions
                 ORDER BY updated_at DESC",
                &[],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )?;
            rows.into_iter()
                .map(|(device, sealed, at, generation)| {
                    let peer_device = super::array(device, "peer device")?;
                    let state = open_state(key, &peer_device, &sealed)?;
                    let generation = u64::try_from(generation).unwrap_or(0);
                    Ok(StoredSession { peer_device, state, updated_at: ts(at), generation })
                })
                .collect()
        })
        .await
    }

    /// Commits a session state alone (presence, typing, a receipt already seen).
    pub async fn save_session(&self, update: SessionUpdate) -> Result<(), Error> {
        self.submit_session(update).await?.done().await
    }

    /// [`Self::save_session`], returning once the write is queued.
    pub async fn submit_session(&self, update: SessionUpdate) -> Result<Committing<()>, Error> {
        self.submit(move |conn, key| commit(conn, key, &update)).await
    }

    /// Forgets the session with a peer device (it is to be re-established). True if
    /// there was one.
    pub async fn drop_session(&self, peer_device: [u8; 32]) -> Result<bool, Error> {
        self.write(move |conn, _| {
            Ok(conn.execute("DELETE FROM sessions WHERE peer_device = ?1", [&peer_device[..]])? > 0)
        })
        .await
    }

    /// Stores an outgoing message, its outbox row (the envelope the session sealed)
    /// and the session's new state in one transaction.
    /// Returns once the write is queued: writes commit in the order they were
    /// queued, so the session's next write may be queued before this one is done.
    pub async fn insert_outgoing_with_session(
        &self,
        message: NewMessage,
        outbox: OutboxEntry,
        update: SessionUpdate,
    ) -> Result<Committing<()>, Error> {
        self.submit(move |conn, key| {
            messages::insert(conn, key, &message)?;
            outbox::insert(conn, &outbox)?;
            commit(conn, key, &update)
        })
        .await
    }

    /// Stores an outbox row without a history row (a control message) sealed by a
    /// session, and the session's new state, in one transaction.
    /// Returns once queued, like [`Self::insert_outgoing_with_session`].
    pub async fn enqueue_with_session(
        &self,
        outbox: OutboxEntry,
        update: SessionUpdate,
    ) -> Result<Committing<()>, Error> {
        self.submit(move |conn, key| {
            outbox::insert(conn, &outbox)?;
            commit(conn, key, &update)
        })
        .await
    }

    /// Replaces a queued message's envelope with one a session sealed again, with
    /// that session's state, in one transaction. True if the message was still
    /// queued; false if it left the outbox meanwhile (delivered by another copy):
    /// the state is committed all the same. The session did advance, and later
    /// letters may already be built on it, so a write that left it out would make
    /// every one of them fail its generation check; the envelope never sent is to
    /// the peer a message lost on the way, which its session skips.
    /// Returns once queued, like [`Self::insert_outgoing_with_session`].
    pub async fn reseal_with_session(
        &self,
        id: MessageId,
        envelope: Vec<u8>,
        update: SessionUpdate,
    ) -> Result<Committing<bool>, Error> {
        self.submit(move |conn, key| {
            let changed = conn.execute(
                "UPDATE outbox SET envelope = ?1 WHERE message_id = ?2",
                params![envelope, &id.as_bytes()[..]],
            )?;
            commit(conn, key, &update)?;
            Ok(changed > 0)
        })
        .await
    }

    /// Stores an incoming message a session opened, unless `(sender, id)` was seen
    /// before, and the session's new state, in one transaction. The state is
    /// committed even for a duplicate: the message did open, so the keys it used are
    /// spent either way.
    /// Returns once queued, like [`Self::insert_outgoing_with_session`].
    pub async fn insert_incoming_with_session(
        &self,
        message: NewMessage,
        sender: Fingerprint,
        seen_until: Timestamp,
        update: SessionUpdate,
    ) -> Result<Committing<Inserted>, Error> {
        self.submit(move |conn, key| {
            let seen = seen::record(conn, &sender, message.id, seen_until)?;
            if seen == Inserted::New {
                messages::insert(conn, key, &message)?;
            }
            commit(conn, key, &update)?;
            Ok(seen)
        })
        .await
    }
}

const PREKEYS_AAD: &[u8] = b"communitas prekey secrets v1";

fn session_aad(peer_device: &[u8; 32]) -> Vec<u8> {
    [b"communitas session v1".as_slice(), peer_device].concat()
}

fn seal(key: &StorageKey, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, Error> {
    key.seal(aad, plain).map_err(|_| Error::Corrupt { field: "random source" })
}

fn open_state(
    key: &StorageKey,
    peer_device: &[u8; 32],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    key.open(&session_aad(peer_device), sealed).map(Zeroizing::new).map_err(|_| Error::Decrypt)
}

fn load_prekeys(conn: &Connection, key: &StorageKey) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    let sealed: Option<Vec<u8>> = conn
        .query_row("SELECT secrets FROM prekey_secrets WHERE id = 1", [], |r| r.get(0))
        .optional()?;
    sealed
        .map(|s| key.open(PREKEYS_AAD, &s).map(Zeroizing::new).map_err(|_| Error::Decrypt))
        .transpose()
}

fn save_prekeys(conn: &Connection, key: &StorageKey, secrets: &[u8]) -> Result<(), Error> {
    let sealed = seal(key, PREKEYS_AAD, secrets)?;
    conn.execute(
        "INSERT INTO prekey_secrets (id, secrets, updated_at) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET secrets = excluded.secrets, updated_at = excluded.updated_at",
        params![sealed, ms(Timestamp::now())],
    )?;
    Ok(())
}

fn load(
    conn: &Connection,
    key: &StorageKey,
    peer_device: &[u8; 32],
) -> Result<Option<StoredSession>, Error> {
    let row: Option<(Vec<u8>, i64, i64)> = conn
        .query_row(
            "SELECT state, updated_at, generation FROM sessions WHERE peer_device = ?1",
            [&peer_device[..]],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    row.map(|(sealed, at, generation)| {
        Ok(StoredSession {
            peer_device: *peer_device,
            state: open_state(key, peer_device, &sealed)?,
            updated_at: ts(at),
            generation: u64::try_from(generation).unwrap_or(0),
        })
    })
    .transpose()
}

/// Writes a session's state (and the prekeys it consumed) inside the caller's savepoint.
pub(crate) fn commit(
    conn: &Connection,
    key: &StorageKey,
    update: &SessionUpdate,
) -> Result<(), Error> {
    let stored: Option<i64> = conn
        .query_row(
            "SELECT generation FROM sessions WHERE peer_device = ?1",
            [&update.peer_device[..]],
            |r| r.get(0),
        )
        .optional()?;
    let stored = stored.map_or(0, |g| u64::try_from(g).unwrap_or(0));
    if update.made_from.is_some_and(|from| from != stored) {
        return Err(Error::SessionConflict);
    }
    let generation = i64::try_from(stored.saturating_add(1)).unwrap_or(i64::MAX);
    let sealed = seal(key, &session_aad(&update.peer_device), &update.state)?;
    conn.execute(
        "INSERT INTO sessions (peer_device, state, updated_at, generation) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (peer_device) DO UPDATE SET state = excluded.state,
             updated_at = excluded.updated_at, generation = excluded.generation",
        params![&update.peer_device[..], sealed, ms(Timestamp::now()), generation],
    )?;
    if let Some(prekeys) = &update.prekeys {
        save_prekeys(conn, key, prekeys)?;
    }
    Ok(())
}
