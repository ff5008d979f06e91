//! File attachments (ARCHITECTURE §7): offer, serve, fetch, resume.
//!
//! - [`prepare`]: one streaming pass over the file computes its manifest (stripe
//!   digests and whole-file BLAKE3); nothing is copied. The manifest goes to the
//!   recipient in an ordinary sealed message of kind `File`.
//! - [`serve`]: the sender answers `/communitas/file/1` requests by re-reading the
//!   segment from the original file, re-encoding it and checking it against the
//!   manifest before a byte leaves (a file changed since is refused, never served
//!   half-old, half-new — and never re-encrypted under a used nonce).
//! - [`fetch`]: the recipient pulls data shards over a few streams, checks every
//!   hash, asks for parity only for what is missing or corrupt, writes each stripe at
//!   its offset in a partial file, and records which stripes are on disk (synced) so a
//!   restart resumes there. The partial file is renamed into `downloads/` when the
//!   whole-file BLAKE3 matches.
//!
//! The [`Actor`] owns the set of running downloads: it starts the unfinished ones at
//! start, new ones as their manifests arrive, and retries waiting ones when their
//! sender comes online, or after a backoff (1 s doubling to 30 s).

mod cpu;
mod fetch;
mod frame;
mod name;
mod prepare;
mod serve;
pub(crate) mod sweep;
mod upload;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use communitas_proto::file::Manifest;
use communitas_store::{Direction, FileRow, FileStatus};
use communitas_types::{Address, FileId, MessageId, Timestamp};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) use crate::commands::files::Command;
use crate::{Attachment, Event, Inner};

pub(crate) use cpu::Cpu;
pub(crate) use name::sanitise;
pub(crate) use prepare::prepare;
pub(crate) use serve::{Sources, serve};

/// How often the actor looks for downloads due for another try.
const TICK: Duration = Duration::from_secs(1);
/// Longest wait between tries of a download whose sender is away.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Transfers (downloads and uploads) running at once.
const MAX_TRANSFERS: usize = 4;

/// Limits and places for files.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Where received files are saved (and partial ones kept, in `.partial/`).
    pub downloads: PathBuf,
    /// Where files uploaded through the API are kept while they are offered.
    pub uploads: PathBuf,
    /// Largest file sent or accepted (default 1 GiB).
    pub max_size: u64,
    /// Received files up to this size are fetched without being asked (default 1 GiB).
    pub auto_download: u64,
    /// Streams one download uses at once.
    pub parallel_streams: usize,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            downloads: std::env::temp_dir().join("communitas-downloads"),
            uploads: std::env::temp_dir().join("communitas-uploads"),
            max_size: 1 << 30,
            auto_download: 1 << 30,
            parallel_streams: 4,
        }
    }
}

