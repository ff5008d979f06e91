//! Prekey secrets and sessions (issue 14 phase 2, decision 0053): sealed at rest, and
//! a session's state committed in the same transaction as the message that advanced
//! it, or not at all.

use communitas_crypto::at_rest::StorageKey;
use communitas_store::{Direction, Error, Inserted, SessionUpdate, Status, Store};
use communitas_types::{Fingerprint, Timestamp};
use zeroize::Zeroizing;

use super::{key, outgoing};

const DEVICE: [u8; 32] = [0x42; 32];

fn update(state: &[u8]) -> SessionUpdate {
    SessionUpdate {
        peer_device: DEVICE,
        made_from: None,
        state: Zeroizing::new(state.to_vec()),
        prekeys: None,
    }
}

fn state_of(session: Option<communitas_store::StoredSession>) -> Option<Vec<u8>> {
    session.map(|s| s.state.to_vec())
}

#[tokio::test]
async fn prekey_secrets_survive_a_reopen_and_are_not_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let secret = b"PREKEY-SECRET-MARKER-0123456789".to_vec();
    {
        let store = Store::open(&path, key()).unwrap();
        assert!(store.prekey_secrets().await.unwrap().is_none());
        store.save_prekey_secrets(Zeroizing::new(b"old".to_vec())).await.unwrap();
        store.save_prekey_secrets(Zeroizing::new(secret.clone())).await.unwrap();
        store.save_session(update(b"SESSION-STATE-MARKER-abcdefgh")).await.unwrap();
        store.close().await;
    }
    let store = Store::open(&path, key()).unwrap();
    assert_eq!(store.prekey_secrets().await.unwrap().unwrap().as_slice(), secret.as_slice());
    assert_eq!(
        state_of(store.session(DEVICE).await.unwrap()).unwrap(),
        b"SESSION-STATE-MARKER-abcdefgh"
    );
    store.close().await;

    let mut raw = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("s.db-wal")) {
        raw.extend(wal);
    }
    for marker in [&b"PREKEY-SECRET-MARKER"[..], b"SESSION-STATE-MARKER"] {
        assert!(!raw.windows(marker.len()).any(|w| w == marker), "plaintext secret in the file");
    }

    // Another storage key opens the file but not the secrets.
    let other = Store::open(&path, StorageKey::from_bytes([8; 32])).unwrap();
    assert!(matches!(other.prekey_secrets().await, Err(Error::Decrypt)));
    assert!(matches!(other.session(DEVICE).await, Err(Error::Decrypt)));
}

#[tokio::test]
async fn an_outgoing_message_commits_with_its_session_state_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), key()).unwrap();
    let (m, o) = outgoing(1, "hello");
    store
        .insert_outgoing_with_session(m.clone(), o.clone(), update(b"state 1"))
        .await
        .unwrap()
        .done()
        .await
        .unwrap();
    assert_eq!(state_of(store.session(DEVICE).await.unwrap()).unwrap(), b"state 1");
    assert_eq!(store.outbox().await.unwrap().len(), 1);

    // The same message again fails (its row exists): the state must not advance.
    let again =
        store.insert_outgoing_with_session(m, o, update(b"state 2")).await.unwrap().done().await;
    assert!(again.is_err());
    assert_eq!(state_of(store.session(DEVICE).await.unwrap()).unwrap(), b"state 1");

    // A control message: outbox row and state, no history row.
    let (_, mut o3) = outgoing(3, "receipt");
    o3.envelope = vec![3; 40];
    store.enqueue_with_session(o3, update(b"state 3")).await.unwrap().done().await.unwrap();
    assert_eq!(state_of(store.session(DEVICE).await.unwrap()).unwrap(), b"state 3");
    assert_eq!(store.outbox().await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_incoming_message_commits_with_its_session_state_and_the_prekeys_it_used() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), key()).unwrap();
    store.save_prekey_secrets(Zeroizing::new(b"prekeys before".to_vec())).await.unwrap();
    let (mut m, _) = outgoing(5, "hi bob");
    m.direction = Direction::In;
    m.status = Status::Delivered;
    let sender = Fingerprint::from_bytes([9; 32]);
    let until = Timestamp::from_millis(u64::MAX / 2);

    let mut first = update(b"accepted");
    first.prekeys = Some(Zeroizing::new(b"prekeys after".to_vec()));
    let got = store
        .insert_incoming_with_session(m.clone(), sender, until, first)
        .await
        .unwrap()
        .done()
        .await
        .unwrap();
    assert_eq!(got, Inserted::New);
    assert_eq!(state_of(store.session(DEVICE).await.unwrap()).unwrap(), b"accepted");
    assert_eq!(store.prekey_secrets().await.unwrap().unwrap().as_slice(), b"prekeys after");
    assert_eq!(store.message(m.id).await.unwrap().unwrap().message.body, b"hi bob");

    // A duplicate stores no second row, but its state stands (the keys are spent).
    let got = store
        .insert_incoming_with_session(m, sender, until, update(b"later"))
        .await
        .unwrap()
        .done()
        .await
        .unwrap();
    assert_eq!(got, Inserted::Duplicate);
    assert_eq!(state_of(store.session(DEVICE).await.unwrap()).unwrap(), b"later");
    assert_eq!(store.prekey_secrets().await.unwrap().unwrap().as_slice(), b"prekeys after");

    assert_eq!(store.sessions().await.unwrap().len(), 1);
    assert!(store.drop_session(DEVICE).await.unwrap());
    assert!(!store.drop_session(DEVICE).await.unwrap());
    assert!(store.session(DEVICE).await.unwrap().is_none());
}

