//! ML-KEM-768 (FIPS 203) for the session handshake's prekeys and the ratchet's
//! post-quantum step.
//!
//! Wrappers over the `ml-kem` crate so that `proto` handles only bytes and these
//! types: a decapsulation key kept as its 64-byte seed (the compact form FIPS 203
//! §7.1 allows, and what session state stores), a validated encapsulation key, and
//! encapsulation with caller-given randomness — the caller draws it from its
//! injected source, so golden vectors can replay it.

use std::fmt;

use ml_kem::array::Array;
use ml_kem::{Decapsulate, KeyExport, MlKem768};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Bytes of an ML-KEM-768 encapsulation key.
pub const EK_LEN: usize = 1184;
/// Bytes of an ML-KEM-768 ciphertext.
pub const CT_LEN: usize = 1088;
/// Bytes of the seed a decapsulation key is made from (`d ‖ z`).
pub const SEED_LEN: usize = 64;
/// Bytes of the shared secret.
pub const SS_LEN: usize = 32;

type Dk = ml_kem::DecapsulationKey<MlKem768>;
type Ek = ml_kem::EncapsulationKey<MlKem768>;

/// The bytes are not a valid ML-KEM-768 encapsulation key (FIPS 203 §7.2 check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid ML-KEM-768 encapsulation key")]
pub struct InvalidKemKey;

/// An ML-KEM-768 encapsulation key.
#[derive(Clone, PartialEq, Eq)]
pub struct KemPublic {
    // Boxed: the expanded key is ~1.5 KiB and this type sits in enums and state.
    key: Box<Ek>,
    bytes: Box<[u8; EK_LEN]>,
}

impl KemPublic {
    /// Parses and validates 1184 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidKemKey> {
        let array = Array::try_from(bytes).map_err(|_| InvalidKemKey)?;
        let key = Ek::new(&array).map_err(|_| InvalidKemKey)?;
        let bytes: [u8; EK_LEN] = bytes.try_into().map_err(|_| InvalidKemKey)?;
        Ok(Self { key: Box::new(key), bytes: Box::new(bytes) })
    }

    /// The 1184 bytes.
    pub fn as_bytes(&self) -> &[u8; EK_LEN] {
        &self.bytes
    }

    /// Encapsulates to this key with the 32 bytes of randomness `m` (FIPS 203
    /// `ML-KEM.Encaps_internal`). `m` must be fresh and uniform for every call.
    pub fn encapsulate(&self, m: &[u8; 32]) -> (Box<[u8; CT_LEN]>, Zeroizing<[u8; SS_LEN]>) {
        let (ct, ss) = self.key.encapsulate_deterministic(&Array::from(*m));
        let mut out = Box::new([0u8; CT_LEN]);
        out.copy_from_slice(&ct);
        (out, Zeroizing::new(ss.into()))
    }

    /// A short hash of the key, to name it in a transcript.
    pub fn digest(&self) -> [u8; 32] {
        *blake3::hash(self.bytes.as_slice()).as_bytes()
    }
}

impl fmt::Debug for KemPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.digest();
        write!(f, "KemPublic({:02x}{:02x}{:02x}{:02x}…)", d[0], d[1], d[2], d[3])
    }
}

/// An ML-KEM-768 decapsulation key, held as its seed (and expanded, boxed: ~2.4
/// KiB). Zeroed on drop; cloning copies the expanded key rather than redoing the
/// key generation.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KemSecret {
    seed: [u8; SEED_LEN],
    // The ml-kem type zeroes itself on drop.
    #[zeroize(skip)]
    key: Box<Dk>,
}

impl KemSecret {
    /// The key made from a 64-byte seed (uniformly random, or read back from state).
    pub fn from_seed(seed: [u8; SEED_LEN]) -> Self {
        let key = Box::new(Dk::from_seed(Array::from(seed)));
        Self { seed, key }
    }

    /// The seed, to write into encrypted state. Never log it.
    pub fn seed(&self) -> &[u8; SEED_LEN] {
        &self.seed
    }

    /// The encapsulation key.
    pub fn public(&self) -> KemPublic {
        let ek = self.key.encapsulation_key().clone();
        let mut bytes = Box::new([0u8; EK_LEN]);
        bytes.copy_from_slice(&ek.to_bytes());
        KemPublic { key: Box::new(ek), bytes }
    }

    /// Decapsulates a ciphertext. ML-KEM never fails here: a wrong or tampered
    /// ciphertext gives an unrelated secret (implicit rejection), which the AEAD
    /// that the secret keys then refuses.
    pub fn decapsulate(&self, ct: &[u8; CT_LEN]) -> Zeroizing<[u8; SS_LEN]> {
        let ct = Array::from(*ct);
        Zeroizing::new(self.key.decapsulate(&ct).into())
    }
}

impl fmt::Debug for KemSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KemSecret").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encapsulation_round_trips_and_keys_validate() {
        let sk = KemSecret::from_seed([3; SEED_LEN]);
        let pk = KemPublic::from_bytes(sk.public().as_bytes()).unwrap();
        assert_eq!(pk, sk.public());
        let (ct, ss) = pk.encapsulate(&[5; 32]);
        assert_eq!(*sk.decapsulate(&ct), *ss);
        let mut bad = *ct;
        bad[0] ^= 1;
        assert_ne!(*sk.decapsulate(&bad), *ss);
        assert_eq!(KemPublic::from_bytes(&pk.as_bytes()[1..]), Err(InvalidKemKey));
        // A coefficient ≥ q (0xfff in the first 12 bits) is not a valid key.
        let mut over = *pk.as_bytes();
        over[0] = 0xff;
        over[1] |= 0x0f;
        assert_eq!(KemPublic::from_bytes(&over), Err(InvalidKemKey));
    }
}
