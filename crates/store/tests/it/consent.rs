//! Message requests and blocks (issue 15, decision 0052): bounded, expiring, and
//! accepted, declined or blocked in one transaction each.

use communitas_crypto::{Identity, PublicIdentity};
use communitas_store::{
    Contact, Direction, Error, Inserted, NewMessage, Place, RequestLimits, RequestMessage, Status,
    Store,
};
use communitas_types::{Address, MessageId, Timestamp};

use super::key;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.db"), key()).unwrap();
    (dir, store)
}

fn stranger(n: u8) -> (Address, PublicIdentity) {
    let id = Identity::from_seed_bytes([n; 32], [n.wrapping_add(100); 32]);
    (Address::from_bytes([n, 0, 0, 0, 0, 1]), id.public().clone())
}

fn message(
    n: u64,
    from: Address,
    identity: &PublicIdentity,
    text: &str,
    at: u64,
) -> RequestMessage {
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    RequestMessage {
        identity: identity.clone(),
        name: None,
        message: NewMessage {
            id: MessageId::from_bytes(id),
            peer: from,
            direction: Direction::In,
            kind: 1,
            body: text.as_bytes().to_vec(),
            timestamp: Timestamp::from_millis(at),
            status: Status::Delivered,
            place: Place { position: at as i64 * 2 + 1, clock: at, n: Some(n) },
        },
        file: None,
        seen_until: Timestamp::from_millis(at + 1_000_000),
        now: Timestamp::from_millis(at),
    }
}

#[tokio::test]
async fn a_request_collects_messages_and_is_not_a_conversation() {
    let (_dir, store) = open();
    let (carol, keys) = stranger(3);
    let limits = RequestLimits::default();
    let first =
        store.add_request_message(message(1, carol, &keys, "hello", 10), limits).await.unwrap();
    assert!(first.new_request);
    assert_eq!(first.inserted, Inserted::New);
    let again =
        store.add_request_message(message(1, carol, &keys, "hello", 10), limits).await.unwrap();
    assert_eq!(again.inserted, Inserted::Duplicate, "a replay is stored once");
    let second =
        store.add_request_message(message(2, carol, &keys, "there", 20), limits).await.unwrap();
    assert!(!second.new_request);
    let list = store.requests().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].address, list[0].count), (carol, 2));
    assert_eq!(list[0].first.as_ref().unwrap().message.body, b"hello");
    assert_eq!(list[0].first_at, Timestamp::from_millis(10));
    assert!(store.conversations().await.unwrap().is_empty(), "a request is not a conversation");
    assert!(store.contacts().await.unwrap().is_empty());
}

#[tokio::test]
async fn other_keys_under_a_request_or_contact_address_are_refused() {
    let (_dir, store) = open();
    let (carol, keys) = stranger(3);
    let (_, other) = stranger(4);
    let limits = RequestLimits::default();
    store.add_request_message(message(1, carol, &keys, "hi", 10), limits).await.unwrap();
    let forged = store.add_request_message(message(2, carol, &other, "me too", 11), limits).await;
    assert!(matches!(forged, Err(Error::KeyChanged { .. })), "{forged:?}");
    assert_eq!(store.request(carol).await.unwrap().unwrap().count, 1, "state unchanged");
    // An address that is a contact never becomes a request, whatever its keys.
    let (dave, dave_keys) = stranger(5);
    let contact = Contact {
        address: dave,
        name: None,
        identity: dave_keys.clone(),
        verified: false,
        added_at: Timestamp::from_millis(1),
    };
    store.add_contact(contact).await.unwrap();
    let as_request = store.add_request_message(message(3, dave, &other, "x", 12), limits).await;
    assert!(matches!(as_request, Err(Error::KeyChanged { .. })));
    assert!(store.request(dave).await.unwrap().is_none());
}