/// Sealed again for a new session (issue 14 item 6): the outbox row's envelope and the
/// session change together; for a message no longer queued the session's state is
/// still committed (later letters are built on it), and the answer says so.
#[tokio::test]
async fn a_resealed_message_commits_its_envelope_with_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), key()).unwrap();
    let (m, o) = outgoing(1, "hello");
    let id = o.message_id;
    store
        .insert_outgoing_with_session(m, o, update(b"old session"))
        .await
        .unwrap()
        .done()
        .await
        .unwrap();
    let queued = store
        .reseal_with_session(id, vec![9; 50], update(b"new session"))
        .await
        .unwrap()
        .done()
        .await
        .unwrap();
    assert!(queued);
    let outbox = store.outbox().await.unwrap();
    assert_eq!(outbox[0].envelope, vec![9; 50]);
    assert_eq!(state_of(store.session(DEVICE).await.unwrap()).unwrap(), b"new session");

    let (_, gone) = outgoing(2, "never queued");
    let queued = store
        .reseal_with_session(gone.message_id, vec![1; 5], update(b"moved on"))
        .await
        .unwrap()
        .done()
        .await
        .unwrap();
    assert!(!queued, "the message was not in the outbox");
    assert_eq!(store.outbox().await.unwrap().len(), 1, "no row made for it");
    assert_eq!(state_of(store.session(DEVICE).await.unwrap()).unwrap(), b"moved on");
}

/// Commits without waiting (decision 0053): a state is written only over the one it was
/// made from, so when a write fails, the writes queued after it (made from its state)
/// fail too and the stored state never skips a message it did not store.
#[tokio::test]
async fn a_state_is_written_only_over_the_generation_it_was_made_from() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), key()).unwrap();
    let at = |made_from: u64, state: &[u8]| SessionUpdate {
        made_from: Some(made_from),
        ..update(state)
    };
    store.save_session(at(0, b"g1")).await.unwrap();
    let (m, o) = outgoing(1, "one");
    let first =
        store.insert_outgoing_with_session(m.clone(), o.clone(), at(1, b"g2")).await.unwrap();
    // Queued before the first is done, made from its state.
    let (m2, o2) = outgoing(2, "two");
    let second = store.insert_outgoing_with_session(m2, o2, at(2, b"g3")).await.unwrap();
    first.done().await.unwrap();
    second.done().await.unwrap();
    let stored = store.session(DEVICE).await.unwrap().unwrap();
    assert_eq!((stored.state.to_vec(), stored.generation), (b"g3".to_vec(), 3));

    // A failing write (its message exists already), and one made from it behind it.
    let failing = store.insert_outgoing_with_session(m, o, at(3, b"g4")).await.unwrap();
    let (m5, o5) = outgoing(5, "five");
    let behind = store.insert_outgoing_with_session(m5, o5, at(4, b"g5")).await.unwrap();
    assert!(failing.done().await.is_err());
    assert!(matches!(behind.done().await, Err(Error::SessionConflict)));
    let stored = store.session(DEVICE).await.unwrap().unwrap();
    assert_eq!((stored.state.to_vec(), stored.generation), (b"g3".to_vec(), 3));
    assert_eq!(store.outbox().await.unwrap().len(), 2, "neither failed message stored");
}
