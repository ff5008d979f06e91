//! Sessions in the node (issue 14 phase 2, decision 0053): with `Config::sessions`
//! on, the identity record carries this device's prekey bundle, kept across restarts.

use std::time::Duration;

use communitas_node::Config;
use communitas_testkit::{BareClient, Seeds, eventually};

fn sessions_on() -> Config {
    Config { sessions: true, ..Config::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_carries_a_bundle_of_this_device_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = communitas_testkit::memory_node(dir.path(), "server", true, &[]).await;
    let boot = communitas_testkit::dial_addrs(&server.handle()).await;
    let seeds = Seeds::random();
    let bob = communitas_testkit::memory_node_seeded(
        dir.path(),
        "bob",
        false,
        &boot,
        seeds,
        sessions_on(),
    )
    .await;
    let alice = communitas_testkit::memory_node(dir.path(), "alice", false, &boot).await;
    let (bob_address, bob_peer) = (bob.handle().address(), bob.handle().peer_id());
    let client = BareClient::start(&boot);

    let first = eventually(Duration::from_secs(10), || client.net.resolve(bob_address)).await;
    assert_eq!(first.len(), 1);
    let device = &first[0].devices[0];
    assert_eq!(device.peer_id, bob_peer);
    let bundle = device.prekeys.clone().expect("sessions on: the record carries a bundle");
    assert_eq!(first[0].to_bytes()[0], communitas_crypto::record::VERSION);

    // Sessions off (the default): a version-1 record, as before.
    let plain =
        eventually(Duration::from_secs(10), || client.net.resolve(alice.handle().address())).await;
    assert!(plain[0].devices[0].prekeys.is_none());
    assert_eq!(plain[0].to_bytes()[0], communitas_crypto::record::VERSION_NO_PREKEYS);

    // Restarted, bob publishes a newer record with the same prekeys (they are stored,
    // not made again).
    bob.shutdown().await;
    let bob = communitas_testkit::memory_node_seeded(
        dir.path(),
        "bob",
        false,
        &boot,
        seeds,
        sessions_on(),
    )
    .await;
    let seq = first[0].seq;
    let again = eventually(Duration::from_secs(20), || async {
        let records = client.net.resolve(bob_address).await.map_err(|e| e.to_string())?;
        match records.into_iter().next() {
            Some(r) if r.seq > seq => Ok(r),
            _ => Err("not republished yet".to_string()),
        }
    })
    .await;
    let kept = again.devices[0].prekeys.clone().expect("still a bundle");
    assert_eq!(kept.to_bytes(), bundle.to_bytes());

    client.stop().await;
    for node in [bob, alice, server] {
        node.shutdown().await;
    }
}
