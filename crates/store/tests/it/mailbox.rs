//! The server's mailbox rows: tombstones after an ack, and the reads behind
//! re-replication (decision 0020).

use std::time::Duration;

use communitas_store::{MailboxLimits, MailboxPut, PutOutcome, Store};
use communitas_types::{MailboxId, Timestamp};

use super::key;

const LIMITS: MailboxLimits = MailboxLimits {
    max_envelopes: 100,
    max_bytes: 1 << 20,
    max_per_sender: 100,
    max_per_sender_in_mailbox: 100,
    max_replicas_per_peer: 100,
    max_replicas_per_peer_in_mailbox: 100,
    max_total_bytes: 1 << 30,
};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), key()).unwrap();
    (dir, store)
}

async fn put(store: &Store, n: u8, mailbox: MailboxId, now: Timestamp, ttl: u64) -> PutOutcome {
    let envelope = vec![n; 40];
    let expires = now.saturating_add(Duration::from_secs(ttl));
    let put = MailboxPut {
        hash: hash(n),
        mailbox,
        envelope,
        sender: "peer".into(),
        replica: false,
        now,
        expires_at: expires,
    };
    store.mailbox_put(put, LIMITS).await.unwrap()
}

/// Stands for the envelope's BLAKE3 hash (the store does not recompute it).
fn hash(n: u8) -> [u8; 32] {
    [n; 32]
}

#[tokio::test]
async fn an_acked_envelope_is_not_taken_back_until_it_would_have_expired() {
    let (_dir, store) = open();
    let (bob, carol) = (MailboxId::from_bytes([1; 32]), MailboxId::from_bytes([2; 32]));
    let now = Timestamp::from_millis(1_780_000_000_000);
    assert_eq!(put(&store, 1, bob, now, 100).await, PutOutcome::Stored);
    assert_eq!(put(&store, 2, bob, now, 100).await, PutOutcome::Stored);
    assert_eq!(put(&store, 3, carol, now, 100).await, PutOutcome::Stored);
    assert_eq!(put(&store, 1, bob, now, 100).await, PutOutcome::AlreadyStored);

    // An ack for another mailbox deletes nothing and buries nothing.
    assert_eq!(store.mailbox_ack(carol, vec![hash(1)]).await.unwrap(), 0);
    assert_eq!(store.mailbox_ack(bob, vec![hash(1)]).await.unwrap(), 1);
    assert_eq!(put(&store, 1, bob, now, 100).await, PutOutcome::AlreadyAcked);

    // Offers: wanted is what is neither kept nor acknowledged.
    let offered = vec![hash(1), hash(2), hash(3), hash(4)];
    let answer = store.mailbox_wanted(offered).await.unwrap();
    assert_eq!((answer.hashes, answer.acked), (vec![hash(4)], 1));

    // Once the envelope would have expired, its tombstone goes too.
    let later = now.saturating_add(Duration::from_secs(101));
    store.expire(later).await.unwrap();
    let answer = store.mailbox_wanted(vec![hash(1), hash(2)]).await.unwrap();
    assert_eq!((answer.hashes, answer.acked), (vec![hash(1), hash(2)], 0));
    assert_eq!(put(&store, 1, bob, later, 100).await, PutOutcome::Stored);
}

