//! Server role: the `shards` table, file shards a server node keeps for recipients
//! who were offline (decision 0012), within a per-sender and a server-wide quota.

use communitas_types::{FileId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::{int, ms};
use crate::{Error, Store};

/// Server role: a shard kept for a recipient who was offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredShard {
    /// The file.
    pub file_id: FileId,
    /// The stripe.
    pub stripe: u32,
    /// Which shard of the stripe.
    pub index: u8,
    /// The stripe's shard hashes, concatenated (14 × 32 bytes).
    pub hashes: Vec<u8>,
    /// The shard.
    pub shard: Vec<u8>,
    /// The authenticated peer that put it (quotas are per sending peer).
    pub sender: String,
    /// When it is dropped.
    pub expires_at: Timestamp,
}

/// Server role: a stripe's shard hashes (concatenated) and the `(index, shard)` pairs
/// held of it.
pub type HeldShards = (Vec<u8>, Vec<(u8, Vec<u8>)>);

/// Server role: how much a server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardLimits {
    /// Bytes of shards from one sending peer.
    pub per_sender: u64,
    /// Bytes of shards in all.
    pub total: u64,
}

/// What became of a shard put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardPut {
    /// Kept (or already there).
    Stored,
    /// The sender's or the server's quota is full.
    QuotaExceeded,
}

pub(crate) const SCHEMA: &str = "
    CREATE TABLE shards (
        file_id    BLOB NOT NULL,
        stripe     INTEGER NOT NULL,
        idx        INTEGER NOT NULL,
        hashes     BLOB NOT NULL,
        shard      BLOB NOT NULL,
        size       INTEGER NOT NULL,
        sender     TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (file_id, stripe, idx)
    ) WITHOUT ROWID;
    CREATE INDEX shards_by_sender ON shards (sender);
    CREATE INDEX shards_expiry ON shards (expires_at);
";

impl Store {
    /// Server role: keeps a file shard, within `limits`. The caller has checked that
    /// the put is authorized by the file's sender (decision 0043): a slot already
    /// holding other hashes is overwritten, never answered `Stored` for bytes that are
    /// not the putter's.
    pub async fn put_shard(
        &self,
        shard: StoredShard,
        limits: ShardLimits,
    ) -> Result<ShardPut, Error> {
        self.write(move |conn, _| put(conn, &shard, limits)).await
    }

    /// Server role: the held shards of a stripe named by `mask`, with its hashes.
    pub async fn shards(
        &self,
        file_id: FileId,
        stripe: u32,
        mask: u16,
        now: Timestamp,
    ) -> Result<Option<HeldShards>, Error> {
        self.read(move |conn, _| get(conn, file_id, stripe, mask, now)).await
    }

    /// Server role: `(stripe, mask)` of the shards of a file held here.
    pub async fn shards_held(
        &self,
        file_id: FileId,
        now: Timestamp,
    ) -> Result<Vec<(u32, u16)>, Error> {
        self.read(move |conn, _| held(conn, file_id, now)).await
    }

    /// Server role: drops the shards of `file_id` that `sender` (a PeerId) put here,
    /// once the recipient has the file; returns how many.
    pub async fn drop_shards(&self, file_id: FileId, sender: String) -> Result<usize, Error> {
        self.write(move |conn, _| {
            Ok(conn.execute(
                "DELETE FROM shards WHERE file_id = ?1 AND sender = ?2",
                params![file_id.as_bytes(), sender],
            )?)
        })
        .await
    }

    /// Server role: drops expired shards; returns how many.
    pub async fn expire_shards(&self, now: Timestamp) -> Result<usize, Error> {
        self.write(move |conn, _| {
            Ok(conn.execute("DELETE FROM shards WHERE expires_at <= ?1", [ms(now)])?)
        })
        .await
    }
}

fn put(conn: &Connection, shard: &StoredShard, limits: ShardLimits) -> Result<ShardPut, Error> {
    let held: Option<Vec<u8>> = conn
        .prepare_cached(
            "SELECT hashes FROM shards WHERE file_id = ?1 AND stripe = ?2 AND idx = ?3",
        )?
        .query_row(params![shard.file_id.as_bytes(), shard.stripe, shard.index], |row| row.get(0))
        .optional()?;
    match held {
        // These very bytes are here already.
        Some(hashes) if hashes == shard.hashes => return Ok(ShardPut::Stored),
        // The file's sender (the caller checked the put's signature) re-encoded the
        // stripe: its new bytes replace the old ones, so `Stored` means ours are held.
        Some(_) => {
            conn.execute(
                "DELETE FROM shards WHERE file_id = ?1 AND stripe = ?2 AND idx = ?3",
                params![shard.file_id.as_bytes(), shard.stripe, shard.index],
            )?;
        }
        None => {}
    }
    let size = u64::try_from(shard.shard.len()).unwrap_or(u64::MAX);
    let (sender_bytes, total_bytes): (i64, i64) = conn.query_row(
        "SELECT (SELECT COALESCE(SUM(size), 0) FROM shards WHERE sender = ?1),
                (SELECT COALESCE(SUM(size), 0) FROM shards)",
        [&shard.sender],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let used = |v: i64| u64::try_from(v).unwrap_or(0);
    if used(sender_bytes).saturating_add(size) > limits.per_sender
        || used(total_bytes).saturating_add(size) > limits.total
    {
        return Ok(ShardPut::QuotaExceeded);
    }
    conn.execute(
        "INSERT INTO shards (file_id, stripe, idx, hashes, shard, size, sender, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            shard.file_id.as_bytes(),
            shard.stripe,
            shard.index,
            shard.hashes,
            shard.shard,
            int(size),
            shard.sender,
            ms(shard.expires_at),
        ],
    )?;
    Ok(ShardPut::Stored)
}

/// The shards of one stripe named by `mask` (bit i = shard i), with the stripe's
/// hashes; `None` if none of them is here.
fn get(
    conn: &Connection,
    file_id: FileId,
    stripe: u32,
    mask: u16,
    now: Timestamp,
) -> Result<Option<HeldShards>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx, hashes, shard FROM shards
         WHERE file_id = ?1 AND stripe = ?2 AND expires_at > ?3 ORDER BY idx",
    )?;
    let rows = stmt.query_map(params![file_id.as_bytes(), stripe, ms(now)], |row| {
        Ok((row.get::<_, u8>(0)?, row.get::<_, Vec<u8>>(1)?, row.get::<_, Vec<u8>>(2)?))
    })?;
    let mut hashes = None;
    let mut shards = Vec::new();
    for row in rows {
        let (index, h, shard) = row?;
        if index < 16 && mask & (1 << index) != 0 {
            hashes.get_or_insert(h);
            shards.push((index, shard));
        }
    }
    Ok(hashes.map(|h| (h, shards)))
}

/// `(stripe, mask)` of every shard of `file_id` held here.
fn held(conn: &Connection, file_id: FileId, now: Timestamp) -> Result<Vec<(u32, u16)>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT stripe, idx FROM shards WHERE file_id = ?1 AND expires_at > ?2 ORDER BY stripe",
    )?;
    let rows = stmt.query_map(params![file_id.as_bytes(), ms(now)], |row| {
        Ok((row.get::<_, u32>(0)?, row.get::<_, u8>(1)?))
    })?;
    let mut held: Vec<(u32, u16)> = Vec::new();
    for row in rows {
        let (stripe, index) = row?;
        let bit = if index < 16 { 1u16 << index } else { 0 };
        match held.last_mut() {
            Some((s, mask)) if *s == stripe => *mask |= bit,
            _ => held.push((stripe, bit)),
        }
    }
    Ok(held)
}
