//! Who may reach us (issue 15): a stranger's message is a request until accepted,
//! a blocked sender is dropped, and other keys claiming a contact's address are
//! refused and shown.

use std::time::Duration;

use communitas_node::{Event, Handle};
use communitas_testkit::{Network, eventually};

/// Waits for the first event `pick` returns something for.
async fn next_event<T>(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(event) = events.recv().await
                && let Some(found) = pick(&event)
            {
                return found;
            }
        }
    })
    .await
    .expect("event within 20 s")
}

async fn online(of: &Handle, who: communitas_types::Address) {
    eventually(Duration::from_secs(10), || async {
        match of.presence(who).await {
            Ok(p) if p.status.as_str() == "online" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

fn metric(handle: &Handle, line_start: &str) -> u64 {
    handle
        .metrics()
        .encode()
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A stranger's text is a request: no conversation, no contact, its presence not
/// taken; accepting makes it a contact with the message in the conversation, and
/// presence flows both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_is_a_request_until_accepted_then_presence_flows_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    let mut bob_events = b.subscribe();
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    a.send_text(b.address(), "hi bob, it's alice").await.unwrap();
    let (from, new) = next_event(&mut bob_events, |e| match e {
        Event::Request { from, new, .. } => Some((*from, *new)),
        Event::MessageReceived { .. } => panic!("a stranger's message is not a conversation"),
        _ => None,
    })
    .await;
    assert_eq!((from, new), (a.address(), true));
    let requests = b.requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].first_text.as_deref(), Some("hi bob, it's alice"));
    assert_eq!(requests[0].count, 1);
    assert_eq!(requests[0].safety_number.replace(' ', "").len(), 60);
    // The name alice's signed record gives, carried in her first letter's intro.
    assert_eq!(requests[0].name.as_deref(), Some("alice"));
    assert!(b.contacts().await.unwrap().is_empty());
    assert!(b.conversations().await.unwrap().is_empty());
    // Alice's heartbeats reach bob, who keeps none of them; he sends her none.
    assert!(b.presence(a.address()).await.is_err(), "not a contact");
    assert!(b.typing(a.address(), true).await.is_err(), "no typing to a request");
    assert_eq!(metric(&b, "communitas_requests_opened_total"), 1);

    let contact = b.accept_request(a.address()).await.unwrap();
    assert_eq!(contact.address, a.address());
    assert_eq!(contact.name.as_deref(), Some("alice"), "accepting keeps the name it gave");
    assert!(b.requests().await.unwrap().is_empty());
    let history = b.history(a.address(), 10, None).await.unwrap();
    assert_eq!(history[0].text, "hi bob, it's alice");
    assert_eq!(b.conversations().await.unwrap().len(), 1);
    online(&b, a.address()).await;
    online(&a, b.address()).await;
    net.shutdown().await;
}

/// Declining deletes a request; a blocked sender's later messages are dropped and
/// counted, while its node is answered as if they were delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_requests_go_and_blocked_senders_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    let mut bob_events = b.subscribe();
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    a.send_text(b.address(), "buy my stuff").await.unwrap();
    next_event(&mut bob_events, |e| matches!(e, Event::Request { .. }).then_some(())).await;
    b.decline_request(a.address(), false).await.unwrap();
    assert!(b.requests().await.unwrap().is_empty());
    assert!(b.history(a.address(), 10, None).await.unwrap().is_empty());

    a.send_text(b.address(), "again").await.unwrap();
    next_event(&mut bob_events, |e| matches!(e, Event::Request { .. }).then_some(())).await;
    b.decline_request(a.address(), true).await.unwrap();
    assert!(b.is_blocked(a.address()));
    assert_eq!(b.blocked().await.unwrap()[0].address, a.address());

    let (id, _) = a.send_text(b.address(), "let me in").await.unwrap();
    // The blocked sender cannot tell: its message shows delivered (decision 0052).
    eventually(Duration::from_secs(10), || async {
        match a.message_status(id).await.unwrap().map(|s| s.as_str()) {
            Some("delivered") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(b.requests().await.unwrap().is_empty(), "nothing stored");
    assert!(b.history(a.address(), 10, None).await.unwrap().is_empty());
    assert!(metric(&b, "communitas_blocked_dropped_total{kind=\"message\"}") >= 1);
    // Bob cannot write to whom he blocked until he unblocks.
    assert!(b.send_text(a.address(), "x").await.is_err());
    b.unblock(a.address()).await.unwrap();
    assert!(!b.is_blocked(a.address()));
    assert!(b.unblock(a.address()).await.is_err(), "not blocked any more");
    net.shutdown().await;
}

/// A blocked contact stays a contact, but its presence is dropped and ours stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_contact_gets_no_presence_and_its_own_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    eventually(Duration::from_secs(20), || b.add_contact(a.address(), None)).await;
    online(&b, a.address()).await;
    b.block(a.address()).await.unwrap();
    assert!(b.presence(a.address()).await.is_err(), "blocked");
    // Alice's next heartbeat (she tells bob at once when her status changes) is
    // dropped as blocked.
    a.set_presence(communitas_node::presence::Status::Busy).await.unwrap();
    eventually(Duration::from_secs(10), || async {
        let n = metric(&b, "communitas_blocked_dropped_total{kind=\"presence\"}");
        if n >= 1 { Ok(()) } else { Err(n) }
    })
    .await;
    assert_eq!(b.contacts().await.unwrap().len(), 1, "still a contact");
    net.shutdown().await;
}

/// Carol's keys, claiming alice's address (a forged collision, injected: the real one
/// costs 2^48 Argon2 hashes), never reach alice's conversation: refused, counted, and
/// shown as an impersonation warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_keys_claiming_a_contact_s_address_are_refused_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob", "carol"]).await;
    let (a, b, c) = (net.users[0].handle(), net.users[1].handle(), net.users[2].handle());
    eventually(Duration::from_secs(20), || b.add_contact(a.address(), None)).await;
    eventually(Duration::from_secs(20), || c.add_contact(b.address(), None)).await;
    b.inject_address(c.identity(), a.address());
    let mut bob_events = b.subscribe();
    let (id, _) = c.send_text(b.address(), "it's me, alice (not)").await.unwrap();
    let imitated = next_event(&mut bob_events, |e| match e {
        Event::Impersonation { address } => Some(*address),
        Event::MessageReceived { .. } | Event::Request { .. } => panic!("stored: {e:?}"),
        _ => None,
    })
    .await;
    assert_eq!(imitated, a.address());
    assert!(b.history(a.address(), 10, None).await.unwrap().is_empty());
    assert!(b.requests().await.unwrap().is_empty());
    assert_eq!(b.contacts().await.unwrap()[0].identity, *a.identity(), "the pin holds");
    assert!(metric(&b, "communitas_impersonations_refused_total") >= 1);
    // Refused for good: the impostor's message is not retried as delivered.
    eventually(Duration::from_secs(10), || async {
        match c.message_status(id).await.unwrap().map(|s| s.as_str()) {
            Some("delivered") => Err("delivered".to_owned()),
            Some(s) if s != "queued" && s != "sent" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    net.shutdown().await;
}

/// A stranger's attachment waits: not fetched while it is a request, fetched once
/// the request is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_s_file_is_fetched_only_once_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    let mut bob_events = b.subscribe();
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    let path = dir.path().join("photo.jpg");
    std::fs::write(&path, vec![7u8; 200_000]).unwrap();
    let (_, file_id, _) = a.send_file(b.address(), "a photo", path).await.unwrap();
    next_event(&mut bob_events, |e| matches!(e, Event::Request { .. }).then_some(())).await;
    // A text sent after the file arrives after it; by then a fetch would have run.
    a.send_text(b.address(), "did you get it?").await.unwrap();
    next_event(&mut bob_events, |e| match e {
        Event::Request { text, .. } if text == "did you get it?" => Some(()),
        _ => None,
    })
    .await;
    let request = b.requests().await.unwrap().remove(0);
    assert!(request.first_is_file);
    assert_eq!(request.first_text.as_deref(), Some("a photo"));
    assert_eq!(b.file(file_id).await.unwrap().status.as_str(), "pending");
    assert_eq!(b.metrics().file_bytes_fetched.get(), 0, "nothing fetched for a request");
    // Not by hand either, until accepted.
    assert!(matches!(b.fetch_file(file_id).await, Err(communitas_node::FileError::FromRequest(_))));

    b.accept_request(a.address()).await.unwrap();
    eventually(Duration::from_secs(20), || async {
        match b.file(file_id).await.unwrap().status.as_str() {
            "done" => Ok(()),
            other => Err(other.to_owned()),
        }
    })
    .await;
    net.shutdown().await;
}

/// Right after start, a lookup waits for the node to join the network instead of
/// answering "no identity found" (issue 15 item 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_right_after_start_waits_for_the_join() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    // Bob's record is in the DHT.
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    let boot = net.servers[0].handle().dial_addrs().await.unwrap();
    let carol = communitas_testkit::memory_node(dir.path(), "carol", false, &boot).await;
    // At once, no retry: the first lookup is the one that counts.
    let found = carol.handle().add_contact(b.address(), None).await.unwrap();
    assert_eq!(found.identity, *b.identity());
    carol.shutdown().await;
    // A node that cannot join says so, after waiting: "no identity found" would be a
    // lie, since nothing was looked up.
    let alone = communitas_testkit::memory_node(dir.path(), "dave", false, &[]).await;
    let started = std::time::Instant::now();
    let answer = alone.handle().add_contact(b.address(), None).await;
    assert!(matches!(answer, Err(communitas_node::SendError::NotJoined { .. })), "{answer:?}");
    assert!(started.elapsed() >= Duration::from_secs(9), "it waited for the join");
    alone.shutdown().await;
    net.shutdown().await;
}

/// An address blocked before its keys were ever seen: its first envelope is dropped
/// after one derivation, which records its keys; later ones are dropped by their keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_blocked_in_advance_is_dropped_and_its_keys_learned() {
    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    let blocked = b.block(a.address()).await.unwrap();
    assert_eq!(blocked.block.fingerprint, None, "never seen: no keys yet");
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    for text in ["one", "two"] {
        let (id, _) = a.send_text(b.address(), text).await.unwrap();
        eventually(Duration::from_secs(10), || async {
            match a.message_status(id).await.unwrap().map(|s| s.as_str()) {
                Some("delivered") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }
    assert_eq!(metric(&b, "communitas_blocked_dropped_total{kind=\"message\"}"), 2);
    assert!(b.requests().await.unwrap().is_empty());
    assert!(b.history(a.address(), 10, None).await.unwrap().is_empty());
    let learned = b.blocked().await.unwrap().remove(0);
    assert_eq!(learned.fingerprint, Some(a.identity().fingerprint()));
    net.shutdown().await;
}

/// Issue 15 item 4 (decision 0062): a flood of first contacts from fresh identities
/// that pay no proof of work gets the slow lane only — one derivation per 10 s, the
/// rest told to come back — while a contact's texts all arrive and a real stranger,
/// whose first letter carries its proof, becomes a request within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaid_first_contacts_get_the_slow_lane_and_contacts_flow() {
    use communitas_crypto::{Envelope, Identity, Kind, Letter};
    use communitas_net::Receipt;
    use communitas_types::{MessageId, Timestamp};

    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob", "carol"]).await;
    let (a, b, c) = (net.users[0].handle(), net.users[1].handle(), net.users[2].handle());
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    eventually(Duration::from_secs(20), || b.add_contact(a.address(), None)).await;
    let bob_addrs = communitas_testkit::dial_addrs(&b).await;
    let bob_keys = b.identity().clone();
    let mallory = communitas_testkit::BareClient::start(&[]);

    // 60 fresh identities, one version-1 envelope each: no proof of work.
    let flood: Vec<Vec<u8>> = (0..60u8)
        .map(|n| {
            let fresh = Identity::generate().unwrap();
            let letter = Letter {
                message_id: MessageId::from_bytes([n; 16]),
                timestamp: Timestamp::now(),
                kind: Kind::Text,
                body: b"buy now",
            };
            Envelope::seal(&fresh, &bob_keys, letter).unwrap().to_bytes()
        })
        .collect();
    let started = std::time::Instant::now();
    let flooding = {
        let (net, peer, addrs) = (mallory.net.clone(), b.peer_id(), bob_addrs.clone());
        tokio::spawn(async move {
            let sends = flood.into_iter().map(|e| {
                let (net, addrs) = (net.clone(), addrs.clone());
                async move { net.send(peer, addrs, e).await }
            });
            futures::future::join_all(sends).await
        })
    };
    // Meanwhile alice writes, and carol (a stranger with a real node) says hello.
    let mut bob_events = b.subscribe();
    for i in 0..20 {
        a.send_text(b.address(), &format!("alice {i}")).await.unwrap();
    }
    c.send_text(b.address(), "hello bob, carol here").await.unwrap();
    let answers = flooding.await.unwrap();
    let delivered = answers.iter().filter(|r| matches!(r, Ok(Receipt::Delivered))).count();
    let busy = answers.iter().filter(|r| matches!(r, Ok(Receipt::Busy))).count();
    println!("flood: {delivered} taken, {busy} told to come back, in {:?}", started.elapsed());
    assert!(delivered <= 2, "the slow lane takes one per 10 s: {delivered}");
    assert!(busy >= 58, "the rest come back later: {busy}");

    let (from, _) = next_event(&mut bob_events, |e| match e {
        Event::Request { from, new, .. } if *from == c.address() => Some((*from, *new)),
        _ => None,
    })
    .await;
    let carol_after = started.elapsed();
    assert_eq!(from, c.address());
    println!("carol's request after {carol_after:?}");
    assert!(carol_after < Duration::from_secs(15), "a paid first contact waits seconds");
    let got = eventually(Duration::from_secs(30), || async {
        let history = b.history(a.address(), 100, None).await.map_err(|e| e.to_string())?;
        let texts = history.iter().filter(|m| m.system.is_none()).count();
        if texts >= 20 { Ok(history) } else { Err(format!("{texts}")) }
    })
    .await;
    // Texts only: a session started again under the flood may add a system line.
    let texts: Vec<String> =
        got.into_iter().filter(|m| m.system.is_none()).map(|m| m.text).collect();
    let sent: Vec<String> = (0..20).map(|i| format!("alice {i}")).collect();
    assert_eq!(texts, sent, "every text of the contact, in order");
    let m = b.metrics();
    assert!(m.first_contact_outcomes("unpaid") <= 2);
    // Told to come back: by the slow lane once opened, or by the strangers' lane
    // before (one peer has two envelopes' share of it).
    let later = m.first_contact_outcomes("unpaid_later")
        + m.lane_outcomes("peer_share")
        + m.lane_outcomes("full");
    assert!(later >= 58, "{later}");
    assert_eq!(m.first_contact_outcomes("derived"), m.first_contact_outcomes("unpaid") + 1);
    mallory.stop().await;
    net.shutdown().await;
}

/// Strangers' envelopes wait in their own lane, bounded per peer and in all, before
/// bob opens anything; a contact's device skips it, so alice's texts flow during a
/// flood from many PeerIds (decision 0063).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_wait_in_their_own_lane_and_contacts_skip_it() {
    use communitas_crypto::{Envelope, Identity, Kind, Letter};
    use communitas_net::Receipt;
    use communitas_types::{MessageId, Timestamp};

    let dir = tempfile::tempdir().unwrap();
    let net = Network::start(dir.path(), 1, &["alice", "bob"]).await;
    let (a, b) = (net.users[0].handle(), net.users[1].handle());
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    eventually(Duration::from_secs(20), || b.add_contact(a.address(), None)).await;
    // Alice's first text makes her device familiar to bob.
    a.send_text(b.address(), "first").await.unwrap();
    eventually(Duration::from_secs(20), || async {
        let history = b.history(a.address(), 10, None).await.map_err(|e| e.to_string())?;
        if history.is_empty() { Err("not yet".to_owned()) } else { Ok(()) }
    })
    .await;
    let bob_addrs = communitas_testkit::dial_addrs(&b).await;
    let bob_keys = b.identity().clone();
    const PEERS: usize = 8;
    const EACH: usize = 30;
    let mallories: Vec<_> =
        (0..PEERS).map(|_| communitas_testkit::BareClient::start(&[])).collect();
    let lane = |m: &communitas_node::Metrics| -> u64 {
        ["answered_at_once", "queued", "peer_share", "full"]
            .iter()
            .map(|o| m.lane_outcomes(o))
            .sum()
    };
    let before = lane(b.metrics());

    let flood: Vec<(usize, Vec<u8>)> = (0..PEERS * EACH)
        .map(|n| {
            let fresh = Identity::generate().unwrap();
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(n as u64).to_be_bytes());
            let letter = Letter {
                message_id: MessageId::from_bytes(id),
                timestamp: Timestamp::now(),
                kind: Kind::Text,
                body: b"buy now",
            };
            (n % PEERS, Envelope::seal(&fresh, &bob_keys, letter).unwrap().to_bytes())
        })
        .collect();
    let flooding = {
        let nets: Vec<_> = mallories.iter().map(|m| m.net.clone()).collect();
        let (peer, addrs) = (b.peer_id(), bob_addrs.clone());
        tokio::spawn(async move {
            let sends = flood.into_iter().map(|(i, e)| {
                let (net, addrs) = (nets[i].clone(), addrs.clone());
                async move { net.send(peer, addrs, e).await }
            });
            futures::future::join_all(sends).await
        })
    };
    for i in 0..20 {
        a.send_text(b.address(), &format!("alice {i}")).await.unwrap();
    }
    let answers = flooding.await.unwrap();
    let taken = answers.iter().filter(|r| matches!(r, Ok(Receipt::Delivered))).count();
    let busy = answers.iter().filter(|r| matches!(r, Ok(Receipt::Busy))).count();
    let m = b.metrics();
    let refused_early =
        m.lane_outcomes("peer_share") + m.lane_outcomes("full") + m.lane_outcomes("pushed_out");
    println!(
        "flood of {}: {taken} taken, {busy} busy, {refused_early} of them before opening",
        PEERS * EACH
    );
    assert!(taken <= 2, "unpaid first contacts get the slow lane: {taken}");
    // Every flood envelope passed through the lane, and nothing of alice's did.
    assert_eq!(lane(m) - before, (PEERS * EACH) as u64);
    // Most were turned away before bob opened them (at most 32 wait, 2 per peer, and
    // 2 are answered at once; the burst comes faster than bob answers).
    assert!(refused_early >= (PEERS * EACH / 2) as u64, "{refused_early}");

    let got = eventually(Duration::from_secs(30), || async {
        let history = b.history(a.address(), 100, None).await.map_err(|e| e.to_string())?;
        let texts = history.iter().filter(|m| m.system.is_none()).count();
        if texts >= 21 { Ok(history) } else { Err(format!("{texts}")) }
    })
    .await;
    let texts: Vec<String> =
        got.into_iter().filter(|m| m.system.is_none()).map(|m| m.text).skip(1).collect();
    let sent: Vec<String> = (0..20).map(|i| format!("alice {i}")).collect();
    assert_eq!(texts, sent, "every text of the contact, in order");
    for m in mallories {
        m.stop().await;
    }
    net.shutdown().await;
}
