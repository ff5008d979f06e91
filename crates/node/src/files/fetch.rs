//! The recipient's side: pull, check, rebuild, write, record; resume after a break.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use communitas_net::libp2p::{Multiaddr, PeerId, Stream};
use communitas_proto::file::wire::{DATA_MASK, Request, Response, ShardMask};
use communitas_proto::file::{
    DATA_SHARDS, FileError as StripeError, Manifest, SEGMENT_LEN, SHARDS, decode_stripe,
    segment_range, stripe_count, stripe_digest,
};
use communitas_store::{FileRow, FileStatus};
use communitas_types::{FileId, Timestamp};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::serve::FILE_PROTOCOL;

mod stored;
use super::{frame, name};
use crate::Inner;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often progress is synced to disk and recorded.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// How a download attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Finished, failed for good, or nothing to do.
    Settled,
    /// Try again later (sender offline, network trouble).
    Retry,
}

/// Why an attempt stopped.
enum Stop {
    /// Nothing to do (done, unknown, too large, failed before).
    Nothing,
    /// Try again later.
    Wait(String),
    /// Give up: the file cannot be had.
    Fail(String),
}

/// A bitmap with one clear bit per stripe of a file of `size` bytes.
pub(crate) fn empty_bitmap(size: u64) -> Vec<u8> {
    vec![0; usize::try_from(stripe_count(size).div_ceil(8)).unwrap_or(0)]
}

pub(super) fn is_done(bitmap: &[u8], stripe: u64) -> bool {
    let Ok(i) = usize::try_from(stripe / 8) else { return false };
    bitmap.get(i).is_some_and(|b| b & (1 << (stripe % 8)) != 0)
}

pub(super) fn mark_done(bitmap: &mut [u8], stripe: u64) {
    if let Some(b) = usize::try_from(stripe / 8).ok().and_then(|i| bitmap.get_mut(i)) {
        *b |= 1 << (stripe % 8);
    }
}

/// Bytes of the file covered by the stripes marked in `bitmap`.
pub(crate) fn bytes_done(bitmap: &[u8], size: u64) -> u64 {
    (0..stripe_count(size))
        .filter(|s| is_done(bitmap, *s))
        .filter_map(|s| segment_range(size, s).ok())
        .map(|(_, len)| len as u64)
        .sum()
}

/// One attempt at fetching `file_id`; records how it ended.
pub(crate) async fn run(inner: Arc<Inner>, file_id: FileId) -> Outcome {
    match download(&inner, file_id).await {
        Ok(()) | Err(Stop::Nothing) => Outcome::Settled,
        Err(Stop::Wait(reason)) => {
            tracing::debug!(file = %file_id.fmt_short(), %reason, "download waits");
            if let Ok(Some(mut row)) = inner.store.file(file_id).await {
                row.error = Some(reason);
                row.updated_at = Timestamp::now();
                let _ = inner.store.put_file(row).await;
            }
            Outcome::Retry
        }
        Err(Stop::Fail(reason)) => {
            tracing::warn!(file = %file_id.fmt_short(), %reason, "download failed");
            if let Ok(Some(mut row)) = inner.store.file(file_id).await {
                row.status = FileStatus::Failed;
                row.error = Some(reason);
                row.updated_at = Timestamp::now();
                if inner.store.put_file(row.clone()).await.is_ok() {
                    super::emit_progress(&inner, &row);
                }
            }
            Outcome::Settled
        }
    }
}

fn partial_path(inner: &Inner, file_id: FileId) -> PathBuf {
    inner.files_config.downloads.join(".partial").join(format!("{file_id}.part"))
}

