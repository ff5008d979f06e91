//! Criterion benchmarks of the crypto hot paths (issue 2, item 7).
//!
//! `cargo bench -p communitas-crypto --bench crypto`; figures in docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use communitas_crypto::keystore::KdfParams;
use communitas_crypto::{Envelope, Identity, Keystore, Kind, Letter, Secrets, derive_address};
use communitas_types::{Address, MessageId, Timestamp};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn letter(body: &[u8]) -> Letter<'_> {
    Letter {
        message_id: MessageId::from_bytes([1; 16]),
        timestamp: Timestamp::from_millis(1_780_000_000_000),
        kind: Kind::Text,
        body,
    }
}

fn envelopes(c: &mut Criterion) {
    let alice = Identity::from_seed_bytes([1; 32], [2; 32]);
    let bob = Identity::from_seed_bytes([3; 32], [4; 32]);
    let text = [b'x'; 256];
    let sealed = Envelope::seal(&alice, bob.public(), letter(&text)).unwrap().to_bytes();

    let mut g = c.benchmark_group("envelope_256B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("seal", |b| {
        b.iter(|| {
            Envelope::seal(&alice, bob.public(), letter(black_box(&text))).unwrap().to_bytes()
        })
    });
    g.bench_function("open", |b| {
        b.iter(|| Envelope::from_bytes(black_box(&sealed)).unwrap().open(&bob).unwrap())
    });
    g.bench_function("seal_open", |b| {
        b.iter(|| {
            let wire =
                Envelope::seal(&alice, bob.public(), letter(black_box(&text))).unwrap().to_bytes();
            Envelope::from_bytes(&wire).unwrap().open(&bob).unwrap()
        })
    });
    g.finish();
}

fn slow_kdfs(c: &mut Criterion) {
    let alice = Identity::from_seed_bytes([1; 32], [2; 32]);
    let mut g = c.benchmark_group("kdf");
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    g.bench_function("derive_address", |b| b.iter(|| derive_address(black_box(alice.public()))));
    let secrets = Secrets::generate().unwrap();
    let store = Keystore::create(
        &secrets,
        None,
        Address::from_bytes([0; 6]),
        Timestamp::from_millis(0),
        b"pw",
        KdfParams::DEFAULT,
    )
    .unwrap();
    g.bench_function("keystore_unlock", |b| b.iter(|| store.unlock(black_box(b"pw")).unwrap()));
    g.finish();
}

/// The primitives a session pays for (issue 14): what decision 0051's figures are
/// made of.
fn session_primitives(c: &mut Criterion) {
    use communitas_crypto::dh::DhSecret;
    use communitas_crypto::mlkem::KemSecret;
    let a = DhSecret::from_bytes([1; 32]);
    let b = DhSecret::from_bytes([2; 32]).public();
    let sk = KemSecret::from_seed([3; 64]);
    let pk = sk.public();
    let (ct, _) = pk.encapsulate(&[4; 32]);
    let mut g = c.benchmark_group("session_primitives");
    g.bench_function("x25519_keygen", |bench| {
        bench.iter(|| DhSecret::from_bytes(black_box([5; 32])))
    });
    g.bench_function("x25519_agree", |bench| bench.iter(|| a.agree(black_box(&b)).unwrap()));
    g.bench_function("mlkem768_keygen", |bench| {
        bench.iter(|| KemSecret::from_seed(black_box([6; 64])))
    });
    g.bench_function("mlkem768_parse_ek", |bench| {
        bench.iter(|| {
            communitas_crypto::mlkem::KemPublic::from_bytes(black_box(pk.as_bytes())).unwrap()
        })
    });
    g.bench_function("mlkem768_encaps", |bench| bench.iter(|| pk.encapsulate(black_box(&[7; 32]))));
    g.bench_function("mlkem768_decaps", |bench| bench.iter(|| sk.decapsulate(black_box(&ct))));
    g.finish();
}

criterion_group!(benches, envelopes, slow_kdfs, session_primitives);
criterion_main!(benches);
