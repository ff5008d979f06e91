//! Chaos on real processes (issue 4, item 6): 5 server nodes, alice, bob. Bob is
//! offline; alice sends 200 messages and is killed with SIGKILL half-way and
//! restarted (sizes from the environment for the larger benchmark run); once all are
//! stored in mailboxes, one mailbox holder is killed with SIGKILL; then bob starts. Bob's history
//! must hold exactly the 200 texts, each once, and alice must show all 200 delivered.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::daemon::{Daemon, http, init_all};
use super::{communitas, run, stderr, stdout};

/// Messages and sender kills; the larger run of the benchmarks sets these through
/// `COMMUNITAS_CHAOS_MESSAGES` and `COMMUNITAS_CHAOS_KILLS` (docs/benchmarks.md).
fn size() -> (usize, usize) {
    let get = |name: &str, default: usize| {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    (get("COMMUNITAS_CHAOS_MESSAGES", 200), get("COMMUNITAS_CHAOS_KILLS", 1))
}

/// The whole conversation, paging through the API 500 at a time.
fn history(node: &Daemon, peer: &str) -> Vec<Value> {
    let (api, token) = node.api();
    let mut all: Vec<Value> = Vec::new();
    let mut before = String::new();
    loop {
        let path = format!("/v1/conversations/{peer}/messages?limit=500{before}");
        let (code, body) = http(&api, "GET", &path, Some(&token));
        assert_eq!(code, 200, "{body}");
        let page: Vec<Value> = serde_json::from_str(&body).unwrap();
        let full = page.len() == 500;
        if let Some(oldest) = page.first() {
            before = format!("&before={}", oldest["id"].as_str().unwrap());
        }
        all.splice(0..0, page);
        if !full {
            return all;
        }
    }
}

#[test]
fn nothing_lost_nothing_doubled_through_kills_and_an_offline_recipient() {
    let (messages, kills) = size();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let homes = init_all(dir.path(), &["s0", "s1", "s2", "s3", "s4", "alice", "bob"]);
    let s0 = Daemon::start(&homes[0].0, true, None);
    let mut servers = vec![s0];
    for home in &homes[1..5] {
        let boot = servers[0].dial[0].clone();
        servers.push(Daemon::start(&home.0, true, Some(&boot)));
    }
    let (alice_home, alice_addr) = (&homes[5].0, homes[5].1.clone());
    let (bob_home, bob_addr) = (&homes[6].0, homes[6].1.clone());
    let boot_alice = servers[1].dial[0].clone();
    let boot_bob = servers[2].dial[0].clone();

    // Bob publishes his keys, alice pins them, bob goes offline.
    let bob = Daemon::start(bob_home, false, Some(&boot_bob));
    let mut alice = Daemon::start(alice_home, false, Some(&boot_alice));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = run(communitas(alice_home).args(["contacts", "add", &bob_addr]));
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "alice never found bob: {}", stderr(&out));
        std::thread::sleep(Duration::from_millis(300));
    }
    // Bob knows alice too: a stranger's messages would be a bounded request (issue 15).
    loop {
        let out = run(communitas(bob_home).args(["contacts", "add", &alice_addr]));
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "bob never found alice: {}", stderr(&out));
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(bob.stop());

    // The sends; SIGKILL right after every (messages / (kills + 1))th was accepted,
    // each followed by a restart.
    let mut accepted = Vec::new();
    let every = messages / (kills + 1);
    for i in 0..messages {
        if i > 0 && i % every == 0 && i / every <= kills {
            alice.kill9();
            alice = Daemon::start(alice_home, false, Some(&boot_alice));
        }
        let text = format!("chaos message {i:03}");
        let out = run(communitas(alice_home).args(["send", &bob_addr, &text, "--json"]));
        assert!(out.status.success(), "send {i}: {}", stderr(&out));
        let queued: Value = serde_json::from_str(&stdout(&out)).unwrap();
        accepted.push((queued["id"].as_str().unwrap().to_owned(), text));
    }
    // Every message waits in the mailboxes (alice's outbox has stored them all), so
    // that bob's catch-up below is measured from mailboxes alone.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let stored = history(&alice, &bob_addr).iter().filter(|m| m["status"] == "stored").count();
        if stored == messages {
            break;
        }
        assert!(Instant::now() < deadline, "alice stored {stored} of {messages} in mailboxes");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A mailbox holder dies without a word.
    servers.pop().unwrap().kill9();

    let bob = Daemon::start(bob_home, false, Some(&boot_bob));
    let online = Instant::now();
    let deadline = online + Duration::from_secs(90);
    let received = loop {
        let got = history(&bob, &alice_addr);
        if got.len() >= messages || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let all_in_bob = online.elapsed();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for m in &received {
        *counts.entry(m["text"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    for (_, text) in &accepted {
        assert_eq!(counts.get(text), Some(&1), "{text:?} must arrive exactly once");
    }
    assert_eq!(received.len(), messages, "nothing else arrived");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mine = history(&alice, &bob_addr);
        let delivered = mine.iter().filter(|m| m["status"] == "delivered").count();
        if delivered == messages {
            break;
        }
        assert!(Instant::now() < deadline, "alice shows {delivered} of {messages} delivered");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "chaos: {messages} messages, {kills} sender kills, 1 holder killed: all in bob's history \
         {all_in_bob:?} after he came online, all delivered {:?} after; whole run {:?}",
        online.elapsed(),
        started.elapsed()
    );
    for d in [bob, alice] {
        assert!(d.stop());
    }
    for s in servers {
        assert!(s.stop());
    }
}
