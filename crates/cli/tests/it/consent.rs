//! Message requests and blocking across real processes (issue 15): a stranger's
//! message is a request; accepting it makes a contact whose presence flows both ways
//! at once (within a second, not a heartbeat later); a block drops what follows.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::daemon::{Daemon, add_contact, init_all, metric};
use super::presence::{events, wait_for};
use super::{communitas, run, stderr, stdout};

fn cli(home: &Path, args: &[&str]) -> String {
    let out = run(communitas(home).args(args));
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn json(home: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&cli(home, args)).unwrap()
}

fn online(event: &Value, of: &str) -> bool {
    event["type"] == "presence" && event["address"] == of && event["status"] == "online"
}

#[test]
fn a_stranger_is_a_request_accepted_into_presence_then_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let homes = init_all(dir.path(), &["s0", "alice", "bob"]);
    let s0 = Daemon::start(&homes[0].0, true, None);
    let boot = s0.dial[0].clone();
    let (alice_home, alice) = (&homes[1].0, homes[1].1.clone());
    let (bob_home, bob) = (&homes[2].0, homes[2].1.clone());
    // The default heartbeat (30 s): presence within a second can only come from the
    // contacts path telling the presence driver, not from its periodic reload.
    let alice_node = Daemon::start(alice_home, false, Some(&boot));
    let bob_node = Daemon::start(bob_home, false, Some(&boot));
    assert_eq!(json(bob_home, &["requests", "--json"]), Value::Array(vec![]));

    // Alice writes to bob, who never heard of her.
    add_contact(alice_home, &bob);
    let sent = json(alice_home, &["send", &bob, "hello bob, alice here", "--wait", "10", "--json"]);
    assert_eq!(sent["status"], "delivered", "a request is acknowledged like any message");
    let requests = json(bob_home, &["requests", "list", "--json"]);
    let request = &requests[0];
    assert_eq!(request["address"], alice.as_str());
    assert_eq!(request["count"], 1);
    assert!(request["first_at"].as_u64().unwrap() > 1_700_000_000_000, "unix ms");
    assert_eq!(request["first_text"], "hello bob, alice here");
    let human = cli(bob_home, &["requests"]);
    assert!(human.contains(&alice) && human.contains("hello bob"), "{human}");
    // Not a contact: no presence either way, no conversation.
    assert_eq!(json(bob_home, &["contacts", "list", "--json"]), Value::Array(vec![]));
    let out = run(communitas(bob_home).args(["presence", "get", &alice, "--json"]));
    assert!(stderr(&out).contains("is not a contact"), "{}", stderr(&out));

    // Accept: alice, a contact added at run time, sees bob's presence at once (his node
    // tells her; ~0.5 s measured, docs/benchmarks.md), not at the next 30 s heartbeat;
    // her answer brings hers to him. The bounds are for a loaded machine: the times are
    // printed, not asserted tighter (a timed test on a shared machine flakes).
    let mut alice_events = events(&alice_node);
    let mut bob_events = events(&bob_node);
    cli(bob_home, &["requests", "accept", &alice]);
    let accepted = Instant::now();
    wait_for(&mut alice_events, Duration::from_secs(5), |e| online(e, &bob));
    println!("alice saw bob online {:?} after the accept", accepted.elapsed());
    wait_for(&mut bob_events, Duration::from_secs(5), |e| online(e, &alice));
    println!("presence both ways {:?} after the accept", accepted.elapsed());
    assert_eq!(json(bob_home, &["requests", "--json"]), Value::Array(vec![]));
    let contacts = json(bob_home, &["contacts", "list", "--json"]);
    assert_eq!(contacts[0]["address"], alice.as_str());
    let history = json(bob_home, &["history", &alice, "--json"]);
    assert_eq!(history[0]["text"], "hello bob, alice here", "the request's message stays");

    // Block: alice's next message is dropped (and counted); she sees it delivered.
    cli(bob_home, &["block", &alice]);
    let blocked = json(bob_home, &["blocked", "--json"]);
    assert_eq!(blocked[0]["address"], alice.as_str());
    let sent = json(alice_home, &["send", &bob, "are you there?", "--wait", "10", "--json"]);
    assert_eq!(sent["status"], "delivered", "the blocked sender cannot tell (decision 0052)");
    let history = json(bob_home, &["history", &alice, "--json"]);
    let texts: Vec<&Value> = history.as_array().unwrap().iter().map(|m| &m["text"]).collect();
    assert!(texts.iter().all(|t| *t != "are you there?"), "dropped: {texts:?}");
    let (api, token) = bob_node.api();
    assert!(metric(&api, &token, "communitas_blocked_dropped_total{kind=\"message\"}") >= 1.0);
    let out = run(communitas(bob_home).args(["send", &alice, "x"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is blocked"), "{}", stderr(&out));
    cli(bob_home, &["unblock", &alice]);
    assert_eq!(json(bob_home, &["blocked", "--json"]), Value::Array(vec![]));
    let out = run(communitas(bob_home).args(["unblock", &alice]));
    assert_eq!(out.status.code(), Some(1), "not blocked any more");
}

#[test]
fn a_declined_request_goes_and_decline_block_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let homes = init_all(dir.path(), &["s0", "alice", "bob"]);
    let s0 = Daemon::start(&homes[0].0, true, None);
    let boot = s0.dial[0].clone();
    let (alice_home, alice) = (&homes[1].0, homes[1].1.clone());
    let (bob_home, bob) = (&homes[2].0, homes[2].1.clone());
    let _alice_node = Daemon::start(alice_home, false, Some(&boot));
    let _bob_node = Daemon::start(bob_home, false, Some(&boot));
    add_contact(alice_home, &bob);
    json(alice_home, &["send", &bob, "one", "--wait", "10", "--json"]);
    cli(bob_home, &["requests", "decline", &alice]);
    assert_eq!(json(bob_home, &["requests", "--json"]), Value::Array(vec![]));
    assert_eq!(json(bob_home, &["history", &alice, "--json"]), Value::Array(vec![]));
    let out = run(communitas(bob_home).args(["requests", "decline", &alice]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no message request"), "{}", stderr(&out));
    json(alice_home, &["send", &bob, "two", "--wait", "10", "--json"]);
    cli(bob_home, &["requests", "decline", &alice, "--block"]);
    assert_eq!(json(bob_home, &["blocked", "--json"])[0]["address"], alice.as_str());
    assert_eq!(json(bob_home, &["requests", "--json"]), Value::Array(vec![]));
    // A bad address is a usage error, and nothing changes.
    let out = run(communitas(bob_home).args(["block", "not-an-address"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
