//! Sessions in the node (issue 14 phase 2, decision 0053): with `Config::sessions`
//! on, the identity record carries this device's prekey bundle, kept across restarts.

use std::time::Duration;

use communitas_node::{Config, Handle};
use communitas_store::Direction;
use communitas_testkit::{BareClient, Network, Seeds, eventually};

fn sessions_on() -> Config {
    Config { sessions: true, ..Config::default() }
}

fn sessions_off() -> Config {
    Config { sessions: false, ..Config::default() }
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
    let alice = communitas_testkit::memory_node_configured(
        dir.path(),
        "alice",
        false,
        &boot,
        sessions_off(),
    )
    .await;
    let (bob_address, bob_peer) = (bob.handle().address(), bob.handle().peer_id());
    let client = BareClient::start(&boot);

    let first = eventually(Duration::from_secs(10), || client.net.resolve(bob_address)).await;
    assert_eq!(first.len(), 1);
    let device = &first[0].devices[0];
    assert_eq!(device.peer_id, bob_peer);
    let bundle = device.prekeys.clone().expect("sessions on: the record carries a bundle");
    assert_eq!(first[0].to_bytes()[0], communitas_crypto::record::VERSION);

    // Sessions off: a version-1 record, as before.
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

/// Three server nodes and their first dial address.
async fn servers(dir: &std::path::Path) -> (Network, Vec<communitas_net::libp2p::Multiaddr>) {
    let net = Network::start(dir, 3, &[]).await;
    let boot = communitas_testkit::dial_addrs(&net.servers[0].handle()).await;
    (net, boot)
}

/// A user node with sessions on, made from `seeds` (the same seeds and `dir`: the same
/// node, restarted).
async fn user(
    dir: &std::path::Path,
    boot: &[communitas_net::libp2p::Multiaddr],
    name: &'static str,
    seeds: Seeds,
) -> communitas_node::Node {
    communitas_testkit::memory_node_seeded(dir, name, false, boot, seeds, sessions_on()).await
}

/// Makes `a` and `b` each other's contacts (once their records are in the DHT).
async fn befriend(a: &Handle, b: &Handle) {
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    eventually(Duration::from_secs(20), || b.add_contact(a.address(), None)).await;
}

/// The texts of `of`'s conversation with `with`, by direction, in stored order.
async fn texts(of: &Handle, with: &Handle, direction: Direction) -> Vec<String> {
    let history = of.history(with.address(), 1_000, None).await.unwrap();
    // Messages only: a system line is the node's own, not a text of either side.
    let messages = history.into_iter().filter(|m| m.system.is_none());
    messages.filter(|m| m.direction == direction).map(|m| m.text).collect()
}

/// Waits until `of` has `n` texts from `with`.
async fn received(of: &Handle, with: &Handle, n: usize) -> Vec<String> {
    eventually(Duration::from_secs(40), || async {
        let got = texts(of, with, Direction::In).await;
        if got.len() >= n { Ok(got) } else { Err(format!("{} of {n}", got.len())) }
    })
    .await
}

/// `of`'s conversation with `with` as (author, text), in its order.
async fn conversation(of: &Handle, with: &Handle) -> Vec<(String, String)> {
    let history = of.history(with.address(), 1_000, None).await.unwrap();
    history.into_iter().map(|m| (m.from.to_string(), m.text)).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Issue 14 items 3, 5, 7: with sessions on, texts and receipts ride sessions both
/// ways, directly and through mailboxes; the sessions survive a restart; a node with
/// sessions off still talks to one with them on (version 1 still opens).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_ride_sessions_both_ways_through_mailboxes_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (net, boot) = servers(dir.path()).await;
    let start = |name: &'static str, seeds: Seeds| user(dir.path(), &boot, name, seeds);
    let bob_seeds = Seeds::random();
    let alice = start("alice", Seeds::random()).await;
    let bob = start("bob", bob_seeds).await;
    let (a, b) = (alice.handle(), bob.handle());
    befriend(&a, &b).await;

    // 50 texts each way, sent at once.
    let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
    for i in 0..50 {
        let (ta, tb) = (format!("a→b {i}"), format!("b→a {i}"));
        let (sa, sb) = tokio::join!(a.send_text(b.address(), &ta), b.send_text(a.address(), &tb));
        sa.unwrap();
        sb.unwrap();
        from_a.push(ta);
        from_b.push(tb);
    }
    // Each side's texts in the order they were written, and both ends show the same
    // conversation (issue 23 item 1).
    assert_eq!(received(&b, &a, 50).await, from_a);
    assert_eq!(received(&a, &b, 50).await, from_b);
    assert_eq!(conversation(&a, &b).await, conversation(&b, &a).await, "the same at both ends");
    for h in [&a, &b] {
        let m = h.metrics();
        println!(
            "{}: sealed {} opened {} initiated {} accepted {} refused {}; version 1 sealed {}",
            h.name().unwrap_or_else(|| "?".into()),
            m.session_events("sealed"),
            m.session_events("opened"),
            m.session_events("initiated"),
            m.session_events("accepted"),
            m.session_events("refused"),
            m.sealed_v1.get(),
        );
        assert!(m.session_events("sealed") >= 50, "every text rode a session");
        assert!(m.session_events("opened") >= 50);
        assert_eq!(m.session_events("refused"), 0);
    }

    // Bob goes offline: alice's texts wait in mailboxes, sealed by the session.
    bob.shutdown().await;
    // What a session costs in the database (issue 14's budget: measured): the row as
    // stored, sealed at rest, after 50 texts each way.
    let db = rusqlite::Connection::open(dir.path().join("bob.db")).unwrap();
    let rows: Vec<i64> = db
        .prepare("SELECT length(state) FROM sessions")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    drop(db);
    println!("session state per contact in the database: {rows:?} bytes");
    assert_eq!(rows.len(), 1, "one session row for alice's one device");
    assert!(rows[0] < 16 * 1024, "{rows:?}");
    let mut offline = Vec::new();
    for i in 0..5 {
        let text = format!("while away {i}");
        a.send_text(b.address(), &text).await.unwrap();
        offline.push(text);
    }
    a.send_text(b.address(), "0123456789").await.unwrap();
    offline.push("0123456789".to_owned());
    let sizes = eventually(Duration::from_secs(30), || async {
        let outbox = a.outbox().await.map_err(|e| e.to_string())?;
        let ten = outbox.iter().find(|e| e.envelope.len() < 512).map(|e| e.envelope.len());
        ten.ok_or_else(|| format!("{} queued, no small envelope", outbox.len()))
    })
    .await;
    let warm = a.outbox().await.unwrap().iter().map(|e| e.envelope.len()).min().unwrap();
    println!("warm 10-byte text in a mailbox: {warm} bytes (direct form {} bytes)", warm - 32);
    assert!(sizes <= 512 && warm <= 512, "a warm text fits the mailbox budget: {warm}");
    // Mailbox id, session header and tag, letter, its stamp (issue 23 item 1), text.
    assert_eq!(warm, 2 + 32 + 101 + 27 + 16 + 10, "mailbox form of a warm 10-byte text");

    // Back, bob reads them from the mailboxes with the session he stored.
    let bob = start("bob", bob_seeds).await;
    let b = bob.handle();
    let got = received(&b, &a, 56).await;
    assert_eq!(got[50..], offline[..], "in the order written, after the restart");
    assert_eq!(got.len(), 56, "nothing twice");
    assert_eq!(b.metrics().session_events("refused"), 0);
    assert_eq!(b.metrics().session_events("accepted"), 0, "the stored session, not a new one");
    b.send_text(a.address(), "back").await.unwrap();
    assert!(received(&a, &b, 51).await.contains(&"back".to_owned()));

    // A node with sessions off: version 1 both ways.
    let carol = communitas_testkit::memory_node_configured(
        dir.path(),
        "carol",
        false,
        &boot,
        sessions_off(),
    )
    .await;
    let c = carol.handle();
    befriend(&b, &c).await;
    c.send_text(b.address(), "v1 to bob").await.unwrap();
    b.send_text(c.address(), "v1 to carol").await.unwrap();
    assert_eq!(received(&b, &c, 1).await, ["v1 to bob"]);
    assert_eq!(received(&c, &b, 1).await, ["v1 to carol"]);

    for node in [alice, bob, carol] {
        node.shutdown().await;
    }
    net.shutdown().await;
}

/// Issue 14 item 6: a device that lost its session state (here: its `sessions` rows
/// deleted while it was off, as a restore from an old copy would) gets a new session
/// without anyone doing anything, and what was not acknowledged is sealed again and
/// arrives, each message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_lost_its_sessions_heals_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (net, boot) = servers(dir.path()).await;
    let start = |name: &'static str, seeds: Seeds| user(dir.path(), &boot, name, seeds);
    let bob_seeds = Seeds::random();
    let alice = start("alice", Seeds::random()).await;
    let bob = start("bob", bob_seeds).await;
    let (a, b) = (alice.handle(), bob.handle());
    befriend(&a, &b).await;
    a.send_text(b.address(), "before").await.unwrap();
    b.send_text(a.address(), "reply").await.unwrap();
    received(&b, &a, 1).await;
    received(&a, &b, 1).await;

    // Bob stops; alice writes (into mailboxes, with the session bob is about to lose).
    bob.shutdown().await;
    // Resets alice announces, collected as they come (a burst of other events must
    // not push them out of the channel).
    let resets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut events = a.subscribe();
    let collected = resets.clone();
    let watcher = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(communitas_node::Event::SessionReset { peer }) => {
                    collected.lock().unwrap().push(peer);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
    let mut lost = Vec::new();
    for i in 0..3 {
        let text = format!("sealed with the lost session {i}");
        a.send_text(b.address(), &text).await.unwrap();
        lost.push(text);
    }
    eventually(Duration::from_secs(30), || async {
        let outbox = a.outbox().await.map_err(|e| e.to_string())?;
        let stored = outbox.iter().filter(|e| e.last_error.is_some()).count();
        if stored >= 3 { Ok(()) } else { Err(format!("{stored} of 3 left in mailboxes")) }
    })
    .await;
    let db = rusqlite::Connection::open(dir.path().join("bob.db")).unwrap();
    let wiped = db.execute("DELETE FROM sessions", []).unwrap();
    assert!(wiped >= 1, "bob had a session to lose");
    drop(db);

    let bob = start("bob", bob_seeds).await;
    let b = bob.handle();
    let got = received(&b, &a, 4).await;
    for text in &lost {
        assert_eq!(got.iter().filter(|t| *t == text).count(), 1, "{text} arrived once");
    }
    // Both ways work on the healed session, and nothing shows twice.
    a.send_text(b.address(), "after").await.unwrap();
    b.send_text(a.address(), "after too").await.unwrap();
    assert_eq!(received(&b, &a, 5).await.len(), 5);
    assert_eq!(received(&a, &b, 2).await.len(), 2);
    let (ma, mb) = (a.metrics(), b.metrics());
    println!(
        "alice: resets {} resealed {} sealed {} initiated {} accepted {}; bob: refused {} initiated {} accepted {}",
        ma.session_events("reset"),
        ma.session_events("resealed"),
        ma.session_events("sealed"),
        ma.session_events("initiated"),
        ma.session_events("accepted"),
        mb.session_events("refused"),
        mb.session_events("initiated"),
        mb.session_events("accepted"),
    );
    assert!(ma.session_events("resealed") >= 3, "the three lost messages were sealed again");
    // Healing came from one of two sides: alice's outbox sealing again after bob's
    // "no session" (a reset), or bob's new session reaching alice first.
    let announced = resets.lock().unwrap().clone();
    assert_eq!(announced.len() as u64, ma.session_events("reset"), "each reset is announced");
    assert!(announced.iter().all(|peer| *peer == b.address()));
    // Alice's reset shows in her conversation as one system line, already read (one
    // per session lost, however many messages were sealed again); none when bob's new
    // session reached her first (that looks like a late simultaneous start).
    let history = a.history(b.address(), 1_000, None).await.unwrap();
    let lines: Vec<_> = history.iter().filter(|m| m.system.is_some()).collect();
    println!(
        "system lines in alice's conversation: {} (resets {}, sessions replaced: {})",
        lines.len(),
        announced.len(),
        ma.session_events("replaced")
    );
    assert_eq!(!lines.is_empty(), !announced.is_empty(), "a line if and only if a reset");
    assert!(lines.len() <= 1, "the lost session is said once");
    for line in &lines {
        assert_eq!(line.system, Some("session_reset"));
        assert_eq!(line.status, communitas_store::Status::Read);
        assert!(line.text.is_empty());
    }
    let unread = a.conversations().await.unwrap();
    let unread = unread.iter().find(|c| c.peer == b.address()).map_or(0, |c| c.unread);
    let messages_unread = history
        .iter()
        .filter(|m| m.system.is_none() && m.direction == communitas_store::Direction::In)
        .filter(|m| m.status != communitas_store::Status::Read)
        .count();
    assert_eq!(unread as usize, messages_unread, "a system line is nothing unread");
    watcher.abort();
    for node in [alice, bob] {
        node.shutdown().await;
    }
    net.shutdown().await;
}

/// Issue 14's budget "first message to a new contact: bytes": the first text to a
/// contact who never answered carries the handshake and our intro (our signed record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_message_to_a_new_contact_carries_the_handshake_and_the_intro() {
    let dir = tempfile::tempdir().unwrap();
    let (net, boot) = servers(dir.path()).await;
    let alice = communitas_testkit::memory_node_configured(
        dir.path(),
        "alice",
        false,
        &boot,
        sessions_on(),
    )
    .await;
    let bob =
        communitas_testkit::memory_node_configured(dir.path(), "bob", false, &boot, sessions_on())
            .await;
    let (a, b) = (alice.handle(), bob.handle());
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    bob.shutdown().await;
    a.send_text(b.address(), "0123456789").await.unwrap();
    let first = eventually(Duration::from_secs(30), || async {
        let outbox = a.outbox().await.map_err(|e| e.to_string())?;
        outbox.first().map(|e| e.envelope.clone()).ok_or_else(|| "not queued".to_string())
    })
    .await;
    let client = BareClient::start(&boot);
    let records = eventually(Duration::from_secs(10), || client.net.resolve(a.address())).await;
    let record = records[0].to_bytes().len();
    client.stop().await;
    println!(
        "first 10-byte text to a new contact: {} bytes in a mailbox (our record, the intro: {} bytes)",
        first.len(),
        record
    );
    assert_eq!(first[..2], [2, 3], "a version-2 mailbox envelope");
    let init = communitas_crypto::handshake::MAX_LEN - 4;
    assert!(first.len() > 2 + 32 + init + record, "{} bytes", first.len());
    assert!(first.len() < 2 + 32 + init + record + 200, "{} bytes", first.len());
    assert_eq!(a.metrics().session_events("initiated"), 1);
    alice.shutdown().await;
    net.shutdown().await;
}

