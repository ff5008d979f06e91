//! Peer-supplied addresses on private ranges are not dialled unless the node is told
//! to (issue 16 item 5); configured ones always are. Real TCP sockets on 127.0.0.1:
//! loopback is one of the refused ranges, so it stands for a LAN or the machine's own
//! services here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use communitas_net::libp2p::multiaddr::Protocol;
use communitas_net::libp2p::{Multiaddr, PeerId};
use communitas_net::{Client, Config, NetMetrics};
use tokio_util::sync::CancellationToken;

struct Peer {
    client: Client,
    metrics: NetMetrics,
    id: PeerId,
    addr: Multiaddr,
    _events: tokio::sync::mpsc::Receiver<communitas_net::Event>,
}

async fn start(
    dial_any_peer_addr: bool,
    bootstrap: Vec<Multiaddr>,
    stop: &CancellationToken,
) -> Peer {
    let config = Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap,
        only_global_ips: false,
        dial_any_peer_addr,
        ..Config::default()
    };
    let key = communitas_net::libp2p::identity::Keypair::generate_ed25519();
    let id = PeerId::from(key.public());
    let (client, events, event_loop) = communitas_net::new(key, config).unwrap();
    let metrics = event_loop.metrics();
    tokio::spawn(event_loop.run(stop.clone()));
    let addr = loop {
        let status = client.status().await.unwrap();
        if let Some(addr) = status.listen_addrs.into_iter().next() {
            break addr;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    Peer { client, metrics, id, addr, _events: events }
}

async fn connected_peers(peer: &Peer) -> usize {
    peer.client.status().await.unwrap().connected_peers
}

/// Tries to reach `to` on its loopback address as if a peer had told us where it is.
async fn try_send(from: &Peer, to: &Peer) -> bool {
    let attempt = from.client.send(to.id, vec![to.addr.clone()], vec![0; 16]);
    // An accepted dial gets a connection (the receipt itself never comes: nobody
    // answers `to`'s events); a refused one fails at once.
    let _ = tokio::time::timeout(Duration::from_secs(2), attempt).await;
    connected_peers(from).await > 0
}

#[tokio::test]
async fn a_peer_supplied_loopback_address_is_not_dialled() {
    let stop = CancellationToken::new();
    let target = start(false, Vec::new(), &stop).await;
    let guarded = start(false, Vec::new(), &stop).await;

    assert!(!try_send(&guarded, &target).await, "a loopback address from a peer was dialled");
    assert!(guarded.metrics.refused_count("dial_private_addr") >= 1, "the refusal is counted");
    assert_eq!(connected_peers(&target).await, 0, "nothing reached the target");
    stop.cancel();
}

#[tokio::test]
async fn a_local_network_node_dials_peer_supplied_addresses() {
    let stop = CancellationToken::new();
    let target = start(false, Vec::new(), &stop).await;
    let open = start(true, Vec::new(), &stop).await;

    assert!(try_send(&open, &target).await, "dial_any_peer_addr dials loopback");
    assert_eq!(open.metrics.refused_count("dial_private_addr"), 0);
    stop.cancel();
}

#[tokio::test]
async fn a_configured_bootstrap_on_a_private_address_is_dialled() {
    let stop = CancellationToken::new();
    let boot = start(false, Vec::new(), &stop).await;
    let configured = boot.addr.clone().with(Protocol::P2p(boot.id));
    let node = start(false, vec![configured], &stop).await;

    let joined = tokio::time::timeout(Duration::from_secs(10), async {
        while connected_peers(&node).await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(joined.is_ok(), "the configured bootstrap node was not dialled");
    stop.cancel();
}
