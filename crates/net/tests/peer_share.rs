//! One peer cannot fill the node's inbound buffer (issue 16 item 1): past its share of
//! waiting requests its messages are answered `Busy` before the node sees them, while
//! another peer's message is still handed over. Real TCP on 127.0.0.1; the node under
//! attack never answers, so every handed-over request stays waiting.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use communitas_net::libp2p::{Multiaddr, PeerId};
use communitas_net::{Client, Config, Event, NetMetrics, Receipt};
use tokio_util::sync::CancellationToken;

struct Peer {
    client: Client,
    metrics: NetMetrics,
    id: PeerId,
    addr: Multiaddr,
    events: tokio::sync::mpsc::Receiver<Event>,
}

async fn start(stop: &CancellationToken) -> Peer {
    let config = Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        only_global_ips: false,
        dial_any_peer_addr: true,
        ..Config::default()
    };
    let key = communitas_net::libp2p::identity::Keypair::generate_ed25519();
    let id = PeerId::from(key.public());
    let (client, events, event_loop) = communitas_net::new(key, config).unwrap();
    let metrics = event_loop.metrics();
    tokio::spawn(event_loop.run(stop.clone()));
    let addr = loop {
        if let Some(addr) = client.status().await.unwrap().listen_addrs.into_iter().next() {
            break addr;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    Peer { client, metrics, id, addr, events }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_gets_its_share_and_a_contact_still_gets_through() {
    let stop = CancellationToken::new();
    let mut node = start(&stop).await;
    let flooder = start(&stop).await;
    let contact = start(&stop).await;

    // 200 messages at once from one peer (more than its share, fewer than the buffer).
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..200u32 {
        let client = flooder.client.clone();
        let (to, addr) = (node.id, node.addr.clone());
        sends.spawn(async move { client.send(to, vec![addr], n.to_be_bytes().to_vec()).await });
    }
    // Those past the share are answered Busy at once; the rest wait at the node.
    let mut busy = 0;
    while busy < 200 - 64 {
        match tokio::time::timeout(Duration::from_secs(20), sends.join_next()).await {
            Ok(Some(Ok(Ok(Receipt::Busy)))) => busy += 1,
            other => panic!("expected Busy for the flood past its share, got {other:?}"),
        }
    }
    assert_eq!(node.metrics.refused_count("msg_peer_share"), 200 - 64);

    // The contact's message is handed over although the flooder still holds its share.
    let client = contact.client.clone();
    let (to, addr) = (node.id, node.addr.clone());
    let contact_send =
        tokio::spawn(async move { client.send(to, vec![addr], b"hi".to_vec()).await });
    let mut from_flooder = 0;
    let contact_envelope = loop {
        let event = tokio::time::timeout(Duration::from_secs(20), node.events.recv()).await;
        match event.expect("the contact's message reached the node").expect("events") {
            Event::Message { peer, envelope, responder } if peer == contact.id => {
                responder.send(Receipt::Delivered).await.unwrap();
                break envelope;
            }
            Event::Message { peer, responder, .. } if peer == flooder.id => {
                from_flooder += 1;
                // Keep them waiting: the share stays taken.
                std::mem::forget(responder);
            }
            _ => {}
        }
    };
    assert_eq!(contact_envelope, b"hi");
    assert_eq!(from_flooder, 64, "the flooder's handed-over requests are exactly its share");
    assert!(matches!(contact_send.await.unwrap(), Ok(Receipt::Delivered)));
    stop.cancel();
}
