#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
//! What a first-contact proof costs its sender, against what the receiver's address
//! derivation costs (issue 15 item 4, decision 0062): `cargo bench -p communitas-proto
//! --bench work`. The ratio is the figure; both run in the same process, minutes apart
//! at most.

use communitas_crypto::{Identity, derive_address};
use communitas_proto::work::{FIRST_CONTACT_BITS, challenge, check, solve};
use communitas_types::{Fingerprint, Timestamp};
use criterion::{Criterion, criterion_group, criterion_main};

fn first_contact(c: &mut Criterion) {
    let mut group = c.benchmark_group("first contact");
    group.sample_size(20);
    let bob = Fingerprint::from_bytes([1; 32]);
    let mut start = 0u64;
    group.bench_function("sender: solve 22 bits", |b| {
        b.iter(|| {
            // A fresh challenge each time (another sender), as a flood would need.
            start += 1;
            let sender = Fingerprint::from_bytes(*blake3::hash(&start.to_be_bytes()).as_bytes());
            let ch = challenge(&bob, &sender, Timestamp::from_millis(1_780_000_000_000));
            solve(&ch, FIRST_CONTACT_BITS, 0)
        })
    });
    let ch = challenge(&bob, &Fingerprint::from_bytes([2; 32]), Timestamp::from_millis(0));
    let nonce = solve(&ch, FIRST_CONTACT_BITS, 0);
    group.bench_function("receiver: check", |b| b.iter(|| check(&ch, nonce, FIRST_CONTACT_BITS)));
    let identity = Identity::generate().expect("randomness").public().clone();
    group.bench_function("receiver: derive an address (Argon2)", |b| {
        b.iter(|| derive_address(&identity))
    });
    group.finish();
}

criterion_group!(benches, first_contact);
criterion_main!(benches);