// The view type is the API's (`event`); building it from a transfer is this module's.
impl Attachment {
    pub(crate) fn new(manifest: &Manifest, row: Option<&FileRow>) -> Self {
        let (status, progress, path, error) = match row {
            Some(row) => {
                let progress = match row.status {
                    FileStatus::Done
                    | FileStatus::Offered
                    | FileStatus::Stored
                    | FileStatus::Fetched => row.size,
                    _ => fetch::bytes_done(&row.done, row.size),
                };
                (
                    row.status,
                    progress,
                    row.path.as_ref().map(|p| p.display().to_string()),
                    row.error.clone(),
                )
            }
            None => (FileStatus::Pending, 0, None, None),
        };
        Self {
            file_id: manifest.file_id,
            name: manifest.display_name(),
            size: manifest.size,
            blake3: hex_lower(&manifest.blake3),
            media_type: manifest.media_type.clone(),
            status,
            progress,
            path: if row.is_some_and(|r| r.direction == Direction::In) { path } else { None },
            error,
        }
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a file operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file cannot be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The path is not a regular file.
    #[error("{0} is not a regular file")]
    NotAFile(String),
    /// Over the size limit.
    #[error("the file is {size} bytes; the limit is {max} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// No such file transfer.
    #[error("no file {0}")]
    NoSuchFile(FileId),
    /// The received file is not complete yet.
    #[error("file {0} is not downloaded yet")]
    NotReady(FileId),
    /// The file came with a message request: it is fetched once the request is
    /// accepted (issue 15).
    #[error("file {0} came with a message request: accept the request to fetch it")]
    FromRequest(FileId),
    /// Writing the copy failed.
    #[error("cannot write {path}: {reason}")]
    Unwritable {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// Storing failed.
    #[error("storage failed: {0}")]
    Store(#[from] communitas_store::Error),
}

/// A transfer the actor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Job {
    Download(FileId),
    Upload(FileId),
    /// Drop a fetched file's shards from the server nodes that keep them.
    Release(FileId),
}

/// Owns the running transfers.
pub(crate) struct Actor {
    inner: Arc<Inner>,
    commands: mpsc::Receiver<Command>,
    running: HashSet<Job>,
    /// Transfers waiting, and when each may try next.
    waiting: HashMap<Job, Instant>,
    /// Failed tries in a row, for the backoff.
    tries: HashMap<Job, u32>,
    tasks: JoinSet<(Job, fetch::Outcome)>,
}

impl Actor {
    pub(crate) fn new(inner: Arc<Inner>, commands: mpsc::Receiver<Command>) -> Self {
        Self {
            inner,
            commands,
            running: HashSet::new(),
            waiting: HashMap::new(),
            tries: HashMap::new(),
            tasks: JoinSet::new(),
        }
    }

    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        match self.inner.store.unfinished_files().await {
            Ok(rows) => {
                let now = Instant::now();
                for row in rows {
                    let job = match (row.direction, row.status) {
                        (Direction::In, _) => Job::Download(row.file_id),
                        (Direction::Out, FileStatus::Fetched) => Job::Release(row.file_id),
                        (Direction::Out, _) => Job::Upload(row.file_id),
                    };
                    self.waiting.insert(job, now);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list unfinished transfers"),
        }
        self.start_due();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Ok((job, outcome)) = done {
                        self.running.remove(&job);
                        if outcome == fetch::Outcome::Retry {
                            let tries = self.tries.entry(job).or_insert(0);
                            *tries += 1;
                            self.waiting.insert(job, Instant::now() + backoff(*tries));
                        } else {
                            self.tries.remove(&job);
                        }
                    }
                    self.start_due();
                }
                command = self.commands.recv() => match command {
                    None => break,
                    Some(Command::Fetch(file_id)) => {
                        self.waiting.insert(Job::Download(file_id), Instant::now());
                        self.start_due();
                    }
                    Some(Command::Stored(message_id)) => {
                        if let Ok(Some(row)) = self.inner.store.file_by_message(message_id).await
                            && upload::wants_upload(&row)
                        {
                            let job = Job::Upload(row.file_id);
                            self.waiting.entry(job).or_insert_with(Instant::now);
                            self.start_due();
                        }
                    }
                    Some(Command::Fetched { from, message }) => {
                        // A failure leaves the shards until they expire: the receipt
                        // that asked is not sent again.
                        if let Err(e) = fetched(&self.inner, from, message).await {
                            tracing::warn!(error = %e, "cannot record a fetched file");
                        }
                    }
                    Some(Command::Release(file_id)) => {
                        self.waiting.entry(Job::Release(file_id)).or_insert_with(Instant::now);
                        self.start_due();
                    }
                    // A peer came back: everything waiting may try now.
                    Some(Command::PeerOnline) => {
                        let now = Instant::now();
                        self.waiting.values_mut().for_each(|at| *at = now);
                        self.start_due();
                    }
                },
                _ = tick.tick() => self.start_due(),
            }
        }
        // Transfers stop here; what is on disk and recorded resumes next start.
        self.tasks.shutdown().await;
    }

