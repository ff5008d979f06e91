//! What goes in comes out; what must not go in twice does not.

use communitas_crypto::{Identity, at_rest::StorageKey};
use communitas_store::{Contact, Direction, Error, Inserted, Status, Store, schema};
use communitas_types::{Fingerprint, MessageId, Timestamp};

use super::{bob, key, outgoing};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.db"), key()).unwrap();
    (dir, store)
}

#[tokio::test]
async fn outgoing_messages_are_paged_oldest_first() {
    let (_dir, store) = open();
    for n in 0..5 {
        let (m, o) = outgoing(n, &format!("message {n}"));
        store.insert_outgoing(m, o).await.unwrap();
    }
    let page = store.history(bob(), 3, None).await.unwrap();
    let texts: Vec<_> =
        page.iter().map(|m| String::from_utf8(m.message.body.clone()).unwrap()).collect();
    assert_eq!(texts, ["message 2", "message 3", "message 4"]);
    let older = store.history(bob(), 3, Some(page[0].cursor())).await.unwrap();
    assert_eq!(older.len(), 2);
    assert_eq!(older[1].message.body, b"message 1");
    assert_eq!(store.outbox().await.unwrap().len(), 5);
}

#[tokio::test]
async fn status_moves_and_unknown_ids_are_refused() {
    let (_dir, store) = open();
    let (m, o) = outgoing(1, "hi");
    let id = m.id;
    store.insert_outgoing(m, o).await.unwrap();
    store.set_status(id, Status::Delivered).await.unwrap();
    assert_eq!(store.history(bob(), 10, None).await.unwrap()[0].message.status, Status::Delivered);
    // Never back: a late attempt's `sent` leaves it delivered.
    store.set_status(id, Status::Sent).await.unwrap();
    assert_eq!(store.history(bob(), 10, None).await.unwrap()[0].message.status, Status::Delivered);
    let (other, _) = outgoing(2, "never stored");
    assert!(matches!(store.set_status(other.id, Status::Sent).await, Err(Error::NoSuchMessage(_))));
}

