//! The `blocks` table (issue 15 item 2, decision 0052): addresses the user blocked.
//! A blocked contact stays a contact (unblocking gives the conversation back); a
//! blocked stranger's request is deleted with its messages. The fingerprint of the
//! blocked keys is kept once known (from the contact, the request, or the first
//! envelope after the block), so inbound can drop a blocked sender's envelope by its
//! keys before deriving any address.

use communitas_types::{Address, Fingerprint, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{array, ms, parse_address, select, ts};
use crate::{Error, Store};

/// The table (migration 10).
pub(crate) const SCHEMA: &str = "
    CREATE TABLE blocks (
        address     TEXT PRIMARY KEY,
        fingerprint BLOB UNIQUE,            -- the blocked keys, once known
        blocked_at  INTEGER NOT NULL
    );
";

/// Blocks kept at most: a block is one small row, but a script must not fill the disk.
pub const MAX_BLOCKS: u32 = 10_000;

/// A blocked address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The address.
    pub address: Address,
    /// The fingerprint of its keys, once known.
    pub fingerprint: Option<Fingerprint>,
    /// When it was blocked.
    pub blocked_at: Timestamp,
}

/// What [`Store::block`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The block as stored.
    pub block: Block,
    /// A request from the address was deleted with its messages.
    pub request_deleted: bool,
    /// The address was blocked already.
    pub already: bool,
}

impl Store {
    /// Blocks `address`: its fingerprint is taken from the contact or request with
    /// that address if there is one, and a request is deleted (decline and block),
    /// in one transaction. Refused with [`Error::TooManyBlocks`] past [`MAX_BLOCKS`].
    pub async fn block(&self, address: Address, now: Timestamp) -> Result<Blocked, Error> {
        self.write(move |conn, _| block(conn, address, now)).await
    }

    /// Unblocks `address`; false if it was not blocked.
    pub async fn unblock(&self, address: Address) -> Result<bool, Error> {
        self.write(move |conn, _| {
            Ok(conn.execute("DELETE FROM blocks WHERE address = ?1", [address.to_string()])? > 0)
        })
        .await
    }

    /// Records the fingerprint of a blocked address's keys, learned from an envelope.
    pub async fn set_block_fingerprint(
        &self,
        address: Address,
        fingerprint: Fingerprint,
    ) -> Result<(), Error> {
        self.write(move |conn, _| {
            conn.execute(
                "UPDATE OR IGNORE blocks SET fingerprint = ?2 WHERE address = ?1",
                params![address.to_string(), fingerprint.as_bytes()],
            )?;
            Ok(())
        })
        .await
    }

    /// Every block, newest first.
    pub async fn blocks(&self) -> Result<Vec<Block>, Error> {
        self.read(|conn, _| {
            select(
                conn,
                "SELECT address, fingerprint, blocked_at FROM blocks ORDER BY blocked_at DESC, address",
                &[],
                from_row,
            )
        })
        .await
    }
}

fn block(conn: &Connection, address: Address, now: Timestamp) -> Result<Blocked, Error> {
    let peer = address.to_string();
    let known: Option<Vec<u8>> = conn
        .query_row(
            "SELECT fingerprint FROM contacts WHERE address = ?1
             UNION ALL SELECT fingerprint FROM requests WHERE address = ?1 LIMIT 1",
            [&peer],
            |r| r.get(0),
        )
        .optional()?;
    let existing = conn
        .query_row(
            "SELECT address, fingerprint, blocked_at FROM blocks WHERE address = ?1",
            [&peer],
            |r| Ok(from_row(r)),
        )
        .optional()?
        .transpose()?;
    let request_deleted = super::requests::decline(conn, address)?.is_some();
    if let Some(mut block) = existing {
        if block.fingerprint.is_none()
            && let Some(fp) = known
        {
            conn.execute(
                "UPDATE OR IGNORE blocks SET fingerprint = ?2 WHERE address = ?1",
                params![&peer, fp],
            )?;
            block.fingerprint = Some(Fingerprint::from_bytes(array(fp, "fingerprint")?));
        }
        return Ok(Blocked { block, request_deleted, already: true });
    }
    let held: i64 = conn.query_row("SELECT COUNT(*) FROM blocks", [], |r| r.get(0))?;
    if u64::try_from(held).unwrap_or(0) >= u64::from(MAX_BLOCKS) {
        return Err(Error::TooManyBlocks { max: MAX_BLOCKS });
    }
    conn.execute(
        "INSERT INTO blocks (address, fingerprint, blocked_at) VALUES (?1, ?2, ?3)",
        params![&peer, known, ms(now)],
    )?;
    let fingerprint =
        known.map(|fp| array(fp, "fingerprint").map(Fingerprint::from_bytes)).transpose()?;
    Ok(Blocked {
        block: Block { address, fingerprint, blocked_at: now },
        request_deleted,
        already: false,
    })
}

fn from_row(r: &Row<'_>) -> Result<Block, Error> {
    let fingerprint: Option<Vec<u8>> = r.get(1)?;
    Ok(Block {
        address: parse_address(&r.get::<_, String>(0)?)?,
        fingerprint: fingerprint
            .map(|fp| array(fp, "fingerprint").map(Fingerprint::from_bytes))
            .transpose()?,
        blocked_at: ts(r.get(2)?),
    })
}
