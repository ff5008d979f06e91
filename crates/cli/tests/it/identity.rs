//! `init`, `address` and `demo` (issue 2, items 2–3 and acceptance).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use communitas_crypto::Keystore;
use communitas_types::Address;
use communitas_types::address::words;
use serde_json::Value;

use super::{communitas, run, stderr, stdout};

fn init(home: &Path, name: &str) -> String {
    let out = run(communitas(home)
        .env("COMMUNITAS_PASSPHRASE", "pw-for-tests")
        .args(["init", "--name", name]));
    assert!(out.status.success(), "init failed: {}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    out
}

#[test]
fn init_prints_four_list_words_and_address_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("alice");
    let printed = init(&home, "alice");
    let parts: Vec<&str> = printed.split('-').collect();
    assert_eq!(parts.len(), 4, "{printed}");
    for word in &parts {
        assert!(words().binary_search(word).is_ok(), "{word} is not a list word");
    }
    printed.parse::<Address>().unwrap();

    let out = run(communitas(&home)
        .env("COMMUNITAS_PASSPHRASE", "pw-for-tests")
        .args(["address", "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["address"], printed.as_str());
    assert_eq!(json["fingerprint"].as_str().unwrap().len(), 64);
    assert!(json["peer_id"].as_str().unwrap().starts_with("12D3KooW"));
    let plain = run(communitas(&home).env("COMMUNITAS_PASSPHRASE", "pw-for-tests").arg("address"));
    assert_eq!(stdout(&plain).trim(), printed);
}

#[test]
fn init_json_matches_address_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(communitas(dir.path())
        .env("COMMUNITAS_PASSPHRASE", "pw-for-tests")
        .args(["init", "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let from_init: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let out = run(communitas(dir.path())
        .env("COMMUNITAS_PASSPHRASE", "pw-for-tests")
        .args(["address", "--json"]));
    let from_address: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(from_init, from_address);
    assert_eq!(from_init.as_object().unwrap().len(), 3);
}

#[test]
fn second_init_refuses_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), "alice");
    let before = snapshot(dir.path());
    let out = run(communitas(dir.path())
        .env("COMMUNITAS_PASSPHRASE", "other")
        .args(["init", "--name", "eve"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already holds an identity"), "{}", stderr(&out));
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn wrong_passphrase_fails_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), "alice");
    let before = snapshot(dir.path());
    // (`address` needs no passphrase since issue 23; changing it does.)
    let out = run(communitas(dir.path())
        .env("COMMUNITAS_PASSPHRASE", "not it")
        .env("COMMUNITAS_NEW_PASSPHRASE", "a new passphrase")
        .arg("passphrase"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).trim(), "communitas: wrong passphrase");
    assert!(stdout(&out).is_empty());
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn no_passphrase_and_no_terminal_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(communitas(dir.path()).arg("init"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--passphrase-file") && err.contains("COMMUNITAS_PASSPHRASE"), "{err}");
    assert!(snapshot(dir.path()).is_empty(), "nothing written");
}

#[test]
fn passphrase_file_and_home_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pass");
    std::fs::write(&file, "from a file\n").unwrap();
    let home = dir.path().join("h");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_communitas"));
    cmd.env_remove("COMMUNITAS_PASSPHRASE")
        .env("COMMUNITAS_HOME", &home)
        .stdin(std::process::Stdio::null());
    let out = run(cmd.arg("--passphrase-file").arg(&file).arg("init"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(home.join("keystore").exists());
    // The file's trailing newline is not part of the passphrase.
    let keystore =
        communitas_crypto::Keystore::from_bytes(&std::fs::read(home.join("keystore")).unwrap())
            .unwrap();
    assert!(keystore.unlock(b"from a file").is_ok());
}

#[test]
fn no_private_key_bytes_in_clear_under_the_home() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), "alice");
    let keystore =
        Keystore::from_bytes(&std::fs::read(dir.path().join("keystore")).unwrap()).unwrap();
    let secrets = keystore.unlock(b"pw-for-tests").unwrap();
    let secret_bytes = secrets.expose_secret_bytes();
    let files = snapshot(dir.path());
    assert!(files.len() >= 2, "keystore and database");
    for (path, bytes) in &files {
        for (i, secret) in secret_bytes.chunks_exact(32).enumerate() {
            for window in [&secret[..16], &secret[16..]] {
                assert!(
                    !bytes.windows(16).any(|w| w == window),
                    "secret {i} found in clear in {}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn address_without_identity_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        run(communitas(dir.path()).env("COMMUNITAS_PASSPHRASE", "pw-for-tests").arg("address"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("run `communitas init`"), "{}", stderr(&out));
}

#[test]
fn names_with_control_characters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(communitas(dir.path()).env("COMMUNITAS_PASSPHRASE", "pw-for-tests").args([
        "init",
        "--name",
        "a\u{1b}[31m",
    ]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("control characters"));
    assert!(!dir.path().join("keystore").exists());
}

#[test]
fn a_short_new_passphrase_is_refused_with_the_one_rule() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(communitas(dir.path()).env("COMMUNITAS_PASSPHRASE", "seven c").arg("init"));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "communitas: The passphrase is too short: use at least 8 characters."
    );
    assert!(!dir.path().join("keystore").exists());
    init(dir.path(), "alice");
    let out = run(communitas(dir.path())
        .env("COMMUNITAS_PASSPHRASE", "pw-for-tests")
        .env("COMMUNITAS_NEW_PASSPHRASE", "short")
        .arg("passphrase"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("use at least 8 characters"), "{}", stderr(&out));
}