#[tokio::test]
async fn a_replayed_incoming_message_is_stored_once() {
    let (_dir, store) = open();
    let (mut m, _) = outgoing(9, "once");
    m.direction = Direction::In;
    let sender = Fingerprint::from_bytes([4; 32]);
    let until = Timestamp::from_millis(u64::MAX / 2);
    assert_eq!(store.insert_incoming(m.clone(), sender, until).await.unwrap(), Inserted::New);
    assert_eq!(store.insert_incoming(m.clone(), sender, until).await.unwrap(), Inserted::Duplicate);
    assert_eq!(store.history(bob(), 10, None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn one_failing_write_does_not_sink_its_batch() {
    let (_dir, store) = open();
    let (m, o) = outgoing(1, "first");
    store.insert_outgoing(m.clone(), o.clone()).await.unwrap();
    // Fire many writes at once so they share a transaction; one is a duplicate key.
    let mut tasks = Vec::new();
    for n in 2..40 {
        let s = store.clone();
        let (m, o) = outgoing(n, "batch");
        tasks.push(tokio::spawn(async move { s.insert_outgoing(m, o).await }));
    }
    let dup = store.insert_outgoing(m, o);
    assert!(matches!(dup.await, Err(Error::Sqlite(_))));
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.history(bob(), 100, None).await.unwrap().len(), 39);
}

#[tokio::test]
async fn contacts_are_pinned_to_their_keys() {
    let (_dir, store) = open();
    let alice = Identity::from_seed_bytes([1; 32], [2; 32]);
    let contact = Contact {
        address: bob(),
        name: Some("Bob".into()),
        identity: alice.public().clone(),
        verified: false,
        added_at: Timestamp::from_millis(5),
    };
    store.add_contact(contact.clone()).await.unwrap();
    store.add_contact(Contact { name: Some("Bobby".into()), ..contact.clone() }).await.unwrap();
    let impostor = Identity::from_seed_bytes([9; 32], [2; 32]);
    let changed = Contact { identity: impostor.public().clone(), ..contact.clone() };
    assert!(matches!(store.add_contact(changed).await, Err(Error::KeyChanged { .. })));
    assert!(store.set_verified(bob(), true).await.unwrap());
    let list = store.contacts().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name.as_deref(), Some("Bobby"));
    assert!(list[0].verified);
    assert_eq!(&list[0].identity, alice.public());
}

#[tokio::test]
async fn bodies_are_encrypted_on_disk() {
    let (dir, store) = open();
    let (m, o) = outgoing(1, "the secret plans for friday");
    store.insert_outgoing(m, o).await.unwrap();
    drop(store);
    std::thread::sleep(std::time::Duration::from_millis(100));
    for name in ["c.db", "c.db-wal"] {
        let path = dir.path().join(name);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(!bytes.windows(10).any(|w| w == b"the secret"), "plaintext in {name}");
        }
    }
    // Another key cannot read them back.
    let other = Store::open(&dir.path().join("c.db"), StorageKey::from_bytes([8; 32])).unwrap();
    assert!(matches!(other.history(bob(), 10, None).await, Err(Error::Decrypt)));
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_reopening_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    drop(Store::open(&path, key()).unwrap());
    let store = Store::open(&path, key()).unwrap();
    assert!(store.integrity_check().await.unwrap());
    drop(store);
    // The store's threads close the file after the handle is dropped, and their last
    // checkpoint may rewrite the header: bump until the bump sticks (flaked at ~1 in 4).
    for _ in 0..50 {
        assert!(rusqlite_free_bump(&path, schema::VERSION + 1));
        match Store::open(&path, key()) {
            Err(Error::SchemaTooNew { found, .. }) => {
                assert_eq!(found, schema::VERSION + 1);
                return;
            }
            Ok(store) => drop(store),
            Err(e) => panic!("{e}"),
        }
    }
    panic!("a newer schema was never refused");
}

/// Sets `user_version` with the sqlite3 file format: byte 60 of the header, big-endian.
fn rusqlite_free_bump(path: &std::path::Path, version: u32) -> bool {
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut bytes = std::fs::read(path).unwrap();
    bytes[60..64].copy_from_slice(&version.to_be_bytes());
    std::fs::write(path, bytes).is_ok()
}

#[tokio::test]
async fn outbox_rows_move_through_attempts_dead_letters_and_delivery() {
    let (_dir, store) = open();
    let (m, o) = outgoing(1, "hello");
    let id = m.id;
    store.insert_outgoing(m, o).await.unwrap();
    let later = Timestamp::from_millis(1_790_000_000_000);
    store.record_attempt(id, 1, later, "unreachable".into(), Status::Queued).await.unwrap();
    let entry = &store.outbox().await.unwrap()[0];
    assert_eq!((entry.attempts, entry.next_attempt_at), (1, later));
    assert_eq!(entry.last_error.as_deref(), Some("unreachable"));

    store.dead_letter(id, "expired after 30 days".into()).await.unwrap();
    assert!(store.outbox().await.unwrap().is_empty());
    let dead = store.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "expired after 30 days");
    assert_eq!(store.message(id).await.unwrap().unwrap().message.status, Status::Failed);

    let back = store.retry_dead_letter(id, later, later).await.unwrap();
    assert_eq!(back.attempts, 0);
    assert!(store.dead_letters().await.unwrap().is_empty());
    assert_eq!(store.message(id).await.unwrap().unwrap().message.status, Status::Queued);

    store.mark_delivered(id).await.unwrap();
    assert!(store.outbox().await.unwrap().is_empty());
    assert_eq!(store.message(id).await.unwrap().unwrap().message.status, Status::Delivered);
    assert!(matches!(
        store.retry_dead_letter(id, later, later).await,
        Err(Error::NoSuchMessage(_))
    ));
}

