//! The SQL behind each command. Plain functions over a connection (or savepoint), so
//! the actor decides about transactions and these only about rows.

use communitas_crypto::PublicIdentity;
use communitas_crypto::at_rest::StorageKey;
use communitas_types::{Address, Fingerprint, MessageId, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::Error;
use crate::model::{
    Contact, DeadLetter, Direction, IdentityRow, Inserted, NewMessage, OutboxEntry, Status,
    StoredMessage,
};

/// Unix ms as SQLite's signed integer; far-future values saturate.
pub(crate) fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn ts(v: i64) -> Timestamp {
    Timestamp::from_millis(u64::try_from(v).unwrap_or(0))
}

fn parse_address(text: &str) -> Result<Address, Error> {
    text.parse().map_err(|_| Error::Corrupt { field: "address" })
}

pub(crate) fn array<const N: usize>(bytes: Vec<u8>, field: &'static str) -> Result<[u8; N], Error> {
    bytes.try_into().map_err(|_| Error::Corrupt { field })
}

/// Associated data binding a sealed body to its row.
fn body_aad(id: &MessageId, direction: Direction, peer: &Address) -> Vec<u8> {
    [id.as_bytes().as_slice(), direction.as_str().as_bytes(), &peer.to_bytes()].concat()
}

pub(crate) fn set_identity(conn: &Connection, row: &IdentityRow) -> Result<(), Error> {
    conn.execute(
        "INSERT OR REPLACE INTO identity (id, address, fingerprint, name, created_at)
         VALUES (1, ?1, ?2, ?3, ?4)",
        params![row.address.to_string(), row.fingerprint.as_bytes(), row.name, ms(row.created_at)],
    )?;
    Ok(())
}

pub(crate) fn identity(conn: &Connection) -> Result<Option<IdentityRow>, Error> {
    let row = conn
        .query_row(
            "SELECT address, fingerprint, name, created_at FROM identity WHERE id = 1",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    row.map(|(address, fingerprint, name, created_at)| {
        Ok(IdentityRow {
            address: parse_address(&address)?,
            fingerprint: Fingerprint::from_bytes(array(fingerprint, "fingerprint")?),
            name,
            created_at: ts(created_at),
        })
    })
    .transpose()
}

pub(crate) fn add_contact(conn: &Connection, contact: &Contact) -> Result<(), Error> {
    let keys = contact.identity.to_bytes();
    let pinned: Option<Vec<u8>> = conn
        .query_row(
            "SELECT public_identity FROM contacts WHERE address = ?1",
            [contact.address.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    match pinned {
        Some(existing) if existing != keys => Err(Error::KeyChanged { address: contact.address }),
        Some(_) => {
            if contact.name.is_some() {
                conn.execute(
                    "UPDATE contacts SET name = ?2 WHERE address = ?1",
                    params![contact.address.to_string(), contact.name],
                )?;
            }
            Ok(())
        }
        None => {
            conn.execute(
                "INSERT INTO contacts (address, name, public_identity, fingerprint, verified, added_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    contact.address.to_string(),
                    contact.name,
                    keys,
                    contact.identity.fingerprint().as_bytes(),
                    contact.verified,
                    ms(contact.added_at)
                ],
            )?;
            Ok(())
        }
    }
}

pub(crate) fn set_verified(
    conn: &Connection,
    address: Address,
    verified: bool,
) -> Result<bool, Error> {
    let changed = conn.execute(
        "UPDATE contacts SET verified = ?2 WHERE address = ?1",
        params![address.to_string(), verified],
    )?;
    Ok(changed == 1)
}

const CONTACT_COLUMNS: &str = "address, name, public_identity, verified, added_at";

fn contact_from_row(r: &Row<'_>) -> Result<Contact, Error> {
    let keys: Vec<u8> = r.get(2)?;
    Ok(Contact {
        address: parse_address(&r.get::<_, String>(0)?)?,
        name: r.get(1)?,
        identity: PublicIdentity::from_bytes(&keys)
            .map_err(|_| Error::Corrupt { field: "public_identity" })?,
        verified: r.get(3)?,
        added_at: ts(r.get(4)?),
    })
}

fn query_contacts(
    conn: &Connection,
    filter: &str,
    param: &dyn rusqlite::ToSql,
) -> Result<Vec<Contact>, Error> {
    let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts {filter} ORDER BY address");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = if filter.is_empty() { stmt.query([])? } else { stmt.query([param])? };
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(contact_from_row(row)?);
    }
    Ok(out)
}

pub(crate) fn contacts(conn: &Connection) -> Result<Vec<Contact>, Error> {
    query_contacts(conn, "", &0)
}

pub(crate) fn contact(conn: &Connection, address: &Address) -> Result<Option<Contact>, Error> {
    Ok(query_contacts(conn, "WHERE address = ?1", &address.to_string())?.pop())
}

pub(crate) fn contact_by_fingerprint(
    conn: &Connection,
    fingerprint: &Fingerprint,
) -> Result<Option<Contact>, Error> {
    Ok(query_contacts(conn, "WHERE fingerprint = ?1", &fingerprint.as_bytes().as_slice())?.pop())
}

fn insert_message(conn: &Connection, key: &StorageKey, m: &NewMessage) -> Result<(), Error> {
    let sealed = key
        .seal(&body_aad(&m.id, m.direction, &m.peer), &m.body)
        .map_err(|_| Error::Corrupt { field: "random source" })?;
    conn.execute(
        "INSERT INTO messages (id, peer, direction, kind, body, timestamp, stored_at, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            m.id.as_bytes(),
            m.peer.to_string(),
            m.direction.as_str(),
            m.kind,
            sealed,
            ms(m.timestamp),
            ms(Timestamp::now()),
            m.status.as_str()
        ],
    )?;
    Ok(())
}

pub(crate) fn insert_outgoing(
    conn: &Connection,
    key: &StorageKey,
    message: &NewMessage,
    outbox: &OutboxEntry,
) -> Result<(), Error> {
    insert_message(conn, key, message)?;
    insert_outbox(conn, outbox)
}

fn insert_outbox(conn: &Connection, outbox: &OutboxEntry) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO outbox (message_id, recipient, envelope, attempts, next_attempt_at, created_at, expires_at, last_error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            outbox.message_id.as_bytes(),
            outbox.recipient.to_string(),
            outbox.envelope,
            outbox.attempts,
            ms(outbox.next_attempt_at),
            ms(outbox.created_at),
            ms(outbox.expires_at),
            outbox.last_error
        ],
    )?;
    Ok(())
}

