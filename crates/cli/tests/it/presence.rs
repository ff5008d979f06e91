//! Presence, typing and read receipts across real processes (issue 6): changes reach
//! the other side's `/v1/events` live; a SIGSTOPped contact goes offline when its
//! heartbeats stop, a SIGKILLed one when its connection closes; after a restart it is
//! back online and messages flow again, without anybody doing anything.

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;

use super::daemon::{Daemon, init_all};
use super::{communitas, run, stderr, stdout};

pub(crate) type Socket = tungstenite::WebSocket<MaybeTlsStream<TcpStream>>;

/// Bob's heartbeat: he is shown offline 3 missed heartbeats (3 s) after he stops.
const HEARTBEAT: &str = "1";

/// The node's `/v1/events` WebSocket.
pub(crate) fn events(node: &Daemon) -> Socket {
    let (api, token) = node.api();
    let mut request = format!("ws://{api}/v1/events").into_client_request().unwrap();
    request.headers_mut().insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (socket, _) = tungstenite::connect(request).unwrap();
    if let MaybeTlsStream::Plain(s) = socket.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    }
    socket
}

/// Waits up to `limit` for an event matching `wanted`; returns it and how long it took.
pub(crate) fn wait_for(
    socket: &mut Socket,
    limit: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        match socket.read() {
            Ok(tungstenite::Message::Text(text)) => {
                let event: Value = serde_json::from_str(&text).unwrap();
                if wanted(&event) {
                    return start.elapsed();
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("event stream failed: {e}"),
        }
    }
    panic!("no matching event within {limit:?}");
}

fn presence_event(event: &Value, of: &str, status: &str) -> bool {
    event["type"] == "presence" && event["address"] == of && event["status"] == status
}

fn cli(home: &Path, args: &[&str]) -> String {
    let out = run(communitas(home).args(args));
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn presence_of(home: &Path, address: &str) -> Value {
    serde_json::from_str(&cli(home, &["presence", "get", address, "--json"])).unwrap()
}

/// Retries `contacts add` until the other side's identity record is in the DHT.
fn add_contact(home: &Path, address: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = run(communitas(home).args(["contacts", "add", address]));
        if out.status.success() {
            return;
        }
        assert!(Instant::now() < deadline, "never found {address}: {}", stderr(&out));
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn history_status(home: &Path, peer: &str, id: &str) -> String {
    let history: Vec<Value> =
        serde_json::from_str(&cli(home, &["history", peer, "--json"])).unwrap();
    history.iter().find(|m| m["id"] == id).unwrap()["status"].as_str().unwrap().to_owned()
}

#[test]
fn presence_typing_and_read_receipts_live_through_stop_kill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let homes = init_all(dir.path(), &["s0", "alice", "bob"]);
    let s0 = Daemon::start(&homes[0].0, true, None);
    let boot = s0.dial[0].clone();
    let (alice_home, alice) = (&homes[1].0, homes[1].1.clone());
    let (bob_home, bob) = (&homes[2].0, homes[2].1.clone());
    let bob_flags = ["--presence-heartbeat", HEARTBEAT];
    let alice_node = Daemon::start(alice_home, false, Some(&boot));
    let mut bob_node = Daemon::start_with(bob_home, false, Some(&boot), &bob_flags);

    // Not a contact: a clear error. Bad status: a usage error.
    let out = run(communitas(alice_home).args(["presence", "get", &bob, "--json"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not a contact"), "{}", stderr(&out));
    let out = run(communitas(alice_home).args(["presence", "set", "sleepy"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown presence status"), "{}", stderr(&out));

    add_contact(alice_home, &bob);
    add_contact(bob_home, &alice);
    let mut alice_events = events(&alice_node);
    let deadline = Instant::now() + Duration::from_secs(30);
    while presence_of(alice_home, &bob)["status"] != "online" {
        assert!(Instant::now() < deadline, "alice never saw bob online");
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = presence_of(alice_home, &bob)["last_seen"].as_u64().unwrap();
    assert!(seen > 1_700_000_000_000, "last_seen is unix ms: {seen}");

    // A change reaches alice's event stream live.
    cli(bob_home, &["presence", "set", "away"]);
    let took =
        wait_for(&mut alice_events, Duration::from_secs(5), |e| presence_event(e, &bob, "away"));
    eprintln!("presence change → alice's /v1/events: {took:?}");
    assert_eq!(presence_of(alice_home, &bob)["status"], "away");
    cli(bob_home, &["presence", "set", "busy"]);
    wait_for(&mut alice_events, Duration::from_secs(5), |e| presence_event(e, &bob, "busy"));

    // Typing: shown live, and it runs out by itself.
    cli(bob_home, &["typing", &alice]);
    wait_for(&mut alice_events, Duration::from_secs(5), |e| {
        e["type"] == "typing" && e["from"] == bob && e["typing"] == true
    });
    wait_for(&mut alice_events, Duration::from_secs(10), |e| {
        e["type"] == "typing" && e["from"] == bob && e["typing"] == false
    });

    // Read receipts: on by default; off stops them.
    let send = |text: &str| -> String {
        let out = cli(alice_home, &["send", &bob, text, "--wait", "10", "--json"]);
        let sent: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(sent["status"], "delivered");
        sent["id"].as_str().unwrap().to_owned()
    };
    let first = send("read me");
    assert_eq!(cli(bob_home, &["read", &alice, "--json"]).trim(), r#"{"read":1}"#);
    wait_for(&mut alice_events, Duration::from_secs(10), |e| {
        e["type"] == "status_changed" && e["id"] == first.as_str() && e["status"] == "read"
    });
    assert_eq!(history_status(alice_home, &bob, &first), "read");
    assert!(cli(bob_home, &["settings", "--read-receipts", "off"]).contains("off"));
    let unseen = send("read me quietly");
    assert_eq!(cli(bob_home, &["read", &alice, "--json"]).trim(), r#"{"read":1}"#);
    assert!(cli(bob_home, &["settings", "--read-receipts", "on"]).contains("on"));
    let last = send("read me again");
    cli(bob_home, &["read", &alice]);
    wait_for(&mut alice_events, Duration::from_secs(10), |e| {
        e["type"] == "status_changed" && e["id"] == last.as_str() && e["status"] == "read"
    });
    assert_eq!(history_status(alice_home, &bob, &unseen), "delivered", "no receipt while off");
    let bob_history = cli(bob_home, &["history", &alice, "--json"]);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&bob_history).unwrap().len(), 3);

    // Frozen (SIGSTOP: connection open, no heartbeats): offline after the window.
    bob_node.signal("STOP");
    let took = wait_for(&mut alice_events, Duration::from_secs(15), |e| {
        presence_event(e, &bob, "offline")
    });
    eprintln!("bob frozen → alice sees offline: {took:?}");
    assert!(took >= Duration::from_millis(1500), "offline only once the window passed: {took:?}");
    bob_node.signal("CONT");
    wait_for(&mut alice_events, Duration::from_secs(10), |e| presence_event(e, &bob, "busy"));

    // SIGKILL: the connection closes, alice sees offline at once.
    bob_node.kill9();
    let took = wait_for(&mut alice_events, Duration::from_secs(15), |e| {
        presence_event(e, &bob, "offline")
    });
    eprintln!("bob SIGKILLed → alice sees offline: {took:?}");
    let queued = cli(alice_home, &["send", &bob, "while you were away", "--json"]);
    let queued: Value = serde_json::from_str(&queued).unwrap();

    // Restart: back online (his saved status), and the message arrives by itself.
    let restarted = Instant::now();
    bob_node = Daemon::start_with(bob_home, false, Some(&boot), &bob_flags);
    let took =
        wait_for(&mut alice_events, Duration::from_secs(20), |e| presence_event(e, &bob, "busy"));
    eprintln!(
        "bob restarted → alice sees him back: {took:?} ({:?} since start)",
        restarted.elapsed()
    );
    let id = queued["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while history_status(alice_home, &bob, id) != "delivered" {
        assert!(
            Instant::now() < deadline,
            "the queued message never arrived: {} {} / bob has: {}",
            history_status(alice_home, &bob, id),
            cli(alice_home, &["outbox", "--json"]),
            cli(bob_home, &["history", &alice, "--json"])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let bob_history = cli(bob_home, &["history", &alice, "--json"]);
    assert!(bob_history.contains("while you were away"));
    assert_eq!(presence_of(bob_home, &alice)["status"], "online");

    // One connection between them, direct (loopback): none piled up over the restart.
    let out = run(communitas(bob_home)
        .env("COMMUNITAS_PASSPHRASE", "pw-for-tests")
        .args(["address", "--json"]));
    let bob_peer = serde_json::from_str::<Value>(&stdout(&out)).unwrap()["peer_id"].clone();
    // Both sides may dial at once after the restart; the duplicate is closed shortly
    // after (links.rs), so look for a few seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status: Value = serde_json::from_str(&cli(alice_home, &["status", "--json"])).unwrap();
        let link = status["peers"].as_array().unwrap().iter().find(|p| p["peer_id"] == bob_peer);
        let link = link.expect("alice is connected to bob").clone();
        let seen = (link["connection"].as_str().map(str::to_owned), link["connections"].as_u64());
        if seen == (Some("direct".to_owned()), Some(1)) {
            break;
        }
        assert!(Instant::now() < deadline, "alice's links to bob: {seen:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    for node in [bob_node, alice_node, s0] {
        assert!(node.stop());
    }
}
