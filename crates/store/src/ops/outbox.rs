//! The `outbox` and `dead_letters` tables: sealed envelopes waiting for delivery with
//! their attempts and schedule, and those given up on, which the user may put back.
//! Control messages (receipts) have an outbox row and no history row.

use communitas_types::{MessageId, Timestamp};
use rusqlite::{Connection, params};

use super::messages::set_status_if_present;
use super::{array, ms, parse_address, select, ts};
use crate::{DeadLetter, Error, OutboxEntry, Status, Store};

impl Store {
    /// Queues a control message (a receipt): an outbox row with no history row.
    pub async fn insert_control(&self, outbox: OutboxEntry) -> Result<(), Error> {
        self.write(move |conn, _| insert(conn, &outbox)).await
    }

    /// A delivery attempt failed: count it, schedule the next, note why.
    pub async fn record_attempt(
        &self,
        id: MessageId,
        attempts: u32,
        next_attempt_at: Timestamp,
        error: String,
        status: Status,
    ) -> Result<(), Error> {
        self.write(move |conn, _| {
            let changed = conn.execute(
                "UPDATE outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4
                 WHERE message_id = ?1",
                params![id.as_bytes(), attempts, ms(next_attempt_at), error],
            )?;
            if changed == 0 {
                return Err(Error::NoSuchMessage(id));
            }
            set_status_if_present(conn, id, status)?;
            Ok(())
        })
        .await
    }

    /// Gives up on a message: outbox row to dead letters, status `failed`.
    pub async fn dead_letter(&self, id: MessageId, reason: String) -> Result<(), Error> {
        self.write(move |conn, _| {
            let moved = conn.execute(
                "INSERT OR REPLACE INTO dead_letters
                    (message_id, recipient, envelope, attempts, reason, failed_at)
                 SELECT message_id, recipient, envelope, attempts, ?2, ?3
                 FROM outbox WHERE message_id = ?1",
                params![id.as_bytes(), reason, ms(Timestamp::now())],
            )?;
            if moved == 0 {
                return Err(Error::NoSuchMessage(id));
            }
            remove(conn, id)?;
            set_status_if_present(conn, id, Status::Failed)?;
            Ok(())
        })
        .await
    }

    /// Puts a dead letter back in the outbox for another round, due `now`.
    pub async fn retry_dead_letter(
        &self,
        id: MessageId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<OutboxEntry, Error> {
        self.write(move |conn, _| retry(conn, id, now, expires_at)).await
    }

    /// Every dead letter, newest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, Error> {
        self.read(|conn, _| dead_letters(conn)).await
    }

    /// The outbox entries that are control messages (receipts), not messages.
    pub async fn control_ids(&self) -> Result<Vec<MessageId>, Error> {
        self.read(|conn, _| control_ids(conn)).await
    }

    /// Every outbox entry, oldest first.
    pub async fn outbox(&self) -> Result<Vec<OutboxEntry>, Error> {
        self.read(|conn, _| query(conn, "", &[])).await
    }
}

pub(crate) fn insert(conn: &Connection, outbox: &OutboxEntry) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO outbox (message_id, recipient, envelope, attempts, next_attempt_at,
                             created_at, expires_at, last_error)
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

/// Drops the outbox row of `id`, if there is one; returns how many went.
pub(crate) fn remove(conn: &Connection, id: MessageId) -> Result<usize, Error> {
    Ok(conn.execute("DELETE FROM outbox WHERE message_id = ?1", [id.as_bytes()])?)
}

fn retry(
    conn: &Connection,
    id: MessageId,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<OutboxEntry, Error> {
    let moved = conn.execute(
        "INSERT INTO outbox (message_id, recipient, envelope, attempts, next_attempt_at,
                             created_at, expires_at, last_error)
         SELECT message_id, recipient, envelope, 0, ?2, ?2, ?3, NULL
         FROM dead_letters WHERE message_id = ?1",
        params![id.as_bytes(), ms(now), ms(expires_at)],
    )?;
    if moved == 0 {
        return Err(Error::NoSuchMessage(id));
    }
    conn.execute("DELETE FROM dead_letters WHERE message_id = ?1", [id.as_bytes()])?;
    set_status_if_present(conn, id, Status::Queued)?;
    query(conn, "WHERE message_id = ?1", &[&id.as_bytes().as_slice()])?
        .pop()
        .ok_or(Error::NoSuchMessage(id))
}

fn dead_letters(conn: &Connection) -> Result<Vec<DeadLetter>, Error> {
    select(
        conn,
        "SELECT message_id, recipient, attempts, reason, failed_at
         FROM dead_letters ORDER BY failed_at DESC",
        &[],
        |r| {
            Ok(DeadLetter {
                message_id: MessageId::from_bytes(array(r.get(0)?, "message id")?),
                recipient: parse_address(&r.get::<_, String>(1)?)?,
                attempts: r.get(2)?,
                reason: r.get(3)?,
                failed_at: ts(r.get(4)?),
            })
        },
    )
}

/// Outbox entries with no outgoing message behind them: control messages (receipts).
fn control_ids(conn: &Connection) -> Result<Vec<MessageId>, Error> {
    select(
        conn,
        "SELECT message_id FROM outbox o WHERE NOT EXISTS
            (SELECT 1 FROM messages m WHERE m.id = o.message_id AND m.direction = 'out')",
        &[],
        |r| Ok(MessageId::from_bytes(array(r.get(0)?, "message id")?)),
    )
}

/// The entries `filter` (a `WHERE` clause on `params`, or empty) selects, oldest first.
fn query(
    conn: &Connection,
    filter: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<OutboxEntry>, Error> {
    let sql = format!(
        "SELECT message_id, recipient, envelope, attempts, next_attempt_at, created_at,
                expires_at, last_error
         FROM outbox {filter} ORDER BY created_at, message_id"
    );
    select(conn, &sql, params, |r| {
        Ok(OutboxEntry {
            message_id: MessageId::from_bytes(array(r.get(0)?, "message id")?),
            recipient: parse_address(&r.get::<_, String>(1)?)?,
            envelope: r.get(2)?,
            attempts: r.get(3)?,
            next_attempt_at: ts(r.get(4)?),
            created_at: ts(r.get(5)?),
            expires_at: ts(r.get(6)?),
            last_error: r.get(7)?,
        })
    })
}