pub(crate) fn insert_incoming(
    conn: &Connection,
    key: &StorageKey,
    message: &NewMessage,
    sender: &Fingerprint,
    seen_until: Timestamp,
) -> Result<Inserted, Error> {
    let fresh = conn.execute(
        "INSERT OR IGNORE INTO seen_ids (sender, message_id, expires_at) VALUES (?1, ?2, ?3)",
        params![sender.as_bytes(), message.id.as_bytes(), ms(seen_until)],
    )?;
    if fresh == 0 {
        return Ok(Inserted::Duplicate);
    }
    insert_message(conn, key, message)?;
    Ok(Inserted::New)
}

/// Moves an outgoing message to `status`, except back from `delivered` or `read`: a
/// delivery attempt still in flight when the end-to-end receipt arrived must not
/// show the message `sent` again (found by issue 6's restart test).
pub(crate) fn set_status(conn: &Connection, id: MessageId, status: Status) -> Result<(), Error> {
    let changed = conn.execute(
        "UPDATE messages SET status = ?2 WHERE id = ?1 AND direction = 'out'
         AND (status NOT IN ('delivered', 'read') OR ?2 IN ('delivered', 'read'))",
        params![id.as_bytes(), status.as_str()],
    )?;
    if changed == 0 {
        let exists = conn
            .query_row(
                "SELECT 1 FROM messages WHERE id = ?1 AND direction = 'out'",
                [id.as_bytes()],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            return Err(Error::NoSuchMessage(id));
        }
    }
    Ok(())
}

fn message_from_row(key: &StorageKey, r: &Row<'_>) -> Result<StoredMessage, Error> {
    let id = MessageId::from_bytes(array(r.get(1)?, "message id")?);
    let peer = parse_address(&r.get::<_, String>(2)?)?;
    let direction = match r.get::<_, String>(3)?.as_str() {
        "in" => Direction::In,
        "out" => Direction::Out,
        _ => return Err(Error::Corrupt { field: "direction" }),
    };
    let sealed: Vec<u8> = r.get(5)?;
    let body = key.open(&body_aad(&id, direction, &peer), &sealed).map_err(|_| Error::Decrypt)?;
    Ok(StoredMessage {
        seq: r.get(0)?,
        message: NewMessage {
            id,
            peer,
            direction,
            kind: r.get(4)?,
            body,
            timestamp: ts(r.get(6)?),
            status: r.get::<_, String>(8)?.parse()?,
        },
        stored_at: ts(r.get(7)?),
    })
}