#[tokio::test]
async fn file_transfers_are_kept_and_updated() {
    use communitas_store::{FileRow, FileStatus};
    use communitas_types::FileId;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), crate::key()).unwrap();
    let file_id = FileId::from_bytes([3; 16]);
    let mut row = FileRow {
        file_id,
        message_id: MessageId::from_bytes([4; 16]),
        direction: Direction::In,
        peer: crate::bob(),
        size: 5 << 20,
        path: None,
        status: FileStatus::Pending,
        done: vec![0],
        fetched: 0,
        error: None,
        updated_at: Timestamp::from_millis(1),
    };
    store.put_file(row.clone()).await.unwrap();
    assert_eq!(store.unfinished_files().await.unwrap(), vec![row.clone()]);

    row.status = FileStatus::Done;
    row.done = vec![0b11111];
    row.fetched = 5 << 20;
    row.path =
        Some(std::path::PathBuf::from(std::ffi::OsString::from_vec(b"/tmp/caf\xe9".to_vec())));
    use std::os::unix::ffi::OsStringExt as _;
    store.put_file(row.clone()).await.unwrap();
    assert_eq!(store.file(file_id).await.unwrap(), Some(row.clone()));
    assert_eq!(store.file_by_message(row.message_id).await.unwrap(), Some(row));
    assert!(store.unfinished_files().await.unwrap().is_empty());
    assert_eq!(store.file(FileId::from_bytes([9; 16])).await.unwrap(), None);
}

#[tokio::test]
async fn shards_are_kept_within_quota_listed_and_expired() {
    use communitas_store::{ShardLimits, ShardPut, StoredShard};
    use communitas_types::FileId;

    let (_dir, store) = open();
    let file_id = FileId::from_bytes([6; 16]);
    let limits = ShardLimits { per_sender: 250, total: 400 };
    let shard = |stripe: u32, index: u8, sender: &str| StoredShard {
        file_id,
        stripe,
        index,
        hashes: vec![index; 448],
        shard: vec![index; 100],
        sender: sender.into(),
        expires_at: Timestamp::from_millis(2_000),
    };
    let now = Timestamp::from_millis(1_000);
    assert_eq!(store.put_shard(shard(0, 3, "a"), limits).await.unwrap(), ShardPut::Stored);
    assert_eq!(store.put_shard(shard(0, 12, "a"), limits).await.unwrap(), ShardPut::Stored);
    // A re-put is a no-op, not a second charge.
    assert_eq!(store.put_shard(shard(0, 12, "a"), limits).await.unwrap(), ShardPut::Stored);
    // Sender a is at 200 of 250.
    assert_eq!(store.put_shard(shard(1, 0, "a"), limits).await.unwrap(), ShardPut::QuotaExceeded);
    // Another sender still fits, until the total is reached.
    assert_eq!(store.put_shard(shard(1, 0, "b"), limits).await.unwrap(), ShardPut::Stored);
    assert_eq!(store.put_shard(shard(1, 1, "b"), limits).await.unwrap(), ShardPut::Stored);
    assert_eq!(store.put_shard(shard(1, 2, "c"), limits).await.unwrap(), ShardPut::QuotaExceeded);

    assert_eq!(
        store.shards_held(file_id, now).await.unwrap(),
        vec![(0, (1 << 3) | (1 << 12)), (1, 0b11)]
    );
    let (hashes, shards) = store.shards(file_id, 0, 1 << 12, now).await.unwrap().unwrap();
    assert_eq!(hashes, vec![12; 448]);
    assert_eq!(shards, vec![(12, vec![12; 100])]);
    assert_eq!(store.shards(file_id, 0, 1 << 5, now).await.unwrap(), None);

    // Only the sender who put them can drop them.
    assert_eq!(store.drop_shards(file_id, "b".into()).await.unwrap(), 2);
    assert_eq!(store.drop_shards(FileId::from_bytes([7; 16]), "a".into()).await.unwrap(), 0);
    assert_eq!(store.shards_held(file_id, now).await.unwrap(), vec![(0, (1 << 3) | (1 << 12))]);

    let later = Timestamp::from_millis(2_000);
    assert!(store.shards_held(file_id, later).await.unwrap().is_empty());
    assert_eq!(store.expire_shards(later).await.unwrap(), 2);
}

