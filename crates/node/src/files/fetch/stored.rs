//! The stored path, recipient's side: rebuild each stripe from whichever server
//! nodes still hold enough of its shards.

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use communitas_net::libp2p::PeerId;
use communitas_proto::file::wire::{DATA_MASK, Request, Response, ShardMask};
use communitas_proto::file::{DATA_SHARDS, Manifest, SHARDS, decode_stripe, stripe_digest};
use communitas_store::FileRow;
use futures::StreamExt as _;
use tokio::sync::Mutex;

use super::{
    CHECKPOINT_EVERY, Channel, REQUEST_TIMEOUT, Stop, Written, exchange, mark_done, save,
    write_stripe,
};
use crate::Inner;
use crate::files::serve::FILE_PROTOCOL;

/// Stripes rebuilt at once.
const PARALLEL_STRIPES: usize = 4;
/// Every shard index of a stripe.
const ALL_MASK: ShardMask = (1 << SHARDS) - 1;

/// A server node that keeps some of the file's shards.
struct Holder {
    peer: PeerId,
    stream: Mutex<Channel>,
    /// Stripe → the shards of it held there.
    held: HashMap<u32, ShardMask>,
}

impl Holder {
    async fn get(&self, request: &Request) -> Result<Response, String> {
        exchange(&mut *self.stream.lock().await, request).await
    }
}

/// Asks `peer` which shards of the file it keeps; `None` if it keeps none or is gone.
async fn ask(inner: &Inner, peer: PeerId, file_id: communitas_types::FileId) -> Option<Holder> {
    let mut control = inner.net.streams();
    let stream = tokio::time::timeout(REQUEST_TIMEOUT, control.open_stream(peer, FILE_PROTOCOL))
        .await
        .ok()?
        .ok()?;
    let mut stream = Channel::new(stream);
    match exchange(&mut stream, &Request::Have { file_id }).await {
        Ok(Response::Holding(list)) if !list.is_empty() => {
            Some(Holder { peer, stream: Mutex::new(stream), held: list.into_iter().collect() })
        }
        _ => None,
    }
}

pub(super) async fn pull(
    inner: &Arc<Inner>,
    manifest: &Arc<Manifest>,
    file: &Arc<File>,
    todo: Vec<u64>,
    row: &mut FileRow,
) -> Result<(), Stop> {
    let file_id = manifest.file_id;
    let peers = inner
        .net
        .closest_peers(file_id.as_bytes().to_vec())
        .await
        .map_err(|e| Stop::Wait(e.to_string()))?;
    let holders: Vec<Holder> =
        futures::future::join_all(peers.iter().map(|p| ask(inner, *p, file_id)))
            .await
            .into_iter()
            .flatten()
            .collect();
    if holders.is_empty() {
        return Err(Stop::Wait("no server node holds the file".into()));
    }
    tracing::info!(file = %file_id.fmt_short(), holders = holders.len(), "fetching from server nodes");
    let holders = Arc::new(holders);
    let mut jobs = futures::stream::iter(todo)
        .map(|stripe| rebuild(inner, manifest, &holders, file, stripe))
        .buffer_unordered(PARALLEL_STRIPES);
    let mut last_save = Instant::now();
    let mut failed = None;
    while let Some(result) = jobs.next().await {
        match result {
            Ok(Written { stripe, fetched }) => {
                mark_done(&mut row.done, stripe);
                row.fetched += fetched;
                if last_save.elapsed() >= CHECKPOINT_EVERY {
                    save(inner, file, row).await?;
                    last_save = Instant::now();
                }
            }
            Err(stop) => failed = Some(stop),
        }
    }
    save(inner, file, row).await?;
    match failed {
        Some(stop) => Err(stop),
        None => Ok(()),
    }
}

/// Collects good shards of one stripe — data shards first, parity only as needed —
/// rebuilds it and writes it.
async fn rebuild(
    inner: &Arc<Inner>,
    m: &Arc<Manifest>,
    holders: &Arc<Vec<Holder>>,
    file: &Arc<File>,
    stripe: u64,
) -> Result<Written, Stop> {
    let index = u32::try_from(stripe).map_err(|_| Stop::Fail("stripe out of range".into()))?;
    let digest =
        *m.digests.get(stripe as usize).ok_or_else(|| Stop::Fail("stripe out of range".into()))?;
    let mut slots: Vec<Option<Vec<u8>>> = vec![None; usize::from(SHARDS)];
    let mut hashes: Option<Vec<[u8; 32]>> = None;
    let mut fetched = 0u64;
    let need = usize::from(DATA_SHARDS);
    for phase in [DATA_MASK, ALL_MASK & !DATA_MASK] {
        for holder in holders.iter() {
            let have: ShardMask = slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.is_some())
                .fold(0, |m, (i, _)| m | (1 << i));
            let count = have.count_ones() as usize;
            if count >= need {
                break;
            }
            let Some(&held) = holder.held.get(&index) else { continue };
            let mut want = held & phase & !have;
            if phase != DATA_MASK {
                want = lowest_bits(want, need - count);
            }
            if want == 0 {
                continue;
            }
            let request = Request::Get { file_id: m.file_id, stripe: index, mask: want };
            let Ok(Response::Shards { hashes: got_hashes, shards }) = holder.get(&request).await
            else {
                tracing::debug!(peer = %holder.peer, stripe, "holder did not serve");
                continue;
            };
            // A holder whose hashes do not match the manifest is ignored altogether.
            if stripe_digest(&got_hashes) != digest {
                continue;
            }
            for (i, shard) in shards {
                fetched += shard.len() as u64;
                let i = usize::from(i);
                if want & (1 << i) == 0 {
                    continue;
                }
                if blake3::hash(&shard) == got_hashes[i] {
                    slots[i] = Some(shard);
                } else {
                    inner.metrics.file_shards_corrupt.inc();
                }
            }
            hashes = Some(got_hashes);
        }
    }
    let Some(hashes) = hashes else {
        return Err(Stop::Wait(format!("no server node serves stripe {stripe}")));
    };
    let (key, file_id, size) = (m.key, m.file_id, m.size);
    let plain = inner
        .cpu
        .run(move || decode_stripe(&key, file_id, size, stripe, &hashes, &mut slots))
        .await
        .ok_or_else(|| Stop::Wait("shutting down".into()))?
        .map_err(|e| Stop::Wait(format!("stripe {stripe}: {e}")))?;
    write_stripe(inner, file, stripe, plain).await?;
    inner.metrics.file_bytes_fetched.inc_by(fetched);
    Ok(Written { stripe, fetched })
}

/// The `n` lowest set bits of `mask`.
fn lowest_bits(mask: ShardMask, n: usize) -> ShardMask {
    let mut out = 0;
    let mut left = n;
    for i in 0..SHARDS {
        if left == 0 {
            break;
        }
        if mask & (1 << i) != 0 {
            out |= 1 << i;
            left -= 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn lowest_bits_takes_the_first_n() {
        assert_eq!(super::lowest_bits(0b10_1100_0000_0000, 2), 0b00_1100_0000_0000);
        assert_eq!(super::lowest_bits(0b1, 3), 0b1);
        assert_eq!(super::lowest_bits(0b110, 0), 0);
    }
}