pub(crate) fn history(
    conn: &Connection,
    key: &StorageKey,
    peer: Address,
    limit: u32,
    before_seq: Option<i64>,
) -> Result<Vec<StoredMessage>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, peer, direction, kind, body, timestamp, stored_at, status
         FROM messages WHERE peer = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
    )?;
    let mut rows = stmt.query(params![peer.to_string(), before_seq.unwrap_or(i64::MAX), limit])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(message_from_row(key, row)?);
    }
    out.reverse();
    Ok(out)
}

/// Sets an outgoing message's status if there is such a message (control messages,
/// like receipts, have an outbox row but no history row).
fn set_status_if_present(conn: &Connection, id: MessageId, status: Status) -> Result<usize, Error> {
    Ok(conn.execute(
        "UPDATE messages SET status = ?2 WHERE id = ?1 AND direction = 'out'",
        params![id.as_bytes(), status.as_str()],
    )?)
}

pub(crate) fn mark_delivered(conn: &Connection, id: MessageId) -> Result<bool, Error> {
    let updated = conn.execute(
        "UPDATE messages SET status = 'delivered'
         WHERE id = ?1 AND direction = 'out' AND status NOT IN ('delivered', 'read')",
        [id.as_bytes()],
    )?;
    let removed = conn.execute("DELETE FROM outbox WHERE message_id = ?1", [id.as_bytes()])?;
    Ok(updated + removed > 0)
}

pub(crate) fn insert_control(conn: &Connection, outbox: &OutboxEntry) -> Result<(), Error> {
    insert_outbox(conn, outbox)
}

pub(crate) fn mark_seen(
    conn: &Connection,
    sender: &Fingerprint,
    id: MessageId,
    seen_until: Timestamp,
) -> Result<Inserted, Error> {
    let fresh = conn.execute(
        "INSERT OR IGNORE INTO seen_ids (sender, message_id, expires_at) VALUES (?1, ?2, ?3)",
        params![sender.as_bytes(), id.as_bytes(), ms(seen_until)],
    )?;
    Ok(if fresh == 0 { Inserted::Duplicate } else { Inserted::New })
}

pub(crate) fn record_attempt(
    conn: &Connection,
    id: MessageId,
    attempts: u32,
    next_attempt_at: Timestamp,
    error: &str,
    status: Status,
) -> Result<(), Error> {
    let changed = conn.execute(
        "UPDATE outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4 WHERE message_id = ?1",
        params![id.as_bytes(), attempts, ms(next_attempt_at), error],
    )?;
    if changed == 0 {
        return Err(Error::NoSuchMessage(id));
    }
    set_status_if_present(conn, id, status)?;
    Ok(())
}

pub(crate) fn dead_letter(conn: &Connection, id: MessageId, reason: &str) -> Result<(), Error> {
    let moved = conn.execute(
        "INSERT OR REPLACE INTO dead_letters (message_id, recipient, envelope, attempts, reason, failed_at)
         SELECT message_id, recipient, envelope, attempts, ?2, ?3 FROM outbox WHERE message_id = ?1",
        params![id.as_bytes(), reason, ms(Timestamp::now())],
    )?;
    if moved == 0 {
        return Err(Error::NoSuchMessage(id));
    }
    conn.execute("DELETE FROM outbox WHERE message_id = ?1", [id.as_bytes()])?;
    set_status_if_present(conn, id, Status::Failed)?;
    Ok(())
}