#[tokio::test]
async fn a_fetched_sent_file_stays_fetched_and_is_released_once() {
    use communitas_store::{FileRow, FileStatus};
    use communitas_types::FileId;

    let (_dir, store) = open();
    let mut row = FileRow {
        file_id: FileId::from_bytes([8; 16]),
        message_id: MessageId::from_bytes([8; 16]),
        direction: Direction::Out,
        peer: bob(),
        size: 3 << 20,
        path: None,
        status: FileStatus::Uploading,
        done: vec![0b011],
        fetched: 0,
        error: None,
        updated_at: Timestamp::from_millis(1),
    };
    store.put_file(row.clone()).await.unwrap();
    let mut fetched = row.clone();
    fetched.status = FileStatus::Fetched;
    store.put_file(fetched).await.unwrap();
    // An upload still running writes its progress, or fails: the status does not go
    // back, and a fetched file shows no upload error.
    row.done = vec![0b111];
    row.error = Some("no server node kept shard 3".into());
    store.put_file(row.clone()).await.unwrap();
    let now = store.file(row.file_id).await.unwrap().unwrap();
    assert_eq!((now.status, now.done.clone()), (FileStatus::Fetched, vec![0b111]));
    assert_eq!(now.error, None);
    // Shards to release: picked up at start until the bitmap is cleared.
    assert_eq!(store.unfinished_files().await.unwrap(), vec![now.clone()]);
    let released = FileRow { done: Vec::new(), ..now };
    store.put_file(released).await.unwrap();
    assert!(store.unfinished_files().await.unwrap().is_empty());
}

#[tokio::test]
async fn conversations_count_unread_incoming_until_read() {
    let (_dir, store) = open();
    let carol = communitas_types::Address::from_bytes([9, 9, 9, 9, 9, 9]);
    let sender = Fingerprint::from_bytes([4; 32]);
    let until = Timestamp::from_millis(u64::MAX / 2);
    for n in 0..3 {
        let (mut m, _) = outgoing(n, "to me");
        m.direction = Direction::In;
        m.status = Status::Delivered;
        store.insert_incoming(m, sender, until).await.unwrap();
    }
    let (m, o) = outgoing(7, "mine, never unread");
    store.insert_outgoing(m, o).await.unwrap();
    let (mut older, _) = outgoing(8, "from carol");
    older.direction = Direction::In;
    older.peer = carol;
    older.timestamp = Timestamp::from_millis(1_000);
    store.insert_incoming(older, sender, until).await.unwrap();

    let list = store.conversations().await.unwrap();
    let summary: Vec<_> = list.iter().map(|c| (c.peer, c.unread)).collect();
    // Newest conversation first; our own message is never unread.
    assert_eq!(summary, [(bob(), 3), (carol, 1)]);
    assert_eq!(list[0].last_at, Timestamp::from_millis(1_780_000_000_007));

    assert_eq!(store.read_incoming(bob()).await.unwrap().len(), 3);
    let after: Vec<_> =
        store.conversations().await.unwrap().iter().map(|c| (c.peer, c.unread)).collect();
    assert_eq!(after, [(bob(), 0), (carol, 1)]);
}

#[tokio::test]
async fn a_closed_store_commits_what_came_before_and_refuses_the_rest() {
    let (dir, store) = open();
    let other = store.clone();
    let (m, o) = outgoing(1, "before the close");
    store.insert_outgoing(m, o).await.unwrap();
    store.close().await;
    let (m, o) = outgoing(2, "after the close");
    assert!(matches!(other.insert_outgoing(m, o).await, Err(Error::ActorGone)));
    assert!(matches!(other.history(bob(), 10, None).await, Err(Error::ActorGone)));
    drop((store, other));
    // Reopened: the first is there, the second never was.
    let store = Store::open(&dir.path().join("c.db"), key()).unwrap();
    let texts: Vec<_> =
        store.history(bob(), 10, None).await.unwrap().into_iter().map(|m| m.message.body).collect();
    assert_eq!(texts, [b"before the close".to_vec()]);
}

