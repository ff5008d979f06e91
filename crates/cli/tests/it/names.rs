//! Names (issue 23 item 3) across real processes: a contact added without a name
//! keeps the one it publishes; contacts are renamed and removed from the CLI, and
//! an open event stream (the web UI's) hears each change at once; our own name
//! changes after setup; `address` needs no passphrase (item 8).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::daemon::{Daemon, request};
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

fn init(root: &Path, name: &str) -> (PathBuf, String) {
    let home = root.join(name);
    let out = run(communitas(&home)
        .env("COMMUNITAS_PASSPHRASE", "pw-for-tests")
        .args(["init", "--name", name]));
    assert!(out.status.success(), "{}", stderr(&out));
    (home, stdout(&out).trim().to_owned())
}

#[test]
fn contacts_are_named_renamed_and_removed_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (s0, _) = init(dir.path(), "s0");
    let (alice_home, alice) = init(dir.path(), "Alice");
    let (bob_home, bob) = init(dir.path(), "Bob");

    // `address` reads the keystore's public section: no passphrase asked (item 8).
    let out = run(communitas(&alice_home).arg("address"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), alice);

    let server = Daemon::start(&s0, true, None);
    let boot = server.dial[0].clone();
    let alice_node = Daemon::start(&alice_home, false, Some(&boot));
    let bob_node = Daemon::start(&bob_home, false, Some(&boot));
    let mut stream = events(&alice_node);

    // Added without --name: the name bob publishes is saved.
    let deadline = Instant::now() + Duration::from_secs(30);
    let added = loop {
        let out = run(communitas(&alice_home).args(["contacts", "add", &bob, "--json"]));
        if out.status.success() {
            break serde_json::from_str::<Value>(&stdout(&out)).unwrap();
        }
        assert!(Instant::now() < deadline, "never found bob: {}", stderr(&out));
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(added["name"], "Bob");
    let change = |want: &'static str| {
        let bob = bob.clone();
        move |e: &Value| {
            e["type"] == "contact" && e["address"] == bob.as_str() && e["change"] == want
        }
    };
    wait_for(&mut stream, Duration::from_secs(5), change("added"));

    cli(&alice_home, &["contacts", "rename", &bob, "Robert"]);
    wait_for(&mut stream, Duration::from_secs(5), change("renamed"));
    let list = cli(&alice_home, &["contacts", "list"]);
    assert!(list.contains(&format!("{bob} (Robert)")), "{list}");
    let out = run(communitas(&alice_home).args(["contacts", "rename", &bob, "two\nlines"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("control characters"), "{}", stderr(&out));
    assert!(cli(&alice_home, &["contacts", "rename", &bob, "--clear"]).contains("no name"));

    cli(&alice_home, &["send", &bob, "kept after removal", "--wait", "10"]);
    let removed = cli(&alice_home, &["contacts", "remove", &bob]);
    assert!(removed.contains("conversation is kept"), "{removed}");
    wait_for(&mut stream, Duration::from_secs(5), change("removed"));
    assert_eq!(json(&alice_home, &["contacts", "list", "--json"]), Value::Array(vec![]));
    let history = cli(&alice_home, &["history", &bob]);
    assert!(history.contains("kept after removal"), "{history}");
    let out = run(communitas(&alice_home).args(["contacts", "remove", &bob]));
    assert!(stderr(&out).contains("is not a contact"), "{}", stderr(&out));

    // Our own name.
    assert_eq!(cli(&alice_home, &["name"]).trim(), "Alice");
    assert_eq!(cli(&alice_home, &["name", "Alice Liddell"]).trim(), "Alice Liddell");
    wait_for(&mut stream, Duration::from_secs(5), |e| {
        e["type"] == "profile" && e["name"] == "Alice Liddell"
    });
    assert_eq!(json(&alice_home, &["name", "--json"])["name"], "Alice Liddell");
    assert!(cli(&alice_home, &["name", "--clear"]).contains("no name"));

    // The conversation list has the newest message; the outbox names who a waiting
    // message is for and how it starts (item 8).
    let (api, token) = alice_node.api();
    let auth = format!("Bearer {token}");
    let list = request(&api, "GET", "/v1/conversations", &[("Authorization", &auth)], None);
    let list = list.json();
    assert_eq!(list[0]["peer"], bob.as_str());
    assert_eq!(list[0]["last_text"], "kept after removal");
    assert_eq!(list[0]["last_direction"], "out");
    assert!(bob_node.stop());
    cli(&alice_home, &["contacts", "add", &bob, "--name", "Bobby"]);
    let long = format!("waiting for bob {}", "x".repeat(100));
    cli(&alice_home, &["send", &bob, &long]);
    let outbox = cli(&alice_home, &["outbox"]);
    let line = outbox
        .lines()
        .find(|l| l.contains("waiting for bob"))
        .unwrap_or_else(|| panic!("{outbox}"));
    assert!(line.contains(&format!("to {bob} (Bobby)")), "{line}");
    assert!(line.contains("…\""), "the start of the text only: {line}");
    assert!(!line.contains(&"x".repeat(100)), "{line}");
}
