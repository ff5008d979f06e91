//! Attachments between real processes: 100 MiB whole, and a download killed half-way
//! that resumes instead of starting over.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::daemon::{Daemon, http, init_all, metric};
use super::{communitas, run, stderr, stdout};

const SIZE: usize = 100 << 20;

/// 100 MiB of incompressible bytes, from BLAKE3's XOF (fast even in a debug build).
fn write_file(path: &Path) -> blake3::Hash {
    let mut data = vec![0u8; SIZE];
    blake3::Hasher::new().update(b"communitas file test").finalize_xof().fill(&mut data);
    std::fs::write(path, &data).unwrap();
    blake3::hash(&data)
}

/// Bob's view of the file, through his API.
fn attachment(bob: &Daemon, file_id: &str) -> Value {
    let (addr, token) = bob.api();
    let (code, body) = http(&addr, "GET", &format!("/v1/files/{file_id}"), Some(&token));
    if code != 200 {
        return Value::Null;
    }
    serde_json::from_str(&body).unwrap()
}

#[test]
fn a_100_mib_file_arrives_whole_after_either_side_is_killed_mid_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let homes = init_all(dir.path(), &["s0", "alice", "bob"]);
    let s0 = Daemon::start(&homes[0].0, true, None);
    let alice = Daemon::start(&homes[1].0, false, Some(&s0.dial[0]));
    let mut bob = Daemon::start(&homes[2].0, false, Some(&s0.dial[0]));
    let (alice_home, bob_home) = (&homes[1].0, &homes[2].0);
    let bob_addr = homes[2].1.clone();
    let path = dir.path().join("big video.mp4");
    let hash = write_file(&path);

    // Bob's record must be in the DHT before alice can send.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = run(communitas(alice_home).args(["contacts", "add", &bob_addr]));
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "{}", stderr(&out));
        std::thread::sleep(Duration::from_millis(300));
    }
    // Bob knows alice: a stranger's files wait for its request to be accepted.
    let alice_addr = homes[1].1.clone();
    loop {
        let out = run(communitas(bob_home).args(["contacts", "add", &alice_addr]));
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "{}", stderr(&out));
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = run(communitas(alice_home).args([
        "send",
        &bob_addr,
        "the holiday film",
        "--file",
        path.to_str().unwrap(),
        "--json",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let sent: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let file_id = sent["file_id"].as_str().unwrap().to_owned();

    // Kill bob (the receiver) with SIGKILL once part of the file is on his disk.
    let deadline = Instant::now() + Duration::from_secs(60);
    let before_kill = loop {
        let seen = attachment(&bob, &file_id);
        let progress = seen["progress"].as_u64().unwrap_or(0);
        if progress > 0 && seen["status"] == "downloading" {
            break progress;
        }
        assert_ne!(seen["status"], "done", "finished before it could be interrupted");
        assert!(Instant::now() < deadline, "no progress: {seen}");
        std::thread::sleep(Duration::from_millis(10));
    };
    bob.kill9();
    assert!(before_kill < SIZE as u64);

    // Restarted, bob resumes on his own and fetches only what was missing.
    bob = Daemon::start(bob_home, false, Some(&s0.dial[0]));

    // Then the sender is killed with SIGKILL half-way through the rest, and restarted:
    // bob picks up from the sender's new address once it is back.
    let deadline = Instant::now() + Duration::from_secs(60);
    let resumed = loop {
        let seen = attachment(&bob, &file_id);
        let progress = seen["progress"].as_u64().unwrap_or(0);
        if progress > before_kill && seen["status"] == "downloading" {
            break progress;
        }
        assert_ne!(seen["status"], "done", "finished before the sender could be interrupted");
        assert!(Instant::now() < deadline, "bob did not resume: {seen}");
        std::thread::sleep(Duration::from_millis(10));
    };
    alice.kill9();
    assert!(resumed < SIZE as u64);
    let alice = Daemon::start(alice_home, false, Some(&s0.dial[0]));

    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let seen = attachment(&bob, &file_id);
        if seen["status"] == "done" {
            break seen;
        }
        assert_ne!(seen["status"], "failed", "{seen}");
        assert!(Instant::now() < deadline, "not done: {seen}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (addr, token) = bob.api();
    let fetched_after_restart = metric(&addr, &token, "communitas_file_bytes_fetched_total");
    assert!(fetched_after_restart > 0.0, "nothing fetched after the restart");
    assert!(
        fetched_after_restart < SIZE as f64,
        "started over: {fetched_after_restart} bytes fetched after the restart, {before_kill} were on disk"
    );

    // Byte-identical, checked by BLAKE3 here, not only by the node.
    assert_eq!(done["blake3"], hash.to_hex().as_str());
    let saved = done["path"].as_str().unwrap();
    assert!(saved.starts_with(bob_home.join("downloads").to_str().unwrap()), "{saved}");
    assert!(saved.ends_with("big video.mp4"), "{saved}");
    assert_eq!(blake3::hash(&std::fs::read(saved).unwrap()), hash);
    assert_eq!(done["size"], SIZE as u64);

    // History carries the attachment; `files get --out` copies it, never over a file.
    let out = run(communitas(bob_home).args(["history", &homes[1].1, "--json"]));
    let history: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(history[0]["text"], "the holiday film");
    assert_eq!(history[0]["attachment"]["file_id"], file_id.as_str());
    assert_eq!(history[0]["attachment"]["status"], "done");
    let copy = dir.path().join("copy.mp4");
    let out =
        run(communitas(bob_home).args(["files", "get", &file_id, "--out", copy.to_str().unwrap()]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(blake3::hash(&std::fs::read(&copy).unwrap()), hash);
    let out =
        run(communitas(bob_home).args(["files", "get", &file_id, "--out", copy.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // `--wait` returns once bob has fetched the whole file; history shows the file.
    let small = dir.path().join("note.txt");
    std::fs::write(&small, vec![b'x'; 3 << 20]).unwrap();
    let out = run(communitas(alice_home).args([
        "send",
        &bob_addr,
        "",
        "--file",
        small.to_str().unwrap(),
        "--wait",
        "60",
        "--json",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(communitas(bob_home).args(["history", &homes[1].1]));
    assert!(stdout(&out).contains("[file note.txt 3145728 bytes"), "{}", stdout(&out));
    drop(alice);
}
