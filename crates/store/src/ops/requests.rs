//! The `requests` table (issue 15 item 1, decision 0052): identities that wrote to us
//! and are neither contacts nor blocked. A request pins the keys its first message
//! came with (as a contact would) but is not a contact: nothing is sent to it, and
//! its files are not fetched. Its messages are ordinary `messages` rows under its
//! address, so accepting moves nothing: the row becomes a contact and the
//! conversation is already there. Declining deletes the row, its messages and its
//! file rows.
//!
//! Bounded twice: at most [`RequestLimits::max_requests`] requests (a new one evicts
//! the oldest, by its first message, with its messages), and per request at most
//! [`RequestLimits::max_messages`] messages and [`RequestLimits::max_bytes`] body
//! bytes (beyond, a message is dropped and counted in the row). A request expires
//! with its newest message's time-to-live.

use communitas_crypto::PublicIdentity;
use communitas_crypto::at_rest::StorageKey;
use communitas_types::{Address, Fingerprint, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{int, ms, parse_address, seen, select, ts};
use crate::{Contact, Error, FileRow, Inserted, NewMessage, Store, StoredMessage};

/// The table (migration 9; `first_seq` came with migration 13).
pub(crate) const SCHEMA: &str = "
    CREATE TABLE requests (
        address         TEXT PRIMARY KEY,
        public_identity BLOB NOT NULL,
        fingerprint     BLOB NOT NULL UNIQUE,
        first_at        INTEGER NOT NULL,   -- our clock, unix ms
        last_at         INTEGER NOT NULL,   -- our clock, unix ms
        count           INTEGER NOT NULL,   -- messages kept
        bytes           INTEGER NOT NULL,   -- their body bytes
        dropped         INTEGER NOT NULL DEFAULT 0, -- messages over the bound, dropped
        expires_at      INTEGER NOT NULL    -- the newest message's seen-id expiry
    );
    CREATE INDEX requests_by_last ON requests (last_at);
    CREATE INDEX requests_expiry ON requests (expires_at);
";

/// How much a stranger may leave (decision 0052).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Requests kept at once; a new one beyond evicts the oldest (by first message).
    pub max_requests: u32,
    /// Messages kept per request.
    pub max_messages: u32,
    /// Body bytes kept per request.
    pub max_bytes: u64,
}

impl Default for RequestLimits {
    /// 100 requests of at most 20 messages and 256 KiB each: a request is a hello,
    /// not a conversation, and the whole list stays under ~26 MiB.
    fn default() -> Self {
        Self { max_requests: 100, max_messages: 20, max_bytes: 256 * 1024 }
    }
}

/// A message request: who, since when, how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The stranger's address (derived from its keys).
    pub address: Address,
    /// The keys its first message came with.
    pub identity: PublicIdentity,
    /// When its first message arrived (our clock).
    pub first_at: Timestamp,
    /// When its latest message arrived (our clock).
    pub last_at: Timestamp,
    /// Messages kept.
    pub count: u32,
    /// Messages dropped for being over the per-request bound.
    pub dropped: u32,
    /// When it expires unless another message comes.
    pub expires_at: Timestamp,
    /// Its first kept message, if any.
    pub first: Option<StoredMessage>,
    /// The display name the stranger's own signed record gives (unverified: anyone
    /// can call themselves anything), if one came with its messages.
    pub name: Option<String>,
}

/// One message for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMessage {
    /// The stranger's keys.
    pub identity: PublicIdentity,
    /// The message (`peer` is the stranger's address).
    pub message: NewMessage,
    /// The display name its signed record gives, if it came with one (kept until a
    /// later message brings another).
    pub name: Option<String>,
    /// The file transfer it offers, if any: recorded with it, never before it.
    pub file: Option<FileRow>,
    /// Its seen id's expiry (and so the request's).
    pub seen_until: Timestamp,
    /// Our clock now.
    pub now: Timestamp,
}

/// What [`Store::add_request_message`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestAdded {
    /// `Duplicate`: the seen id was known, nothing changed.
    pub inserted: Inserted,
    /// The message opened a new request.
    pub new_request: bool,
    /// The request was full: the message was dropped (its seen id is kept, so a
    /// resend is a duplicate).
    pub over_bound: bool,
    /// Requests evicted to make room (each with its messages).
    pub evicted: u32,
}

impl Store {
    /// Stores a message from a stranger in its request (opening one if needed), with
    /// its seen id, in one transaction. A request with this address but other keys
    /// is refused with [`Error::KeyChanged`], as is an address that is a contact.
    pub async fn add_request_message(
        &self,
        entry: RequestMessage,
        limits: RequestLimits,
    ) -> Result<RequestAdded, Error> {
        self.write(move |conn, key| add(conn, key, &entry, limits)).await
    }

