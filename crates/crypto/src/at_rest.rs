//! Encryption at rest: message bodies in the database are sealed under a storage key
//! that lives in the keystore (so it is wrapped by the passphrase).
//!
//! Layout of a sealed value: 24-byte random nonce ‖ XChaCha20-Poly1305 ciphertext.
//! The associated data binds the value to its row (for example the message id), so a
//! ciphertext copied into another row does not open.

use std::fmt;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::random::{self, RandomError};

const NONCE_LEN: usize = 24;

/// The key the store encrypts with. Zeroed on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StorageKey([u8; 32]);

/// A sealed value did not open: wrong key, wrong row, or damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stored value does not decrypt (damaged, moved, or another key)")]
pub struct AtRestError;

impl StorageKey {
    /// A fresh key.
    pub fn generate() -> Result<Self, RandomError> {
        random::bytes().map(Self)
    }

    /// A key from bytes (tests, and the keystore).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Seals `plaintext`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, RandomError> {
        let nonce = random::bytes::<NONCE_LEN>()?;
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        #[allow(clippy::expect_used)]
        let ciphertext = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .expect("XChaCha20-Poly1305 encrypts anything under 256 GiB");
        Ok([nonce.as_slice(), &ciphertext].concat())
    }

    /// Opens what [`seal`](Self::seal) produced with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AtRestError> {
        if sealed.len() < NONCE_LEN {
            return Err(AtRestError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad })
            .map_err(|_| AtRestError)
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageKey").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_row() {
        let key = StorageKey::from_bytes([1; 32]);
        let sealed = key.seal(b"row-1", b"secret text").unwrap();
        assert_eq!(key.open(b"row-1", &sealed).unwrap(), b"secret text");
        assert_eq!(key.open(b"row-2", &sealed), Err(AtRestError));
        assert_eq!(StorageKey::from_bytes([2; 32]).open(b"row-1", &sealed), Err(AtRestError));
        assert_eq!(key.open(b"row-1", &sealed[..10]), Err(AtRestError));
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }
}
