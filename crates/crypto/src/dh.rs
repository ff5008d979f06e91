//! X25519 Diffie-Hellman for the session handshake and the ratchet.
//!
//! Thin wrappers over `x25519-dalek` so that `proto` never touches the curve crate:
//! a secret that zeroes itself and can be written into session state, a public key
//! as 32 bytes, and an agreement that refuses a non-contributory (all-zero) result —
//! a peer who sends a low-order point learns nothing and gets a typed error.
//!
//! A device's long-term DH key is its Ed25519 device key in Montgomery form
//! ([`DeviceKey::dh_secret`], [`device_dh_public`]): the identity record already
//! vouches for that key (decision 0050 says why one key serves both).

use std::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::identity::DeviceKey;

/// Bytes of an X25519 public key, secret or shared secret.
pub const DH_LEN: usize = 32;

/// A peer's key gave an all-zero shared secret (a low-order point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the peer's X25519 key is of low order (non-contributory agreement)")]
pub struct WeakKey;

/// An X25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DhPublic([u8; DH_LEN]);

impl DhPublic {
    /// Wraps 32 bytes. Every 32 bytes are a u-coordinate; weak ones are caught when
    /// they are used ([`DhSecret::agree`]).
    pub const fn from_bytes(bytes: [u8; DH_LEN]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub const fn to_bytes(&self) -> [u8; DH_LEN] {
        self.0
    }

    /// The 32 bytes, borrowed.
    pub const fn as_bytes(&self) -> &[u8; DH_LEN] {
        &self.0
    }
}

impl fmt::Debug for DhPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DhPublic({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// An X25519 secret key. Zeroed on drop; `Debug` omits it. Its public key is
/// computed once, when it is made (a base-point multiplication, ~30 µs, which would
/// otherwise be paid by every message that names the key).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DhSecret {
    secret: [u8; DH_LEN],
    #[zeroize(skip)]
    public: DhPublic,
}

impl DhSecret {
    /// The secret with these bytes (clamped when used, as RFC 7748 says). Callers
    /// pass 32 uniformly random bytes, or bytes read back from their own state.
    pub fn from_bytes(bytes: [u8; DH_LEN]) -> Self {
        let secret = x25519_dalek::StaticSecret::from(bytes);
        let public = DhPublic(x25519_dalek::PublicKey::from(&secret).to_bytes());
        Self { secret: bytes, public }
    }

    /// The raw bytes, to write into encrypted state. Never log them.
    pub const fn to_bytes(&self) -> [u8; DH_LEN] {
        self.secret
    }

    /// The public key.
    pub const fn public(&self) -> DhPublic {
        self.public
    }

    /// X25519 with `their` key. Refuses an all-zero result.
    pub fn agree(&self, their: &DhPublic) -> Result<zeroize::Zeroizing<[u8; DH_LEN]>, WeakKey> {
        let secret = x25519_dalek::StaticSecret::from(self.secret);
        let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(their.0));
        if !shared.was_contributory() {
            return Err(WeakKey);
        }
        Ok(zeroize::Zeroizing::new(shared.to_bytes()))
    }
}

impl fmt::Debug for DhSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhSecret").field("public", &self.public()).finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// The device's long-term X25519 secret: its Ed25519 key's scalar (the
    /// birational map of RFC 7748 §4.1, as libsodium's `ed25519_sk_to_curve25519`).
    pub fn dh_secret(&self) -> DhSecret {
        DhSecret::from_bytes(SigningKey::from_bytes(self.secret_bytes()).to_scalar_bytes())
    }
}

/// The X25519 public key of the device whose Ed25519 public key is `ed25519`, or
/// `None` if those bytes are not a valid Ed25519 point.
pub fn device_dh_public(ed25519: &[u8; 32]) -> Option<DhPublic> {
    let key = VerifyingKey::from_bytes(ed25519).ok()?;
    Some(DhPublic(key.to_montgomery().to_bytes()))
}

/// Checks an Ed25519 signature by a device key (strict: no malleable signatures).
pub fn device_verify(ed25519: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(ed25519).is_ok_and(|key| {
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature)).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_is_symmetric_and_refuses_low_order_points() {
        let a = DhSecret::from_bytes([1; 32]);
        let b = DhSecret::from_bytes([2; 32]);
        assert_eq!(*a.agree(&b.public()).unwrap(), *b.agree(&a.public()).unwrap());
        // The identity point (u = 0) and u = 1 are of low order.
        assert_eq!(a.agree(&DhPublic::from_bytes([0; 32])), Err(WeakKey));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(a.agree(&DhPublic::from_bytes(one)), Err(WeakKey));
    }

    #[test]
    fn device_key_in_montgomery_form_agrees() {
        let device = DeviceKey::from_secret_bytes([7; 32]);
        let public = device_dh_public(&device.public_bytes()).unwrap();
        assert_eq!(device.dh_secret().public(), public);
        let other = DhSecret::from_bytes([9; 32]);
        assert_eq!(
            *device.dh_secret().agree(&other.public()).unwrap(),
            *other.agree(&public).unwrap()
        );
        let sig = device.sign(b"m");
        assert!(device_verify(&device.public_bytes(), b"m", &sig));
        assert!(!device_verify(&device.public_bytes(), b"n", &sig));
    }

    #[test]
    fn debug_omits_the_secret() {
        let text = format!("{:?}", DhSecret::from_bytes([0x42; 32]));
        assert!(!text.contains("42, 42") && !text.contains("4242"), "{text}");
    }
}
