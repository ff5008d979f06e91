//! The `settings` table: per-user settings (issue 6), plain text values under fixed
//! keys (`read_receipts`, `presence`); the node parses them and falls back to its
//! defaults on anything it does not know.

use rusqlite::{OptionalExtension, params};

use crate::{Error, Store};

impl Store {
    /// Sets a per-user setting (issue 6: `read_receipts`, `presence`).
    pub async fn set_setting(&self, key: &'static str, value: String) -> Result<(), Error> {
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
        .await
    }

    /// A per-user setting, if it was ever set.
    pub async fn setting(&self, key: &'static str) -> Result<Option<String>, Error> {
        self.read(move |conn, _| {
            Ok(conn
                .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))
                .optional()?)
        })
        .await
    }
}
