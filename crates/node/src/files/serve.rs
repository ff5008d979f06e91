//! Serving `/communitas/file/1`: the sender re-reads and re-encodes what is asked.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use communitas_net::libp2p::{PeerId, StreamProtocol};
use communitas_proto::file::verify_put;
use communitas_proto::file::wire::{DATA_MASK, PROTOCOL, Refusal, Request, Response};
use communitas_proto::file::{EncodedStripe, Manifest, SHARDS, encode_stripe, segment_range};
use communitas_store::{Direction, FileStatus, ShardLimits, ShardPut, StoredShard};
use communitas_types::{FileId, Timestamp};
use futures::StreamExt as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::frame;
use crate::Inner;

/// Streams served at once, for all peers together; more are closed at once (the
/// fetcher retries).
const MAX_STREAMS: usize = 64;
/// Streams one peer may hold at once: its share of [`MAX_STREAMS`], so one peer
/// cannot take them all (a fetcher opens `parallel_streams`, 4 by default).
const MAX_STREAMS_PER_PEER: usize = 8;
/// A stream's first request must have arrived, whole, this soon after it opened.
const FIRST_FRAME: Duration = Duration::from_secs(5);
/// A later request must have arrived, whole, this soon after the previous answer.
const IDLE: Duration = Duration::from_secs(30);
/// Manifests kept in memory for serving.
const CACHE: usize = 64;
/// Server role: shard bytes kept per sending peer, and in all.
pub(crate) const SHARD_LIMITS: ShardLimits = ShardLimits { per_sender: 4 << 30, total: 32 << 30 };
/// Server role: how often expired shards are dropped.
const EXPIRE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The protocol as libp2p names it.
pub(crate) const FILE_PROTOCOL: StreamProtocol = StreamProtocol::new(PROTOCOL);

/// What a sender serves from: the manifest and the original file.
struct Source {
    manifest: Manifest,
    path: std::path::PathBuf,
    message_id: communitas_types::MessageId,
    peer: communitas_types::Address,
    /// Stripes whose data shards were served (a refetch counts again).
    served: AtomicU64,
}

/// Manifests (and paths) of offered files, by id.
#[derive(Default)]
pub(crate) struct Sources {
    map: Mutex<HashMap<FileId, Arc<Source>>>,
}

impl Sources {
    async fn get(&self, inner: &Inner, file_id: FileId) -> Result<Arc<Source>, Refusal> {
        if let Some(found) = self.map.lock().ok().and_then(|m| m.get(&file_id).cloned()) {
            return Ok(found);
        }
        let row = inner.store.file(file_id).await.map_err(|_| Refusal::Busy)?;
        let row = row
            .filter(|r| r.direction == Direction::Out && r.status != FileStatus::Failed)
            .ok_or(Refusal::NotFound)?;
        let path = row.path.ok_or(Refusal::NotFound)?;
        let message = inner.store.message(row.message_id).await.map_err(|_| Refusal::Busy)?;
        let manifest =
            message.and_then(|m| super::manifest_of(&m.message.body)).ok_or(Refusal::NotFound)?;
        let source = Arc::new(Source {
            manifest,
            path,
            message_id: row.message_id,
            peer: row.peer,
            served: AtomicU64::new(0),
        });
        let Ok(mut map) = self.map.lock() else { return Ok(source) };
        if map.len() >= CACHE {
            map.clear();
        }
        // Requests that missed the cache together load the same source; the first one
        // kept is the one all use, so its count of served stripes is the file's.
        Ok(map.entry(file_id).or_insert(source).clone())
    }
}

impl Sources {
    /// Drops a cached source (its file changed).
    fn forget(&self, file_id: FileId) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&file_id);
        }
    }
}

