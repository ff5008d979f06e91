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
pub(super) fn history_all(node: &Daemon, peer: &str) -> Vec<Value> {
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
            // Messages only: a session started again after a kill adds a line of the
            // node's own (`system`) on one end.
            all.retain(|m| m.get("system").is_none());
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
        let stored =
            history_all(&alice, &bob_addr).iter().filter(|m| m["status"] == "stored").count();
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
        let got = history_all(&bob, &alice_addr);
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
        let mine = history_all(&alice, &bob_addr);
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

/// Sends a text through the API (waiting out the send rate limit); the accepted id.
pub(super) fn send(node: &Daemon, to: &str, text: &str) -> String {
    let (api, token) = node.api();
    let auth = format!("Bearer {token}");
    let body = serde_json::json!({ "to": to, "text": text }).to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = super::daemon::request(
            &api,
            "POST",
            "/v1/messages",
            &[("Authorization", &auth)],
            Some(&body),
        );
        if answer.code == 202 {
            return answer.json()["id"].as_str().unwrap().to_owned();
        }
        assert!(answer.code == 429 && Instant::now() < deadline, "send: {}", answer.body);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `node`'s conversation with `peer` holds `n` texts in `direction`
/// (`in`/`out`) and, for `out`, all of them delivered; returns the texts.
pub(super) fn settled(
    node: &Daemon,
    peer: &str,
    direction: &str,
    n: usize,
    limit: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let all = history_all(node, peer);
        let mine: Vec<&Value> = all.iter().filter(|m| m["direction"] == direction).collect();
        let done = if direction == "out" {
            mine.iter().filter(|m| m["status"] == "delivered").count()
        } else {
            mine.len()
        };
        if done >= n {
            return mine.iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect();
        }
        assert!(Instant::now() < deadline, "{done} of {n} {direction} after {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Issue 14 item 6 and 8: both ends killed with SIGKILL during a two-way burst (1,000
/// texts by default, `COMMUNITAS_CHAOS_TWO_WAY`), sessions on: every text arrives
/// exactly once, each side shows all of its own delivered, and the sessions keep
/// working after (no desync).
#[test]
fn a_two_way_burst_survives_both_ends_killed() {
    let total: usize = std::env::var("COMMUNITAS_CHAOS_TWO_WAY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let each = total / 2;
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
    let mut alice = Daemon::start(alice_home, false, Some(&boot_a));
    let mut bob = Daemon::start(bob_home, false, Some(&boot_b));
    super::daemon::add_contact(alice_home, &bob_addr);
    super::daemon::add_contact(bob_home, &alice_addr);

    let (mut to_bob, mut to_alice) = (Vec::new(), Vec::new());
    for i in 0..each {
        // SIGKILL mid-burst, while the other side's texts stream in: alice at a third,
        // bob at two thirds, each restarted at once.
        if i == each / 3 {
            alice.kill9();
            alice = Daemon::start(alice_home, false, Some(&boot_a));
        }
        if i == 2 * each / 3 {
            bob.kill9();
            bob = Daemon::start(bob_home, false, Some(&boot_b));
        }
        let (ta, tb) = (format!("alice to bob {i:04}"), format!("bob to alice {i:04}"));
        send(&alice, &bob_addr, &ta);
        send(&bob, &alice_addr, &tb);
        to_bob.push(ta);
        to_alice.push(tb);
    }
    let limit = Duration::from_secs(180);
    let at_bob = settled(&bob, &alice_addr, "in", each, limit);
    let at_alice = settled(&alice, &bob_addr, "in", each, limit);
    for (got, sent) in [(&at_bob, &to_bob), (&at_alice, &to_alice)] {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for text in got {
            *counts.entry(text).or_default() += 1;
        }
        for text in sent {
            assert_eq!(counts.get(text.as_str()), Some(&1), "{text:?} must arrive exactly once");
        }
        assert_eq!(got.len(), sent.len(), "nothing else arrived");
    }
    settled(&alice, &bob_addr, "out", each, limit);
    settled(&bob, &alice_addr, "out", each, limit);
    // No desync: one more each way after it all.
    send(&alice, &bob_addr, "after the storm");
    send(&bob, &alice_addr, "calm again");
    assert!(settled(&bob, &alice_addr, "in", each + 1, limit).contains(&"after the storm".into()));
    assert!(settled(&alice, &bob_addr, "in", each + 1, limit).contains(&"calm again".into()));
    let metrics = |d: &Daemon| {
        let (api, token) = d.api();
        http(&api, "GET", "/metrics", Some(&token)).1
    };
    let sealed: Vec<String> = [&alice, &bob]
        .iter()
        .map(|d| {
            metrics(d)
                .lines()
                .filter(|l| {
                    l.starts_with("communitas_sessions_total")
                        || l.starts_with("communitas_sealed_v1")
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .collect();
    // Kills never desynchronise a session (its state commits with each message):
    // old envelopes retried after a lost receipt are sealed again, nothing is reset.
    for line in &sealed {
        assert!(!line.contains("event=\"reset\""), "a session was reset: {line}");
    }
    eprintln!(
        "two-way chaos: {total} texts, alice and bob each killed once: all delivered, each \
         once, in {:?}; since the restarts: {sealed:?}",
        started.elapsed()
    );
    for d in [alice, bob] {
        assert!(d.stop());
    }
    for s in servers {
        assert!(s.stop());
    }
}