    fn start_due(&mut self) {
        let now = Instant::now();
        let due: Vec<Job> =
            self.waiting.iter().filter(|(_, at)| **at <= now).map(|(job, _)| *job).collect();
        for job in due {
            if self.running.len() >= MAX_TRANSFERS {
                break;
            }
            // A release waits for the file's upload to notice the file was fetched.
            let busy = match job {
                Job::Release(file_id) => self.running.contains(&Job::Upload(file_id)),
                _ => false,
            };
            if busy || self.running.contains(&job) {
                continue;
            }
            self.waiting.remove(&job);
            self.running.insert(job);
            let inner = self.inner.clone();
            self.tasks.spawn(async move {
                let outcome = match job {
                    Job::Download(file_id) => fetch::run(inner, file_id).await,
                    Job::Upload(file_id) => upload::run(inner, file_id).await,
                    Job::Release(file_id) => upload::release(inner, file_id).await,
                };
                (job, outcome)
            });
        }
    }
}

/// Wait before try `n` (n ≥ 1): 1 s, 2 s, 4 s... up to [`MAX_BACKOFF`].
fn backoff(tries: u32) -> Duration {
    Duration::from_secs(1u64 << tries.saturating_sub(1).min(5)).min(MAX_BACKOFF)
}

/// Decodes the manifest a stored `File` message carries.
pub(crate) fn manifest_of(body: &[u8]) -> Option<Manifest> {
    Manifest::from_bytes(body, communitas_crypto::envelope::MAX_BODY_LEN).ok()
}

/// The recipient says it has the file that message `id` (ours, to `from`) carried:
/// the file is `fetched`, and shards we put on server nodes are released.
async fn fetched(
    inner: &Inner,
    from: Address,
    id: MessageId,
) -> Result<(), communitas_store::Error> {
    let Some(mut row) = inner.store.file_by_message(id).await? else { return Ok(()) };
    if row.direction != Direction::Out || row.peer != from || row.status == FileStatus::Fetched {
        return Ok(());
    }
    // Shards may be on servers if an upload ran (its bitmap is saved only now and
    // then, so a running upload may have placed more than it says).
    let release = matches!(row.status, FileStatus::Uploading | FileStatus::Stored)
        || row.done.iter().any(|b| *b != 0);
    if !release {
        row.done = Vec::new();
    } else if row.done.is_empty() {
        // A non-empty bitmap on a fetched file is what marks a release still to do.
        row.done = vec![0];
    }
    row.status = FileStatus::Fetched;
    row.error = None;
    row.updated_at = Timestamp::now();
    inner.store.put_file(row.clone()).await?;
    tracing::info!(file = %row.file_id.fmt_short(), "the recipient has the file");
    emit_progress(inner, &row);
    if release {
        // A full queue only delays it: fetched files with shards out are picked up
        // again at the next start.
        inner.files.offer_release(row.file_id);
    }
    Ok(())
}

/// Emits a progress event for a transfer.
pub(crate) fn emit_progress(inner: &Inner, row: &FileRow) {
    let bytes = match row.status {
        FileStatus::Done | FileStatus::Fetched => row.size,
        _ => fetch::bytes_done(&row.done, row.size),
    };
    inner.emit(Event::FileProgress {
        file_id: row.file_id,
        message_id: row.message_id,
        peer: row.peer,
        direction: row.direction,
        bytes,
        size: row.size,
        status: row.status,
    });
}

/// A new row for a received manifest: pending, or too large to fetch unasked.
pub(crate) fn incoming_row(
    manifest: &Manifest,
    message_id: MessageId,
    from: Address,
    auto_download: u64,
) -> FileRow {
    let status =
        if manifest.size > auto_download { FileStatus::TooLarge } else { FileStatus::Pending };
    FileRow {
        file_id: manifest.file_id,
        message_id,
        direction: Direction::In,
        peer: from,
        size: manifest.size,
        path: None,
        status,
        done: fetch::empty_bitmap(manifest.size),
        fetched: 0,
        error: None,
        updated_at: Timestamp::now(),
    }
}
