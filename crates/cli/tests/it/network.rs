//! Real processes on 127.0.0.1, driven through the CLI and the API the way a user
//! does: 3 server nodes, alice and bob, each a `communitas run` (issue 3, item 8).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::daemon::{Daemon, http, init_all, metric};
use super::{communitas, run, stderr, stdout};

#[test]
fn alice_messages_bob_by_four_words_across_real_processes() {
    let dir = tempfile::tempdir().unwrap();
    let homes = init_all(dir.path(), &["s0", "s1", "s2", "alice", "bob"]);
    let s0 = Daemon::start(&homes[0].0, true, None);
    let s1 = Daemon::start(&homes[1].0, true, Some(&s0.dial[0]));
    let s2 = Daemon::start(&homes[2].0, true, Some(&s0.dial[0]));
    // Alice joins through the list in her home (`<home>/bootstrap`), no flag.
    let list = format!("# our servers\n\n{}  # s1\n", s1.dial[0]);
    std::fs::write(homes[3].0.join("bootstrap"), list).unwrap();
    let alice = Daemon::start(&homes[3].0, false, None);
    // Bob joins through a DNS name (bootstrap lists of real deployments use them).
    let by_name = s2.dial[0].replace("/ip4/127.0.0.1/", "/dns4/localhost/");
    assert!(by_name.starts_with("/dns4/localhost/tcp/"), "{by_name}");
    let bob = Daemon::start(&homes[4].0, false, Some(&by_name));
    let (alice_home, bob_home) = (&homes[3].0, &homes[4].0);
    let (alice_addr, bob_addr) = (homes[3].1.clone(), homes[4].1.clone());

    // Alice has never dialled bob: she finds him by his four words in the DHT, as
    // soon as his identity record is published.
    let text = "hi bob 👋🏽 — مرحبا بك — 你好，鲍勃 — שָׁלוֹם";
    let deadline = Instant::now() + Duration::from_secs(30);
    let sent = loop {
        let out =
            run(communitas(alice_home).args(["send", &bob_addr, text, "--wait", "10", "--json"]));
        if out.status.success() {
            break serde_json::from_str::<Value>(&stdout(&out)).unwrap();
        }
        assert!(Instant::now() < deadline, "send kept failing: {}", stderr(&out));
        assert!(stderr(&out).contains("no identity found"), "{}", stderr(&out));
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(sent["status"], "delivered");

    let out = run(communitas(bob_home).args(["history", &alice_addr, "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let history: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(history.len(), 1);
    let m = &history[0];
    assert_eq!(m["text"].as_str().unwrap().as_bytes(), text.as_bytes(), "byte for byte");
    assert_eq!(
        (m["from"].as_str(), m["to"].as_str()),
        (Some(alice_addr.as_str()), Some(bob_addr.as_str()))
    );
    assert_eq!((m["direction"].as_str(), m["id"].as_str()), (Some("in"), sent["id"].as_str()));
    let out = run(communitas(alice_home).args(["history", &bob_addr, "--json"]));
    let mine: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(mine[0]["status"], "delivered");
    assert_eq!(mine[0]["direction"], "out");

    // Over 64 KiB: refused, clearly, and nothing queued.
    let long = "x".repeat(64 * 1024 + 1);
    let out = run(communitas(alice_home).args(["send", &bob_addr, &long]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("limit is 65536 bytes"), "{}", stderr(&out));
    let out = run(communitas(alice_home).args(["outbox", "--json"]));
    assert_eq!(stdout(&out).trim(), "[]");
    let out = run(communitas(alice_home).args(["history", &bob_addr, "--json"]));
    assert_eq!(serde_json::from_str::<Vec<Value>>(&stdout(&out)).unwrap().len(), 1);

    // An address nobody published: a clear error, nothing queued.
    let nobody = "abacus-abacus-abacus-abacus";
    let out = run(communitas(alice_home).args(["send", nobody, "anyone there?"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no identity found for abacus-abacus-abacus-abacus"),
        "{}",
        stderr(&out)
    );
    let out = run(communitas(alice_home).args(["outbox", "--json"]));
    assert_eq!(stdout(&out).trim(), "[]");

    // The API wants its token; the metrics moved.
    let (api, token) = alice.api();
    assert_eq!(http(&api, "GET", "/v1/status", None).0, 401);
    assert_eq!(http(&api, "GET", "/v1/status", Some("wrong")).0, 401);
    assert_eq!(http(&api, "GET", "/metrics", None).0, 401);
    let (code, body) = http(&api, "GET", "/v1/status", Some(&token));
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["address"], alice_addr.as_str());
    assert_eq!(metric(&api, &token, "communitas_messages_delivered_total"), 1.0);
    let (bob_api, bob_token) = bob.api();
    assert_eq!(metric(&bob_api, &bob_token, "communitas_messages_received_total"), 1.0);

    // SIGTERM: a clean exit that removes the API files.
    let alice_home = alice_home.clone();
    assert!(alice.stop(), "alice exits cleanly on SIGTERM");
    assert!(!alice_home.join("api.json").exists());
    let out = run(communitas(&alice_home).arg("status"));
    assert!(stderr(&out).contains("no running node for home"), "{}", stderr(&out));
    for d in [bob, s2, s1, s0] {
        assert!(d.stop());
    }
}

/// The README's first command: two users who can chat, one command.
#[test]
fn demo_starts_two_users_who_can_chat() {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_communitas"))
        .arg("demo")
        .env_remove("COMMUNITAS_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut users = Vec::new();
    let mut home = None;
    // Kept open to the end: the demo prints as it stops.
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("alice  ").or_else(|| line.strip_prefix("bob    ")) {
            users.push(rest.trim().to_owned());
        }
        if let Some(h) = line.trim().strip_prefix("home ") {
            home.get_or_insert_with(|| PathBuf::from(h));
        }
        if line.starts_with("Ctrl-C stops") {
            break;
        }
    }
    assert_eq!(users.len(), 2, "the demo printed two addresses");
    let alice_home = home.expect("the demo printed alice's home");
    let bob_home = alice_home.with_file_name("bob");
    let (alice, bob) = (&users[0], &users[1]);

    let out = run(communitas(&alice_home).args(["send", bob, "hi"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let sent_at = Instant::now();
    loop {
        let out = run(communitas(&bob_home).args(["history", alice, "--json"]));
        let history: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap_or_default();
        if history.iter().any(|m| m["text"] == "hi") {
            break;
        }
        assert!(sent_at.elapsed() < Duration::from_secs(1), "not in bob's history within a second");
    }

    let pid = demo.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(demo.wait().unwrap().success());
    drop(lines);
    assert!(!alice_home.exists(), "the demo removes its folder");
}
