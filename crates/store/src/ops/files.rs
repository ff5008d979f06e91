//! The `files` table: file transfers either way, what a node sends (where to read it
//! from) and receives (how far it got). The manifest itself is the body of the
//! message that carried it.

use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};

use communitas_types::{Address, FileId, MessageId, Timestamp};
use rusqlite::{Connection, Row, params};

use super::{int, ms, select, ts};
use crate::{Error, Inserted, Store};

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

impl Store {
    /// Records a file transfer (or its progress).
    pub async fn put_file(&self, row: FileRow) -> Result<(), Error> {
        self.write(move |conn, _| put(conn, &row)).await
    }

    /// Records a new file transfer; a file already known is left as it is (a
    /// replayed manifest must not reset a transfer's progress).
    pub async fn add_file(&self, row: FileRow) -> Result<Inserted, Error> {
        self.write(move |conn, _| {
            if get(conn, row.file_id)?.is_some() {
                return Ok(Inserted::Duplicate);
            }
            put(conn, &row)?;
            Ok(Inserted::New)
        })
        .await
    }

    /// A file transfer by file id.
    pub async fn file(&self, file_id: FileId) -> Result<Option<FileRow>, Error> {
        self.read(move |conn, _| get(conn, file_id)).await
    }

    /// The file transfer a message carries, if any.
    pub async fn file_by_message(&self, id: MessageId) -> Result<Option<FileRow>, Error> {
        self.read(move |conn, _| {
            Ok(query(conn, "WHERE message_id = ?1", &[&id.as_bytes().as_slice()])?.pop())
        })
        .await
    }

    /// Transfers to pick up again at start: received files still to fetch (pending or
    /// interrupted), sent files whose upload to server nodes was interrupted, and sent
    /// files the recipient has whose stored shards are still to be released (a `done`
    /// bitmap left on a fetched file). A message request's files wait for it to be
    /// accepted (decision 0052).
    pub async fn unfinished_files(&self) -> Result<Vec<FileRow>, Error> {
        self.read(|conn, _| {
            query(
                conn,
                "WHERE (direction = 'in' AND status IN ('pending', 'downloading')
                        AND peer NOT IN (SELECT address FROM requests))
                    OR (direction = 'out' AND status = 'uploading')
                    OR (direction = 'out' AND status = 'fetched' AND length(done) > 0)",
                &[],
            )
        })
        .await
    }
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
            int(row.size),
            row.path.as_ref().map(|p| p.as_os_str().as_bytes()),
            row.status.as_str(),
            row.done,
            int(row.fetched),
            row.error,
            ms(row.updated_at),
        ],
    )?;
    Ok(())
}

const COLUMNS: &str =
    "file_id, message_id, direction, peer, size, path, status, done, fetched, error, updated_at";

fn from_row(row: &Row<'_>) -> Result<FileRow, Error> {
    let corrupt = |field| Error::Corrupt { field };
    let file_id: Vec<u8> = row.get(0)?;
    let message_id: Vec<u8> = row.get(1)?;
    let path: Option<Vec<u8>> = row.get(5)?;
    Ok(FileRow {
        file_id: FileId::from_bytes(file_id.try_into().map_err(|_| corrupt("files.file_id"))?),
        message_id: MessageId::from_bytes(
            message_id.try_into().map_err(|_| corrupt("files.message_id"))?,
        ),
        direction: crate::Direction::parse(&row.get::<_, String>(2)?)?,
        peer: row.get::<_, String>(3)?.parse().map_err(|_| corrupt("files.peer"))?,
        size: u64::try_from(row.get::<_, i64>(4)?).map_err(|_| corrupt("files.size"))?,
        path: path.map(|p| std::path::PathBuf::from(std::ffi::OsString::from_vec(p))),
        status: FileStatus::parse(&row.get::<_, String>(6)?)?,
        done: row.get(7)?,
        fetched: u64::try_from(row.get::<_, i64>(8)?).map_err(|_| corrupt("files.fetched"))?,
        error: row.get(9)?,
        updated_at: ts(row.get(10)?),
    })
}

/// The transfers `filter` (a `WHERE` clause on `params`, or empty) selects.
fn query(
    conn: &Connection,
    filter: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<FileRow>, Error> {
    select(conn, &format!("SELECT {COLUMNS} FROM files {filter}"), params, from_row)
}

pub(crate) fn get(conn: &Connection, file_id: FileId) -> Result<Option<FileRow>, Error> {
    Ok(query(conn, "WHERE file_id = ?1", &[&file_id.as_bytes().as_slice()])?.pop())
}