/// Accepts `/communitas/file/1` streams until `shutdown`.
pub(crate) async fn serve(inner: Arc<Inner>, shutdown: CancellationToken) {
    let mut control = inner.net.streams();
    let mut incoming = match control.accept(FILE_PROTOCOL) {
        Ok(incoming) => incoming,
        Err(e) => {
            tracing::error!(error = %e, "cannot accept file streams");
            return;
        }
    };
    let slots = Arc::new(Slots::new(MAX_STREAMS, MAX_STREAMS_PER_PEER));
    let mut tasks = JoinSet::new();
    let mut expire = tokio::time::interval(EXPIRE_EVERY);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = expire.tick(), if inner.server => {
                if let Err(e) = inner.store.expire_shards(Timestamp::now()).await {
                    tracing::warn!(error = %e, "cannot expire file shards");
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            next = incoming.next() => {
                let Some((peer, stream)) = next else { break };
                let permit = match slots.take(peer) {
                    Ok(permit) => permit,
                    Err(full) => {
                        tracing::debug!(%peer, ?full, "too many file streams: closing one");
                        inner.metrics.refuse(full.reason());
                        continue;
                    }
                };
                let inner = inner.clone();
                tasks.spawn(async move {
                    serve_stream(&inner, peer, stream).await;
                    drop(permit);
                });
            }
        }
    }
    tasks.shutdown().await;
}

/// Why a stream was not given a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    /// All [`MAX_STREAMS`] slots are taken.
    All,
    /// This peer holds its [`MAX_STREAMS_PER_PEER`] already.
    Peer,
}

impl Full {
    /// The `what` label of `communitas_refused_total`.
    fn reason(self) -> &'static str {
        match self {
            Full::All => "file_streams_full",
            Full::Peer => "file_streams_per_peer",
        }
    }
}

/// Stream slots: a global cap and a share per peer.
struct Slots {
    total: usize,
    per_peer: usize,
    /// Slots held in all, and by each peer holding any.
    held: Mutex<(usize, HashMap<PeerId, usize>)>,
}

/// One slot, given back when dropped.
struct Slot {
    slots: Arc<Slots>,
    peer: PeerId,
}

impl Slots {
    fn new(total: usize, per_peer: usize) -> Self {
        Self { total, per_peer, held: Mutex::new((0, HashMap::new())) }
    }

    fn take(self: &Arc<Self>, peer: PeerId) -> Result<Slot, Full> {
        let mut held = self.held.lock().map_err(|_| Full::All)?;
        let (all, by_peer) = &mut *held;
        let mine = by_peer.get(&peer).copied().unwrap_or(0);
        if mine >= self.per_peer {
            return Err(Full::Peer);
        }
        if *all >= self.total {
            return Err(Full::All);
        }
        *all += 1;
        by_peer.insert(peer, mine + 1);
        Ok(Slot { slots: self.clone(), peer })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Ok(mut held) = self.slots.held.lock() else { return };
        let (all, by_peer) = &mut *held;
        *all = all.saturating_sub(1);
        if let Some(mine) = by_peer.get_mut(&self.peer) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                by_peer.remove(&self.peer);
            }
        }
    }
}

/// How reading a request ended, when it gave none.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The other side closed the stream cleanly.
    Closed,
    /// No (whole) request in time: `first` for a stream's first one.
    Timeout { first: bool },
    /// The stream broke or the frame was malformed.
    Broken(std::io::ErrorKind),
}

impl Ended {
    /// The `what` label of `communitas_refused_total`, for a stream we ended.
    fn reason(&self) -> Option<&'static str> {
        match self {
            Ended::Timeout { first: true } => Some("file_stream_first_frame_timeout"),
            Ended::Timeout { first: false } => Some("file_stream_idle"),
            // Over the frame limit; a frame cut short or a reset may be the network's.
            Ended::Broken(std::io::ErrorKind::InvalidData) => Some("file_bad_frame"),
            Ended::Closed | Ended::Broken(_) => None,
        }
    }
}

/// Reads the next request of a stream within its deadline ([`FIRST_FRAME`] for the
/// first, [`IDLE`] for later ones).
async fn next_request<S: futures::AsyncRead + Unpin>(
    stream: &mut S,
    first: bool,
) -> Result<Vec<u8>, Ended> {
    let deadline = if first { FIRST_FRAME } else { IDLE };
    match tokio::time::timeout(deadline, frame::read(stream)).await {
        Err(_) => Err(Ended::Timeout { first }),
        Ok(Ok(Some(body))) => Ok(body),
        Ok(Ok(None)) => Err(Ended::Closed),
        Ok(Err(e)) => Err(Ended::Broken(e.kind())),
    }
}

