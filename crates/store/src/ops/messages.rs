//! The `messages` table: the history of every conversation, bodies sealed at rest
//! under the storage key and bound to their row (id, direction, peer), and each
//! outgoing message's status on its way.

use communitas_crypto::at_rest::StorageKey;
use communitas_types::{Address, Fingerprint, MessageId, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{array, ms, outbox, parse_address, seen, select, ts};
use crate::{
    Conversation, Cursor, Direction, Error, Inserted, NewMessage, OutboxEntry, Place, Status,
    Store, StoredMessage,
};

impl Store {
    /// Stores an outgoing message and its outbox entry in one transaction.
    pub async fn insert_outgoing(
        &self,
        message: NewMessage,
        outbox: OutboxEntry,
    ) -> Result<(), Error> {
        self.write(move |conn, key| {
            insert(conn, key, &message)?;
            outbox::insert(conn, &outbox)
        })
        .await
    }

    /// Stores a line the node itself writes into a conversation (a system line): no
    /// outbox entry, no seen id.
    pub async fn insert_local(&self, message: NewMessage) -> Result<(), Error> {
        self.write(move |conn, key| insert(conn, key, &message)).await
    }

    /// Stores an incoming message unless `(sender, id)` was seen before; the seen id
    /// is kept until `seen_until` (unix ms), in the same transaction.
    pub async fn insert_incoming(
        &self,
        message: NewMessage,
        sender: Fingerprint,
        seen_until: Timestamp,
    ) -> Result<Inserted, Error> {
        self.write(move |conn, key| {
            let seen = seen::record(conn, &sender, message.id, seen_until)?;
            if seen == Inserted::New {
                insert(conn, key, &message)?;
            }
            Ok(seen)
        })
        .await
    }

    /// Moves an outgoing message to a new status.
    pub async fn set_status(&self, id: MessageId, status: Status) -> Result<(), Error> {
        self.write(move |conn, _| set_status(conn, id, status)).await
    }

    /// A delivery attempt of `id` went out to a device: `queued` becomes `sent`. A
    /// message already `stored` in mailboxes (or further) stays so: an attempt that
    /// found the device unreachable must not make it flip `sent` ↔ `stored` with each
    /// retry (issue 23 item 2). Returns whether it changed.
    pub async fn mark_sent(&self, id: MessageId) -> Result<bool, Error> {
        self.write(move |conn, _| {
            Ok(conn.execute(
                "UPDATE messages SET status = 'sent'
                 WHERE id = ?1 AND direction = 'out' AND status = 'queued'",
                [id.as_bytes()],
            )? > 0)
        })
        .await
    }

    /// The recipient committed the message: status `delivered`, outbox row gone, in
    /// one transaction.
    /// Returns whether anything changed (false: it was already delivered).
    pub async fn mark_delivered(&self, id: MessageId) -> Result<bool, Error> {
        self.write(move |conn, _| {
            let updated = conn.execute(
                "UPDATE messages SET status = 'delivered'
                 WHERE id = ?1 AND direction = 'out' AND status NOT IN ('delivered', 'read')",
                [id.as_bytes()],
            )?;
            let removed = outbox::remove(conn, id)?;
            Ok(updated + removed > 0)
        })
        .await
    }

    /// `peer` read our message `id`: it becomes `read` (a read message was delivered,
    /// so its outbox row goes too). False if it is not an outgoing message to `peer`,
    /// or was read already.
    pub async fn mark_read(&self, peer: Address, id: MessageId) -> Result<bool, Error> {
        self.write(move |conn, _| {
            let updated = conn.execute(
                "UPDATE messages SET status = 'read'
                 WHERE id = ?1 AND peer = ?2 AND direction = 'out' AND status != 'read'",
                params![id.as_bytes(), peer.to_string()],
            )?;
            if updated > 0 {
                outbox::remove(conn, id)?;
            }
            Ok(updated > 0)
        })
        .await
    }

    /// Marks every unread incoming message from `peer` read; returns their ids.
    pub async fn read_incoming(&self, peer: Address) -> Result<Vec<MessageId>, Error> {
        self.write(move |conn, _| read_incoming(conn, peer)).await
    }

    /// A conversation in its order (decision 0061), first first: up to `limit`
    /// messages before `before`.
    pub async fn history(
        &self,
        peer: Address,
        limit: u32,
        before: Option<Cursor>,
    ) -> Result<Vec<StoredMessage>, Error> {
        self.read(move |conn, key| history(conn, key, peer, limit, before)).await
    }

    /// Where a conversation's clock stands: its largest clock, and the largest `n`
    /// of our own messages in it (0 and 0 for none), to resume
    /// `communitas_proto::order::Clock` from.
    pub async fn conversation_clock(&self, peer: Address) -> Result<(u64, u64), Error> {
        self.read(move |conn, _| {
            Ok(conn.query_row(
                "SELECT COALESCE(MAX(clock), 0),
                        COALESCE(MAX(CASE WHEN direction = 'out' THEN author_n END), 0)
                 FROM messages WHERE peer = ?1",
                [peer.to_string()],
                |r| Ok((unsigned(r.get(0)?), unsigned(r.get(1)?))),
            )?)
        })
        .await
    }

    /// One outgoing or incoming message by id (outgoing first).
    pub async fn message(&self, id: MessageId) -> Result<Option<StoredMessage>, Error> {
        self.read(move |conn, key| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM messages WHERE id = ?1 ORDER BY direction DESC LIMIT 1"
            ))?;
            let mut rows = stmt.query([id.as_bytes()])?;
            rows.next()?.map(|row| from_row(key, row)).transpose()
        })
        .await
    }

    /// Every conversation with its unread count, newest first.
    pub async fn conversations(&self) -> Result<Vec<Conversation>, Error> {
        self.read(|conn, _| conversations(conn)).await
    }
}

