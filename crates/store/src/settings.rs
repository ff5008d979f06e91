//! Per-user settings and read state (issue 6): a small key/value table, incoming
//! messages marked read by the user, outgoing ones marked read by the recipient's
//! receipt.
//!
//! Settings are plain text values under fixed keys (`read_receipts`, `presence`); the
//! node parses them and falls back to its defaults on anything it does not know.

use communitas_types::{Address, MessageId};

use crate::model::Conversation;
use crate::ops::ts;
use rusqlite::{Connection, OptionalExtension, params};

use crate::Error;

pub(crate) fn set_setting(conn: &Connection, key: &str, value: &str) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

pub(crate) fn setting(conn: &Connection, key: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// Marks every unread incoming message from `peer` read; returns their ids.
pub(crate) fn read_incoming(conn: &Connection, peer: Address) -> Result<Vec<MessageId>, Error> {
    let mut stmt = conn.prepare_cached(
        "UPDATE messages SET status = 'read'
         WHERE peer = ?1 AND direction = 'in' AND status != 'read' RETURNING id",
    )?;
    let mut rows = stmt.query([peer.to_string()])?;
    let mut ids = Vec::new();
    while let Some(row) = rows.next()? {
        let bytes: Vec<u8> = row.get(0)?;
        let id: [u8; 16] = bytes.try_into().map_err(|_| Error::Corrupt { field: "message id" })?;
        ids.push(MessageId::from_bytes(id));
    }
    Ok(ids)
}

/// `peer` read our message `id`: it becomes `read` (a read message was delivered,
/// so its outbox row goes too). False if it is not ours to `peer` or already read.
pub(crate) fn mark_read(conn: &Connection, peer: Address, id: MessageId) -> Result<bool, Error> {
    let updated = conn.execute(
        "UPDATE messages SET status = 'read'
         WHERE id = ?1 AND peer = ?2 AND direction = 'out' AND status != 'read'",
        params![id.as_bytes(), peer.to_string()],
    )?;
    if updated > 0 {
        conn.execute("DELETE FROM outbox WHERE message_id = ?1", [id.as_bytes()])?;
    }
    Ok(updated > 0)
}

/// Every peer with history: incoming messages not yet read, and the newest message's
/// time (the sender's clock), newest conversation first.
pub(crate) fn conversations(conn: &Connection) -> Result<Vec<Conversation>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT peer,
                SUM(CASE WHEN direction = 'in' AND status != 'read' THEN 1 ELSE 0 END),
                MAX(timestamp)
         FROM messages GROUP BY peer ORDER BY MAX(timestamp) DESC",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let peer: String = row.get(0)?;
        out.push(Conversation {
            peer: peer.parse().map_err(|_| Error::Corrupt { field: "message peer" })?,
            unread: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
            last_at: ts(row.get(2)?),
        });
    }
    Ok(out)
}