async fn serve_stream(inner: &Inner, peer: PeerId, mut stream: communitas_net::libp2p::Stream) {
    let mut first = true;
    loop {
        let body = match next_request(&mut stream, first).await {
            Ok(body) => body,
            Err(ended) => {
                if let Some(reason) = ended.reason() {
                    inner.metrics.refuse(reason);
                }
                tracing::debug!(%peer, ?ended, "file stream ended");
                return;
            }
        };
        first = false;
        let response = match Request::from_bytes(&body) {
            Ok(request) => answer(inner, peer, request).await,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "malformed file request");
                inner.metrics.refuse("file_bad_request");
                Response::Refused(Refusal::Invalid)
            }
        };
        if frame::write(&mut stream, &response.to_bytes()).await.is_err() {
            return;
        }
    }
}

async fn answer(inner: &Inner, peer: PeerId, request: Request) -> Response {
    let result = match request {
        Request::Get { file_id, stripe, mask } => match get(inner, file_id, stripe, mask).await {
            // Not a file of ours: perhaps shards we keep for somebody.
            Err(Refusal::NotFound) => stored_get(inner, file_id, stripe, mask).await,
            other => other,
        },
        Request::Put { file_id, stripe, index, hashes, upload, signature, shard } => {
            // Only the file's sender may put its shards (decision 0043).
            match verify_put(file_id, stripe, &hashes, &upload, &signature) {
                _ if !inner.server => Err(Refusal::NotFound),
                Ok(()) => put(inner, peer, file_id, stripe, index, hashes, shard).await,
                Err(_) => {
                    inner.metrics.refuse("shard_put_unauthorized");
                    Err(Refusal::Invalid)
                }
            }
        }
        Request::Have { file_id } => inner
            .store
            .shards_held(file_id, Timestamp::now())
            .await
            .map(Response::Holding)
            .map_err(|_| Refusal::Busy),
        // Only the shards this very peer put: nobody can drop another's.
        Request::Drop { file_id } if inner.server => inner
            .store
            .drop_shards(file_id, peer.to_string())
            .await
            .map(|n| Response::Dropped(u32::try_from(n).unwrap_or(u32::MAX)))
            .map_err(|_| Refusal::Busy),
        _ => Err(Refusal::Invalid),
    };
    result.unwrap_or_else(Response::Refused)
}

/// Server role: keeps a shard for an offline recipient, if it is what it claims.
async fn put(
    inner: &Inner,
    peer: PeerId,
    file_id: FileId,
    stripe: u32,
    index: u8,
    hashes: Vec<[u8; 32]>,
    shard: Vec<u8>,
) -> Result<Response, Refusal> {
    if !inner.server {
        return Err(Refusal::NotFound);
    }
    let claimed = hashes.get(usize::from(index)).ok_or(Refusal::Invalid)?;
    if blake3::hash(&shard) != *claimed {
        return Err(Refusal::Invalid);
    }
    let stored = StoredShard {
        file_id,
        stripe,
        index,
        hashes: hashes.concat(),
        shard,
        sender: peer.to_string(),
        expires_at: Timestamp::now().saturating_add(crate::MESSAGE_TTL),
    };
    match inner.store.put_shard(stored, SHARD_LIMITS).await {
        Ok(ShardPut::Stored) => Ok(Response::Stored),
        Ok(_) => {
            inner.metrics.mailbox_full.inc();
            Err(Refusal::QuotaExceeded)
        }
        Err(_) => Err(Refusal::Busy),
    }
}

/// Server role: shards kept for somebody, with their stripe's hashes.
async fn stored_get(
    inner: &Inner,
    file_id: FileId,
    stripe: u32,
    mask: u16,
) -> Result<Response, Refusal> {
    let (hashes, shards) = inner
        .store
        .shards(file_id, stripe, mask, Timestamp::now())
        .await
        .map_err(|_| Refusal::Busy)?
        .ok_or(Refusal::NotFound)?;
    let hashes: Vec<[u8; 32]> =
        hashes.chunks_exact(32).filter_map(|c| <[u8; 32]>::try_from(c).ok()).collect();
    if hashes.len() != usize::from(SHARDS) {
        return Err(Refusal::NotFound);
    }
    let served: u64 = shards.iter().map(|(_, s)| s.len() as u64).sum();
    inner.metrics.file_bytes_served.inc_by(served);
    Ok(Response::Shards { hashes, shards })
}

