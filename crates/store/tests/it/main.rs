//! Integration tests of the store, on real SQLite files. One binary (ARCHITECTURE §14).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod consent;
mod crash;
mod held_prekeys;
mod mailbox;
mod rows;
mod sessions;

use communitas_crypto::at_rest::StorageKey;
use communitas_store::{Direction, NewMessage, OutboxEntry, Place, Status};
use communitas_types::{Address, MessageId, Timestamp};

/// The storage key every test uses.
pub fn key() -> StorageKey {
    StorageKey::from_bytes([7; 32])
}

/// The peer of every test conversation.
pub fn bob() -> Address {
    Address::from_bytes([1, 2, 3, 4, 5, 6])
}

/// Outgoing message number `n` with its outbox entry.
pub fn outgoing(n: u64, text: &str) -> (NewMessage, OutboxEntry) {
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    let id = MessageId::from_bytes(id);
    let now = Timestamp::from_millis(1_780_000_000_000 + n);
    (
        NewMessage {
            id,
            peer: bob(),
            direction: Direction::Out,
            kind: 1,
            body: text.as_bytes().to_vec(),
            timestamp: now,
            status: Status::Queued,
            place: Place {
                position: now.as_millis() as i64 * 2,
                clock: now.as_millis(),
                n: Some(n),
            },
        },
        OutboxEntry {
            message_id: id,
            recipient: bob(),
            envelope: vec![0xee; 64],
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
            expires_at: now.saturating_add(std::time::Duration::from_secs(30 * 86400)),
            last_error: None,
        },
    )
}
