//! The ratchet's key derivations, each with its own BLAKE3 `derive_key` context
//! (the labels are listed in `docs/protocol.md` "Sessions"; a second implementation
//! needs exactly these strings).
//!
//! - [`init`]: the handshake's session secret → the first root key and the two
//!   first header keys (Signal's `SK`, `shared_hka`, `shared_nhkb`).
//! - [`root`]: `KDF_RK_HE` — root key, DH output and, on a post-quantum step, the
//!   ML-KEM shared secret → next root key, a chain key, the next header key.
//! - [`chain`]: `KDF_CK` — chain key → next chain key and a message key.
//! - [`message`]: message key → the body's ChaCha20-Poly1305 key and nonce.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Context of the first derivation: handshake secret → root key and the first two
/// header keys.
pub const INIT_CONTEXT: &str = "communitas 2026-12 session init v1";
/// Context of the root KDF (`KDF_RK`).
pub const ROOT_CONTEXT: &str = "communitas 2026-12 session root v1";
/// Context of the chain KDF's next chain key.
pub const CHAIN_CONTEXT: &str = "communitas 2026-12 session chain key v1";
/// Context of the chain KDF's message key.
pub const MESSAGE_KEY_CONTEXT: &str = "communitas 2026-12 session message key v1";
/// Context of the message key → body key and nonce derivation.
pub const MESSAGE_AEAD_CONTEXT: &str = "communitas 2026-12 session message aead v1";

/// A 32-byte symmetric key of the ratchet. Zeroed on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Key(pub(crate) [u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

fn split3(context: &str, input: &[&[u8]]) -> (Key, Key, Key) {
    let mut h = blake3::Hasher::new_derive_key(context);
    for part in input {
        h.update(part);
    }
    let mut out = zeroize::Zeroizing::new([0u8; 96]);
    h.finalize_xof().fill(out.as_mut());
    let mut keys = (Key([0; 32]), Key([0; 32]), Key([0; 32]));
    keys.0.0.copy_from_slice(&out[..32]);
    keys.1.0.copy_from_slice(&out[32..64]);
    keys.2.0.copy_from_slice(&out[64..]);
    keys
}

/// `(root key, initiator's first header key, responder's first header key)` from
/// the handshake secret: 96 bytes of `derive_key(INIT_CONTEXT, SK)`.
pub(crate) fn init(secret: &[u8; 32]) -> (Key, Key, Key) {
    split3(INIT_CONTEXT, &[secret])
}

/// `(root key, chain key, next header key)`: 96 bytes of
/// `derive_key(ROOT_CONTEXT, RK ‖ DH ‖ 0x00)` or, on a post-quantum step,
/// `derive_key(ROOT_CONTEXT, RK ‖ DH ‖ 0x01 ‖ SS)`.
pub(crate) fn root(rk: &Key, dh: &[u8; 32], kem: Option<&[u8; 32]>) -> (Key, Key, Key) {
    match kem {
        None => split3(ROOT_CONTEXT, &[&rk.0, dh, &[0]]),
        Some(ss) => split3(ROOT_CONTEXT, &[&rk.0, dh, &[1], ss]),
    }
}

/// `(next chain key, message key)`: `derive_key(CHAIN_CONTEXT, CK)` and
/// `derive_key(MESSAGE_KEY_CONTEXT, CK)`.
pub(crate) fn chain(ck: &Key) -> (Key, Key) {
    (
        Key(blake3::derive_key(CHAIN_CONTEXT, &ck.0)),
        Key(blake3::derive_key(MESSAGE_KEY_CONTEXT, &ck.0)),
    )
}

/// The body's AEAD key (32) and nonce (12): 44 bytes of
/// `derive_key(MESSAGE_AEAD_CONTEXT, MK)`. Each message key is used once, so a
/// derived nonce is never repeated under its key.
pub(crate) fn message(mk: &Key) -> (Key, [u8; 12]) {
    let mut out = zeroize::Zeroizing::new([0u8; 44]);
    blake3::Hasher::new_derive_key(MESSAGE_AEAD_CONTEXT)
        .update(&mk.0)
        .finalize_xof()
        .fill(out.as_mut());
    let mut key = Key([0; 32]);
    key.0.copy_from_slice(&out[..32]);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&out[32..]);
    (key, nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivations_differ_by_input_and_label() {
        let rk = Key([1; 32]);
        let (a, b, c) = root(&rk, &[2; 32], None);
        let (d, _, _) = root(&rk, &[2; 32], Some(&[3; 32]));
        let (e, _, _) = root(&rk, &[2; 32], Some(&[4; 32]));
        assert!(a != b && b != c && a != c);
        assert!(a != d && d != e);
        let (next, mk) = chain(&a);
        assert!(next != mk && next != a);
        let (key, _) = message(&mk);
        assert!(key != mk);
    }
}
