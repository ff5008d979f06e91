//! A peer that floods a DHT node with costly record puts does not make the node's own
//! lookups fail (issue 16, item 3). Real TCP sockets on 127.0.0.1, three event loops:
//! `holder` (a DHT server holding the real identity records), `node` (a DHT server that
//! looks them up, the one under attack) and `flooder` (a client that puts record sets
//! of fresh identities under made-up addresses: each record has a valid signature, so
//! only an address derivation, ~0.27 s of Argon2, shows it is junk).
//!
//! Prints the lookup times without the flood and during it (docs/benchmarks.md,
//! "Hostile peers: record floods"); asserts only that every lookup succeeds and that
//! the flood reached the node and was turned away in part.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use communitas_crypto::record::MAX_RECORDS_PER_KEY;
use communitas_crypto::{Device, Identity, IdentityRecord, RecordSet, derive_address};
use communitas_net::libp2p::multiaddr::Protocol;
use communitas_net::libp2p::{Multiaddr, PeerId};
use communitas_net::{Client, Config, NetMetrics};
use communitas_types::{Address, Timestamp};
use tokio_util::sync::CancellationToken;

/// Lookups timed before the flood and during it.
const LOOKUPS: usize = 5;
/// Record-set puts the flooder sends at once (the first 30 pass the node's per-peer
/// rate, each with [`MAX_RECORDS_PER_KEY`] records: 120 derivations' worth).
const BURST: usize = 40;

struct Peer {
    client: Client,
    metrics: NetMetrics,
    addr: Multiaddr,
    _events: tokio::sync::mpsc::Receiver<communitas_net::Event>,
}

async fn start(server: bool, bootstrap: Vec<Multiaddr>, stop: &CancellationToken) -> Peer {
    let config = Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap,
        server,
        only_global_ips: false,
        dial_any_peer_addr: true,
        ..Config::default()
    };
    let key = communitas_net::libp2p::identity::Keypair::generate_ed25519();
    let peer_id = PeerId::from(key.public());
    let (client, events, event_loop) = communitas_net::new(key, config).unwrap();
    let metrics = event_loop.metrics();
    tokio::spawn(event_loop.run(stop.clone()));
    let addr = loop {
        let status = client.status().await.unwrap();
        if let Some(addr) = status.listen_addrs.into_iter().next() {
            break addr.with(Protocol::P2p(peer_id));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    Peer { client, metrics, addr, _events: events }
}

async fn connected(peer: &Peer, at_least: usize) {
    while peer.client.status().await.unwrap().connected_peers < at_least {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn signed(identity: &Identity) -> IdentityRecord {
    let device = Device { peer_id: PeerId::random(), addrs: Vec::new(), prekeys: None };
    IdentityRecord::sign(identity, 1, Timestamp::from_millis(1), None, vec![device]).unwrap()
}

/// A real identity: its record and the address its keys derive.
async fn real_identity() -> (Address, IdentityRecord) {
    tokio::task::spawn_blocking(|| {
        let identity = Identity::generate().unwrap();
        (derive_address(identity.public()), signed(&identity))
    })
    .await
    .unwrap()
}

/// A set of junk records (fresh keys, validly signed) under a made-up address.
fn junk() -> (Address, Vec<u8>) {
    let address = Address::from_bytes(communitas_crypto::random::bytes().unwrap());
    let records =
        (0..MAX_RECORDS_PER_KEY).map(|_| signed(&Identity::generate().unwrap())).collect();
    (address, RecordSet { records }.to_bytes())
}

async fn flood_once(flooder: &Client) {
    let (address, set) = junk();
    // A put may find no taker (the node refuses or is busy): that is the point.
    let _ = flooder.publish(address, set).await;
}

/// Looks each identity up from `node`, checking the answer; returns the times.
async fn look_up(node: &Client, identities: &[(Address, IdentityRecord)]) -> Vec<Duration> {
    let mut times = Vec::new();
    for (address, record) in identities {
        let started = Instant::now();
        let found = node.resolve(*address).await;
        times.push(started.elapsed());
        let found = found.unwrap_or_else(|e| panic!("lookup failed: {e}"));
        assert!(found.iter().any(|r| r.identity == record.identity), "the real record was found");
    }
    times
}

fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let ms: Vec<String> = times.iter().map(|t| format!("{:.0}", t.as_secs_f64() * 1e3)).collect();
    format!(
        "median {:.0} ms, max {:.0} ms (each: {} ms)",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        ms.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_flood_does_not_make_lookups_fail() {
    let stop = CancellationToken::new();
    let holder = start(true, Vec::new(), &stop).await;

    // The real records live on the holder only (stored before anyone else joins, so
    // the node has never checked them: each lookup costs it one derivation).
    let mut identities = Vec::new();
    for _ in 0..2 * LOOKUPS {
        identities.push(tokio::spawn(real_identity()));
    }
    let mut real = Vec::new();
    for identity in identities {
        let (address, record) = identity.await.unwrap();
        let set = RecordSet { records: vec![record.clone()] }.to_bytes();
        // No peer to replicate to yet: the put is stored locally and the query fails.
        let _ = holder.client.publish(address, set).await;
        real.push((address, record));
    }
    let (before, during) = real.split_at(LOOKUPS);

    let node = start(true, vec![holder.addr.clone()], &stop).await;
    connected(&node, 1).await;
    let mut quiet = look_up(&node.client, before).await;

    let flooder = start(false, vec![node.addr.clone()], &stop).await;
    connected(&flooder, 1).await;
    let burst: Vec<_> = (0..BURST)
        .map(|_| {
            let client = flooder.client.clone();
            tokio::spawn(async move { flood_once(&client).await })
        })
        .collect();
    for put in burst {
        put.await.unwrap();
    }
    // And it keeps flooding while the node looks up.
    let flooding = {
        let client = flooder.client.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                flood_once(&client).await;
            }
        })
    };
    let mut flooded = look_up(&node.client, during).await;

    let refused = |what: &str| node.metrics.refused_count(what);
    let (rate, share, full) = (
        refused("record_put_rate"),
        refused("record_put_peer_share"),
        refused("record_put_queue_full"),
    );
    println!("lookup without a flood: {}", summary(&mut quiet));
    println!("lookup during a flood:  {}", summary(&mut flooded));
    println!(
        "node refused: record_put_rate {rate}, record_put_peer_share {share}, \
         record_put_queue_full {full}, record_put_overloaded {}, record_put_wrong_key {}",
        refused("record_put_overloaded"),
        refused("record_put_wrong_key"),
    );
    assert!(share > 0, "the flood reached the node and was held to the peer's share");
    stop.cancel();
    let _ = flooding.await;
}
