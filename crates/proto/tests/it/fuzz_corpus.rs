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

#[test]
fn presence_corpus_replays() {
    let (mut presence, mut typing) = (0, 0);
    for (_, bytes) in corpus("presence") {
        let (p, t) = communitas_proto::fuzz::presence(&bytes);
        presence += usize::from(p);
        typing += usize::from(t);
    }
    // The seeds include valid bodies of both kinds: the harness reaches past the checks.
    assert!(presence > 0 && typing > 0, "{presence} presence, {typing} typing bodies");
}

/// Writes the seed inputs into the corpora (with `COMMUNITAS_WRITE_VECTORS=1`), and
/// checks that they are there.
#[test]
fn presence_seeds_are_in_the_corpora() {
    for (target, name, bytes) in communitas_proto::fuzz::seeds() {
        let path = root().join(target).join(&name);
        if std::env::var_os("COMMUNITAS_WRITE_VECTORS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{} is stale", path.display());
    }
}

/// What a fuzzer would try first, exhaustively: every input up to two bytes (all of
/// the typing body's space), and every one-byte change, truncation and extension of
/// the seeds.
#[test]
fn presence_bodies_survive_every_small_mutation() {
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
    inputs.extend((0..=255u8).map(|a| vec![a]));
    inputs.extend((0..=u16::MAX).map(|ab| ab.to_be_bytes().to_vec()));
    for (_, _, seed) in communitas_proto::fuzz::seeds() {
        for i in 0..seed.len() {
            for b in 0..=255u8 {
                let mut m = seed.clone();
                m[i] = b;
                inputs.push(m);
            }
            inputs.push(seed[..i].to_vec());
        }
        let mut longer = seed.clone();
        longer.push(0);
        inputs.push(longer);
    }
    let valid = inputs.iter().filter(|b| communitas_proto::fuzz::presence(b) != (false, false));
    // Typing: exactly 0100 and 0101 of all two-byte inputs; presence: the seeds'
    // neighbours with a known status or an interval still in range.
    assert!(valid.count() > 8);
}

#[test]
fn session_corpus_replays() {
    let (mut opened, mut states) = (0, 0);
    for (_, bytes) in corpus("session") {
        let (o, s) = communitas_proto::fuzz::session(&bytes);
        opened += usize::from(o);
        states += usize::from(s);
    }
    // The seeds: three messages the fixed session opens, two session states and
    // prekey secrets.
    assert!(opened >= 3 && states >= 3, "{opened} opened, {states} states");
}

/// Writes the session seeds into the corpus (with `COMMUNITAS_WRITE_VECTORS=1`),
/// and checks that they are there.
#[test]
fn session_seeds_are_in_the_corpus() {
    let seeds = communitas_proto::fuzz::session_seeds();
    assert_eq!(seeds.len(), 6);
    for (name, bytes) in seeds {
        let path = root().join("session").join(&name);
        if std::env::var_os("COMMUNITAS_WRITE_VECTORS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{} is stale", path.display());
    }
}

/// Every one-bit flip and every truncation of the session seeds is refused or
/// opens harmlessly, and none panics.
#[test]
fn session_seeds_survive_every_flip_and_cut() {
    for (name, seed) in communitas_proto::fuzz::session_seeds() {
        // The state seeds carry keys anywhere; messages sample their KEM fields.
        for i in (0..seed.len()).filter(|i| *i < 160 || i % 29 == 0) {
            let mut bad = seed.clone();
            bad[i] ^= 0x10;
            let (opened, _) = communitas_proto::fuzz::session(&bad);
            assert!(!opened || name.starts_with("seed-state"), "{name}: flip at {i} opened");
            communitas_proto::fuzz::session(&seed[..i]);
        }
    }
}
