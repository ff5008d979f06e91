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
            path = excluded.path, status = excluded.status, done = excluded.done,
            fetched = excluded.fetched, error = excluded.error, updated_at = excluded.updated_at",
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

/// Received files still to fetch (pending or interrupted).
pub(crate) fn unfinished(conn: &Connection) -> Result<Vec<FileRow>, Error> {
    query(conn, "WHERE direction = 'in' AND status IN (?1, 'downloading')", &"pending")
}