pub(crate) fn retry_dead_letter(
    conn: &Connection,
    id: MessageId,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<OutboxEntry, Error> {
    let moved = conn.execute(
        "INSERT INTO outbox (message_id, recipient, envelope, attempts, next_attempt_at, created_at, expires_at, last_error)
         SELECT message_id, recipient, envelope, 0, ?2, ?2, ?3, NULL FROM dead_letters WHERE message_id = ?1",
        params![id.as_bytes(), ms(now), ms(expires_at)],
    )?;
    if moved == 0 {
        return Err(Error::NoSuchMessage(id));
    }
    conn.execute("DELETE FROM dead_letters WHERE message_id = ?1", [id.as_bytes()])?;
    set_status_if_present(conn, id, Status::Queued)?;
    outbox_query(conn, "WHERE message_id = ?1", &id.as_bytes().as_slice())?
        .pop()
        .ok_or(Error::NoSuchMessage(id))
}

pub(crate) fn dead_letters(conn: &Connection) -> Result<Vec<DeadLetter>, Error> {
    let mut stmt = conn.prepare(
        "SELECT message_id, recipient, attempts, reason, failed_at FROM dead_letters ORDER BY failed_at DESC",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(DeadLetter {
            message_id: MessageId::from_bytes(array(r.get(0)?, "message id")?),
            recipient: parse_address(&r.get::<_, String>(1)?)?,
            attempts: r.get(2)?,
            reason: r.get(3)?,
            failed_at: ts(r.get(4)?),
        });
    }
    Ok(out)
}

pub(crate) fn message(
    conn: &Connection,
    key: &StorageKey,
    id: MessageId,
) -> Result<Option<StoredMessage>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, peer, direction, kind, body, timestamp, stored_at, status
         FROM messages WHERE id = ?1 ORDER BY direction DESC LIMIT 1",
    )?;
    let mut rows = stmt.query([id.as_bytes()])?;
    rows.next()?.map(|row| message_from_row(key, row)).transpose()
}

/// Outbox entries with no outgoing message behind them: control messages (receipts).
pub(crate) fn control_ids(conn: &Connection) -> Result<Vec<MessageId>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT message_id FROM outbox o WHERE NOT EXISTS
            (SELECT 1 FROM messages m WHERE m.id = o.message_id AND m.direction = 'out')",
    )?;
    let mut rows = stmt.query([])?;
    let mut ids = Vec::new();
    while let Some(r) = rows.next()? {
        ids.push(MessageId::from_bytes(array(r.get(0)?, "message id")?));
    }
    Ok(ids)
}

pub(crate) fn outbox(conn: &Connection) -> Result<Vec<OutboxEntry>, Error> {
    outbox_query(conn, "", &0)
}

fn outbox_query(
    conn: &Connection,
    filter: &str,
    param: &dyn rusqlite::ToSql,
) -> Result<Vec<OutboxEntry>, Error> {
    let sql = format!(
        "SELECT message_id, recipient, envelope, attempts, next_attempt_at, created_at, expires_at, last_error
         FROM outbox {filter} ORDER BY created_at, message_id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = if filter.is_empty() { stmt.query([])? } else { stmt.query([param])? };
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(OutboxEntry {
            message_id: MessageId::from_bytes(array(r.get(0)?, "message id")?),
            recipient: parse_address(&r.get::<_, String>(1)?)?,
            envelope: r.get(2)?,
            attempts: r.get(3)?,
            next_attempt_at: ts(r.get(4)?),
            created_at: ts(r.get(5)?),
            expires_at: ts(r.get(6)?),
            last_error: r.get(7)?,
        });
    }
    Ok(out)
}

pub(crate) fn integrity_check(conn: &Connection) -> Result<bool, Error> {
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    Ok(verdict == "ok")
}

/// How much a server node keeps for one mailbox and from one sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxLimits {
    /// Envelopes per mailbox.
    pub max_envelopes: u32,
    /// Bytes per mailbox.
    pub max_bytes: u64,
    /// Envelopes stored from one sending peer, over all mailboxes.
    pub max_per_sender: u32,
    /// Envelope bytes kept in all mailboxes together: a server's disk is finite, and
    /// new PeerIds (new senders) are free to make.
    pub max_total_bytes: u64,
}

/// An envelope waiting in a mailbox, with its BLAKE3 hash.
pub type MailboxEntry = ([u8; 32], Vec<u8>);

