//! Integration tests of the crypto crate: one binary (ARCHITECTURE §14).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod envelope;
mod fuzz_corpus;
mod vectors;

use communitas_crypto::Identity;

/// Fixed identities for tests: deterministic, so failures reproduce.
pub fn identity(n: u8) -> Identity {
    Identity::from_seed_bytes([n; 32], [n.wrapping_add(100); 32])
}
