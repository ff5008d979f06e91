//! Real processes on 127.0.0.1, driven through the CLI and the API the way a user
//! does: 3 server nodes, alice and bob, each a `communitas run` (issue 3, item 8).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{communitas, run, stderr, stdout};

/// A `communitas run` child, stopped with SIGTERM when dropped.
struct Daemon {
    child: Child,
    home: PathBuf,
    dial: Vec<String>,
}

impl Daemon {
    fn start(home: &Path, server: bool, bootstrap: Option<&str>) -> Daemon {
        let mut cmd = communitas(home);
        cmd.env("COMMUNITAS_PASSPHRASE", "pw").args(["run", "--listen", "/ip4/127.0.0.1/tcp/0"]);
        if server {
            cmd.arg("--server");
        }
        if let Some(b) = bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut dial = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if let Some(addr) = line.strip_prefix("listening  ") {
                dial.push(addr.to_owned());
            }
            if line.starts_with("api ") {
                break;
            }
        }
        assert!(!dial.is_empty(), "{} printed no listen address", home.display());
        Daemon { child, home: home.to_owned(), dial }
    }

    fn api(&self) -> (String, String) {
        let info: Value =
            serde_json::from_str(&std::fs::read_to_string(self.home.join("api.json")).unwrap())
                .unwrap();
        let url = info["url"].as_str().unwrap().trim_start_matches("http://").to_owned();
        (url, std::fs::read_to_string(self.home.join("api-token")).unwrap())
    }

    /// Stops with SIGTERM and returns whether it exited cleanly.
    fn stop(mut self) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        status.success()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw HTTP/1.1 request: (status code, body).
fn http(addr: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (code, body)
}

fn init_all(root: &Path, names: &[&str]) -> Vec<(PathBuf, String)> {
    let threads: Vec<_> = names
        .iter()
        .map(|name| {
            let home = root.join(name);
            std::thread::spawn(move || {
                let out = run(communitas(&home).env("COMMUNITAS_PASSPHRASE", "pw").arg("init"));
                assert!(out.status.success(), "{}", stderr(&out));
                (home, stdout(&out).trim().to_owned())
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn metric(addr: &str, token: &str, name: &str) -> f64 {
    let (_, body) = http(addr, "GET", "/metrics", Some(token));
    body.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

#[test]
fn alice_messages_bob_by_four_words_across_real_processes() {
    let dir = tempfile::tempdir().unwrap();
    let homes = init_all(dir.path(), &["s0", "s1", "s2", "alice", "bob"]);
    let s0 = Daemon::start(&homes[0].0, true, None);
    let s1 = Daemon::start(&homes[1].0, true, Some(&s0.dial[0]));
    let s2 = Daemon::start(&homes[2].0, true, Some(&s0.dial[0]));
    let alice = Daemon::start(&homes[3].0, false, Some(&s1.dial[0]));
    let bob = Daemon::start(&homes[4].0, false, Some(&s2.dial[0]));
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