    /// Every request, heard from most recently first.
    pub async fn requests(&self) -> Result<Vec<Request>, Error> {
        self.read(|conn, key| {
            let rows = select(
                conn,
                &format!("SELECT {COLUMNS} FROM requests ORDER BY last_at DESC"),
                &[],
                from_row,
            )?;
            rows.into_iter().map(|r| with_first(conn, key, r)).collect()
        })
        .await
    }

    /// One request by address.
    pub async fn request(&self, address: Address) -> Result<Option<Request>, Error> {
        self.read(move |conn, key| {
            get(conn, "address = ?1", &address.to_string())?
                .map(|r| with_first(conn, key, r))
                .transpose()
        })
        .await
    }

    /// The request of the identity with these keys, if any (without its first message).
    pub async fn request_by_fingerprint(
        &self,
        fingerprint: Fingerprint,
    ) -> Result<Option<Request>, Error> {
        self.read(move |conn, _| get(conn, "fingerprint = ?1", &fingerprint.as_bytes().as_slice()))
            .await
    }

    /// Accepts a request: its keys become an (unverified) contact and the row goes,
    /// in one transaction; its messages stay as the conversation. `None` if there is
    /// no such request.
    pub async fn accept_request(
        &self,
        address: Address,
        now: Timestamp,
    ) -> Result<Option<Contact>, Error> {
        self.write(move |conn, _| {
            let Some(request) = get(conn, "address = ?1", &address.to_string())? else {
                return Ok(None);
            };
            let contact = Contact {
                address,
                name: None,
                identity: request.identity,
                verified: false,
                added_at: now,
            };
            super::contacts::add(conn, &contact)?;
            remove(conn, address)?;
            Ok(Some(contact))
        })
        .await
    }

    /// Declines a request: the row, its messages and their file rows go. The keys it
    /// had, if there was one.
    pub async fn decline_request(&self, address: Address) -> Result<Option<PublicIdentity>, Error> {
        self.write(move |conn, _| decline(conn, address)).await
    }

    /// Forgets the requests whose newest message's time is up at `now`, with their
    /// messages; returns how many went.
    pub async fn expire_requests(&self, now: Timestamp) -> Result<usize, Error> {
        self.write(move |conn, _| {
            let gone = select(
                conn,
                "SELECT address FROM requests WHERE expires_at <= ?1",
                &[&ms(now)],
                |r| parse_address(&r.get::<_, String>(0)?),
            )?;
            for address in &gone {
                decline(conn, *address)?;
            }
            Ok(gone.len())
        })
        .await
    }
}

fn add(
    conn: &Connection,
    key: &StorageKey,
    entry: &RequestMessage,
    limits: RequestLimits,
) -> Result<RequestAdded, Error> {
    let address = entry.message.peer;
    let fingerprint = entry.identity.fingerprint();
    let contact: Option<i64> = conn
        .query_row("SELECT 1 FROM contacts WHERE address = ?1", [address.to_string()], |r| r.get(0))
        .optional()?;
    if contact.is_some() {
        return Err(Error::KeyChanged { address });
    }
    let existing = get(conn, "address = ?1", &address.to_string())?;
    if let Some(request) = &existing
        && request.identity.fingerprint() != fingerprint
    {
        return Err(Error::KeyChanged { address });
    }
    let mut added = RequestAdded {
        inserted: seen::record(conn, &fingerprint, entry.message.id, entry.seen_until)?,
        new_request: false,
        over_bound: false,
        evicted: 0,
    };
    if added.inserted == Inserted::Duplicate {
        return Ok(added);
    }
    match existing {
        Some(request) => append(conn, key, entry, &request, limits, &mut added)?,
        None => open(conn, key, entry, limits, &mut added)?,
    }
    Ok(added)
}

/// One more message for an open request, unless that takes it over its bound (then
/// only its `dropped` count moves: a flood of dropped messages does not make it look
/// recent, nor keep it from eviction).
fn append(
    conn: &Connection,
    key: &StorageKey,
    entry: &RequestMessage,
    request: &Request,
    limits: RequestLimits,
    added: &mut RequestAdded,
) -> Result<(), Error> {
    let peer = entry.message.peer.to_string();
    let len = u64::try_from(entry.message.body.len()).unwrap_or(u64::MAX);
    let bytes: i64 =
        conn.query_row("SELECT bytes FROM requests WHERE address = ?1", [&peer], |r| r.get(0))?;
    let bytes = u64::try_from(bytes).unwrap_or(0);
    if request.count >= limits.max_messages || bytes.saturating_add(len) > limits.max_bytes {
        conn.execute("UPDATE requests SET dropped = dropped + 1 WHERE address = ?1", [&peer])?;
        added.over_bound = true;
        return Ok(());
    }
    insert(conn, key, entry)?;
    conn.execute(
        "UPDATE requests SET count = count + 1, bytes = bytes + ?2, last_at = ?3,
                expires_at = MAX(expires_at, ?4), name = COALESCE(?5, name)
         WHERE address = ?1",
        params![peer, int(len), ms(entry.now), ms(entry.seen_until), entry.name],
    )?;
    Ok(())
}