#[tokio::test]
async fn requests_are_bounded_in_number_and_size() {
    let (_dir, store) = open();
    let limits = RequestLimits { max_requests: 3, max_messages: 2, max_bytes: 10 };
    for n in 1..=4u8 {
        let (who, keys) = stranger(n);
        let added = store
            .add_request_message(message(u64::from(n), who, &keys, "hi", u64::from(n) * 10), limits)
            .await
            .unwrap();
        assert_eq!(added.evicted, u32::from(n == 4), "request {n}");
    }
    let held: Vec<_> = store.requests().await.unwrap().iter().map(|r| r.address).collect();
    assert_eq!(held.len(), 3);
    assert!(!held.contains(&stranger(1).0), "the oldest went");
    assert!(store.history(stranger(1).0, 10, None).await.unwrap().is_empty(), "with its messages");
    // Per request: two messages, ten bytes.
    let (two, keys) = stranger(2);
    let big =
        store.add_request_message(message(20, two, &keys, "123456789", 50), limits).await.unwrap();
    assert!(big.over_bound, "2 + 9 bytes is over 10");
    let fits = store.add_request_message(message(21, two, &keys, "ok", 51), limits).await.unwrap();
    assert!(!fits.over_bound);
    let third = store.add_request_message(message(22, two, &keys, "no", 52), limits).await.unwrap();
    assert!(third.over_bound, "two messages at most");
    let request = store.request(two).await.unwrap().unwrap();
    assert_eq!((request.count, request.dropped), (2, 2));
    assert_eq!(store.history(two, 10, None).await.unwrap().len(), 2);
}

#[tokio::test]
async fn accept_makes_a_contact_with_the_conversation_and_decline_deletes() {
    let (_dir, store) = open();
    let limits = RequestLimits::default();
    let (carol, keys) = stranger(3);
    let (dave, dave_keys) = stranger(4);
    store.add_request_message(message(1, carol, &keys, "hi", 10), limits).await.unwrap();
    store.add_request_message(message(2, dave, &dave_keys, "yo", 11), limits).await.unwrap();
    let contact = store.accept_request(carol, Timestamp::from_millis(20)).await.unwrap().unwrap();
    assert_eq!(contact.identity, keys);
    assert!(store.request(carol).await.unwrap().is_none());
    assert_eq!(store.contacts().await.unwrap().len(), 1);
    let history = store.history(carol, 10, None).await.unwrap();
    assert_eq!(history[0].message.body, b"hi");
    assert_eq!(store.conversations().await.unwrap().len(), 1, "now a conversation");
    assert!(store.accept_request(carol, Timestamp::from_millis(21)).await.unwrap().is_none());
    // Decline: gone, messages and all.
    assert_eq!(store.decline_request(dave).await.unwrap(), Some(dave_keys));
    assert!(store.request(dave).await.unwrap().is_none());
    assert!(store.history(dave, 10, None).await.unwrap().is_empty());
    assert_eq!(store.decline_request(dave).await.unwrap(), None);
}

