//! The stored path, sender's side: when the recipient is away, every shard of every
//! stripe goes to a server node, so that the recipient can rebuild the file from any
//! 10 of each stripe's [`SHARDS`] even after the sender left and some
//! holders died.
//!
//! Holders are the server nodes closest to the file id in the DHT (the recipient
//! finds the same ones). Shard `i` of stripe `s` goes to holder `(i + s) mod H`, so
//! with `H ≥ 14` every holder keeps at most one shard per stripe and any four may be
//! lost; with fewer holders, each keeps `⌈14 / H⌉` and fewer losses are survivable.
//! A stripe's shards go to their holders at once, each holder over its own stream.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::time::Duration;

use communitas_net::libp2p::PeerId;
use communitas_proto::file::upload::{PutSignature, UploadPublic};
use communitas_proto::file::wire::{Refusal, Request, Response};
use communitas_proto::file::{
    EncodedStripe, Manifest, SHARDS, UploadKey, encode_stripe, segment_range, stripe_count,
};
use communitas_store::{FileRow, FileStatus};
use communitas_types::{FileId, Timestamp};

use super::fetch::{Channel, Outcome, exchange, is_done, mark_done};
use super::serve::FILE_PROTOCOL;
use crate::Inner;

/// How long one put may take.
const PUT_TIMEOUT: Duration = Duration::from_secs(30);
/// Stripes between two progress records.
const CHECKPOINT_STRIPES: u64 = 16;

/// Uploads the shards of `file_id` (a file we sent) to server nodes.
pub(crate) async fn run(inner: Arc<Inner>, file_id: FileId) -> Outcome {
    match upload(&inner, file_id).await {
        Ok(()) => Outcome::Settled,
        Err(Some(reason)) => {
            tracing::debug!(file = %file_id.fmt_short(), %reason, "upload waits");
            if let Ok(Some(mut row)) = inner.store.file(file_id).await {
                row.error = Some(reason);
                row.updated_at = Timestamp::now();
                let _ = inner.store.put_file(row).await;
            }
            Outcome::Retry
        }
        Err(None) => Outcome::Settled,
    }
}

/// `Err(None)`: nothing to do; `Err(Some(why))`: try again later.
async fn upload(inner: &Arc<Inner>, file_id: FileId) -> Result<(), Option<String>> {
    let store_err = |e: communitas_store::Error| Some(format!("storage: {e}"));
    let mut row = inner.store.file(file_id).await.map_err(store_err)?.ok_or(None)?;
    if !matches!(row.status, FileStatus::Offered | FileStatus::Uploading) {
        return Err(None);
    }
    let path = row.path.clone().ok_or(None)?;
    let message = inner.store.message(row.message_id).await.map_err(store_err)?;
    let manifest = message.and_then(|m| super::manifest_of(&m.message.body)).ok_or(None)?;
    let holders = inner
        .net
        .closest_peers(file_id.as_bytes().to_vec())
        .await
        .map_err(|e| Some(e.to_string()))?;
    if holders.is_empty() {
        return Err(Some("no server node to keep the file".into()));
    }
    let count = stripe_count(manifest.size);
    if row.done.len() != super::fetch::empty_bitmap(manifest.size).len() {
        row.done = super::fetch::empty_bitmap(manifest.size);
    }
    row.status = FileStatus::Uploading;
    row.error = None;
    inner.store.put_file(row.clone()).await.map_err(store_err)?;

    let file = Arc::new(File::open(&path).map_err(|e| Some(format!("cannot read the file: {e}")))?);
    let mut streams: HashMap<PeerId, Channel> = HashMap::new();
    let manifest = Arc::new(manifest);
    let todo: Vec<u64> = (0..count).filter(|s| !is_done(&row.done, *s)).collect();
    for stripe in todo {
        if fetched(inner, file_id).await {
            // The recipient has it already: the release job takes over.
            return Err(None);
        }
        let encoded = encode(inner, &file, &manifest, stripe).await?;
        place_stripe(inner, &mut streams, &holders, &manifest, stripe, &encoded).await?;
        mark_done(&mut row.done, stripe);
        if stripe % CHECKPOINT_STRIPES == CHECKPOINT_STRIPES - 1 {
            row.updated_at = Timestamp::now();
            inner.store.put_file(row.clone()).await.map_err(store_err)?;
            super::emit_progress(inner, &row);
        }
    }
    if fetched(inner, file_id).await {
        inner.store.put_file(row).await.map_err(store_err)?;
        return Err(None);
    }
    row.status = FileStatus::Stored;
    row.updated_at = Timestamp::now();
    inner.store.put_file(row.clone()).await.map_err(store_err)?;
    super::emit_progress(inner, &row);
    tracing::info!(file = %file_id.fmt_short(), holders = holders.len().min(usize::from(SHARDS)), "file stored on server nodes");
    Ok(())
}

