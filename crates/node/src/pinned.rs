//! A read-through cache of pinned keys: address ↔ keys of every contact.
//!
//! Every send needs the recipient's parsed keys and every receipt the sender's
//! address; reading and parsing them from the database each time (an X-Wing key
//! parse expands an ML-KEM matrix) cost more than the rest of the hot path. Pinned
//! keys never change once stored (a changed key is refused), so entries never go
//! stale (a removed contact is forgotten here as it goes from the store); the database stays the source of truth and fills the cache on a miss.
//!
//! The map sits behind a `std::sync::Mutex` held only for a lookup or an insert,
//! never across an `.await` (house style §2 allows this for short sections).

use std::collections::HashMap;
use std::sync::Mutex;

use communitas_crypto::PublicIdentity;
use communitas_store::Store;
use communitas_types::{Address, Fingerprint};

/// Entries kept; a full cache is simply cleared (contacts are few; this bounds a
/// flood of one-message strangers).
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub(crate) struct Pinned {
    maps: Mutex<Maps>,
}

#[derive(Default)]
struct Maps {
    by_address: HashMap<Address, PublicIdentity>,
    by_fingerprint: HashMap<Fingerprint, Address>,
}

impl Pinned {
    fn with<T>(&self, f: impl FnOnce(&mut Maps) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-insert of a
        // complete value; the maps are still consistent.
        let mut maps = self.maps.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut maps)
    }

    pub(crate) fn remember(&self, address: Address, identity: &PublicIdentity) {
        self.with(|m| {
            if m.by_address.len() >= CAPACITY {
                m.by_address.clear();
                m.by_fingerprint.clear();
            }
            m.by_fingerprint.insert(identity.fingerprint(), address);
            m.by_address.insert(address, identity.clone());
        });
    }

    /// Forgets a removed contact's keys: the store no longer has them either.
    pub(crate) fn forget(&self, address: Address) {
        self.with(|m| {
            if let Some(identity) = m.by_address.remove(&address) {
                m.by_fingerprint.remove(&identity.fingerprint());
            }
        });
    }

    /// The pinned keys of `address`, if it is a contact.
    pub(crate) async fn keys(
        &self,
        store: &Store,
        address: Address,
    ) -> Result<Option<PublicIdentity>, communitas_store::Error> {
        if let Some(found) = self.with(|m| m.by_address.get(&address).cloned()) {
            return Ok(Some(found));
        }
        let contact = store.contact(address).await?;
        if let Some(c) = &contact {
            self.remember(c.address, &c.identity);
        }
        Ok(contact.map(|c| c.identity))
    }

    /// The address of the contact with these keys, if any.
    pub(crate) async fn address(
        &self,
        store: &Store,
        identity: &PublicIdentity,
    ) -> Result<Option<Address>, communitas_store::Error> {
        let fingerprint = identity.fingerprint();
        if let Some(found) = self.with(|m| m.by_fingerprint.get(&fingerprint).copied()) {
            return Ok(Some(found));
        }
        let contact = store.contact_by_fingerprint(fingerprint).await?;
        if let Some(c) = &contact {
            self.remember(c.address, &c.identity);
        }
        Ok(contact.map(|c| c.address))
    }
}
