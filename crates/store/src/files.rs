//! File transfers: what a node sends (where to read it from) and receives (how far
//! it got). The manifest itself is the body of the message that carried it.

use communitas_types::{Address, FileId, MessageId, Timestamp};
use rusqlite::{Connection, Row, params};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};

use crate::Error;

/// A file transfer, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// The file.
    pub file_id: FileId,
    /// The message that carries its manifest.
    pub message_id: MessageId,
    /// `In` (received) or `Out` (sent).
    pub direction: crate::Direction,
    /// The other side.
    pub peer: Address,
    /// Size in bytes.
    pub size: u64,
    /// Out: the file the shards are read from. In: where it was saved, once done.
    /// Kept as raw bytes: paths need not be UTF-8.
    pub path: Option<std::path::PathBuf>,
    /// What the transfer is doing.
    pub status: FileStatus,
    /// In: one bit per stripe written and synced to the partial file.
    pub done: Vec<u8>,
    /// In: bytes fetched over the network, resumes included.
    pub fetched: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Last change.
    pub updated_at: Timestamp,
}

/// Where a file transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileStatus {
    /// Out: offered to the recipient (shards served on request).
    Offered,
    /// Out: the recipient was away; shards are going to server nodes.
    Uploading,
    /// Out: every shard is kept by server nodes (and still served by us).
    Stored,
    /// Out: the recipient has the whole file (their receipt said so). Final: a late
    /// write of an upload's progress never takes a sent file back from here.
    Fetched,
    /// In: known, not started (or waiting for the sender).
    Pending,
    /// In: fetching.
    Downloading,
    /// In: verified and saved.
    Done,
    /// In: above the auto-download size; fetch with `files get`.
    TooLarge,
    /// Gave up (see the error).
    Failed,
}

impl FileStatus {
    /// The stable name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Offered => "offered",
            FileStatus::Uploading => "uploading",
            FileStatus::Stored => "stored",
            FileStatus::Fetched => "fetched",
            FileStatus::Pending => "pending",
            FileStatus::Downloading => "downloading",
            FileStatus::Done => "done",
            FileStatus::TooLarge => "too_large",
            FileStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self, Error> {
        Ok(match text {
            "offered" => FileStatus::Offered,
            "uploading" => FileStatus::Uploading,
            "stored" => FileStatus::Stored,
            "fetched" => FileStatus::Fetched,
            "pending" => FileStatus::Pending,
            "downloading" => FileStatus::Downloading,
            "done" => FileStatus::Done,
            "too_large" => FileStatus::TooLarge,
            "failed" => FileStatus::Failed,
            _ => return Err(Error::Corrupt { field: "files.status" }),
        })
    }
}

pub(crate) const SCHEMA: &str = "
    CREATE TABLE files (
        file_id    BLOB PRIMARY KEY,
        message_id BLOB NOT NULL,
        direction  TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        peer       TEXT NOT NULL,
        size       INTEGER NOT NULL,
        path       BLOB,
        status     TEXT NOT NULL,
        done       BLOB NOT NULL,
        fetched    INTEGER NOT NULL DEFAULT 0,
        error      TEXT,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX files_by_message ON files (message_id);
    CREATE INDEX files_by_status ON files (direction, status);
";

/// Inserts `row` unless the file is already known (a replayed manifest must not
/// reset a transfer's progress).
pub(crate) fn add(conn: &Connection, row: &FileRow) -> Result<crate::Inserted, Error> {
    if get(conn, row.file_id)?.is_some() {
        return Ok(crate::Inserted::Duplicate);
    }
    put(conn, row)?;
    Ok(crate::Inserted::New)
}

pub(crate) fn put(conn: &Connection, row: &FileRow) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO files (file_id, message_id, direction, peer, size, path, status, done,
                            fetched, error, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (file_id) DO UPDATE SET
            path = excluded.path,
            status = CASE WHEN files.status = 'fetched' AND files.direction = 'out'
                          THEN 'fetched' ELSE excluded.status END,
            done = excluded.done,
            fetched = excluded.fetched,
            error = CASE WHEN files.status = 'fetched' AND files.direction = 'out'
                         THEN NULL ELSE excluded.error END,
            updated_at = excluded.updated_at",
        params![
            row.file_id.as_bytes(),
            row.message_id.as_bytes(),
            row.direction.as_str(),
            row.peer.to_string(),
            i64::try_from(row.size).unwrap_or(i64::MAX),
            row.path.as_ref().map(|p| p.as_os_str().as_bytes()),
            row.status.as_str(),
            row.done,
            i64::try_from(row.fetched).unwrap_or(i64::MAX),
            row.error,
            i64::try_from(row.updated_at.as_millis()).unwrap_or(i64::MAX),
        ],
    )?;
    Ok(())
}