async fn download(inner: &Arc<Inner>, file_id: FileId) -> Result<(), Stop> {
    let store_err = |e: communitas_store::Error| Stop::Wait(format!("storage: {e}"));
    let mut row = inner.store.file(file_id).await.map_err(store_err)?.ok_or(Stop::Nothing)?;
    if !matches!(row.status, FileStatus::Pending | FileStatus::Downloading) {
        return Err(Stop::Nothing);
    }
    let message = inner.store.message(row.message_id).await.map_err(store_err)?;
    let manifest = message
        .and_then(|m| super::manifest_of(&m.message.body))
        .ok_or_else(|| Stop::Fail("the file's manifest is missing".into()))?;
    let manifest = Arc::new(manifest);
    let part = partial_path(inner, file_id);
    let file = Arc::new(open_partial(&part, manifest.size, &mut row)?);
    row.status = FileStatus::Downloading;
    row.error = None;

    let todo: VecDeque<u64> =
        (0..stripe_count(manifest.size)).filter(|s| !is_done(&row.done, *s)).collect();
    if !todo.is_empty() {
        let source = PeerId::from_bytes(&manifest.source)
            .map_err(|_| Stop::Fail("the manifest names no valid source".into()))?;
        reach(inner, source, row.peer).await;
        match pull(inner, &manifest, source, &file, todo, &mut row).await {
            Ok(()) => {}
            // The sender is away: the shards may be on server nodes.
            Err(Stop::Wait(direct)) => {
                let todo: Vec<u64> =
                    (0..stripe_count(manifest.size)).filter(|s| !is_done(&row.done, *s)).collect();
                stored::pull(inner, &manifest, &file, todo, &mut row).await.map_err(
                    |e| match e {
                        Stop::Wait(stored) => {
                            Stop::Wait(format!("{direct}; server nodes: {stored}"))
                        }
                        other => other,
                    },
                )?;
            }
            Err(other) => return Err(other),
        }
    }
    finish(inner, &manifest, file, &part, row).await
}

