//! Group commit under load (decision 0004): many tasks writing at once share one
//! transaction and one fsync, so concurrent writes go far faster than one write after
//! another; reads run on their own thread and never wait behind a commit.
//! `cargo bench -p communitas-store --bench writes`

#![allow(missing_docs, clippy::unwrap_used)]

use communitas_crypto::at_rest::StorageKey;
use communitas_store::{Direction, NewMessage, OutboxEntry, Place, Status, Store};
use communitas_types::{Address, MessageId, Timestamp};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Writers at once: the node's outbox and inbound paths under a burst.
const CONCURRENT: u64 = 256;

fn bob() -> Address {
    Address::from_bytes([1, 2, 3, 4, 5, 6])
}

/// Outgoing message number `n` with its outbox entry (as the store's tests make them).
fn outgoing(n: u64) -> (NewMessage, OutboxEntry) {
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    let id = MessageId::from_bytes(id);
    let now = Timestamp::from_millis(1_780_000_000_000 + n);
    let message = NewMessage {
        id,
        peer: bob(),
        direction: Direction::Out,
        kind: 1,
        body: vec![b'x'; 200],
        timestamp: now,
        status: Status::Queued,
        place: Place { position: now.as_millis() as i64 * 2, clock: now.as_millis(), n: Some(n) },
    };
    let outbox = OutboxEntry {
        message_id: id,
        recipient: bob(),
        envelope: vec![0xee; 1_200],
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
        expires_at: now.saturating_add(std::time::Duration::from_secs(30 * 86_400)),
        last_error: None,
    };
    (message, outbox)
}

fn writes(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // On the target's disk, not a tmpfs: the fsync is what group commit shares.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Store::open(&dir.path().join("bench.db"), StorageKey::from_bytes([7; 32])).unwrap();
    let mut next = 0u64;

    let mut group = c.benchmark_group("store");
    group.sample_size(20);
    group.throughput(Throughput::Elements(CONCURRENT));
    group.bench_function("concurrent_outgoing_256", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..CONCURRENT {
                    next += 1;
                    let (store, (message, outbox)) = (store.clone(), outgoing(next));
                    tasks.spawn(async move { store.insert_outgoing(message, outbox).await });
                }
                while let Some(done) = tasks.join_next().await {
                    done.unwrap().unwrap();
                }
            })
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_outgoing", |b| {
        b.iter(|| {
            next += 1;
            let (message, outbox) = outgoing(next);
            rt.block_on(store.insert_outgoing(message, outbox)).unwrap()
        })
    });
    group.bench_function("one_read", |b| {
        b.iter(|| rt.block_on(store.history(bob(), 20, None)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, writes);
criterion_main!(benches);
