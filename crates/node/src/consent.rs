//! Who may reach us (issue 15, decision 0052): the in-memory view of the block list
//! that inbound consults before any costly work, the impostors it refused, and what
//! follows a contact accepted.
//!
//! The `blocks` table is the source of truth; this mirror is loaded at start and
//! updated by the same calls that write the table (`Handle::block`, `unblock`, and
//! inbound when it learns a blocked address's keys). Inbound looks an envelope's
//! sender up here right after opening it: a blocked sender's envelope is dropped
//! before any database read, address derivation (Argon2) or write.
//!
//! Impostors (keys whose address is a pinned contact's) are remembered the same way,
//! so that a second envelope from them is refused without deriving again.
//!
//! The sets sit behind a `std::sync::Mutex` held only for a lookup or an insert,
//! never across an `.await` (house style §2 allows this for short sections).

use std::collections::HashSet;
use std::sync::Mutex;

use communitas_store::{Block, Contact, Direction, FileStatus, MAX_BLOCKS};
use communitas_types::{Address, Fingerprint};

use crate::Inner;
use crate::commands::presence::Command;

/// Impostor fingerprints kept; a full set is cleared (each costs its sender a forged
/// 48-bit address collision, so there are few).
const IMPOSTORS: usize = 1024;

/// The block list and the refused impostors, mirrored for inbound.
#[derive(Default)]
pub(crate) struct Consent {
    sets: Mutex<Sets>,
}

#[derive(Default)]
struct Sets {
    /// Blocked addresses.
    addresses: HashSet<Address>,
    /// The keys of blocked addresses, where known.
    fingerprints: HashSet<Fingerprint>,
    /// Keys refused for claiming a contact's address.
    impostors: HashSet<Fingerprint>,
}

impl Consent {
    fn with<T>(&self, f: impl FnOnce(&mut Sets) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-insert of a
        // complete value; the sets are still consistent.
        let mut sets = self.sets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut sets)
    }

    /// Mirrors the stored block list (at start).
    pub(crate) fn load(&self, blocks: &[Block]) {
        self.with(|s| {
            s.addresses = blocks.iter().map(|b| b.address).collect();
            s.fingerprints = blocks.iter().filter_map(|b| b.fingerprint).collect();
        });
    }

    /// A block was stored.
    pub(crate) fn block(&self, block: &Block) {
        self.with(|s| {
            // The table holds at most `MAX_BLOCKS`; so does this mirror.
            if s.addresses.len() < MAX_BLOCKS as usize {
                s.addresses.insert(block.address);
            }
            if let Some(fp) = block.fingerprint {
                s.fingerprints.insert(fp);
            }
        });
    }

    /// A block was removed; `fingerprint` is the keys it held, if known.
    pub(crate) fn unblock(&self, address: Address, fingerprint: Option<Fingerprint>) {
        self.with(|s| {
            s.addresses.remove(&address);
            if let Some(fp) = fingerprint {
                s.fingerprints.remove(&fp);
            }
        });
    }

    /// Whether these keys are blocked (known keys only: an address blocked before its keys were seen is caught after derivation, by `is_blocked`).
    pub(crate) fn blocks_keys(&self, fingerprint: &Fingerprint) -> bool {
        self.with(|s| s.fingerprints.contains(fingerprint))
    }

    /// Whether `address` is blocked.
    pub(crate) fn is_blocked(&self, address: &Address) -> bool {
        self.with(|s| s.addresses.contains(address))
    }

    /// Remembers the keys of a blocked address, learned from an envelope.
    pub(crate) fn learn_blocked_keys(&self, fingerprint: Fingerprint) {
        self.with(|s| s.fingerprints.insert(fingerprint));
    }

    /// Whether these keys were refused as an impostor before.
    pub(crate) fn is_impostor(&self, fingerprint: &Fingerprint) -> bool {
        self.with(|s| s.impostors.contains(fingerprint))
    }

    /// Remembers an impostor's keys.
    pub(crate) fn impostor(&self, fingerprint: Fingerprint) {
        self.with(|s| {
            if s.impostors.len() >= IMPOSTORS {
                s.impostors.clear();
            }
            s.impostors.insert(fingerprint);
        });
    }
}

/// What follows a contact made from a request (accepted, written to) or unblocked:
/// its keys cached, presence due at once (waiting for room in the actor's inbox, so
/// it comes within a second: issue 15 item 5), its waiting attachments fetched.
pub(crate) async fn accepted(inner: &Inner, contact: &Contact) {
    inner.pinned.remember(contact.address, &contact.identity);
    let _ = inner.presence.tell(Command::ContactAdded(contact.address)).await;
    match inner.store.unfinished_files().await {
        Ok(rows) => {
            for row in rows {
                if row.peer == contact.address
                    && row.direction == Direction::In
                    && row.status == FileStatus::Pending
                {
                    inner.files.offer_fetch(row.file_id);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list an accepted request's files"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use communitas_types::Timestamp;

    #[test]
    fn blocks_are_mirrored_by_address_and_by_keys() {
        let consent = Consent::default();
        let (a, b) = (Address::from_bytes([1; 6]), Address::from_bytes([2; 6]));
        let fp = Fingerprint::from_bytes([9; 32]);
        let at = Timestamp::from_millis(1);
        consent.load(&[Block { address: a, fingerprint: Some(fp), blocked_at: at }]);
        assert!(consent.is_blocked(&a) && consent.blocks_keys(&fp));
        consent.block(&Block { address: b, fingerprint: None, blocked_at: at });
        assert!(consent.is_blocked(&b));
        consent.unblock(a, Some(fp));
        assert!(!consent.is_blocked(&a) && !consent.blocks_keys(&fp));
        consent.learn_blocked_keys(fp);
        assert!(consent.blocks_keys(&fp));
    }
}