/// Opens (creating) the partial file at its full size. A missing partial file with
/// stripes recorded means it was removed: start over.
fn open_partial(part: &Path, size: u64, row: &mut FileRow) -> Result<File, Stop> {
    let fail = |e: std::io::Error| Stop::Fail(format!("cannot write {}: {e}", part.display()));
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    if !part.exists() && row.done.iter().any(|b| *b != 0) {
        row.done = empty_bitmap(size);
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(part)
        .map_err(fail)?;
    file.set_len(size).map_err(fail)?;
    Ok(file)
}

/// Makes sure the swarm knows where `source` is: from the sender's identity record.
async fn reach(inner: &Inner, source: PeerId, sender: communitas_types::Address) {
    let Ok(records) = inner.net.resolve(sender).await else { return };
    for record in records {
        for device in record.devices.iter().filter(|d| d.peer_id == source) {
            let addrs: Vec<Multiaddr> =
                device.addrs.iter().filter_map(|a| Multiaddr::try_from(a.clone()).ok()).collect();
            let _ = inner.net.add_addresses(source, addrs).await;
        }
    }
}

/// What a worker reports per stripe.
struct Written {
    stripe: u64,
    fetched: u64,
}

async fn pull(
    inner: &Arc<Inner>,
    manifest: &Arc<Manifest>,
    source: PeerId,
    file: &Arc<File>,
    todo: VecDeque<u64>,
    row: &mut FileRow,
) -> Result<(), Stop> {
    let queue = Arc::new(Mutex::new(todo));
    let (progress_tx, mut progress) = mpsc::channel::<Written>(64);
    let mut workers = JoinSet::new();
    let streams = inner.files_config.parallel_streams.max(1);
    for _ in 0..streams {
        let worker = Worker {
            inner: inner.clone(),
            manifest: manifest.clone(),
            file: file.clone(),
            queue: queue.clone(),
            progress: progress_tx.clone(),
        };
        workers.spawn(worker.run(source));
    }
    drop(progress_tx);

    let mut last_error = None;
    let mut checkpoint = tokio::time::interval(CHECKPOINT_EVERY);
    checkpoint.tick().await;
    let mut dirty = false;
    loop {
        tokio::select! {
            written = progress.recv() => match written {
                Some(Written { stripe, fetched }) => {
                    mark_done(&mut row.done, stripe);
                    row.fetched += fetched;
                    dirty = true;
                }
                None => break,
            },
            Some(result) = workers.join_next(), if !workers.is_empty() => {
                if let Ok(Err(stop)) = result {
                    last_error = Some(stop);
                }
            }
            _ = checkpoint.tick(), if dirty => {
                save(inner, file, row).await?;
                dirty = false;
            }
        }
    }
    while let Some(result) = workers.join_next().await {
        if let Ok(Err(stop)) = result {
            last_error = Some(stop);
        }
    }
    save(inner, file, row).await?;
    let left = queue.lock().map(|q| q.len()).unwrap_or(0);
    let missing = (0..stripe_count(manifest.size)).any(|s| !is_done(&row.done, s));
    if left > 0 || missing {
        return Err(last_error.unwrap_or_else(|| Stop::Wait("transfer interrupted".into())));
    }
    Ok(())
}

/// Syncs the partial file, then records which stripes it holds: a recorded stripe is
/// always on disk.
async fn save(inner: &Inner, file: &Arc<File>, row: &mut FileRow) -> Result<(), Stop> {
    let sync = file.clone();
    tokio::task::spawn_blocking(move || sync.sync_data())
        .await
        .map_err(|_| Stop::Wait("sync failed".into()))?
        .map_err(|e| Stop::Wait(format!("cannot sync the partial file: {e}")))?;
    row.updated_at = Timestamp::now();
    inner.store.put_file(row.clone()).await.map_err(|e| Stop::Wait(format!("storage: {e}")))?;
    super::emit_progress(inner, row);
    Ok(())
}

struct Worker {
    inner: Arc<Inner>,
    manifest: Arc<Manifest>,
    file: Arc<File>,
    queue: Arc<Mutex<VecDeque<u64>>>,
    progress: mpsc::Sender<Written>,
}

impl Worker {
    fn next(&self) -> Option<u64> {
        self.queue.lock().ok().and_then(|mut q| q.pop_front())
    }

    fn give_back(&self, stripe: u64) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_front(stripe);
        }
    }

    async fn run(self, source: PeerId) -> Result<(), Stop> {
        if self.queue.lock().map(|q| q.is_empty()).unwrap_or(true) {
            return Ok(());
        }
        let mut control = self.inner.net.streams();
        let stream =
            tokio::time::timeout(REQUEST_TIMEOUT, control.open_stream(source, FILE_PROTOCOL))
                .await
                .map_err(|_| Stop::Wait("the sender did not answer".into()))?
                .map_err(|e| Stop::Wait(format!("cannot reach the sender: {e}")))?;
        let mut stream = Channel::new(stream);
        while let Some(stripe) = self.next() {
            match self.stripe(&mut stream, stripe).await {
                Ok(written) => {
                    if self.progress.send(written).await.is_err() {
                        return Ok(());
                    }
                }
                Err(stop) => {
                    self.give_back(stripe);
                    return Err(stop);
                }
            }
        }
        Ok(())
    }

    /// Fetches, checks, rebuilds if needed, and writes one stripe.
    async fn stripe(&self, stream: &mut Channel, stripe: u64) -> Result<Written, Stop> {
        let m = &self.manifest;
        let wire_stripe =
            u32::try_from(stripe).map_err(|_| Stop::Fail("stripe out of range".into()))?;
        let digest = *m
            .digests
            .get(stripe as usize)
            .ok_or_else(|| Stop::Fail("stripe out of range".into()))?;
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; usize::from(SHARDS)];
        let mut asked: ShardMask = 0;
        let mut want: ShardMask = DATA_MASK;
        let mut fetched = 0u64;
        loop {
            let (hashes, got) = request(stream, m.file_id, wire_stripe, want).await?;
            asked |= want;
            if stripe_digest(&hashes) != digest {
                return Err(Stop::Wait(
                    "the sender's shard hashes do not match the manifest".into(),
                ));
            }
            for (index, shard) in got {
                fetched += shard.len() as u64;
                if want & (1 << index) != 0 {
                    shards[usize::from(index)] = Some(shard);
                }
            }
            let present: Vec<bool> = shards.iter().map(Option::is_some).collect();
            let key = m.key;
            let (file_id, size) = (m.file_id, m.size);
            let (result, back) = self
                .inner
                .cpu
                .run(move || {
                    let result = decode_stripe(&key, file_id, size, stripe, &hashes, &mut shards);
                    (result, shards)
                })
                .await
                .ok_or_else(|| Stop::Wait("shutting down".into()))?;
            shards = back;
            let corrupt =
                present.iter().zip(&shards).filter(|(was, now)| **was && now.is_none()).count();
            if corrupt > 0 {
                self.inner.metrics.file_shards_corrupt.inc_by(corrupt as u64);
                tracing::info!(file = %m.file_id.fmt_short(), stripe, corrupt, "corrupt shards: asking for parity");
            }
            match result {
                Ok(plain) => {
                    self.write(stripe, plain).await?;
                    self.inner.metrics.file_bytes_fetched.inc_by(fetched);
                    return Ok(Written { stripe, fetched });
                }
                Err(StripeError::NotEnoughShards { have, need, .. }) => {
                    // Parity only for what is missing or corrupt.
                    let mut more: ShardMask = 0;
                    let mut count = need - have;
                    for index in DATA_SHARDS..SHARDS {
                        if count == 0 {
                            break;
                        }
                        if asked & (1 << index) == 0 {
                            more |= 1 << index;
                            count -= 1;
                        }
                    }
                    if more == 0 {
                        return Err(Stop::Wait(format!(
                            "stripe {stripe} cannot be rebuilt from the sender's shards"
                        )));
                    }
                    want = more;
                }
                Err(e) => return Err(Stop::Fail(e.to_string())),
            }
        }
    }

    async fn write(&self, stripe: u64, plain: Vec<u8>) -> Result<(), Stop> {
        write_stripe(&self.inner, &self.file, stripe, plain).await
    }
}

