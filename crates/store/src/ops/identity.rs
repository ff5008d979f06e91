//! The `identity` table: the one row that records the local identity (its keys live in
//! the keystore, not here).

use communitas_types::Fingerprint;
use rusqlite::{Connection, OptionalExtension, params};

use super::{array, ms, parse_address, ts};
use crate::{Error, IdentityRow, Store};

impl Store {
    /// Records the local identity (replacing any earlier row).
    pub async fn set_identity(&self, row: IdentityRow) -> Result<(), Error> {
        self.write(move |conn, _| set(conn, &row)).await
    }

    /// The local identity, if recorded.
    pub async fn identity(&self) -> Result<Option<IdentityRow>, Error> {
        self.read(|conn, _| get(conn)).await
    }
}

fn set(conn: &Connection, row: &IdentityRow) -> Result<(), Error> {
    conn.execute(
        "INSERT OR REPLACE INTO identity (id, address, fingerprint, name, created_at)
         VALUES (1, ?1, ?2, ?3, ?4)",
        params![row.address.to_string(), row.fingerprint.as_bytes(), row.name, ms(row.created_at)],
    )?;
    Ok(())
}

fn get(conn: &Connection) -> Result<Option<IdentityRow>, Error> {
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
