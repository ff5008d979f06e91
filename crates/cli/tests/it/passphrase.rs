//! `communitas passphrase` and `POST /v1/passphrase` (decision 0014): through the
//! running node (locked or not), or on the file when no node runs; a wrong current
//! passphrase changes nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use super::daemon::{Daemon, request};
use super::{communitas, run, stderr, stdout};

const OLD: &str = "correct horse battery";
const NEW: &str = "tangerine walrus lantern";
const THIRD: &str = "quiet orbit mosaic";

fn keystore(home: &Path) -> Vec<u8> {
    std::fs::read(home.join("keystore")).unwrap()
}

/// `communitas passphrase` with the current and the new passphrase in the environment.
fn change(home: &Path, old: &str, new: &str) -> std::process::Output {
    run(communitas(home)
        .env("COMMUNITAS_PASSPHRASE", old)
        .env("COMMUNITAS_NEW_PASSPHRASE", new)
        .arg("passphrase"))
}

/// The home's files, sorted: a change leaves no temporary file behind.
fn files(home: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_passphrase_changes_through_a_running_node_locked_or_unlocked() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("erin");
    let node = Daemon::start_locked(&home);
    let (addr, token) = node.api();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let post = |path: &str, body: &str| request(&addr, "POST", path, &auth, Some(body));
    let identity = || request(&addr, "GET", "/v1/identity", &auth, None).json();

    // No identity yet: nothing to change.
    let none = post("/v1/passphrase", &format!(r#"{{"old":"{OLD}","new":"{NEW}"}}"#));
    assert_eq!((none.code, none.error().as_str()), (409, "no_identity"), "{}", none.body);
    let created = post("/v1/identity", &format!(r#"{{"passphrase":"{OLD}"}}"#));
    assert_eq!(created.code, 201, "{}", created.body);
    let address = created.json()["address"].as_str().unwrap().to_owned();
    let before = keystore(&home);

    // Refused: an empty new one, or a wrong current one (after a second); the file stays.
    let empty = post("/v1/passphrase", &format!(r#"{{"old":"{OLD}","new":""}}"#));
    assert_eq!((empty.code, empty.error().as_str()), (400, "invalid_request"));
    let start = Instant::now();
    let out = change(&home, "wrong", NEW);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("wrong passphrase"), "{}", stderr(&out));
    assert!(start.elapsed() >= Duration::from_secs(1), "answered in {:?}", start.elapsed());
    assert_eq!(keystore(&home), before, "a refused change leaves the keystore as it was");

    // Changed through the CLI while the node runs unlocked: it keeps running.
    let out = change(&home, OLD, NEW);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "passphrase changed");
    assert_ne!(keystore(&home), before);
    assert_eq!(identity()["state"], "unlocked");

    // Locked: the old passphrase no longer unlocks, the new one does.
    let out = run(communitas(&home).arg("lock"));
    assert_eq!(stdout(&out).trim(), "locked", "{}", stderr(&out));
    let out = run(communitas(&home).env("COMMUNITAS_PASSPHRASE", OLD).arg("unlock"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("wrong passphrase"), "{}", stderr(&out));
    let out = run(communitas(&home).env("COMMUNITAS_PASSPHRASE", NEW).arg("unlock"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&address), "{}", stdout(&out));

    // Changed through the API while locked: it stays locked, and the new one unlocks.
    let out = run(communitas(&home).arg("lock"));
    assert!(out.status.success(), "{}", stderr(&out));
    let changed = post("/v1/passphrase", &format!(r#"{{"old":"{NEW}","new":"{THIRD}"}}"#));
    assert_eq!(changed.code, 200, "{}", changed.body);
    assert_eq!(changed.json(), serde_json::json!({ "changed": true }));
    assert_eq!(identity()["state"], "locked");
    let unlocked = post("/v1/unlock", &format!(r#"{{"passphrase":"{THIRD}"}}"#));
    assert_eq!(unlocked.code, 200, "{}", unlocked.body);
    assert_eq!(unlocked.json()["address"], address.as_str());
    assert!(node.stop());
    assert!(!files(&home).iter().any(|f| f.contains("tmp")), "{:?}", files(&home));
}

#[test]
fn without_a_node_the_passphrase_changes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("frank");
    let out = run(communitas(&home).env("COMMUNITAS_PASSPHRASE", OLD).arg("init"));
    assert!(out.status.success(), "{}", stderr(&out));
    let address = stdout(&out).trim().to_owned();
    let before = keystore(&home);
    let home_files = files(&home);

    // A wrong current passphrase, or an empty new one: refused, the file byte for byte
    // as it was.
    let out = change(&home, "wrong", NEW);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("wrong passphrase"), "{}", stderr(&out));
    let out = change(&home, OLD, "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("the new passphrase is empty"), "{}", stderr(&out));
    let out = run(communitas(&home).env("COMMUNITAS_PASSPHRASE", OLD).arg("passphrase"));
    assert_eq!(out.status.code(), Some(2), "no new passphrase and no terminal");
    assert!(stderr(&out).contains("COMMUNITAS_NEW_PASSPHRASE"), "{}", stderr(&out));
    assert_eq!(keystore(&home), before);

    // Changed, the new one from a file: the same identity opens with it only.
    let file = dir.path().join("new-passphrase");
    std::fs::write(&file, format!("{NEW}\n")).unwrap();
    let out = run(communitas(&home)
        .env("COMMUNITAS_PASSPHRASE", OLD)
        .arg("passphrase")
        .arg("--new-passphrase-file")
        .arg(&file));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "passphrase changed");
    let out = run(communitas(&home).arg("address"));
    assert_eq!(stdout(&out).trim(), address);
    let opened = communitas_crypto::Keystore::from_bytes(&keystore(&home)).unwrap();
    assert!(opened.unlock(NEW.as_bytes()).is_ok());
    assert_eq!(
        opened.unlock(OLD.as_bytes()).err(),
        Some(communitas_crypto::KeystoreError::WrongPassphrase)
    );

    // Replaced, not rewritten in place: private, and no temporary file left; the lock
    // file taken meanwhile is the one a node takes.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("keystore")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut expected = home_files;
    if !expected.contains(&"lock".to_owned()) {
        expected.push("lock".to_owned());
        expected.sort();
    }
    assert_eq!(files(&home), expected);

    // And a node started afterwards runs under the new passphrase.
    let node = Daemon::start_locked(&home);
    let (addr, token) = node.api();
    let bearer = format!("Bearer {token}");
    let unlocked = request(
        &addr,
        "POST",
        "/v1/unlock",
        &[("Authorization", bearer.as_str())],
        Some(&format!(r#"{{"passphrase":"{NEW}"}}"#)),
    );
    assert_eq!(unlocked.code, 200, "{}", unlocked.body);
    assert!(node.stop());
}

#[test]
fn a_home_without_an_identity_has_no_passphrase_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let out = change(&dir.path().join("nobody"), OLD, NEW);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("communitas init"), "{}", stderr(&out));
}