#[tokio::test]
async fn adding_the_contact_accepts_its_request() {
    let (_dir, store) = open();
    let (carol, keys) = stranger(3);
    store
        .add_request_message(message(1, carol, &keys, "hi", 10), RequestLimits::default())
        .await
        .unwrap();
    let contact = Contact {
        address: carol,
        name: Some("Carol".into()),
        identity: keys,
        verified: false,
        added_at: Timestamp::from_millis(1),
    };
    store.add_contact(contact).await.unwrap();
    assert!(store.request(carol).await.unwrap().is_none());
    assert_eq!(store.history(carol, 10, None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn requests_expire_with_their_newest_message() {
    let (_dir, store) = open();
    let (carol, keys) = stranger(3);
    let limits = RequestLimits::default();
    store.add_request_message(message(1, carol, &keys, "hi", 10), limits).await.unwrap();
    // Its seen id lives until 10 + 1_000_000; a second message moves that on.
    store.add_request_message(message(2, carol, &keys, "again", 500_000), limits).await.unwrap();
    assert_eq!(store.expire_requests(Timestamp::from_millis(1_000_100)).await.unwrap(), 0);
    assert_eq!(store.expire_requests(Timestamp::from_millis(1_500_000)).await.unwrap(), 1);
    assert!(store.request(carol).await.unwrap().is_none());
    assert!(store.history(carol, 10, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn blocking_keeps_the_fingerprint_and_deletes_a_request() {
    let (_dir, store) = open();
    let (carol, keys) = stranger(3);
    store
        .add_request_message(message(1, carol, &keys, "spam", 10), RequestLimits::default())
        .await
        .unwrap();
    let blocked = store.block(carol, Timestamp::from_millis(20)).await.unwrap();
    assert!(blocked.request_deleted && !blocked.already);
    assert_eq!(blocked.block.fingerprint, Some(keys.fingerprint()));
    assert!(store.request(carol).await.unwrap().is_none());
    assert!(store.history(carol, 10, None).await.unwrap().is_empty());
    // An address never seen: no fingerprint until an envelope shows it.
    let (eve, eve_keys) = stranger(6);
    let unknown = store.block(eve, Timestamp::from_millis(21)).await.unwrap();
    assert_eq!(unknown.block.fingerprint, None);
    store.set_block_fingerprint(eve, eve_keys.fingerprint()).await.unwrap();
    let list = store.blocks().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].fingerprint, Some(eve_keys.fingerprint()));
    assert!(store.block(eve, Timestamp::from_millis(22)).await.unwrap().already);
    assert!(store.unblock(eve).await.unwrap());
    assert!(!store.unblock(eve).await.unwrap());
    assert_eq!(store.blocks().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_blocked_contact_stays_a_contact() {
    let (_dir, store) = open();
    let (dave, keys) = stranger(4);
    let contact = Contact {
        address: dave,
        name: None,
        identity: keys.clone(),
        verified: true,
        added_at: Timestamp::from_millis(1),
    };
    store.add_contact(contact).await.unwrap();
    let blocked = store.block(dave, Timestamp::from_millis(2)).await.unwrap();
    assert_eq!(blocked.block.fingerprint, Some(keys.fingerprint()));
    assert!(!blocked.request_deleted);
    assert_eq!(store.contacts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_removed_contact_keeps_its_conversation_and_declining_its_new_request_keeps_it_too() {
    let (_dir, store) = open();
    let limits = RequestLimits::default();
    let (carol, keys) = stranger(3);
    store.add_request_message(message(1, carol, &keys, "hi", 10), limits).await.unwrap();
    store.accept_request(carol, Timestamp::from_millis(20)).await.unwrap().unwrap();
    assert!(store.rename_contact(carol, Some("Carol".into())).await.unwrap());
    assert_eq!(store.contact(carol).await.unwrap().unwrap().name.as_deref(), Some("Carol"));
    assert!(store.rename_contact(carol, None).await.unwrap());
    assert_eq!(store.contact(carol).await.unwrap().unwrap().name, None);

    assert!(store.remove_contact(carol).await.unwrap());
    assert!(store.contact(carol).await.unwrap().is_none());
    assert!(!store.remove_contact(carol).await.unwrap(), "already gone");
    assert!(!store.rename_contact(carol, Some("x".into())).await.unwrap(), "no such contact");
    assert_eq!(store.history(carol, 10, None).await.unwrap().len(), 1, "history kept");

    // Carol writes again: a request, showing its own first message, not the old one.
    store.add_request_message(message(2, carol, &keys, "again", 30), limits).await.unwrap();
    let request = store.request(carol).await.unwrap().unwrap();
    assert_eq!(request.first.unwrap().message.body, b"again");
    store.decline_request(carol).await.unwrap().unwrap();
    let left = store.history(carol, 10, None).await.unwrap();
    assert_eq!(left.len(), 1, "declining took only the request's message");
    assert_eq!(left[0].message.body, b"hi");
}

/// Issue 23 item 3: the name a stranger's record gives is kept with its request; a
/// later message without one does not erase it, one with another replaces it.
#[tokio::test]
async fn a_request_keeps_the_name_its_record_gave() {
    let (_dir, store) = open();
    let limits = RequestLimits { max_requests: 10, max_messages: 10, max_bytes: 1_000 };
    let (who, keys) = stranger(7);
    let named = RequestMessage { name: Some("Carol".into()), ..message(1, who, &keys, "hi", 10) };
    store.add_request_message(named, limits).await.unwrap();
    assert_eq!(store.request(who).await.unwrap().unwrap().name.as_deref(), Some("Carol"));
    store.add_request_message(message(2, who, &keys, "again", 20), limits).await.unwrap();
    assert_eq!(store.request(who).await.unwrap().unwrap().name.as_deref(), Some("Carol"));
    let renamed = RequestMessage { name: Some("C.".into()), ..message(3, who, &keys, "me", 30) };
    store.add_request_message(renamed, limits).await.unwrap();
    let request = store.requests().await.unwrap().pop().unwrap();
    assert_eq!((request.name.as_deref(), request.count), (Some("C."), 3));
}