/// Reads and encodes one stripe, refusing a file that changed since it was sent.
async fn encode(
    inner: &Inner,
    file: &Arc<File>,
    m: &Arc<Manifest>,
    stripe: u64,
) -> Result<EncodedStripe, Option<String>> {
    let (file, m2) = (file.clone(), m.clone());
    let encoded = inner
        .cpu
        .run(move || {
            let (offset, len) = segment_range(m2.size, stripe).map_err(|e| e.to_string())?;
            let mut plain = vec![0u8; len];
            file.read_exact_at(&mut plain, offset).map_err(|e| e.to_string())?;
            encode_stripe(&m2.key, m2.file_id, m2.size, stripe, &plain).map_err(|e| e.to_string())
        })
        .await
        .ok_or_else(|| Some("shutting down".to_owned()))?
        .map_err(Some)?;
    if m.digests.get(stripe as usize) != Some(&encoded.digest()) {
        return Err(Some("the file changed since it was sent".into()));
    }
    Ok(encoded)
}

/// Puts the shards of a stripe on their holders, all holders at once (one round trip
/// per stripe instead of one per shard: what matters on a WAN). A shard its holder
/// does not take goes to the next holders, one after another.
async fn place_stripe(
    inner: &Inner,
    streams: &mut HashMap<PeerId, Channel>,
    holders: &[PeerId],
    m: &Manifest,
    stripe: u64,
    encoded: &EncodedStripe,
) -> Result<(), Option<String>> {
    let signed = sign(m, stripe, encoded)?;
    let used = holders.len().min(usize::from(SHARDS));
    let mut groups: HashMap<PeerId, Vec<u8>> = HashMap::new();
    for index in 0..SHARDS {
        let first = (usize::from(index) + stripe as usize) % used;
        groups.entry(holders[first]).or_default().push(index);
    }
    let puts = groups.into_iter().map(|(peer, indices)| {
        let mut channel = streams.remove(&peer);
        async move {
            let mut refused = Vec::new();
            for index in indices {
                let request = put_request(m, stripe, index, encoded, signed);
                if put(inner, &mut channel, peer, &request).await.is_err() {
                    channel = None;
                    refused.push(index);
                }
            }
            Ok::<_, Option<String>>((peer, channel, refused))
        }
    });
    let mut retry = Vec::new();
    for placed in futures::future::join_all(puts).await {
        let (peer, channel, refused) = placed?;
        if let Some(channel) = channel {
            streams.insert(peer, channel);
        }
        retry.extend(refused);
    }
    for index in retry {
        let placing = Placing { m, stripe, encoded, signed };
        place(inner, streams, holders, &placing, index).await?;
    }
    Ok(())
}

/// The stripe's put authorization (decision 0043): the file's upload key and its
/// signature over the stripe, the same for each of its shards.
fn sign(
    m: &Manifest,
    stripe: u64,
    encoded: &EncodedStripe,
) -> Result<(UploadPublic, PutSignature), Option<String>> {
    let key = UploadKey::from_file_key(&m.key);
    if key.file_id() != m.file_id {
        // Sent by a version before upload keys: no holder takes its shards.
        return Err(Some("this file was sent before upload keys; send it again".into()));
    }
    let stripe = u32::try_from(stripe).map_err(|_| Some("stripe out of range".to_owned()))?;
    Ok((key.public(), key.sign_stripe(m.file_id, stripe, &encoded.hashes)))
}

fn put_request(
    m: &Manifest,
    stripe: u64,
    index: u8,
    encoded: &EncodedStripe,
    (upload, signature): (UploadPublic, PutSignature),
) -> Request {
    Request::Put {
        file_id: m.file_id,
        // `sign` checked that the stripe fits.
        stripe: u32::try_from(stripe).unwrap_or(u32::MAX),
        index,
        hashes: encoded.hashes.clone(),
        upload,
        signature,
        shard: encoded.shards[usize::from(index)].clone(),
    }
}

/// A stripe being placed: what each of its puts is made of.
struct Placing<'a> {
    m: &'a Manifest,
    stripe: u64,
    encoded: &'a EncodedStripe,
    signed: (UploadPublic, PutSignature),
}