/// Hostile bytes in the version-2 form (issue 14 item 8, house rule: typed errors,
/// nothing changed): truncated, unknown forms, another mailbox, junk behind a valid
/// form, and a real session envelope replayed from another peer's connection — each
/// refused with a typed receipt, and the contact's texts go on arriving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_session_envelopes_are_refused_and_the_contact_s_texts_flow() {
    use communitas_net::{Receipt, Rejection};

    let dir = tempfile::tempdir().unwrap();
    let (net, boot) = servers(dir.path()).await;
    let start = |name: &'static str, seeds: Seeds| user(dir.path(), &boot, name, seeds);
    let bob_seeds = Seeds::random();
    let alice = start("alice", Seeds::random()).await;
    let bob = start("bob", bob_seeds).await;
    let (a, b) = (alice.handle(), bob.handle());
    befriend(&a, &b).await;
    a.send_text(b.address(), "first").await.unwrap();
    received(&b, &a, 1).await;
    // Bob answers: alice's session has its first reply, so from then on her envelopes
    // are plain messages, which only the connection's device slot may open (an initial
    // message is routed by its handshake id from any connection, and a copy of one
    // that alice's outbox already delivered again would be answered as a duplicate).
    b.send_text(a.address(), "hi alice").await.unwrap();
    received(&a, &b, 1).await;

    // A real envelope of alice's session, captured while bob is away.
    bob.shutdown().await;
    a.send_text(b.address(), "captured").await.unwrap();
    let captured = eventually(Duration::from_secs(30), || async {
        let outbox = a.outbox().await.map_err(|e| e.to_string())?;
        outbox.first().map(|e| e.envelope.clone()).ok_or_else(|| "not queued".to_string())
    })
    .await;
    let bob = start("bob", bob_seeds).await;
    let b = bob.handle();
    let bob_addrs = communitas_testkit::dial_addrs(&b).await;
    let attacker = BareClient::start(&boot);
    let send = |bytes: Vec<u8>| {
        let (net, addrs, peer) = (attacker.net.clone(), bob_addrs.clone(), b.peer_id());
        async move { net.send(peer, addrs, bytes).await.unwrap() }
    };
    let mut junk = vec![2, 1];
    junk.extend(std::iter::repeat_n(0xa5, 300));
    let mut other_mailbox = vec![2, 3];
    other_mailbox.extend([7; 32]);
    other_mailbox.extend(std::iter::repeat_n(0x5a, 200));
    let mut replayed = vec![2, 1];
    replayed.extend(&captured[34..]);
    let cases: Vec<(&str, Vec<u8>, Receipt)> = vec![
        ("truncated", vec![2, 1], Receipt::Rejected(Rejection::Invalid)),
        ("unknown form", vec![2, 9, 1, 2, 3], Receipt::Rejected(Rejection::Invalid)),
        ("junk behind the direct form", junk, Receipt::Rejected(Rejection::Invalid)),
        ("another mailbox", other_mailbox, Receipt::Rejected(Rejection::WrongRecipient)),
        ("replayed from another peer", replayed, Receipt::Rejected(Rejection::NoSession)),
    ];
    let refused_before = b.metrics().session_events("refused");
    for (what, bytes, expected) in cases {
        assert_eq!(send(bytes).await, expected, "{what}");
    }
    assert_eq!(b.metrics().session_events("refused") - refused_before, 5);
    // The session is untouched: alice's captured text and a new one arrive, once each.
    a.send_text(b.address(), "still here").await.unwrap();
    let got = received(&b, &a, 3).await;
    assert_eq!(sorted(got), ["captured", "first", "still here"]);

    attacker.stop().await;
    for node in [alice, bob] {
        node.shutdown().await;
    }
    net.shutdown().await;
}