/// What a mailbox put came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutOutcome {
    /// Stored now.
    Stored,
    /// The same envelope was already there.
    AlreadyStored,
    /// The mailbox is at its quota.
    MailboxFull,
    /// The sending peer is at its quota.
    SenderOverQuota,
    /// Its owner already acknowledged this envelope here: it is not taken back.
    AlreadyAcked,
    /// The server keeps as many envelope bytes as it may, over all mailboxes.
    ServerFull,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn mbox_put(
    conn: &Connection,
    hash: &[u8; 32],
    mailbox: &communitas_types::MailboxId,
    envelope: &[u8],
    sender: &str,
    now: Timestamp,
    expires_at: Timestamp,
    limits: MailboxLimits,
) -> Result<PutOutcome, Error> {
    let exists: bool =
        conn.query_row("SELECT EXISTS (SELECT 1 FROM mailbox WHERE hash = ?1)", [hash], |r| {
            r.get(0)
        })?;
    if exists {
        return Ok(PutOutcome::AlreadyStored);
    }
    if crate::replica::tombstoned(conn, hash)? {
        return Ok(PutOutcome::AlreadyAcked);
    }
    let (count, bytes): (u32, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM mailbox WHERE mailbox = ?1 AND expires_at > ?2",
        params![mailbox.as_bytes(), ms(now)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let size = i64::try_from(envelope.len()).unwrap_or(i64::MAX);
    if count >= limits.max_envelopes
        || bytes.saturating_add(size) > i64::try_from(limits.max_bytes).unwrap_or(i64::MAX)
    {
        return Ok(PutOutcome::MailboxFull);
    }
    let from_sender: u32 = conn.query_row(
        "SELECT COUNT(*) FROM mailbox WHERE sender_peer = ?1 AND expires_at > ?2",
        params![sender, ms(now)],
        |r| r.get(0),
    )?;
    if from_sender >= limits.max_per_sender {
        return Ok(PutOutcome::SenderOverQuota);
    }
    // Kept by triggers on `mailbox` (migration 8): one row, no scan.
    let total: i64 =
        conn.query_row("SELECT bytes FROM mailbox_usage WHERE id = 1", [], |r| r.get(0))?;
    if total.saturating_add(size) > i64::try_from(limits.max_total_bytes).unwrap_or(i64::MAX) {
        return Ok(PutOutcome::ServerFull);
    }
    conn.execute(
        "INSERT INTO mailbox (hash, mailbox, envelope, sender_peer, received_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![hash, mailbox.as_bytes(), envelope, sender, ms(now), ms(expires_at)],
    )?;
    Ok(PutOutcome::Stored)
}

pub(crate) fn mbox_fetch(
    conn: &Connection,
    mailbox: &communitas_types::MailboxId,
    now: Timestamp,
    max_bytes: usize,
) -> Result<Vec<MailboxEntry>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT hash, envelope FROM mailbox WHERE mailbox = ?1 AND expires_at > ?2 ORDER BY received_at, hash",
    )?;
    let mut rows = stmt.query(params![mailbox.as_bytes(), ms(now)])?;
    let mut out = Vec::new();
    let mut total = 0usize;
    while let Some(r) = rows.next()? {
        let envelope: Vec<u8> = r.get(1)?;
        total += envelope.len();
        if total > max_bytes && !out.is_empty() {
            break;
        }
        out.push((array(r.get(0)?, "mailbox hash")?, envelope));
    }
    Ok(out)
}

pub(crate) fn mbox_ack(
    conn: &Connection,
    mailbox: &communitas_types::MailboxId,
    hashes: &[[u8; 32]],
) -> Result<usize, Error> {
    // The tombstone keeps the envelope's own expiry: past it, nobody re-puts it anyway.
    let mut bury = conn.prepare_cached(
        "INSERT OR IGNORE INTO mailbox_tombstones (hash, expires_at)
         SELECT hash, expires_at FROM mailbox WHERE mailbox = ?1 AND hash = ?2",
    )?;
    let mut stmt = conn.prepare_cached("DELETE FROM mailbox WHERE mailbox = ?1 AND hash = ?2")?;
    let mut removed = 0;
    for hash in hashes {
        bury.execute(params![mailbox.as_bytes(), hash])?;
        removed += stmt.execute(params![mailbox.as_bytes(), hash])?;
    }
    Ok(removed)
}

pub(crate) fn mbox_expire(conn: &Connection, now: Timestamp) -> Result<usize, Error> {
    let removed = conn.execute("DELETE FROM mailbox WHERE expires_at <= ?1", [ms(now)])?;
    conn.execute("DELETE FROM seen_ids WHERE expires_at <= ?1", [ms(now)])?;
    conn.execute("DELETE FROM mailbox_tombstones WHERE expires_at <= ?1", [ms(now)])?;
    Ok(removed)
}
