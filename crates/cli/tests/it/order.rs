//! Issue 23 item 1's acceptance: a conversation in the order it was written, the same
//! at both ends — 500 texts sent as fast as the API takes them, some through the
//! mailboxes while the receiver is down (killed with SIGKILL and restarted midway),
//! with replies interleaved: both ends list the 500 as 1…500 and the whole
//! conversation alike.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::chaos::{history_all, send, settled};
use super::daemon::{Daemon, add_contact, init_all};

#[test]
fn five_hundred_texts_keep_their_order_through_mailboxes_and_a_restart() {
    let total = 500;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let homes = init_all(dir.path(), &["s0", "s1", "s2", "alice", "bob"]);
    let mut servers = vec![Daemon::start(&homes[0].0, true, None)];
    for home in &homes[1..3] {
        let boot = servers[0].dial[0].clone();
        servers.push(Daemon::start(&home.0, true, Some(&boot)));
    }
    let (alice_home, alice_addr) = (&homes[3].0, homes[3].1.clone());
    let (bob_home, bob_addr) = (&homes[4].0, homes[4].1.clone());
    let (boot_a, boot_b) = (servers[1].dial[0].clone(), servers[2].dial[0].clone());
    let alice = Daemon::start(alice_home, false, Some(&boot_a));
    let mut bob = Some(Daemon::start(bob_home, false, Some(&boot_b)));
    add_contact(alice_home, &bob_addr);
    add_contact(bob_home, &alice_addr);

    // 1…150 with bob online, answering now and then; bob killed; 151…350 to the
    // mailboxes; bob back (his restart overlapping the burst); 351…500.
    let texts: Vec<String> = (1..=total).map(|i| format!("text {i:03}")).collect();
    let mut replies = Vec::new();
    let burst = Instant::now();
    for (i, text) in texts.iter().enumerate() {
        let n = i + 1;
        if n == 151 {
            bob.take().unwrap().kill9();
        }
        if n == 351 {
            bob = Some(Daemon::start(bob_home, false, Some(&boot_b)));
        }
        send(&alice, &bob_addr, text);
        if let Some(bob) = bob.as_ref().filter(|_| n % 50 == 25) {
            // An answer to what bob has read: he has text n when he writes it.
            settled(bob, &alice_addr, "in", n, Duration::from_secs(120));
            let reply = format!("reply after {n}");
            send(bob, &alice_addr, &reply);
            replies.push(reply);
        }
    }
    let burst = burst.elapsed();
    let bob = bob.unwrap();
    let limit = Duration::from_secs(240);
    let at_bob = settled(&bob, &alice_addr, "in", total, limit);
    assert_eq!(at_bob, texts, "bob lists alice's texts 1…500");
    let at_alice = settled(&alice, &bob_addr, "out", total, limit);
    assert_eq!(at_alice, texts, "alice lists them 1…500");
    settled(&bob, &alice_addr, "out", replies.len(), limit);
    assert_eq!(settled(&alice, &bob_addr, "in", replies.len(), limit), replies);

    // The whole conversation, both sides' messages: the same at both ends.
    let conversation = |node: &Daemon, peer: &str| -> Vec<(String, String)> {
        let author = |m: &Value| m["from"].as_str().unwrap().to_owned();
        history_all(node, peer)
            .iter()
            .map(|m| (author(m), m["text"].as_str().unwrap().to_owned()))
            .collect()
    };
    let (seen_by_alice, seen_by_bob) =
        (conversation(&alice, &bob_addr), conversation(&bob, &alice_addr));
    assert_eq!(seen_by_alice.len(), total + replies.len());
    assert_eq!(seen_by_alice, seen_by_bob, "both ends show the same conversation");
    // A reply comes after the text it answers, at both ends.
    for reply in &replies {
        let after: usize = reply.trim_start_matches("reply after ").parse().unwrap();
        let at = seen_by_bob.iter().position(|(_, t)| t == reply).unwrap();
        let answered = seen_by_bob.iter().position(|(_, t)| *t == texts[after - 1]).unwrap();
        assert!(answered < at, "{reply} after {}", texts[after - 1]);
    }
    // And the pages an API client reads carry the order.
    let positions: Vec<i64> =
        history_all(&bob, &alice_addr).iter().map(|m| m["position"].as_i64().unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] <= w[1]), "history is listed by position");
    println!(
        "order: {total} texts (+{} replies), burst {burst:?}, all settled in {:?}",
        replies.len(),
        started.elapsed()
    );
    for node in [alice, bob] {
        node.stop();
    }
    for server in servers {
        server.stop();
    }
}
