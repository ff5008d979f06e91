//! The `contacts` table: the people the user added, each pinned to the keys first seen
//! (a contact whose keys change is refused, not silently re-pinned).

use communitas_crypto::PublicIdentity;
use communitas_types::{Address, Fingerprint};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{ms, parse_address, select, ts};
use crate::{Contact, Error, Store};

impl Store {
    /// Adds a contact, pinning its keys. Adding it again with the same keys updates
    /// the name; with other keys it fails with [`Error::KeyChanged`]. A message
    /// request from the same keys is accepted by it (its messages stay as the
    /// conversation); one from other keys under that address fails it the same way.
    pub async fn add_contact(&self, contact: Contact) -> Result<(), Error> {
        self.write(move |conn, _| add(conn, &contact)).await
    }

    /// Marks a contact's safety number as verified.
    pub async fn set_verified(&self, address: Address, verified: bool) -> Result<bool, Error> {
        self.write(move |conn, _| set_verified(conn, address, verified)).await
    }

    /// Renames a contact (`None` clears the name). `false` if there is no such contact.
    pub async fn rename_contact(
        &self,
        address: Address,
        name: Option<String>,
    ) -> Result<bool, Error> {
        self.write(move |conn, _| {
            let changed = conn.execute(
                "UPDATE contacts SET name = ?2 WHERE address = ?1",
                params![address.to_string(), name],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    /// Removes a contact: its row goes (keys, name, verified mark), its conversation
    /// stays (decision 0060). `false` if there is no such contact.
    pub async fn remove_contact(&self, address: Address) -> Result<bool, Error> {
        self.write(move |conn, _| {
            let changed =
                conn.execute("DELETE FROM contacts WHERE address = ?1", [address.to_string()])?;
            Ok(changed == 1)
        })
        .await
    }

    /// All contacts, by address.
    pub async fn contacts(&self) -> Result<Vec<Contact>, Error> {
        self.read(|conn, _| query(conn, "", &[])).await
    }

    /// A contact by address.
    pub async fn contact(&self, address: Address) -> Result<Option<Contact>, Error> {
        self.read(move |conn, _| {
            Ok(query(conn, "WHERE address = ?1", &[&address.to_string()])?.pop())
        })
        .await
    }

    /// A contact by the fingerprint of its keys.
    pub async fn contact_by_fingerprint(
        &self,
        fingerprint: Fingerprint,
    ) -> Result<Option<Contact>, Error> {
        self.read(move |conn, _| {
            Ok(query(conn, "WHERE fingerprint = ?1", &[&fingerprint.as_bytes().as_slice()])?.pop())
        })
        .await
    }
}

pub(crate) fn add(conn: &Connection, contact: &Contact) -> Result<(), Error> {
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
            let request: Option<Vec<u8>> = conn
                .query_row(
                    "SELECT public_identity FROM requests WHERE address = ?1",
                    [contact.address.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            match request {
                Some(existing) if existing != keys => {
                    return Err(Error::KeyChanged { address: contact.address });
                }
                Some(_) => {
                    conn.execute(
                        "DELETE FROM requests WHERE address = ?1",
                        [contact.address.to_string()],
                    )?;
                }
                None => {}
            }
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

fn set_verified(conn: &Connection, address: Address, verified: bool) -> Result<bool, Error> {
    let changed = conn.execute(
        "UPDATE contacts SET verified = ?2 WHERE address = ?1",
        params![address.to_string(), verified],
    )?;
    Ok(changed == 1)
}

const COLUMNS: &str = "address, name, public_identity, verified, added_at";

fn from_row(r: &Row<'_>) -> Result<Contact, Error> {
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

/// The contacts `filter` (a `WHERE` clause on `params`, or empty) selects, by address.
fn query(
    conn: &Connection,
    filter: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Contact>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM contacts {filter} ORDER BY address");
    select(conn, &sql, params, from_row)
}
