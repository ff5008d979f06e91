//! Test hooks (feature `test-hooks`, enabled by `communitas-testkit` only): stand-ins
//! for work a test cannot afford or cannot force, such as an address collision.
//! A four-word address is 48 bits of Argon2 over the keys, so forging one takes about
//! 2^48 memory-hard hashes; the impersonation test injects the colliding mapping.

use std::collections::HashMap;
use std::sync::Mutex;

use communitas_crypto::PublicIdentity;
use communitas_types::{Address, Fingerprint};

/// Addresses injected for keys, consulted before deriving (inbound only).
#[derive(Default)]
pub(crate) struct Injected {
    map: Mutex<HashMap<Fingerprint, Address>>,
}

impl Injected {
    pub(crate) fn address(&self, identity: &PublicIdentity) -> Option<Address> {
        // Held for one lookup; poison only means a panicking test.
        let map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&identity.fingerprint()).copied()
    }
}

impl crate::Handle {
    /// Test only: inbound takes `address` as the address of `identity` instead of
    /// deriving it — a forged collision, without 2^48 Argon2 hashes.
    pub fn inject_address(&self, identity: &PublicIdentity, address: Address) {
        let mut map =
            self.inner.injected.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert(identity.fingerprint(), address);
    }
}