#[tokio::test]
async fn holders_list_their_mailboxes_hashes_and_entries_with_expiry() {
    let (_dir, store) = open();
    let boxes: Vec<MailboxId> = (1..=3).map(|b| MailboxId::from_bytes([b; 32])).collect();
    let now = Timestamp::from_millis(1_780_000_000_000);
    for (i, mailbox) in boxes.iter().enumerate() {
        for n in 0..3u8 {
            let ttl = 100 + u64::from(n);
            assert_eq!(
                put(&store, 10 * (i as u8) + n, *mailbox, now, ttl).await,
                PutOutcome::Stored
            );
        }
    }
    // Paging through the mailboxes, two at a time.
    let first = store.mailbox_held(None, now, 2).await.unwrap();
    assert_eq!(first, boxes[..2]);
    let rest = store.mailbox_held(Some(first[1]), now, 2).await.unwrap();
    assert_eq!(rest, boxes[2..]);
    assert!(store.mailbox_held(Some(boxes[2]), now, 2).await.unwrap().is_empty());

    let hashes = store.mailbox_hashes(boxes[1], now, 10).await.unwrap();
    assert_eq!(hashes.len(), 3);
    assert!(hashes.contains(&hash(10)) && hashes.contains(&hash(12)));
    // Entries of another mailbox are not handed out under this one.
    let entries = store.mailbox_entries(boxes[1], vec![hash(11), hash(0)], now).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].hash, hash(11));
    assert_eq!(entries[0].envelope, vec![11; 40]);
    assert_eq!(entries[0].expires_at, now.saturating_add(Duration::from_secs(101)));

    // Expired entries are neither listed nor handed out.
    let later = now.saturating_add(Duration::from_secs(101));
    assert_eq!(store.mailbox_hashes(boxes[1], later, 10).await.unwrap(), vec![hash(12)]);
    assert!(store.mailbox_entries(boxes[1], vec![hash(11)], later).await.unwrap().is_empty());
    let gone = now.saturating_add(Duration::from_secs(103));
    assert!(store.mailbox_held(None, gone, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_server_wide_cap_counts_every_mailbox_and_frees_on_ack_and_expiry() {
    let (_dir, store) = open();
    let now = Timestamp::from_millis(1_780_000_000_000);
    // Room for three 40-byte envelopes in all.
    let limits = MailboxLimits { max_total_bytes: 120, ..LIMITS };
    let put = |n: u8, ttl: u64| {
        let mailbox = MailboxId::from_bytes([n; 32]);
        let expires = now.saturating_add(Duration::from_secs(ttl));
        let store = store.clone();
        async move {
            let put = MailboxPut {
                hash: hash(n),
                mailbox,
                envelope: vec![n; 40],
                sender: format!("peer {n}"),
                replica: false,
                now,
                expires_at: expires,
            };
            store.mailbox_put(put, limits).await.unwrap()
        }
    };
    assert_eq!(put(1, 10).await, PutOutcome::Stored);
    assert_eq!(put(2, 100).await, PutOutcome::Stored);
    assert_eq!(put(3, 100).await, PutOutcome::Stored);
    // Another mailbox, another sender: the server is full all the same.
    assert_eq!(put(4, 100).await, PutOutcome::ServerFull);
    // Expiry makes room again.
    let later = now.saturating_add(Duration::from_secs(50));
    assert!(store.expire(later).await.unwrap() >= 1);
    assert_eq!(put(4, 100).await, PutOutcome::Stored);
    assert_eq!(put(5, 100).await, PutOutcome::ServerFull);
}

/// One sender gets a share of each mailbox, not the whole of it; a holder's copies
/// have a share and a quota of their own (issue 15 item 7).
#[tokio::test]
async fn one_sender_cannot_fill_a_mailbox_and_copies_have_their_own_quota() {
    let (_dir, store) = open();
    let now = Timestamp::from_millis(1_780_000_000_000);
    let limits = MailboxLimits {
        max_envelopes: 10,
        max_per_sender: 6,
        max_per_sender_in_mailbox: 3,
        max_replicas_per_peer: 8,
        max_replicas_per_peer_in_mailbox: 5,
        ..LIMITS
    };
    let (bob, carol) = (MailboxId::from_bytes([1; 32]), MailboxId::from_bytes([2; 32]));
    let mut n = 0u8;
    let mut put = |mailbox: MailboxId, sender: &str, replica: bool| {
        n += 1;
        let put = MailboxPut {
            hash: hash(n),
            mailbox,
            envelope: vec![n; 40],
            sender: sender.into(),
            replica,
            now,
            expires_at: now.saturating_add(Duration::from_secs(100)),
        };
        let store = store.clone();
        async move { store.mailbox_put(put, limits).await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(put(bob, "mallory", false).await, PutOutcome::Stored);
    }
    // Mallory's share of bob's mailbox is used up; bob still has room for others.
    assert_eq!(put(bob, "mallory", false).await, PutOutcome::SenderOverQuota);
    assert_eq!(put(bob, "alice", false).await, PutOutcome::Stored);
    // Her share of carol's mailbox is untouched; her quota over all mailboxes holds.
    for _ in 0..3 {
        assert_eq!(put(carol, "mallory", false).await, PutOutcome::Stored);
    }
    let other = MailboxId::from_bytes([3; 32]);
    assert_eq!(put(other, "mallory", false).await, PutOutcome::SenderOverQuota);
    // Copies she hands over as a holder count apart from her puts, within their own
    // share of a mailbox: she cannot fill bob's mailbox that way either.
    for _ in 0..5 {
        assert_eq!(put(bob, "mallory", true).await, PutOutcome::Stored);
    }
    assert_eq!(put(bob, "mallory", true).await, PutOutcome::SenderOverQuota);
    assert_eq!(put(bob, "alice", false).await, PutOutcome::Stored);
    // And their quota over all mailboxes.
    for _ in 0..3 {
        assert_eq!(put(carol, "mallory", true).await, PutOutcome::Stored);
    }
    assert_eq!(put(other, "mallory", true).await, PutOutcome::SenderOverQuota);
    // Another holder's copies are not charged to her.
    assert_eq!(put(other, "server", true).await, PutOutcome::Stored);
}
