//! The `seen_ids` table: `(sender, message id)` pairs already accepted, kept until
//! their expiry, so a replayed or re-fetched message is stored once.

use communitas_types::{Fingerprint, MessageId, Timestamp};
use rusqlite::{Connection, params};

use super::ms;
use crate::{Error, Inserted, Store};

impl Store {
    /// Records that `(sender, id)` was seen, for messages that leave no history row.
    pub async fn mark_seen(
        &self,
        sender: Fingerprint,
        id: MessageId,
        seen_until: Timestamp,
    ) -> Result<Inserted, Error> {
        self.write(move |conn, _| record(conn, &sender, id, seen_until)).await
    }

    /// Forgets the seen ids whose time is up at `now`; returns how many went. Every
    /// node runs this: an id is kept for the message's lifetime, after which the
    /// message itself is refused as stale, so nothing is lost by forgetting it.
    pub async fn expire_seen(&self, now: Timestamp) -> Result<usize, Error> {
        self.write(move |conn, _| expire(conn, now)).await
    }
}

/// Records `(sender, id)` until `seen_until`, unless it was seen before.
pub(crate) fn record(
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

/// Forgets the pairs whose time is up.
pub(crate) fn expire(conn: &Connection, now: Timestamp) -> Result<usize, Error> {
    Ok(conn.execute("DELETE FROM seen_ids WHERE expires_at <= ?1", [ms(now)])?)
}