/// Associated data binding a sealed body to its row.
fn body_aad(id: &MessageId, direction: Direction, peer: &Address) -> Vec<u8> {
    [id.as_bytes().as_slice(), direction.as_str().as_bytes(), &peer.to_bytes()].concat()
}

pub(crate) fn insert(conn: &Connection, key: &StorageKey, m: &NewMessage) -> Result<(), Error> {
    let sealed = key
        .seal(&body_aad(&m.id, m.direction, &m.peer), &m.body)
        .map_err(|_| Error::Corrupt { field: "random source" })?;
    conn.execute(
        "INSERT INTO messages (id, peer, direction, kind, body, timestamp, stored_at, status,
                               position, clock, author_n)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            m.id.as_bytes(),
            m.peer.to_string(),
            m.direction.as_str(),
            m.kind,
            sealed,
            ms(m.timestamp),
            ms(Timestamp::now()),
            m.status.as_str(),
            m.place.position,
            clamp(m.place.clock),
            m.place.n.map(clamp),
        ],
    )?;
    Ok(())
}

/// Moves an outgoing message to `status`, except back from `delivered` or `read`: a
/// delivery attempt still in flight when the end-to-end receipt arrived must not
/// show the message `sent` again (found by issue 6's restart test).
fn set_status(conn: &Connection, id: MessageId, status: Status) -> Result<(), Error> {
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

/// Sets an outgoing message's status if there is such a message (control messages,
/// like receipts, have an outbox row but no history row).
pub(crate) fn set_status_if_present(
    conn: &Connection,
    id: MessageId,
    status: Status,
) -> Result<usize, Error> {
    Ok(conn.execute(
        "UPDATE messages SET status = ?2 WHERE id = ?1 AND direction = 'out'",
        params![id.as_bytes(), status.as_str()],
    )?)
}

const COLUMNS: &str =
    "seq, id, peer, direction, kind, body, timestamp, stored_at, status, position, clock, author_n";

/// A counter as SQLite's signed integer (ours never reach 2^63).
fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn from_row(key: &StorageKey, r: &Row<'_>) -> Result<StoredMessage, Error> {
    let id = MessageId::from_bytes(array(r.get(1)?, "message id")?);
    let peer = parse_address(&r.get::<_, String>(2)?)?;
    let direction = Direction::parse(&r.get::<_, String>(3)?)?;
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
            place: Place {
                position: r.get(9)?,
                clock: unsigned(r.get(10)?),
                n: r.get::<_, Option<i64>>(11)?.map(unsigned),
            },
        },
        stored_at: ts(r.get(7)?),
    })
}

fn history(
    conn: &Connection,
    key: &StorageKey,
    peer: Address,
    limit: u32,
    before: Option<Cursor>,
) -> Result<Vec<StoredMessage>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM messages WHERE peer = ?1 AND (position, seq) < (?2, ?3)
         ORDER BY position DESC, seq DESC LIMIT ?4"
    );
    let before = before.unwrap_or(Cursor { position: i64::MAX, seq: i64::MAX });
    let params: [&dyn rusqlite::ToSql; 4] =
        [&peer.to_string(), &before.position, &before.seq, &limit];
    let mut out = select(conn, &sql, &params, |r| from_row(key, r))?;
    out.reverse();
    Ok(out)
}

/// The oldest message with `peer` from `seq` on, if any (what a request shows first).
pub(crate) fn first(
    conn: &Connection,
    key: &StorageKey,
    peer: Address,
    from_seq: i64,
) -> Result<Option<StoredMessage>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM messages WHERE peer = ?1 AND seq >= ?2 ORDER BY seq LIMIT 1"
    );
    Ok(select(conn, &sql, &[&peer.to_string(), &from_seq], |r| from_row(key, r))?.pop())
}

/// Marks every unread incoming message from `peer` read; returns their ids.
fn read_incoming(conn: &Connection, peer: Address) -> Result<Vec<MessageId>, Error> {
    select(
        conn,
        "UPDATE messages SET status = 'read'
         WHERE peer = ?1 AND direction = 'in' AND status != 'read' RETURNING id",
        &[&peer.to_string()],
        |r| Ok(MessageId::from_bytes(array(r.get(0)?, "message id")?)),
    )
}

/// Every peer with history: incoming messages not yet read, and the newest message's
/// time (the sender's clock), newest conversation first. A message request is not a
/// conversation yet (decision 0052): its peer is left out until it is accepted.
fn conversations(conn: &Connection) -> Result<Vec<Conversation>, Error> {
    select(
        conn,
        "SELECT peer,
                SUM(CASE WHEN direction = 'in' AND status != 'read' THEN 1 ELSE 0 END),
                MAX(timestamp)
         FROM messages WHERE peer NOT IN (SELECT address FROM requests)
         GROUP BY peer ORDER BY MAX(timestamp) DESC",
        &[],
        |r| {
            Ok(Conversation {
                peer: r
                    .get::<_, String>(0)?
                    .parse()
                    .map_err(|_| Error::Corrupt { field: "message peer" })?,
                unread: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                last_at: ts(r.get(2)?),
            })
        },
    )
}
