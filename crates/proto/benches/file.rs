//! The file pipeline per stripe (1 MiB): seal + Reed-Solomon + BLAKE3, and back,
//! with all data shards and with four of them rebuilt from parity.
//! `cargo bench -p communitas-proto --bench file`

#![allow(missing_docs, clippy::unwrap_used)]

use communitas_proto::file::{SEGMENT_LEN, decode_stripe, encode_stripe};
use communitas_types::FileId;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn stripes(c: &mut Criterion) {
    let key = [7u8; 32];
    let id = FileId::from_bytes([1; 16]);
    let size = u64::from(SEGMENT_LEN);
    let plain: Vec<u8> = (0..SEGMENT_LEN).map(|i| (i % 251) as u8).collect();
    let stripe = encode_stripe(&key, id, size, 0, &plain).unwrap();

    let mut group = c.benchmark_group("file_stripe_1MiB");
    group.throughput(Throughput::Bytes(size));
    group
        .bench_function("encode", |b| b.iter(|| encode_stripe(&key, id, size, 0, &plain).unwrap()));
    group.bench_function("decode_data_only", |b| {
        b.iter(|| {
            let mut shards: Vec<_> = stripe.shards.iter().cloned().map(Some).collect();
            decode_stripe(&key, id, size, 0, &stripe.hashes, &mut shards).unwrap()
        })
    });
    group.bench_function("decode_four_lost", |b| {
        b.iter(|| {
            let mut shards: Vec<_> = stripe.shards.iter().cloned().map(Some).collect();
            for i in [0, 3, 6, 9] {
                shards[i] = None;
            }
            decode_stripe(&key, id, size, 0, &stripe.hashes, &mut shards).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, stripes);
criterion_main!(benches);
