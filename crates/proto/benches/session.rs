//! Sessions (issue 14): the handshake (initiate + accept, with and without one-time
//! prekeys), a warm 10-byte message encrypted and decrypted, the messages of a
//! post-quantum step, and the state's bytes.
//! `cargo bench -p communitas-proto --bench session`; figures in decision 0051.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use communitas_crypto::dh::DhSecret;
use communitas_crypto::handshake::ResponderKeys;
use communitas_crypto::identity::DeviceKey;
use communitas_crypto::mlkem::KemSecret;
use communitas_crypto::prekey::{OneTimeKey, OneTimePrekey, PrekeyBundle, PrekeyId};
use communitas_proto::random::Seeded;
use communitas_proto::session::Session;
use communitas_types::Timestamp;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const T0: Timestamp = Timestamp::from_millis(1_780_000_000_000);

fn sessions(c: &mut Criterion) {
    let alice_device = DeviceKey::from_secret_bytes([1; 32]);
    let device = DeviceKey::from_secret_bytes([2; 32]);
    let spk = DhSecret::from_bytes([3; 32]);
    let pq = KemSecret::from_seed([4; 64]);
    let opk = DhSecret::from_bytes([5; 32]);
    let pq_opk = KemSecret::from_seed([6; 64]);
    let bundle = PrekeyBundle::sign(&device, T0, (PrekeyId(1), &spk), (PrekeyId(2), &pq));
    let one_dh = OneTimePrekey::sign(&device, PrekeyId(3), OneTimeKey::Dh(opk.public()));
    let one_kem = OneTimePrekey::sign(&device, PrekeyId(4), OneTimeKey::Kem(pq_opk.public()));
    let keys = ResponderKeys {
        device: &device,
        signed_prekey: &spk,
        kem_prekey: &pq,
        one_time_prekey: None,
    };
    let keys_one_time = ResponderKeys { kem_prekey: &pq_opk, one_time_prekey: Some(&opk), ..keys };
    let mut rng = Seeded::new(1);

    let mut g = c.benchmark_group("session_handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("initiate_and_first_message", |b| {
        b.iter(|| {
            let a = Session::initiate(&alice_device, &bundle, None, None, T0, &mut rng).unwrap();
            a.encrypt(black_box(b"0123456789"), T0, &mut rng).unwrap()
        })
    });
    let first = Session::initiate(&alice_device, &bundle, None, None, T0, &mut rng)
        .unwrap()
        .encrypt(b"0123456789", T0, &mut rng)
        .unwrap();
    g.bench_function("accept", |b| {
        b.iter(|| Session::accept(&keys, black_box(&first.bytes), T0).unwrap())
    });
    let first_one_time =
        Session::initiate(&alice_device, &bundle, Some(&one_dh), Some(&one_kem), T0, &mut rng)
            .unwrap()
            .encrypt(b"0123456789", T0, &mut rng)
            .unwrap();
    g.bench_function("accept_one_time_prekeys", |b| {
        b.iter(|| Session::accept(&keys_one_time, black_box(&first_one_time.bytes), T0).unwrap())
    });
    g.finish();

    // Warm: both sides have sent; Alice sends on an established chain.
    let bob = Session::accept(&keys, &first.bytes, T0).unwrap().session;
    let reply = bob.encrypt(b"r", T0, &mut rng).unwrap();
    let alice = first.next.decrypt(&reply.bytes, T0).unwrap().next;
    let warm_alice = alice.encrypt(b"x", T0, &mut rng).unwrap();
    let bob = reply.next.decrypt(&warm_alice.bytes, T0).unwrap().next;
    let alice = warm_alice.next;
    let text = *b"0123456789";
    let warm = alice.encrypt(&text, T0, &mut rng).unwrap();
    let mut g = c.benchmark_group("session_warm_10B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encrypt", |b| {
        b.iter(|| alice.encrypt(black_box(&text), T0, &mut rng).unwrap())
    });
    g.bench_function("decrypt", |b| b.iter(|| bob.decrypt(black_box(&warm.bytes), T0).unwrap()));
    // A turn: Bob's reply starts a new chain (DH ratchet step on both sides).
    g.bench_function("reply_new_chain_encrypt_decrypt", |b| {
        let bob = bob.decrypt(&warm.bytes, T0).unwrap().next;
        b.iter(|| {
            let r = bob.encrypt(black_box(&text), T0, &mut rng).unwrap();
            warm.next.decrypt(&r.bytes, T0).unwrap()
        })
    });
    let state = bob.to_bytes();
    g.bench_function("state_to_bytes", |b| b.iter(|| bob.to_bytes()));
    g.bench_function("state_from_bytes", |b| {
        b.iter(|| Session::from_bytes(black_box(&state)).unwrap())
    });
    g.finish();

    // The post-quantum step: Alice's chain a day later carries an offer, Bob's next
    // chain the answer.
    let day = T0.saturating_add(Duration::from_secs(86_400));
    let bob = bob.decrypt(&warm.bytes, T0).unwrap().next;
    let r = bob.encrypt(b"r", day, &mut rng).unwrap();
    let alice = warm.next.decrypt(&r.bytes, day).unwrap().next;
    let mut g = c.benchmark_group("session_pq_step");
    g.throughput(Throughput::Elements(1));
    g.bench_function("offer_encrypt_decrypt", |b| {
        b.iter(|| {
            let offer = alice.encrypt(black_box(&text), day, &mut rng).unwrap();
            r.next.decrypt(&offer.bytes, day).unwrap()
        })
    });
    let offer = alice.encrypt(&text, day, &mut rng).unwrap();
    let bob = r.next.decrypt(&offer.bytes, day).unwrap().next;
    g.bench_function("answer_encrypt_decrypt", |b| {
        b.iter(|| {
            let answer = bob.encrypt(black_box(&text), day, &mut rng).unwrap();
            offer.next.decrypt(&answer.bytes, day).unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = sessions
}
criterion_main!(benches);