async fn get(inner: &Inner, file_id: FileId, stripe: u32, mask: u16) -> Result<Response, Refusal> {
    let source = inner.serving.get(inner, file_id).await?;
    let index = u64::from(stripe);
    let size = source.manifest.size;
    let (offset, len) = segment_range(size, index).map_err(|_| Refusal::Invalid)?;
    let expected = *source.manifest.digests.get(stripe as usize).ok_or(Refusal::Invalid)?;
    let work = source.clone();
    let encoded = inner
        .cpu
        .run(move || {
            let file = File::open(&work.path).map_err(|_| Refusal::SourceChanged)?;
            let mut plain = vec![0u8; len];
            file.read_exact_at(&mut plain, offset).map_err(|_| Refusal::SourceChanged)?;
            let m = &work.manifest;
            encode_stripe(&m.key, m.file_id, m.size, index, &plain).map_err(|_| Refusal::Invalid)
        })
        .await
        .ok_or(Refusal::Busy)??;
    if encoded.digest() != expected {
        inner.serving.forget(file_id);
        // Never serve what the manifest does not describe.
        tracing::warn!(file = %file_id.fmt_short(), stripe, "the file changed since it was sent");
        return Err(Refusal::SourceChanged);
    }
    let EncodedStripe { shards, hashes } = encoded;
    let shards: Vec<(u8, Vec<u8>)> = shards
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i < usize::from(SHARDS) && mask & (1 << i) != 0)
        .map(|(i, s)| (i as u8, s))
        .collect();
    let served: u64 = shards.iter().map(|(_, s)| s.len() as u64).sum();
    inner.metrics.file_bytes_served.inc_by(served);
    if mask & DATA_MASK == DATA_MASK {
        // How far the recipient got, as far as the sender can tell.
        let stripes = source.served.fetch_add(1, Ordering::Relaxed) + 1;
        inner.emit(crate::Event::FileProgress {
            file_id,
            message_id: source.message_id,
            peer: source.peer,
            direction: communitas_store::Direction::Out,
            bytes: (stripes * u64::from(communitas_proto::file::SEGMENT_LEN)).min(size),
            size,
            status: communitas_store::FileStatus::Offered,
        });
    }
    Ok(Response::Shards { hashes, shards })
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    fn peer() -> PeerId {
        PeerId::random()
    }

    #[test]
    fn one_peer_gets_its_share_and_the_others_still_get_slots() {
        let slots = Arc::new(Slots::new(4, 2));
        let (hostile, bob, carol) = (peer(), peer(), peer());
        let a = slots.take(hostile).unwrap();
        let _b = slots.take(hostile).unwrap();
        assert_eq!(slots.take(hostile).err(), Some(Full::Peer));
        let _c = slots.take(bob).unwrap();
        let _d = slots.take(carol).unwrap();
        // All four are taken: a new peer is refused for the global cap.
        assert_eq!(slots.take(peer()).err(), Some(Full::All));
        // A slot given back is free again, for anyone.
        drop(a);
        let _e = slots.take(bob).unwrap();
        assert_eq!(slots.take(bob).err(), Some(Full::Peer));
        assert_eq!(slots.held.lock().unwrap().1.get(&hostile), Some(&1));
    }

    #[test]
    fn slots_given_back_leave_no_entry() {
        let slots = Arc::new(Slots::new(64, 8));
        let p = peer();
        let held: Vec<Slot> = (0..8).map(|_| slots.take(p).unwrap()).collect();
        drop(held);
        let state = slots.held.lock().unwrap();
        assert_eq!(state.0, 0);
        assert!(state.1.is_empty());
    }

    /// A stream whose peer sends nothing and never closes.
    struct Silent;

    impl futures::AsyncRead for Silent {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_is_ended_at_its_deadline() {
        let start = tokio::time::Instant::now();
        assert_eq!(next_request(&mut Silent, true).await, Err(Ended::Timeout { first: true }));
        assert_eq!(start.elapsed(), FIRST_FRAME);
        let start = tokio::time::Instant::now();
        assert_eq!(next_request(&mut Silent, false).await, Err(Ended::Timeout { first: false }));
        assert_eq!(start.elapsed(), IDLE);
        assert_eq!(
            Ended::Timeout { first: true }.reason(),
            Some("file_stream_first_frame_timeout")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_that_arrives_in_time_is_read() {
        let mut bytes = Vec::new();
        frame::write(&mut futures::io::Cursor::new(&mut bytes), b"hi").await.unwrap();
        let mut stream = futures::io::Cursor::new(bytes);
        assert_eq!(next_request(&mut stream, true).await, Ok(b"hi".to_vec()));
        assert_eq!(next_request(&mut stream, false).await, Err(Ended::Closed));
    }
}
