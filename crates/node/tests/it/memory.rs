//! Resolve and deliver between in-process nodes.

use std::time::Duration;

use communitas_node::Event;
use communitas_store::{Direction, Status};

use communitas_testkit::{Network, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_reaches_bob_by_address_through_the_dht() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 3, &["alice", "bob"]).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
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
            if let Ok(Event::StatusChanged { id: got, status: Status::Delivered, .. }) =
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
            if let Ok(Event::Request { id: got, from, text, .. }) = bob_events.recv().await
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
    assert_eq!(history[0].direction, Direction::In);
    // The event goes out as the receipt arrives; the status is committed right after.
    eventually(Duration::from_secs(2), || async {
        match a.message_status(id).await.unwrap().unwrap().as_str() {
            "delivered" => Ok(()),
            other => Err(other.to_owned()),
        }
    })
    .await;
    // Alice is a stranger to bob: her message is a request, not a contact (issue 15).
    assert!(b.contacts().await.unwrap().iter().all(|c| c.address != a.address()));
    assert_eq!(b.requests().await.unwrap()[0].address, a.address());

    net.shutdown().await;
}

/// Garbage and tampered envelopes from the network are refused with a typed receipt,
/// store nothing, and the node goes on delivering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_envelopes_are_rejected_and_the_node_keeps_working() {
    use communitas_crypto::{Envelope, Identity, Kind, Letter};
    use communitas_net::libp2p::multiaddr::Protocol;
    use communitas_net::{Receipt, Rejection};
    use communitas_types::{MessageId, Timestamp};

    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    // Each other's contacts: a contact's presence starts when it is added, and bob
    // would refuse (and count) alice's if she were not his contact.
    eventually(Duration::from_secs(20), || b.add_contact(a.address(), None)).await;
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    let bob_addrs = b.dial_addrs().await.unwrap();
    let bob_peer = match bob_addrs[0].iter().last() {
        Some(Protocol::P2p(peer)) => peer,
        _ => panic!("no peer id in {}", bob_addrs[0]),
    };

    // Mallory: a bare network client, no node behind it.
    let mallory_client = communitas_testkit::BareClient::start(&[]);
    let mallory = &mallory_client.net;

    let garbage = vec![0x07; 3000];
    assert_eq!(
        mallory.send(bob_peer, bob_addrs.clone(), garbage).await.unwrap(),
        Receipt::Rejected(Rejection::Invalid)
    );
    // A real envelope for someone else.
    let (m, carol) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let letter = Letter {
        message_id: MessageId::from_bytes([1; 16]),
        timestamp: Timestamp::now(),
        kind: Kind::Text,
        body: b"x",
    };
    let not_for_bob = Envelope::seal(&m, carol.public(), letter).unwrap().to_bytes();
    assert_eq!(
        mallory.send(bob_peer, bob_addrs.clone(), not_for_bob).await.unwrap(),
        Receipt::Rejected(Rejection::WrongRecipient)
    );
    // A message from the far future.
    let bob_keys = a
        .contacts()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.address == b.address())
        .unwrap()
        .identity;
    let future = Timestamp::now().saturating_add(Duration::from_secs(3600));
    let letter = Letter {
        message_id: MessageId::from_bytes([2; 16]),
        timestamp: future,
        kind: Kind::Text,
        body: b"from the future",
    };
    let stale = Envelope::seal(&m, &bob_keys, letter).unwrap().to_bytes();
    assert_eq!(
        mallory.send(bob_peer, bob_addrs.clone(), stale).await.unwrap(),
        Receipt::Rejected(Rejection::Stale)
    );
    // The same valid envelope twice: delivered twice, stored once.
    let letter = Letter {
        message_id: MessageId::from_bytes([3; 16]),
        timestamp: Timestamp::now(),
        kind: Kind::Text,
        body: b"once",
    };
    let once = Envelope::seal(&m, &bob_keys, letter).unwrap().to_bytes();
    for _ in 0..2 {
        assert_eq!(
            mallory.send(bob_peer, bob_addrs.clone(), once.clone()).await.unwrap(),
            Receipt::Delivered
        );
    }
    let m_address = communitas_crypto::derive_address(m.public());
    let stored = b.history(m_address, 10, None).await.unwrap();
    assert_eq!(stored.iter().map(|h| h.text.as_str()).collect::<Vec<_>>(), ["once"]);
    assert!(b.metrics().encode().contains("communitas_messages_duplicate_total 1"));
    assert!(b.metrics().encode().contains("communitas_messages_rejected_total 3"));

    // Bob still takes alice's message.
    let (id, _) = a.send_text(b.address(), "still here?").await.unwrap();
    eventually(Duration::from_secs(10), || async {
        match a.message_status(id).await.unwrap().map(|s| s.as_str()) {
            Some("delivered") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    mallory_client.stop().await;
    net.shutdown().await;
}

/// Bob is offline: alice's message waits in mailboxes on the server nodes, and reaches
/// bob when he comes back; alice learns of it from bob's end-to-end receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxes_carry_messages_to_an_offline_recipient() {
    use communitas_testkit::{Seeds, memory_node, memory_node_with};

    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 3, &[]).await;
    let boot: Vec<_> = {
        let mut all = Vec::new();
        for s in &net.servers {
            all.extend(s.handle().dial_addrs().await.unwrap());
        }
        all
    };
    let alice = memory_node(dir.path(), "alice", false, &boot[..1]).await;
    let seeds = Seeds::random();
    let bob = memory_node_with(dir.path(), "bob", false, &boot[1..2], seeds).await;
    let (a, bob_address) = (alice.handle(), bob.handle().address());
    eventually(Duration::from_secs(20), || a.add_contact(bob_address, None)).await;
    bob.shutdown().await;

    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(a.send_text(bob_address, &format!("while you were away {i}")).await.unwrap().0);
    }
    for id in &ids {
        eventually(Duration::from_secs(20), || async {
            match a.message_status(*id).await.unwrap().map(|s| s.as_str()) {
                Some("stored") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }

    let bob = memory_node_with(dir.path(), "bob", false, &boot[2..3], seeds).await;
    let b = bob.handle();
    let history = eventually(Duration::from_secs(10), || async {
        let h = b.history(a.address(), 50, None).await.unwrap();
        if h.len() == 5 { Ok(h) } else { Err(h.len()) }
    })
    .await;
    let texts: Vec<_> = history.iter().map(|h| h.text.clone()).collect();
    for i in 0..5 {
        assert_eq!(texts.iter().filter(|t| **t == format!("while you were away {i}")).count(), 1);
    }
    for id in &ids {
        eventually(Duration::from_secs(20), || async {
            match a.message_status(*id).await.unwrap().map(|s| s.as_str()) {
                Some("delivered") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }
    assert!(a.outbox().await.unwrap().is_empty(), "nothing left to send");
    alice.shutdown().await;
    bob.shutdown().await;
    net.shutdown().await;
}

/// A peer flooding mailbox puts is held to its rate and to the quotas: the mailbox
/// never holds more than its quota, and another sender still gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_puts_cannot_fill_past_quota_or_starve_others() {
    use communitas_crypto::{Envelope, Identity, Kind, Letter};
    use communitas_net::libp2p::multiaddr::Protocol;
    use communitas_net::mbox::{MboxRequest, MboxResponse, Refusal};
    use communitas_node::{Config, Rate, RateLimits};
    use communitas_store::MailboxLimits;
    use communitas_types::{MessageId, Timestamp};

    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        rate_limits: RateLimits {
            mailbox_puts: Rate { per_second: 20, burst: 40 },
            ..RateLimits::default()
        },
        mailbox_limits: MailboxLimits {
            max_envelopes: 25,
            max_bytes: 1 << 30,
            max_per_sender: 1000,
            max_per_sender_in_mailbox: 1000,
            max_replicas_per_peer: 1000,
            max_replicas_per_peer_in_mailbox: 1000,
            max_total_bytes: 1 << 30,
        },
        ..Config::default()
    };
    let server =
        communitas_testkit::memory_node_configured(dir.path(), "server", true, &[], config).await;
    let server_addrs = communitas_testkit::dial_addrs(&server.handle()).await;
    let server_peer = match server_addrs[0].iter().last() {
        Some(Protocol::P2p(p)) => p,
        _ => panic!("no peer id"),
    };

    let mallory_client = communitas_testkit::BareClient::start(&server_addrs);
    let alice_client = communitas_testkit::BareClient::start(&server_addrs);
    let (mallory, alice) = (&mallory_client.net, &alice_client.net);

    let sender = Identity::generate().unwrap();
    let (bob, carol) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let envelope = |to: &Identity, n: u32| {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&n.to_be_bytes());
        let letter = Letter {
            message_id: MessageId::from_bytes(id),
            timestamp: Timestamp::now(),
            kind: Kind::Text,
            body: b"flood",
        };
        Envelope::seal(&sender, to.public(), letter).unwrap().to_bytes()
    };
    let (mut stored, mut full, mut limited) = (0, 0, 0);
    for n in 0..200 {
        match mallory
            .mailbox(server_peer, MboxRequest::Put { envelope: envelope(&bob, n) })
            .await
            .unwrap()
        {
            MboxResponse::Stored => stored += 1,
            MboxResponse::Refused(Refusal::MailboxFull) => full += 1,
            MboxResponse::Refused(Refusal::RateLimited) => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(stored, 25, "the mailbox quota holds");
    assert!(full > 0 && limited > 0, "full {full}, limited {limited}");
    // Alice, a different peer, is not starved by mallory's flood.
    let answer = alice
        .mailbox(server_peer, MboxRequest::Put { envelope: envelope(&carol, 1) })
        .await
        .unwrap();
    assert_eq!(answer, MboxResponse::Stored);
    let metrics = server.handle().metrics().encode();
    assert!(metrics.contains("communitas_rate_limited_total{protocol=\"mbox\"}"), "{metrics}");
    let refused = format!("communitas_refused_total{{what=\"mailbox_full\"}} {full}\n");
    assert!(metrics.contains(&refused), "{metrics}");
    mallory_client.stop().await;
    alice_client.stop().await;
    server.shutdown().await;
}

/// A server tells an online owner that mail arrived: it is fetched on notice. Bob polls
/// only once an hour here, so the mail can reach him in time only through the notice
/// (no clock in the assertion: a loaded machine cannot make it fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_mailbox_entry_is_fetched_at_once_when_its_owner_is_online() {
    use communitas_crypto::{Envelope, Identity, Kind, Letter};
    use communitas_net::libp2p::multiaddr::Protocol;
    use communitas_net::mbox::{MboxRequest, MboxResponse};
    use communitas_types::{MessageId, Timestamp};

    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &[]).await;
    let server_addrs = communitas_testkit::dial_addrs(&net.servers[0].handle()).await;
    let config = communitas_node::Config {
        mailbox_fetch_every: Duration::from_secs(3600),
        ..Default::default()
    };
    let bob =
        communitas_testkit::memory_node_configured(dir.path(), "bob", false, &server_addrs, config)
            .await;
    let b = bob.handle();
    let server_peer = match server_addrs[0].iter().last() {
        Some(Protocol::P2p(p)) => p,
        _ => panic!("no peer id"),
    };
    // Bob's first look in his mailbox (at start) opens his session with the server.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let sender_client = communitas_testkit::BareClient::start(&server_addrs);
    let sender_net = &sender_client.net;

    let carol = Identity::generate().unwrap();
    let bob_keys = {
        let record = eventually(Duration::from_secs(10), || sender_net.resolve(b.address())).await;
        record[0].identity.clone()
    };
    let letter = Letter {
        message_id: MessageId::from_bytes([5; 16]),
        timestamp: Timestamp::now(),
        kind: Kind::Text,
        body: b"ping via mailbox",
    };
    let envelope = Envelope::seal(&carol, &bob_keys, letter).unwrap().to_bytes();
    assert_eq!(
        sender_net.mailbox(server_peer, MboxRequest::Put { envelope }).await.unwrap(),
        MboxResponse::Stored
    );
    let carol_address = communitas_crypto::derive_address(carol.public());
    eventually(Duration::from_secs(60), || async {
        let h = b.history(carol_address, 10, None).await.unwrap();
        if h.len() == 1 { Ok(()) } else { Err(h.len()) }
    })
    .await;
    sender_client.stop().await;
    bob.shutdown().await;
    net.shutdown().await;
}

/// `announce` (what `run --announce` sets): the identity record lists exactly the
/// announced addresses, not where the node really listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_address_is_the_only_one_published() {
    use communitas_net::libp2p::Multiaddr;
    use communitas_node::Config;

    let dir = tempfile::tempdir().unwrap();
    let server = communitas_testkit::memory_node(dir.path(), "server", true, &[]).await;
    let server_addrs = communitas_testkit::dial_addrs(&server.handle()).await;
    let announced: Multiaddr = "/ip4/127.0.0.1/udp/9/quic-v1".parse().unwrap();
    let mut config = Config::default();
    config.net.announce = vec![announced.clone()];
    let bob =
        communitas_testkit::memory_node_configured(dir.path(), "bob", false, &server_addrs, config)
            .await;
    // Bob still listens (on the memory transport) though he publishes only what he announces.
    assert!(!communitas_testkit::dial_addrs(&bob.handle()).await.is_empty());

    let client = communitas_testkit::BareClient::start(&server_addrs);
    let record =
        eventually(Duration::from_secs(10), || client.net.resolve(bob.handle().address())).await;
    assert_eq!(record.len(), 1);
    let published: Vec<Multiaddr> = record[0].devices[0]
        .addrs
        .iter()
        .map(|a| Multiaddr::try_from(a.clone()).unwrap())
        .collect();
    assert_eq!(published, vec![announced]);
    client.stop().await;
    bob.shutdown().await;
    server.shutdown().await;
}

/// A user node (not a server) forgets a seen id once its message's lifetime is over,
/// while a replay of a message still within its lifetime is still stored once; the
/// expired message itself is then refused as stale, so forgetting lost nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_node_forgets_expired_seen_ids_and_still_refuses_live_replays() {
    use communitas_crypto::{Envelope, Identity, Kind, Letter};
    use communitas_net::libp2p::multiaddr::Protocol;
    use communitas_net::{Receipt, Rejection};
    use communitas_node::MESSAGE_TTL;
    use communitas_types::{MessageId, Timestamp};

    let dir = tempfile::tempdir().unwrap();
    let config = communitas_node::Config {
        seen_sweep_every: Duration::from_millis(100),
        ..Default::default()
    };
    let bob =
        communitas_testkit::memory_node_configured(dir.path(), "bob", false, &[], config).await;
    let b = bob.handle();
    let bob_addrs = communitas_testkit::dial_addrs(&b).await;
    let bob_peer = match bob_addrs[0].iter().last() {
        Some(Protocol::P2p(peer)) => peer,
        _ => panic!("no peer id in {}", bob_addrs[0]),
    };
    let bob_keys = b.identity().clone();
    let mallory_client = communitas_testkit::BareClient::start(&[]);
    let mallory = &mallory_client.net;
    let m = Identity::generate().unwrap();
    let seal = |id: u8, timestamp: Timestamp| {
        let letter = Letter {
            message_id: MessageId::from_bytes([id; 16]),
            timestamp,
            kind: Kind::Text,
            body: b"x",
        };
        Envelope::seal(&m, &bob_keys, letter).unwrap().to_bytes()
    };
    // Its lifetime ends a few seconds from now (its seen id is kept until then)...
    let ending = seal(1, Timestamp::now().saturating_sub(MESSAGE_TTL - Duration::from_secs(4)));
    // ... and this one's in 30 days.
    let live = seal(2, Timestamp::now());
    for envelope in [&ending, &live] {
        assert_eq!(
            mallory.send(bob_peer, bob_addrs.clone(), envelope.clone()).await.unwrap(),
            Receipt::Delivered
        );
    }
    let expired = |b: &communitas_node::Handle| {
        b.metrics().encode().contains("communitas_seen_ids_expired_total 1\n")
    };
    assert!(!expired(&b), "nothing has expired yet");

    // The sweep (user node) forgets exactly the one whose time is up.
    eventually(Duration::from_secs(30), || async {
        if expired(&b) { Ok(()) } else { Err(b.metrics().encode()) }
    })
    .await;
    // The live one is still known: its replay is answered but stored once.
    assert_eq!(
        mallory.send(bob_peer, bob_addrs.clone(), live.clone()).await.unwrap(),
        Receipt::Delivered
    );
    assert!(b.metrics().encode().contains("communitas_messages_duplicate_total 1\n"));
    // The forgotten one is refused on its age, not taken again.
    assert_eq!(
        mallory.send(bob_peer, bob_addrs.clone(), ending.clone()).await.unwrap(),
        Receipt::Rejected(Rejection::Stale)
    );
    let m_address = communitas_crypto::derive_address(m.public());
    assert_eq!(b.history(m_address, 10, None).await.unwrap().len(), 2);
    // Nothing else was swept.
    assert!(expired(&b));

    mallory_client.stop().await;
    bob.shutdown().await;
}
