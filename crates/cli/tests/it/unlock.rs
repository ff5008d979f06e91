//! `run --locked` (decision 0013): the first run and unlock through the API, as the
//! web UI's screens do them, lock and unlock from the CLI; and the web UI's sign-in:
//! one-time login links, session cookies, logout.

use std::time::{Duration, Instant};

use super::daemon::{Daemon, request};
use super::presence::{events, wait_for};
use super::{communitas, run, stderr, stdout};

const PASSPHRASE: &str = "correct horse battery";

#[test]
fn a_locked_node_is_created_then_locked_and_unlocked_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("carol");
    let node = Daemon::start_locked(&home);
    assert!(node.dial.is_empty(), "a locked node has no network yet");
    let (addr, token) = node.api();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let identity = || request(&addr, "GET", "/v1/identity", &auth, None).json();

    // First run: no identity, and nothing that needs the node answers.
    assert_eq!(identity()["state"], "new");
    let status = request(&addr, "GET", "/v1/status", &auth, None);
    assert_eq!((status.code, status.error().as_str()), (423, "locked"));
    let out = run(communitas(&home).arg("status"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("locked"), "{}", stderr(&out));

    // Bad input, or another origin, creates nothing.
    let create = |body: &str| request(&addr, "POST", "/v1/identity", &auth, Some(body));
    let empty = create(r#"{"passphrase":""}"#);
    assert_eq!((empty.code, empty.error().as_str()), (400, "invalid_request"));
    let bad_name = create(r#"{"passphrase":"long enough","name":"a\u0007b"}"#);
    assert_eq!((bad_name.code, bad_name.error().as_str()), (400, "invalid_request"));
    // One passphrase rule, the CLI's and the web UI's (issue 23 item 6).
    let short = create(r#"{"passphrase":"seven c"}"#);
    assert_eq!((short.code, short.error().as_str()), (400, "passphrase_too_short"));
    assert_eq!(
        short.json()["error"]["message"],
        "The passphrase is too short: use at least 8 characters."
    );
    let foreign = request(
        &addr,
        "POST",
        "/v1/identity",
        &[auth[0], ("Origin", "http://evil.example")],
        Some(&format!(r#"{{"passphrase":"{PASSPHRASE}"}}"#)),
    );
    assert_eq!((foreign.code, foreign.error().as_str()), (403, "cross_origin"));
    assert!(!home.join("keystore").exists());
    assert_eq!(identity()["state"], "new");

    // Created: the node runs, under the identity the CLI finds on disk.
    let created = create(&format!(r#"{{"passphrase":"{PASSPHRASE}","name":"carol"}}"#));
    assert_eq!(created.code, 201, "{}", created.body);
    let address = created.json()["address"].as_str().unwrap().to_owned();
    assert_eq!(created.json()["name"], "carol");
    assert_eq!(identity()["state"], "unlocked");
    let twice = create(&format!(r#"{{"passphrase":"{PASSPHRASE}"}}"#));
    assert_eq!((twice.code, twice.error().as_str()), (409, "identity_exists"));
    let status = request(&addr, "GET", "/v1/status", &auth, None);
    assert_eq!(status.json()["address"], address.as_str());
    let out = run(communitas(&home).env("COMMUNITAS_PASSPHRASE", PASSPHRASE).arg("address"));
    assert_eq!(stdout(&out).trim(), address);
    let out = run(communitas(&home).args(["settings", "--read-receipts", "off"]));
    assert!(out.status.success(), "{}", stderr(&out));

    // Locked: open event streams hear it, the node's routes answer 423 again.
    let mut socket = events(&node);
    let out = run(communitas(&home).arg("lock"));
    assert_eq!(stdout(&out).trim(), "locked", "{}", stderr(&out));
    wait_for(&mut socket, Duration::from_secs(5), |e| e["type"] == "locked");
    let status = request(&addr, "GET", "/v1/status", &auth, None);
    assert_eq!((status.code, status.error().as_str()), (423, "locked"));
    assert_eq!(identity()["state"], "locked");
    assert_eq!(identity()["address"], serde_json::Value::Null);

    // A wrong passphrase is refused after a second and changes nothing.
    let start = Instant::now();
    let out = run(communitas(&home).env("COMMUNITAS_PASSPHRASE", "wrong").arg("unlock"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("wrong passphrase"), "{}", stderr(&out));
    assert!(start.elapsed() >= Duration::from_secs(1), "answered in {:?}", start.elapsed());
    assert_eq!(identity()["state"], "locked");

    // The right one brings back the same identity and its database.
    let out = run(communitas(&home).env("COMMUNITAS_PASSPHRASE", PASSPHRASE).arg("unlock"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&address), "{}", stdout(&out));
    let out = run(communitas(&home).args(["settings", "--json"]));
    let settings: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(settings["read_receipts"], false);
    let again = request(
        &addr,
        "POST",
        "/v1/unlock",
        &auth,
        Some(&format!(r#"{{"passphrase":"{PASSPHRASE}"}}"#)),
    );
    assert_eq!((again.code, again.error().as_str()), (409, "already_unlocked"));
    assert!(node.stop(), "SIGTERM after unlock stops cleanly");

    // Restarted locked: there is an identity to unlock, and it unlocks over the API.
    let node = Daemon::start_locked(&home);
    let (addr, token) = node.api();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    assert_eq!(request(&addr, "GET", "/v1/identity", &auth, None).json()["state"], "locked");
    let unlocked = request(
        &addr,
        "POST",
        "/v1/unlock",
        &auth,
        Some(&format!(r#"{{"passphrase":"{PASSPHRASE}"}}"#)),
    );
    assert_eq!(unlocked.code, 200, "{}", unlocked.body);
    assert_eq!(unlocked.json()["address"], address.as_str());
    assert!(node.stop());
}

#[test]
fn a_login_link_opens_one_session_which_ends_at_logout() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("dave");
    let node = Daemon::start_locked(&home);
    let (addr, _) = node.api();

    let out = run(communitas(&home).arg("login-link"));
    assert!(out.status.success(), "{}", stderr(&out));
    let link = stdout(&out).trim().to_owned();
    let path = &link[link.find("/login?code=").expect("a login link")..];
    let login = request(&addr, "GET", path, &[], None);
    assert_eq!(login.code, 303, "{}", login.head);
    let set_cookie = login
        .head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a session cookie")
        .to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let again = request(&addr, "GET", path, &[], None);
    assert_eq!(again.code, 401, "a link works once");
    // A page that says how to get a new one, for this home (issue 23 item 8).
    assert!(again.head.to_lowercase().contains("content-type: text/html"), "{}", again.head);
    assert!(again.body.contains("This login link cannot be used"), "{}", again.body);
    let command = format!("communitas --home {} login-link", home.display());
    assert!(again.body.contains(&command), "{}", again.body);

    // The page token, in the redirect's fragment: only our page reads it.
    let page = login
        .head
        .lines()
        .find_map(|l| l.strip_prefix("location: /#page="))
        .expect("a page token")
        .trim()
        .to_owned();
    let cookie_only = [("Cookie", cookie.as_str())];
    assert_eq!(request(&addr, "GET", "/v1/identity", &cookie_only, None).code, 401);
    let with_cookie = [("Cookie", cookie.as_str()), ("X-Communitas-Page", page.as_str())];
    assert_eq!(request(&addr, "GET", "/v1/identity", &with_cookie, None).code, 200);
    assert_eq!(request(&addr, "GET", "/v1/identity", &[], None).code, 401);
    let foreign = request(
        &addr,
        "POST",
        "/v1/lock",
        &[with_cookie[0], with_cookie[1], ("Origin", "http://127.0.0.1:1")],
        None,
    );
    assert_eq!((foreign.code, foreign.error().as_str()), (403, "cross_origin"));
    // A session cannot make more sessions: new links need the token.
    let more = request(&addr, "POST", "/v1/login-links", &with_cookie, None);
    assert_eq!((more.code, more.error().as_str()), (403, "token_required"));

    let logout = request(&addr, "POST", "/v1/logout", &with_cookie, None);
    assert_eq!(logout.code, 204);
    assert!(logout.head.contains("Max-Age=0"), "{}", logout.head);
    assert_eq!(request(&addr, "GET", "/v1/identity", &with_cookie, None).code, 401);
    assert!(node.stop());
}
