//! Deriving the four-word address from an identity's public keys.
//!
//! `address = first 48 bits of Argon2id(BLAKE3(public keys), fixed salt)`. The hash is
//! memory-hard on purpose: to find keys whose address collides with a given one, an
//! attacker has to try about 2^47 keys, each costing [`PARAMS`] of memory and time.
//! Parameters and their measured cost are in `docs/protocol.md`.
//!
//! Derivation costs a few hundred milliseconds, so callers cache its result per
//! fingerprint (a contact's address is derived once, when it is pinned).

use argon2::{Algorithm, Argon2, Params, Version};
use communitas_types::Address;
use communitas_types::address::ADDRESS_LEN;

use crate::identity::PublicIdentity;

/// Argon2id memory, in KiB: 64 MiB.
pub const MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id passes over memory.
pub const ITERATIONS: u32 = 6;
/// Argon2id lanes. One, so that the cost cannot be cut by a wider machine's
/// parallelism within a single hash (an attacker still runs many hashes at once).
pub const LANES: u32 = 1;
/// The fixed salt: the address is a function of the keys alone.
const SALT: &[u8] = b"communitas/address/v1";
/// BLAKE3 context for the Argon2 input.
const INPUT_CONTEXT: &str = "communitas 2026-11 address input v1";

/// The Argon2id parameters addresses are derived with.
pub const PARAMS: (u32, u32, u32) = (MEMORY_KIB, ITERATIONS, LANES);

/// The address of an identity. Deterministic, and costly (see the module docs).
pub fn derive_address(identity: &PublicIdentity) -> Address {
    let input = blake3::derive_key(INPUT_CONTEXT, &identity.to_bytes());
    let mut out = [0u8; ADDRESS_LEN];
    argon2id(&input, &mut out);
    Address::from_bytes(out)
}

#[allow(clippy::expect_used)]
fn argon2id(input: &[u8; 32], out: &mut [u8; ADDRESS_LEN]) {
    // Fixed, valid parameters and output length (6 ≥ Argon2's minimum of 4 bytes):
    // neither call can fail.
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, Some(ADDRESS_LEN))
        .expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(input, SALT, out)
        .expect("constant Argon2 parameters and output length are valid");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn address_is_deterministic_and_follows_both_keys() {
        let a = Identity::from_seed_bytes([1; 32], [2; 32]);
        let same = Identity::from_seed_bytes([1; 32], [2; 32]);
        let other_kem = Identity::from_seed_bytes([1; 32], [3; 32]);
        assert_eq!(derive_address(a.public()), derive_address(same.public()));
        assert_ne!(derive_address(a.public()), derive_address(other_kem.public()));
    }
}