/// Puts shard `index` of a stripe on its holder, or on the next ones if it refuses.
async fn place(
    inner: &Inner,
    streams: &mut HashMap<PeerId, Channel>,
    holders: &[PeerId],
    placing: &Placing<'_>,
    index: u8,
) -> Result<(), Option<String>> {
    let Placing { m, stripe, encoded, signed } = *placing;
    let used = holders.len().min(usize::from(SHARDS));
    let first = (usize::from(index) + stripe as usize) % used;
    let request = put_request(m, stripe, index, encoded, signed);
    let mut last = String::new();
    // The preferred holder, then the others in order of closeness.
    let order = std::iter::once(first).chain((0..holders.len()).filter(move |i| *i != first));
    for i in order {
        let peer = holders[i];
        let mut channel = streams.remove(&peer);
        match put(inner, &mut channel, peer, &request).await {
            Ok(()) => {
                if let Some(channel) = channel {
                    streams.insert(peer, channel);
                }
                return Ok(());
            }
            Err(e) => last = e,
        }
    }
    Err(Some(format!("no server node kept shard {index} of stripe {stripe}: {last}")))
}

/// One put on `peer`, over `channel` (opened first if there is none).
async fn put(
    inner: &Inner,
    channel: &mut Option<Channel>,
    peer: PeerId,
    request: &Request,
) -> Result<(), String> {
    let open = match channel {
        Some(open) => open,
        None => {
            let mut control = inner.net.streams();
            let stream =
                tokio::time::timeout(PUT_TIMEOUT, control.open_stream(peer, FILE_PROTOCOL))
                    .await
                    .map_err(|_| "timed out".to_owned())?
                    .map_err(|e| e.to_string())?;
            channel.insert(Channel::new(stream))
        }
    };
    match exchange(open, request).await? {
        Response::Stored => Ok(()),
        Response::Refused(why) => Err(why.to_string()),
        _ => Err("unexpected answer".into()),
    }
}

/// Whether the recipient has the file already (its receipt came).
async fn fetched(inner: &Inner, file_id: FileId) -> bool {
    matches!(inner.store.file(file_id).await, Ok(Some(row)) if row.status == FileStatus::Fetched)
}

/// The recipient has the file: asks the server nodes closest to it to drop the
/// shards we put there. Settled once any answered (the others' copies expire), or
/// when there is nothing to release; retried while no server can be reached.
pub(crate) async fn release(inner: Arc<Inner>, file_id: FileId) -> Outcome {
    let Ok(Some(mut row)) = inner.store.file(file_id).await else { return Outcome::Settled };
    if row.status != FileStatus::Fetched || row.done.is_empty() {
        return Outcome::Settled;
    }
    let holders = match inner.net.closest_peers(file_id.as_bytes().to_vec()).await {
        Ok(holders) => holders,
        Err(e) => {
            tracing::debug!(file = %file_id.fmt_short(), error = %e, "release waits");
            return Outcome::Retry;
        }
    };
    let (mut answered, mut dropped) = (0usize, 0u64);
    for peer in holders {
        let mut control = inner.net.streams();
        let opened = tokio::time::timeout(PUT_TIMEOUT, control.open_stream(peer, FILE_PROTOCOL));
        let Ok(Ok(stream)) = opened.await else { continue };
        let mut channel = Channel::new(stream);
        match exchange(&mut channel, &Request::Drop { file_id }).await {
            Ok(Response::Dropped(n)) => {
                answered += 1;
                dropped += u64::from(n);
            }
            // Not a server, or a version without `Drop`: nothing to ask it again.
            Ok(Response::Refused(Refusal::NotFound | Refusal::Invalid)) => answered += 1,
            // Busy or unreachable: asked again later.
            _ => {}
        }
    }
    if answered == 0 {
        return Outcome::Retry;
    }
    tracing::info!(file = %file_id.fmt_short(), servers = answered, shards = dropped, "stored shards released");
    row.done = Vec::new();
    row.updated_at = Timestamp::now();
    match inner.store.put_file(row).await {
        Ok(()) => Outcome::Settled,
        Err(_) => Outcome::Retry,
    }
}

/// Whether a sent file's row says it still has to go to the servers.
pub(crate) fn wants_upload(row: &FileRow) -> bool {
    row.direction == communitas_store::Direction::Out
        && matches!(row.status, FileStatus::Offered | FileStatus::Uploading)
}