/// A new request for the message, evicting the oldest requests (by their first
/// message) while the list is full.
fn open(
    conn: &Connection,
    key: &StorageKey,
    entry: &RequestMessage,
    limits: RequestLimits,
    added: &mut RequestAdded,
) -> Result<(), Error> {
    let len = u64::try_from(entry.message.body.len()).unwrap_or(u64::MAX);
    if len > limits.max_bytes || limits.max_messages == 0 || limits.max_requests == 0 {
        added.over_bound = true;
        return Ok(());
    }
    loop {
        let held: i64 = conn.query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))?;
        if u64::try_from(held).unwrap_or(0) < u64::from(limits.max_requests) {
            break;
        }
        let oldest: Option<String> = conn
            .query_row("SELECT address FROM requests ORDER BY first_at, address LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(oldest) = oldest else { break };
        decline(conn, parse_address(&oldest)?)?;
        added.evicted += 1;
    }
    insert(conn, key, entry)?;
    // The message row was the last insert (its file row, if any, came before it).
    let first_seq = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO requests (address, public_identity, fingerprint, first_at, last_at,
                               count, bytes, dropped, expires_at, first_seq, name)
         VALUES (?1, ?2, ?3, ?4, ?4, 1, ?5, 0, ?6, ?7, ?8)",
        params![
            entry.message.peer.to_string(),
            entry.identity.to_bytes(),
            entry.identity.fingerprint().as_bytes(),
            ms(entry.now),
            int(len),
            ms(entry.seen_until),
            first_seq,
            entry.name
        ],
    )?;
    added.new_request = true;
    Ok(())
}

/// The message and its file row (a known file is left as it is).
fn insert(conn: &Connection, key: &StorageKey, entry: &RequestMessage) -> Result<(), Error> {
    if let Some(row) = &entry.file
        && super::files::get(conn, row.file_id)?.is_none()
    {
        super::files::put(conn, row)?;
    }
    super::messages::insert(conn, key, &entry.message)
}

/// Deletes a request with its messages (those stored since it opened) and their
/// file rows.
pub(crate) fn decline(
    conn: &Connection,
    address: Address,
) -> Result<Option<PublicIdentity>, Error> {
    let Some(request) = get(conn, "address = ?1", &address.to_string())? else {
        return Ok(None);
    };
    // Only what came with the request: a removed contact who writes again opens a
    // request, and declining it must not take the older conversation (decision 0060).
    let peer = address.to_string();
    let since = first_seq(conn, address)?;
    conn.execute(
        "DELETE FROM files WHERE peer = ?1 AND direction = 'in' AND message_id IN
             (SELECT id FROM messages WHERE peer = ?1 AND direction = 'in' AND seq >= ?2)",
        params![peer, since],
    )?;
    conn.execute("DELETE FROM messages WHERE peer = ?1 AND seq >= ?2", params![peer, since])?;
    remove(conn, address)?;
    Ok(Some(request.identity))
}

/// The `seq` of the request's first message: its messages are those from there on
/// (0 for a request opened before migration 13: all of the address's messages).
fn first_seq(conn: &Connection, address: Address) -> Result<i64, Error> {
    let seq = conn
        .query_row(
            "SELECT first_seq FROM requests WHERE address = ?1",
            [address.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(seq.unwrap_or(0))
}

fn remove(conn: &Connection, address: Address) -> Result<(), Error> {
    conn.execute("DELETE FROM requests WHERE address = ?1", [address.to_string()])?;
    Ok(())
}

const COLUMNS: &str =
    "address, public_identity, first_at, last_at, count, dropped, expires_at, name";

fn from_row(r: &Row<'_>) -> Result<Request, Error> {
    let keys: Vec<u8> = r.get(1)?;
    Ok(Request {
        address: parse_address(&r.get::<_, String>(0)?)?,
        identity: PublicIdentity::from_bytes(&keys)
            .map_err(|_| Error::Corrupt { field: "public_identity" })?,
        first_at: ts(r.get(2)?),
        last_at: ts(r.get(3)?),
        count: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
        dropped: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(u32::MAX),
        expires_at: ts(r.get(6)?),
        first: None,
        name: r.get(7)?,
    })
}

fn get(
    conn: &Connection,
    filter: &str,
    value: &dyn rusqlite::ToSql,
) -> Result<Option<Request>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM requests WHERE {filter}");
    Ok(select(conn, &sql, &[value], from_row)?.pop())
}

fn with_first(conn: &Connection, key: &StorageKey, mut request: Request) -> Result<Request, Error> {
    let since = first_seq(conn, request.address)?;
    request.first = super::messages::first(conn, key, request.address, since)?;
    Ok(request)
}