/// Writes a stripe's plaintext at its offset in the partial file.
async fn write_stripe(
    inner: &Inner,
    file: &Arc<File>,
    stripe: u64,
    plain: Vec<u8>,
) -> Result<(), Stop> {
    let offset = stripe * u64::from(SEGMENT_LEN);
    let file = file.clone();
    inner
        .cpu
        .run(move || file.write_all_at(&plain, offset))
        .await
        .ok_or_else(|| Stop::Wait("shutting down".into()))?
        .map_err(|e| Stop::Fail(format!("cannot write the partial file: {e}")))
}

/// A stream to a holder with the buffer its answers are read into.
pub(super) struct Channel {
    stream: Stream,
    buf: Vec<u8>,
}

impl Channel {
    pub(super) fn new(stream: Stream) -> Self {
        Self { stream, buf: Vec::new() }
    }
}

/// One request on a stream and its answer.
pub(super) async fn exchange(channel: &mut Channel, request: &Request) -> Result<Response, String> {
    let Channel { stream, buf } = channel;
    let exchange = async {
        frame::write(stream, &request.to_bytes()).await?;
        frame::read_into(stream, buf).await
    };
    let open = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| "no answer in time".to_owned())?
        .map_err(|e| format!("transfer interrupted: {e}"))?;
    if !open {
        return Err("the stream was closed".to_owned());
    }
    Response::from_bytes(buf).map_err(|e| format!("malformed answer: {e}"))
}

/// Asks the sender for shards of a stripe.
async fn request(
    stream: &mut Channel,
    file_id: FileId,
    stripe: u32,
    mask: ShardMask,
) -> Result<(Vec<[u8; 32]>, Vec<(u8, Vec<u8>)>), Stop> {
    match exchange(stream, &Request::Get { file_id, stripe, mask }).await.map_err(Stop::Wait) {
        Ok(Response::Shards { hashes, shards }) => Ok((hashes, shards)),
        Ok(Response::Refused(why)) => match why {
            communitas_proto::file::wire::Refusal::SourceChanged
            | communitas_proto::file::wire::Refusal::NotFound => {
                Err(Stop::Fail(format!("the sender cannot serve the file: {why}")))
            }
            _ => Err(Stop::Wait(format!("the sender refused: {why}"))),
        },
        Ok(_) => Err(Stop::Wait("unexpected answer".into())),
        Err(e) => Err(e),
    }
}

