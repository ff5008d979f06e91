//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`) through the same
//! entry points the fuzz targets call, so a crash the fuzzer once found stays fixed.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn envelope_corpus_replays() {
    let mut opened = 0;
    for (_, bytes) in corpus("envelope") {
        if communitas_crypto::fuzz::envelope(&bytes) {
            opened += 1;
        }
    }
    // The seeds include valid envelopes: the harness really reaches `open`.
    assert!(opened > 0);
}

#[test]
fn payload_corpus_replays() {
    for (_, bytes) in corpus("payload") {
        communitas_crypto::fuzz::payload(&bytes);
    }
}

#[test]
fn keystore_corpus_replays() {
    for (_, bytes) in corpus("keystore") {
        communitas_crypto::fuzz::keystore(&bytes);
    }
}

#[test]
fn address_corpus_replays() {
    for (_, bytes) in corpus("address") {
        communitas_crypto::fuzz::address(&bytes);
    }
}

#[test]
fn record_set_corpus_replays() {
    let mut valid = 0;
    for (_, bytes) in corpus("record_set") {
        valid += usize::from(communitas_crypto::fuzz::record_set(&bytes));
    }
    assert!(valid > 0, "the seed record set must parse");
}

#[test]
fn public_identity_corpus_replays() {
    for (_, bytes) in corpus("public_identity") {
        communitas_crypto::fuzz::public_identity(&bytes);
    }
}

#[test]
fn prekey_corpus_replays() {
    let mut valid = 0;
    for (_, bytes) in corpus("prekey") {
        valid += usize::from(communitas_crypto::fuzz::prekey(&bytes));
    }
    assert!(valid >= 3, "the seed bundle and one-time prekeys must parse");
}

#[test]
fn init_message_corpus_replays() {
    let mut done = 0;
    for (_, bytes) in corpus("init_message") {
        done += usize::from(communitas_crypto::fuzz::init_message(&bytes));
    }
    assert!(done >= 2, "the seed init messages must complete the handshake");
}

/// Writes the seed inputs into the corpora (with `COMMUNITAS_WRITE_VECTORS=1`), and
/// checks that they are there.
#[test]
fn seeds_are_in_the_corpora() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (target, name, bytes) in communitas_crypto::fuzz::seeds() {
        let path = root.join(target).join(&name);
        if std::env::var_os("COMMUNITAS_WRITE_VECTORS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{} is stale", path.display());
    }
}
