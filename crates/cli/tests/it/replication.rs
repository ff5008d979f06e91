//! Server-side re-replication on real processes (issue 4, decision 0020): the sender
//! leaves for good after its messages are stored; the mailbox holders are killed one
//! by one, each time after the others restored R copies; bob still gets every
//! message exactly once. Then a holder that missed bob's acknowledgement (stopped with
//! SIGSTOP while he fetched) offers the envelopes again, and the holders bob acked
//! refuse them (their tombstones) instead of taking delivered mail back.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::daemon::{Daemon, assert_each_once, history, mailboxes, metric, wait_for};
use super::{communitas, run, stderr, stdout};

/// Copies of each envelope the servers keep (`mailbox::REPLICAS`).
const R: usize = 5;
const MESSAGES: usize = 5;
const SERVERS: usize = 8;

fn gauge(node: &Daemon, name: &str) -> f64 {
    let (api, token) = node.api();
    metric(&api, &token, name)
}

/// Indices of the live servers that keep all the messages.
fn holders(servers: &[Option<Daemon>]) -> Vec<usize> {
    servers
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
        .filter(|(_, s)| gauge(s, "communitas_mailbox_envelopes") >= MESSAGES as f64)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn holders_restore_copies_as_they_die_and_acked_mail_stays_gone() {
    let dir = tempfile::tempdir().unwrap();
    let world = mailboxes(dir.path(), SERVERS, &["--replicate-every", "1"]);
    let (mut servers, alice) = (world.servers, world.alice);
    let (alice_home, alice_addr) = (world.alice_home, world.alice_addr);
    let (bob_home, bob_addr) = (world.bob_home, world.bob_addr);

    // Alice's messages reach the mailboxes; then she is gone for good.
    let mut texts = Vec::new();
    for i in 0..MESSAGES - 1 {
        let text = format!("replicated message {i}");
        let out = run(communitas(&alice_home).args(["send", &bob_addr, &text, "--json"]));
        assert!(out.status.success(), "send {i}: {}", stderr(&out));
        let _: Value = serde_json::from_str(&stdout(&out)).unwrap();
        texts.push(text);
    }
    // Bob is offline: waiting runs out, and says the message is queued, not lost.
    let text = format!("replicated message {}", MESSAGES - 1);
    let out = run(communitas(&alice_home).args(["send", &bob_addr, &text, "--wait", "1"]));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("but queued") && stderr(&out).contains("do not send it again"));
    texts.push(text);
    wait_for("alice's messages to be stored", Duration::from_secs(60), || {
        history(&alice, &bob_addr).iter().filter(|m| m["status"] == "stored").count() == MESSAGES
    });
    alice.kill9();

    // Kill a holder, wait for the others to restore R copies (or as many as there are
    // servers left), again, until every original holder is gone.
    wait_for("R holders", Duration::from_secs(30), || holders(&servers).len() >= R);
    let original = holders(&servers);
    for (round, victim) in original.iter().enumerate() {
        servers[*victim].take().unwrap().kill9();
        let live = servers.iter().flatten().count();
        let started = Instant::now();
        wait_for(
            &format!("copies restored after kill {}", round + 1),
            Duration::from_secs(60),
            || holders(&servers).len() >= R.min(live),
        );
        eprintln!(
            "kill {}: {} holders again after {:?}",
            round + 1,
            R.min(live),
            started.elapsed()
        );
    }
    let survivors: Vec<usize> = holders(&servers);
    assert_eq!(survivors.len(), SERVERS - original.len(), "every survivor keeps a copy");
    assert!(survivors.iter().all(|i| !original.contains(i)));

    // One holder sleeps through bob's fetch and acknowledgements.
    let sleeper = survivors[0];
    servers[sleeper].as_ref().unwrap().signal("STOP");
    let awake: Vec<usize> = survivors[1..].to_vec();
    let boot_bob = servers[awake[0]].as_ref().unwrap().dial[0].clone();
    let bob = Daemon::start(&bob_home, false, Some(&boot_bob));
    let online = Instant::now();
    wait_for("bob's history", Duration::from_secs(90), || {
        history(&bob, &alice_addr).len() >= MESSAGES
    });
    eprintln!("all in bob's history {:?} after he came online", online.elapsed());

    // Awake again, it offers what bob already acknowledged at the others: refused.
    let refused_before: f64 = awake
        .iter()
        .map(|i| gauge(servers[*i].as_ref().unwrap(), "communitas_mailbox_acked_refused_total"))
        .sum();
    let (bob_api, bob_token) = bob.api();
    let dups_before = metric(&bob_api, &bob_token, "communitas_messages_duplicate_total");
    // Bob's history can be complete before his round gave up on the sleeper (each
    // holder is waited for 1.5 s): woken sooner, it would still answer that fetch and
    // take bob's acks, and have nothing left to offer.
    std::thread::sleep(2 * communitas_net::mbox::client::REQUEST_DEADLINE);
    servers[sleeper].as_ref().unwrap().signal("CONT");
    wait_for("the awake holders to refuse acked envelopes", Duration::from_secs(30), || {
        let refused: f64 = awake
            .iter()
            .map(|i| gauge(servers[*i].as_ref().unwrap(), "communitas_mailbox_acked_refused_total"))
            .sum();
        refused >= refused_before + MESSAGES as f64
    });
    eprintln!("acked envelopes refused {:?} after bob came online", online.elapsed());
    // Bob's next look at the sleeper finds its copies and drops them as duplicates.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&bob_api, &bob_token, "communitas_messages_duplicate_total") <= dups_before
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(250));
    }

    eprintln!("bob dropped the sleeper's copies {:?} after he came online", online.elapsed());
    let received = history(&bob, &alice_addr);
    assert_each_once(&received, &texts);
    assert!(bob.stop());
    for s in servers.into_iter().flatten() {
        assert!(s.stop());
    }
}