/// Issue 14 item 1 (decision 0064): each device leaves one-time prekeys at its mailbox
/// servers after its first look there; a new contact's first message starts its
/// session with one of each kind, claimed from a server (which hands it out once), and
/// the receiver deletes their secrets once that session is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_message_starts_its_session_with_one_time_prekeys_from_the_mailbox_servers() {
    let dir = tempfile::tempdir().unwrap();
    let (net, boot) = servers(dir.path()).await;
    let alice = communitas_testkit::memory_node_configured(
        dir.path(),
        "alice",
        false,
        &boot,
        sessions_on(),
    )
    .await;
    let bob =
        communitas_testkit::memory_node_configured(dir.path(), "bob", false, &boot, sessions_on())
            .await;
    let (a, b) = (alice.handle(), bob.handle());
    let metric = |h: &Handle, event: &'static str| {
        let h = h.clone();
        move || {
            let h = h.clone();
            async move {
                let n = h.metrics().session_events(event);
                if n >= 1 { Ok(n) } else { Err(format!("no {event} yet")) }
            }
        }
    };
    // Bob's first look in his mailboxes leaves prekeys there.
    eventually(Duration::from_secs(30), metric(&b, "one_time_deposited")).await;
    eventually(Duration::from_secs(20), || a.add_contact(b.address(), None)).await;
    eventually(Duration::from_secs(20), metric(&a, "one_time_claimed")).await;
    let claimed: u64 =
        net.servers.iter().map(|s| s.handle().metrics().held_prekey_events("claimed")).sum();
    assert_eq!(claimed, 2, "one of each kind, handed out once");

    a.send_text(b.address(), "first, with one-time prekeys").await.unwrap();
    eventually(Duration::from_secs(20), metric(&b, "one_time_used")).await;
    assert_eq!(a.metrics().session_events("initiated_one_time"), 1);
    assert_eq!(b.metrics().session_events("one_time_used"), 1);
    let requests = b.requests().await.unwrap();
    assert_eq!(requests.len(), 1, "alice's first message is a request at bob's");

    // A session with the device now: a second lookup of bob claims nothing more.
    b.add_contact(a.address(), None).await.unwrap();
    a.send_text(b.address(), "second").await.unwrap();
    received(&b, &a, 2).await;
    let claimed: u64 =
        net.servers.iter().map(|s| s.handle().metrics().held_prekey_events("claimed")).sum();
    assert!(claimed <= 4, "{claimed}: alice claimed once (bob may have claimed alice's)");
    assert_eq!(a.metrics().session_events("one_time_claimed"), 1);
    alice.shutdown().await;
    bob.shutdown().await;
    net.shutdown().await;
}
