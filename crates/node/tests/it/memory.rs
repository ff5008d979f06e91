//! Resolve and deliver between in-process nodes.

use std::time::Duration;

use communitas_node::Event;

use super::{eventually, node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_reaches_bob_by_address_through_the_dht() {
    let dir = tempfile::tempdir().unwrap();
    let mut servers = Vec::new();
    let mut boot = Vec::new();
    for i in 0..3 {
        let server = node(dir.path(), &format!("server{i}"), true, &boot).await;
        let addrs = eventually(Duration::from_secs(5), || {
            let h = server.handle();
            async move {
                let a = h.dial_addrs().await.unwrap();
                if a.is_empty() { Err("no listen address yet") } else { Ok(a) }
            }
        })
        .await;
        boot.extend(addrs);
        servers.push(server);
    }
    let alice = node(dir.path(), "alice", false, &boot[..1]).await;
    let bob = node(dir.path(), "bob", false, &boot[2..]).await;
    let (a, b) = (alice.handle(), bob.handle());
    let mut bob_events = b.subscribe();

    // Bob's record reaches the DHT shortly after he starts.
    let contact = eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    assert_eq!(contact.address, b.address());

    let text = "héllo bob 👋 مرحبا 你好";
    let mut alice_events = a.subscribe();
    let (id, status) = a.send_text(b.address(), text).await.unwrap();
    assert_eq!(status.as_str(), "queued");
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::StatusChanged { id: got, status: "delivered", .. }) =
                alice_events.recv().await
                && got == id
            {
                break;
            }
        }
    })
    .await
    .expect("delivered within 10 s");
    let received = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Event::MessageReceived { id: got, from, text, .. }) = bob_events.recv().await
                && got == id
            {
                return (from, text);
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(received, (a.address(), text.to_owned()));
    let history = b.history(a.address(), 10, None).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].text, text);
    assert_eq!(history[0].direction, "in");
    // The event goes out as the receipt arrives; the status is committed right after.
    eventually(Duration::from_secs(2), || async {
        match a.message_status(id).await.unwrap().unwrap().as_str() {
            "delivered" => Ok(()),
            other => Err(other.to_owned()),
        }
    })
    .await;
    // Bob pinned alice on first contact.
    assert!(b.contacts().await.unwrap().iter().any(|c| c.address == a.address()));

    for n in [alice, bob].into_iter().chain(servers) {
        n.shutdown().await;
    }
}
