//! The ratchet header and its encryption (Signal's Double Ratchet §4, "header
//! encryption"): the sender's ratchet key, the previous chain's length, the
//! message number and the post-quantum step's fields, sealed under the chain's
//! header key so that nobody but the two devices can tell which session, chain or
//! position a message belongs to.
//!
//! Plaintext layout (big-endian):
//!
//! | bytes | field |
//! | --- | --- |
//! | 32 | sender's ratchet key, X25519 |
//! | 4 | `PN`: messages in the sender's previous sending chain |
//! | 4 | `N`: this message's number in its chain |
//! | 1 | flags: bit 0 = an ML-KEM encapsulation key follows; bit 1 = an ML-KEM ciphertext follows |
//! | 0 or 1184 | the sender's ML-KEM-768 encapsulation key (an offer) |
//! | 0 or 1088 | an ML-KEM-768 ciphertext to the receiver's offered key (an answer) |
//!
//! Sealed: a 24-byte random nonce, then XChaCha20-Poly1305 of the plaintext under
//! the header key with the associated data `version ‖ kind ‖ AD` (the session's
//! handshake binding).

use chacha20poly1305::aead::{Aead, Payload as AeadInput};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use communitas_crypto::dh::DhPublic;
use communitas_crypto::mlkem::{CT_LEN, EK_LEN};
use communitas_types::codec::{DecodeError, Reader, Writer};
use zeroize::Zeroizing;

use super::kdf::Key;

/// Bytes of a header without post-quantum fields.
pub const BASE_LEN: usize = 32 + 4 + 4 + 1;
/// Bytes of the longest header plaintext.
pub const MAX_LEN: usize = BASE_LEN + EK_LEN + CT_LEN;
/// Nonce and tag around the sealed header.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + 16;
const NONCE_LEN: usize = 24;
const FLAG_EK: u8 = 1;
const FLAG_CT: u8 = 2;

/// A ratchet header.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Header {
    pub(crate) dh: DhPublic,
    pub(crate) pn: u32,
    pub(crate) n: u32,
    pub(crate) kem_ek: Option<Box<[u8; EK_LEN]>>,
    pub(crate) kem_ct: Option<Box<[u8; CT_LEN]>>,
}

impl Header {
    pub(crate) fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut flags = 0;
        if self.kem_ek.is_some() {
            flags |= FLAG_EK;
        }
        if self.kem_ct.is_some() {
            flags |= FLAG_CT;
        }
        let mut w = Writer::with_capacity(MAX_LEN);
        w.raw(self.dh.as_bytes()).u32(self.pn).u32(self.n).u8(flags);
        if let Some(ek) = &self.kem_ek {
            w.raw(ek.as_slice());
        }
        if let Some(ct) = &self.kem_ct {
            w.raw(ct.as_slice());
        }
        Zeroizing::new(w.into_vec())
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, MAX_LEN)?;
        let dh = DhPublic::from_bytes(r.array("ratchet key")?);
        let pn = r.u32("previous chain length")?;
        let n = r.u32("message number")?;
        let flags = r.u8("header flags")?;
        if flags & !(FLAG_EK | FLAG_CT) != 0 {
            return Err(DecodeError::InvalidValue { field: "header flags" });
        }
        let kem_ek = (flags & FLAG_EK != 0)
            .then(|| r.array::<EK_LEN>("kem encapsulation key").map(Box::new))
            .transpose()?;
        let kem_ct = (flags & FLAG_CT != 0)
            .then(|| r.array::<CT_LEN>("kem ciphertext").map(Box::new))
            .transpose()?;
        r.finish()?;
        Ok(Self { dh, pn, n, kem_ek, kem_ct })
    }
}

/// Seals `header` under `hk`.
pub(crate) fn seal(hk: &Key, header: &Header, nonce: [u8; NONCE_LEN], aad: &[u8]) -> Vec<u8> {
    let plain = header.to_bytes();
    let cipher = XChaCha20Poly1305::new((&hk.0).into());
    #[allow(clippy::expect_used)]
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), AeadInput { msg: &plain, aad })
        .expect("XChaCha20-Poly1305 encrypts a few KiB");
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// Opens a sealed header under `hk`: `None` if it was not sealed under `hk` (or
/// was changed), or if what it holds is not a header.
pub(crate) fn open(hk: &Key, sealed: &[u8], aad: &[u8]) -> Option<Header> {
    let nonce = sealed.get(..NONCE_LEN)?;
    let body = sealed.get(NONCE_LEN..)?;
    let cipher = XChaCha20Poly1305::new((&hk.0).into());
    let plain = Zeroizing::new(
        cipher.decrypt(XNonce::from_slice(nonce), AeadInput { msg: body, aad }).ok()?,
    );
    Header::from_bytes(&plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_with_and_without_kem_fields_and_open_only_under_their_key() {
        let hk = Key([7; 32]);
        for (ek, ct) in [(false, false), (true, false), (false, true), (true, true)] {
            let h = Header {
                dh: DhPublic::from_bytes([1; 32]),
                pn: 3,
                n: 9,
                kem_ek: ek.then(|| Box::new([2; EK_LEN])),
                kem_ct: ct.then(|| Box::new([3; CT_LEN])),
            };
            let sealed = seal(&hk, &h, [4; NONCE_LEN], b"ad");
            assert!(open(&hk, &sealed, b"ad") == Some(h.clone()));
            assert!(open(&Key([8; 32]), &sealed, b"ad").is_none());
            assert!(open(&hk, &sealed, b"ae").is_none());
            assert!(open(&hk, &sealed[..sealed.len() - 1], b"ad").is_none());
        }
    }
}
