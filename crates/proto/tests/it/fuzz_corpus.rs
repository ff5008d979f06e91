//! Replays every file of proto's fuzz corpora (`fuzz/corpus/<target>/`) through the
//! decoder its fuzz target calls, so a crash the fuzzer once found stays fixed.

use std::path::PathBuf;

use communitas_proto::receipts::{Kind, Receipt};
use communitas_types::MessageId;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = root().join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

#[test]
fn receipt_corpus_replays() {
    let mut valid = 0;
    for (path, bytes) in corpus("receipt") {
        // The fuzz target's property: what decodes encodes back to the same bytes.
        if let Ok(receipt) = Receipt::from_bytes(&bytes) {
            assert_eq!(receipt.to_bytes(), bytes, "{}", path.display());
            valid += 1;
        }
    }
    // The seeds are valid receipts: the replay really reaches the whole decoder.
    assert!(valid > 0);
}

/// Valid receipts to start the corpus from: one per type, an empty one, a full one.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let ids = |n: u8, count: usize| vec![MessageId::from_bytes([n; 16]); count];
    [
        ("seed-delivered", Kind::Delivered, ids(1, 1)),
        ("seed-read", Kind::Read, ids(2, 3)),
        ("seed-fetched", Kind::Fetched, ids(3, 2)),
        ("seed-empty", Kind::Delivered, vec![]),
        ("seed-full", Kind::Read, ids(4, communitas_proto::receipts::MAX_IDS)),
    ]
    .into_iter()
    .map(|(name, kind, ids)| (name.to_owned(), Receipt::new(kind, ids).unwrap().to_bytes()))
    .collect()
}

/// Writes the seed inputs into the corpus (with `COMMUNITAS_WRITE_VECTORS=1`), and
/// checks that they are there.
#[test]
fn seeds_are_in_the_corpus() {
    for (name, bytes) in seeds() {
        let path = root().join("receipt").join(&name);
        if std::env::var_os("COMMUNITAS_WRITE_VECTORS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{} is stale", path.display());
    }
}