/// Checks the whole-file hash, moves the file into `downloads/`, records it.
async fn finish(
    inner: &Inner,
    manifest: &Manifest,
    file: Arc<File>,
    part: &Path,
    mut row: FileRow,
) -> Result<(), Stop> {
    let expected = manifest.blake3;
    let size = manifest.size;
    let check = file.clone();
    let actual = inner
        .cpu
        .run(move || hash_file(&check, size))
        .await
        .ok_or_else(|| Stop::Wait("shutting down".into()))?
        .map_err(|e| Stop::Wait(format!("cannot read the partial file: {e}")))?;
    drop(file);
    if actual != expected {
        // Every stripe passed its own checks, so this means the disk lost a write:
        // start over rather than keep a wrong file.
        row.done = empty_bitmap(size);
        let _ = inner.store.put_file(row).await;
        return Err(Stop::Wait("the whole-file hash does not match: fetching again".into()));
    }
    let dir = inner.files_config.downloads.clone();
    let wanted = super::sanitise(&manifest.name);
    let part_owned = part.to_path_buf();
    let saved = tokio::task::spawn_blocking(move || place(&part_owned, &dir, &wanted))
        .await
        .map_err(|_| Stop::Wait("saving failed".into()))?
        .map_err(|e| Stop::Fail(format!("cannot save the file: {e}")))?;
    row.status = FileStatus::Done;
    row.path = Some(saved);
    row.error = None;
    row.updated_at = Timestamp::now();
    inner.store.put_file(row.clone()).await.map_err(|e| Stop::Wait(format!("storage: {e}")))?;
    tracing::info!(file = %manifest.file_id.fmt_short(), size, "file received");
    super::emit_progress(inner, &row);
    crate::receipts::file_fetched(inner, row.peer, row.message_id).await;
    Ok(())
}

/// BLAKE3 of the first `size` bytes of `file`, read in segments.
fn hash_file(file: &File, size: u64) -> std::io::Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; SEGMENT_LEN as usize];
    let mut offset = 0u64;
    while offset < size {
        let len = usize::try_from((size - offset).min(u64::from(SEGMENT_LEN))).unwrap_or(0);
        file.read_exact_at(&mut buf[..len], offset)?;
        hasher.update(&buf[..len]);
        offset += len as u64;
    }
    Ok(*hasher.finalize().as_bytes())
}

/// Moves `part` into `dir` under `name` without ever replacing an existing file:
/// a hard link fails if the name is taken, then the next free name is tried.
fn place(part: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for _ in 0..1000 {
        let target = name::unused_path(dir, name);
        match std::fs::hard_link(part, &target) {
            Ok(()) => {
                std::fs::remove_file(part)?;
                return Ok(target);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free file name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmaps_count_bytes() {
        let seg = u64::from(SEGMENT_LEN);
        let size = 9 * seg + 5;
        let mut map = empty_bitmap(size);
        assert_eq!(map.len(), 2);
        assert_eq!(bytes_done(&map, size), 0);
        mark_done(&mut map, 0);
        mark_done(&mut map, 9);
        assert!(is_done(&map, 9) && !is_done(&map, 8));
        assert_eq!(bytes_done(&map, size), seg + 5);
        assert!(empty_bitmap(0).is_empty());
    }

    #[test]
    fn placing_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"old").unwrap();
        let part = dir.path().join("x.part");
        std::fs::write(&part, b"new").unwrap();
        let saved = place(&part, dir.path(), "a.txt").unwrap();
        assert_eq!(saved, dir.path().join("a (2).txt"));
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"old");
        assert_eq!(std::fs::read(saved).unwrap(), b"new");
        assert!(!part.exists());
    }
}
