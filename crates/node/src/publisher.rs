//! Publishes this identity's record in the DHT: at start, when our addresses or our
//! display name change, and every few hours so it never expires; retried while nobody can take it. With
//! sessions on (`Config::sessions`), the record carries this device's prekey bundle,
//! rotated when a week old (checked at each publish, so within [`REPUBLISH`]).

use std::sync::Arc;
use std::time::Duration;

use communitas_crypto::record::{MAX_ADDR_LEN, MAX_ADDRS};
use communitas_crypto::{Device, IdentityRecord, RecordSet};
use communitas_net::libp2p::Multiaddr;
use communitas_net::libp2p::multiaddr::Protocol;
use communitas_types::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{Inner, rng};

const REPUBLISH: Duration = Duration::from_secs(6 * 3600);
/// First retry after a failed publish (no peer yet); doubles up to `RETRY_MAX`.
const RETRY: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Address changes come in bursts at start (one per interface and transport).
const SETTLE: Duration = Duration::from_millis(300);

pub(crate) async fn run(
    inner: Arc<Inner>,
    mut changed: mpsc::Receiver<()>,
    mut rng: rng::Os,
    shutdown: CancellationToken,
) {
    let mut wait = SETTLE;
    let mut retry = RETRY;
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(()) = changed.recv() => {
                wait = SETTLE;
                retry = RETRY;
                continue;
            }
            () = tokio::time::sleep(wait) => {}
        }
        wait = match publish(&inner, &mut rng).await {
            Ok(()) => {
                tracing::debug!("identity record published");
                retry = RETRY;
                REPUBLISH
            }
            Err(e) => {
                tracing::debug!(error = %e, "identity record not published yet; retrying");
                retry = (retry * 2).min(RETRY_MAX);
                retry / 2
            }
        };
    }
}

async fn publish(inner: &Inner, rng: &mut rng::Os) -> Result<(), String> {
    let status = inner.net.status().await.map_err(|e| e.to_string())?;
    let addrs: Vec<Multiaddr> = if inner.announce.is_empty() {
        let mut addrs = status.external_addrs;
        addrs.extend(status.listen_addrs.into_iter().filter(is_dialable));
        // Loopback only reaches this machine: published only by a loopback-only node
        // (a test network), never next to real addresses.
        if addrs.iter().any(|a| !is_loopback(a)) {
            addrs.retain(|a| !is_loopback(a));
        }
        addrs.dedup();
        addrs
    } else {
        // Announced: those and nothing else (`run --announce`).
        inner.announce.clone()
    };
    let addrs: Vec<Vec<u8>> = addrs
        .into_iter()
        .map(|a| a.to_vec())
        .filter(|a| a.len() <= MAX_ADDR_LEN)
        .take(MAX_ADDRS)
        .collect();
    if addrs.is_empty() {
        return Err("no address to publish yet".into());
    }
    let now = Timestamp::now();
    let prekeys = if inner.sessions.enabled() {
        // A record without a bundle still lets contacts reach us (version 1): better
        // than not publishing at all while the store fails.
        inner.prekeys.current_bundle(inner, now, rng).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "identity record published without prekeys");
            None
        })
    } else {
        None
    };
    // Wall-clock milliseconds: increases across restarts without stored state.
    let seq = now.as_millis();
    let record = IdentityRecord::sign(
        &inner.secrets.identity,
        seq,
        inner.public.created_at,
        inner.name.borrow().clone(),
        vec![Device { peer_id: status.peer_id, addrs, prekeys }],
    )
    .map_err(|e| e.to_string())?;
    if prekeys_published(&record) {
        inner.sessions.set_own_record(record.to_bytes());
    }
    let set = RecordSet { records: vec![record] };
    inner.net.publish(inner.public.address, set.to_bytes()).await.map_err(|e| e.to_string())
}

/// Whether a record offers sessions (a bundle): only then is it our intro.
fn prekeys_published(record: &IdentityRecord) -> bool {
    record.devices.iter().any(|d| d.prekeys.is_some())
}

fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

/// Listen addresses others could dial: not unspecified (0.0.0.0, ::).
fn is_dialable(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}