const COLUMNS: &str =
    "file_id, message_id, direction, peer, size, path, status, done, fetched, error, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Result<FileRow, Error>> {
    let file_id: Vec<u8> = row.get(0)?;
    let message_id: Vec<u8> = row.get(1)?;
    let direction: String = row.get(2)?;
    let peer: String = row.get(3)?;
    let size: i64 = row.get(4)?;
    let status: String = row.get(6)?;
    let fetched: i64 = row.get(8)?;
    let updated_at: i64 = row.get(10)?;
    let path: Option<Vec<u8>> = row.get(5)?;
    let path = path.map(|p| std::path::PathBuf::from(std::ffi::OsString::from_vec(p)));
    let done = row.get(7)?;
    let error = row.get(9)?;
    Ok((|| {
        let corrupt = |field| Error::Corrupt { field };
        Ok(FileRow {
            file_id: FileId::from_bytes(file_id.try_into().map_err(|_| corrupt("files.file_id"))?),
            message_id: MessageId::from_bytes(
                message_id.try_into().map_err(|_| corrupt("files.message_id"))?,
            ),
            direction: crate::Direction::parse(&direction)?,
            peer: peer.parse().map_err(|_| corrupt("files.peer"))?,
            size: u64::try_from(size).map_err(|_| corrupt("files.size"))?,
            path,
            status: FileStatus::parse(&status)?,
            done,
            fetched: u64::try_from(fetched).map_err(|_| corrupt("files.fetched"))?,
            error,
            updated_at: Timestamp::from_millis(u64::try_from(updated_at).unwrap_or(0)),
        })
    })())
}

fn query(
    conn: &Connection,
    filter: &str,
    arg: &dyn rusqlite::ToSql,
) -> Result<Vec<FileRow>, Error> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM files {filter}"))?;
    let rows = stmt.query_map([arg], from_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

pub(crate) fn get(conn: &Connection, file_id: FileId) -> Result<Option<FileRow>, Error> {
    Ok(query(conn, "WHERE file_id = ?1", &file_id.as_bytes().as_slice())?.pop())
}

pub(crate) fn by_message(conn: &Connection, id: MessageId) -> Result<Option<FileRow>, Error> {
    Ok(query(conn, "WHERE message_id = ?1", &id.as_bytes().as_slice())?.pop())
}

/// Transfers to pick up again at start: received files still to fetch (pending or
/// interrupted), sent files whose upload to server nodes was interrupted, and sent
/// files the recipient has whose stored shards are still to be released (a `done`
/// bitmap left on a fetched file).
pub(crate) fn unfinished(conn: &Connection) -> Result<Vec<FileRow>, Error> {
    query(
        conn,
        "WHERE (direction = 'in' AND status IN (?1, 'downloading'))
            OR (direction = 'out' AND status = 'uploading')
            OR (direction = 'out' AND status = 'fetched' AND length(done) > 0)",
        &"pending",
    )
}

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

pub(crate) const SHARDS_SCHEMA: &str = "
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

pub(crate) fn shard_put(
    conn: &Connection,
    shard: &StoredShard,
    limits: ShardLimits,
) -> Result<ShardPut, Error> {
    let exists: bool = conn
        .prepare_cached("SELECT 1 FROM shards WHERE file_id = ?1 AND stripe = ?2 AND idx = ?3")?
        .exists(params![shard.file_id.as_bytes(), shard.stripe, shard.index])?;
    if exists {
        return Ok(ShardPut::Stored);
    }
    let size = shard.shard.len() as u64;
    let (sender_bytes, total_bytes): (i64, i64) = conn.query_row(
        "SELECT (SELECT COALESCE(SUM(size), 0) FROM shards WHERE sender = ?1),
                (SELECT COALESCE(SUM(size), 0) FROM shards)",
        [&shard.sender],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let used = |v: i64| u64::try_from(v).unwrap_or(0);
    if used(sender_bytes) + size > limits.per_sender || used(total_bytes) + size > limits.total {
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
            i64::try_from(size).unwrap_or(i64::MAX),
            shard.sender,
            i64::try_from(shard.expires_at.as_millis()).unwrap_or(i64::MAX),
        ],
    )?;
    Ok(ShardPut::Stored)
}

/// The shards of one stripe named by `mask` (bit i = shard i), with the stripe's
/// hashes; `None` if none of them is here.
pub(crate) fn shards_get(
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
    let rows = stmt.query_map(
        params![file_id.as_bytes(), stripe, i64::try_from(now.as_millis()).unwrap_or(i64::MAX)],
        |row| Ok((row.get::<_, u8>(0)?, row.get::<_, Vec<u8>>(1)?, row.get::<_, Vec<u8>>(2)?)),
    )?;
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
pub(crate) fn shards_held(
    conn: &Connection,
    file_id: FileId,
    now: Timestamp,
) -> Result<Vec<(u32, u16)>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT stripe, idx FROM shards WHERE file_id = ?1 AND expires_at > ?2 ORDER BY stripe",
    )?;
    let rows = stmt.query_map(
        params![file_id.as_bytes(), i64::try_from(now.as_millis()).unwrap_or(i64::MAX)],
        |row| Ok((row.get::<_, u32>(0)?, row.get::<_, u8>(1)?)),
    )?;
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

/// Drops expired shards; returns how many.
/// Server role: drops the shards of `file_id` that `sender` put here; returns how many.
pub(crate) fn shards_drop(
    conn: &Connection,
    file_id: FileId,
    sender: &str,
) -> Result<usize, Error> {
    Ok(conn.execute(
        "DELETE FROM shards WHERE file_id = ?1 AND sender = ?2",
        params![file_id.as_bytes(), sender],
    )?)
}

pub(crate) fn shards_expire(conn: &Connection, now: Timestamp) -> Result<usize, Error> {
    Ok(conn.execute(
        "DELETE FROM shards WHERE expires_at <= ?1",
        [i64::try_from(now.as_millis()).unwrap_or(i64::MAX)],
    )?)
}