/// Issue 23 item 1: history is the conversation's order (position, then arrival),
/// not the order messages arrived in; pages follow it, and the clock resumes from it.
#[tokio::test]
async fn history_follows_positions_not_arrival() {
    use communitas_store::{NewMessage, Place};
    let (_dir, store) = open();
    let sender = Fingerprint::from_bytes([9; 32]);
    let until = Timestamp::from_millis(u64::MAX / 2);
    // Arrive as 3, 1, 5, 2, 4 (a mailbox drained out of order).
    for n in [3u64, 1, 5, 2, 4] {
        let message = NewMessage {
            id: MessageId::from_bytes([n as u8; 16]),
            peer: bob(),
            direction: Direction::In,
            kind: 1,
            body: format!("in {n}").into_bytes(),
            timestamp: Timestamp::from_millis(1_000 + n),
            status: Status::Delivered,
            place: Place { position: (1_000 + n as i64) * 2 + 1, clock: 1_000 + n, n: Some(n) },
        };
        assert_eq!(store.insert_incoming(message, sender, until).await.unwrap(), Inserted::New);
    }
    // Our own, written after reading 2 (clock 1003, we sort first on a tie).
    let (mut mine, outbox) = outgoing(1, "out 1");
    mine.place = Place { position: 1_003 * 2, clock: 1_003, n: Some(1) };
    store.insert_outgoing(mine, outbox).await.unwrap();

    let bodies = |page: &[communitas_store::StoredMessage]| -> Vec<String> {
        page.iter().map(|m| String::from_utf8(m.message.body.clone()).unwrap()).collect()
    };
    let all = store.history(bob(), 10, None).await.unwrap();
    assert_eq!(bodies(&all), ["in 1", "in 2", "out 1", "in 3", "in 4", "in 5"]);
    let newest = store.history(bob(), 2, None).await.unwrap();
    assert_eq!(bodies(&newest), ["in 4", "in 5"]);
    let before = store.history(bob(), 3, Some(newest[0].cursor())).await.unwrap();
    assert_eq!(bodies(&before), ["in 2", "out 1", "in 3"]);
    assert_eq!(all[3].message.place.n, Some(3));
    assert_eq!(store.conversation_clock(bob()).await.unwrap(), (1_005, 1));
    let nobody = communitas_types::Address::from_bytes([9, 9, 9, 9, 9, 9]);
    assert_eq!(store.conversation_clock(nobody).await.unwrap(), (0, 0));
}

/// Issue 23 item 2: a retry of a message waiting in mailboxes does not make it `sent`
/// again (it flipped `sent` ↔ `stored` with each attempt).
#[tokio::test]
async fn a_stored_message_is_not_sent_again_by_a_retry() {
    let (_dir, store) = open();
    let (m, o) = outgoing(1, "hello");
    let id = m.id;
    store.insert_outgoing(m, o).await.unwrap();
    assert!(store.mark_sent(id).await.unwrap(), "queued → sent");
    assert!(!store.mark_sent(id).await.unwrap(), "already sent");
    store.set_status(id, Status::Stored).await.unwrap();
    assert!(!store.mark_sent(id).await.unwrap());
    assert_eq!(store.message(id).await.unwrap().unwrap().message.status, Status::Stored);
    store.mark_delivered(id).await.unwrap();
    assert!(!store.mark_sent(id).await.unwrap());
    assert_eq!(store.message(id).await.unwrap().unwrap().message.status, Status::Delivered);
    assert!(!store.mark_sent(MessageId::from_bytes([0xee; 16])).await.unwrap(), "no such row");
}
