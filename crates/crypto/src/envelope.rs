//! Sealed envelopes: what travels between nodes and sits in mailboxes.
//!
//! Binary layout, version 1 (see `docs/protocol.md`):
//!
//! | bytes | field |
//! | --- | --- |
//! | 1 | envelope version = 1 |
//! | 32 | recipient's mailbox id |
//! | 1120 | X-Wing ciphertext |
//! | 24 | XChaCha20-Poly1305 nonce |
//! | rest | AEAD ciphertext of the signed payload (payload + 16-byte tag) |
//!
//! The AEAD key is `BLAKE3-derive_key(KEY_CONTEXT, X-Wing shared secret)`, and the 1177
//! header bytes are the associated data, so no header byte can be changed unnoticed.
//! Nothing outside the ciphertext names the sender (sealed sender): the sender's
//! keys and signature are inside, in the signed [`crate::payload`].

use chacha20poly1305::aead::{Aead, Payload as AeadInput};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use communitas_types::codec::{DecodeError, Reader, Writer};
use communitas_types::{MailboxId, MessageId, Timestamp};
use subtle::ConstantTimeEq;
use x_wing::Decapsulate;
use zeroize::Zeroizing;

use crate::identity::{Identity, PublicIdentity};
use crate::payload::{self, Kind, MAX_TEXT_LEN, PayloadError};
use crate::random::{self, RandomError};

/// The envelope format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Largest envelope accepted or produced: 256 KiB (ARCHITECTURE §4).
pub const MAX_LEN: usize = 256 * 1024;
/// Bytes of the header (version, mailbox id, KEM ciphertext, nonce).
pub const HEADER_LEN: usize = 1 + 32 + x_wing::CIPHERTEXT_SIZE + NONCE_LEN;
/// Bytes of the AEAD tag.
const TAG_LEN: usize = 16;
const NONCE_LEN: usize = 24;
/// Bytes an envelope adds around its payload.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Largest body that fits: what is left of [`MAX_LEN`] after both layers' overhead.
pub const MAX_BODY_LEN: usize = MAX_LEN - OVERHEAD - payload::OVERHEAD;
const KEY_CONTEXT: &str = "communitas 2026-11 envelope key v1";

/// A sealed envelope, parsed but not opened.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    mailbox: MailboxId,
    kem_ciphertext: [u8; x_wing::CIPHERTEXT_SIZE],
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("mailbox", &self.mailbox)
            .field("len", &(HEADER_LEN + self.ciphertext.len()))
            .finish_non_exhaustive()
    }
}

/// What the sender puts in an envelope.
#[derive(Debug, Clone, Copy)]
pub struct Letter<'a> {
    /// The sender's id for the message.
    pub message_id: MessageId,
    /// The sender's clock.
    pub timestamp: Timestamp,
    /// What it is.
    pub kind: Kind,
    /// The body.
    pub body: &'a [u8],
}

/// Why an envelope could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The body is over its kind's limit.
    #[error("message body is {len} bytes, the limit is {max}")]
    TooLarge {
        /// The body's length.
        len: usize,
        /// The limit for its kind.
        max: usize,
    },
    /// A text body that is not UTF-8.
    #[error("text is not valid UTF-8")]
    TextNotUtf8,
    /// No randomness.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Why an envelope was refused. Every variant is a refusal; none is a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Malformed envelope bytes.
    #[error("malformed envelope: {0}")]
    Decode(#[from] DecodeError),
    /// Addressed to another mailbox.
    #[error("envelope is for another mailbox")]
    WrongMailbox,
    /// Decryption failed: tampered, truncated, or not for this key.
    #[error("envelope does not decrypt (tampered or not for this key)")]
    Decrypt,
    /// The payload inside is malformed or badly signed.
    #[error("invalid payload: {0}")]
    Payload(#[from] PayloadError),
    /// The signed payload names a different recipient: it was re-sealed by somebody
    /// other than its signer.
    #[error("payload was signed for another recipient")]
    WrongRecipient,
}

/// An opened envelope: authenticated sender and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The sender's public keys (the signature was checked against them).
    pub sender: PublicIdentity,
    /// The sender's id for the message.
    pub message_id: MessageId,
    /// The sender's clock; freshness is the caller's check.
    pub timestamp: Timestamp,
    /// What it is.
    pub kind: Kind,
    /// The body (UTF-8 when `kind` is [`Kind::Text`]).
    pub body: Vec<u8>,
}

impl Envelope {
    /// Seals a letter from `sender` to `recipient`, with fresh randomness.
    pub fn seal(
        sender: &Identity,
        recipient: &PublicIdentity,
        letter: Letter<'_>,
    ) -> Result<Self, SealError> {
        let randomness = Zeroizing::new(random::bytes::<64>()?);
        let nonce = random::bytes::<NONCE_LEN>()?;
        Self::seal_deterministic(sender, recipient, letter, &randomness, nonce)
    }

    /// Seals with caller-given KEM randomness and nonce. Only for test vectors:
    /// reusing randomness breaks confidentiality.
    pub fn seal_deterministic(
        sender: &Identity,
        recipient: &PublicIdentity,
        letter: Letter<'_>,
        kem_randomness: &[u8; 64],
        nonce: [u8; NONCE_LEN],
    ) -> Result<Self, SealError> {
        let max = if letter.kind == Kind::Text { MAX_TEXT_LEN } else { MAX_BODY_LEN };
        if letter.body.len() > max {
            return Err(SealError::TooLarge { len: letter.body.len(), max });
        }
        if letter.kind == Kind::Text && std::str::from_utf8(letter.body).is_err() {
            return Err(SealError::TextNotUtf8);
        }
        let plaintext = Zeroizing::new(payload::encode_signed(
            sender,
            &recipient.fingerprint(),
            &letter.message_id,
            letter.timestamp,
            letter.kind,
            letter.body,
        ));
        Ok(Self::seal_payload(recipient, &plaintext, kem_randomness, nonce))
    }

    /// Encrypts already signed payload bytes to `recipient`.
    fn seal_payload(
        recipient: &PublicIdentity,
        plaintext: &[u8],
        kem_randomness: &[u8; 64],
        nonce: [u8; NONCE_LEN],
    ) -> Self {
        let randomness = x_wing::kem::common::array::Array::from(*kem_randomness);
        let (kem_ct, shared) = recipient.kem_key().encapsulate_deterministic(&randomness);
        let mut kem_ciphertext = [0u8; x_wing::CIPHERTEXT_SIZE];
        kem_ciphertext.copy_from_slice(&kem_ct);
        let mut envelope =
            Self { mailbox: recipient.mailbox_id(), kem_ciphertext, nonce, ciphertext: Vec::new() };
        let header = envelope.header();
        #[allow(clippy::expect_used)]
        let ciphertext = aead_key(&shared)
            .encrypt(XNonce::from_slice(&nonce), AeadInput { msg: plaintext, aad: &header })
            .expect("XChaCha20-Poly1305 encrypts anything under 256 GiB; this is under 256 KiB");
        envelope.ciphertext = ciphertext;
        envelope
    }

    /// Parses envelope bytes. Checks size and version before anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, MAX_LEN)?;
        let version = r.u8("envelope version")?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "envelope",
                got: version,
                min: VERSION,
                max: VERSION,
            });
        }
        let mailbox = MailboxId::from_bytes(r.array("mailbox id")?);
        let kem_ciphertext = r.array("kem ciphertext")?;
        let nonce = r.array("nonce")?;
        let ciphertext = r.rest();
        if ciphertext.len() < TAG_LEN + payload::OVERHEAD {
            return Err(DecodeError::Truncated {
                field: "ciphertext",
                needed: TAG_LEN + payload::OVERHEAD,
                remaining: ciphertext.len(),
            });
        }
        Ok(Self { mailbox, kem_ciphertext, nonce, ciphertext: ciphertext.to_vec() })
    }

    /// The binary form (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(HEADER_LEN + self.ciphertext.len());
        w.raw(&self.header()).raw(&self.ciphertext);
        w.into_vec()
    }

    /// The mailbox this envelope is addressed to.
    pub fn mailbox(&self) -> MailboxId {
        self.mailbox
    }

    /// Opens an envelope addressed to `recipient`: decrypts, checks the signature and
    /// that the payload was signed for `recipient`.
    pub fn open(&self, recipient: &Identity) -> Result<Opened, OpenError> {
        let plaintext = self.decrypt(recipient)?;
        let payload = payload::decode_verified(&plaintext, MAX_BODY_LEN)?;
        let signed_for_us: bool =
            payload.recipient.as_bytes().ct_eq(recipient.public().fingerprint().as_bytes()).into();
        if !signed_for_us {
            return Err(OpenError::WrongRecipient);
        }
        Ok(Opened {
            sender: payload.sender,
            message_id: payload.message_id,
            timestamp: payload.timestamp,
            kind: payload.kind,
            body: payload.body,
        })
    }

    /// Checks the mailbox, decapsulates and decrypts: the signed payload bytes.
    fn decrypt(&self, recipient: &Identity) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let own_mailbox = recipient.public().mailbox_id();
        let mailbox_matches: bool = self.mailbox.as_bytes().ct_eq(own_mailbox.as_bytes()).into();
        if !mailbox_matches {
            return Err(OpenError::WrongMailbox);
        }
        let kem_ct = x_wing::Ciphertext::from(self.kem_ciphertext);
        let shared = Zeroizing::new(recipient.kem().decapsulate(&kem_ct));
        let header = self.header();
        aead_key(&shared)
            .decrypt(
                XNonce::from_slice(&self.nonce),
                AeadInput { msg: &self.ciphertext, aad: &header },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Decrypt)
    }

    fn header(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let parts: [&[u8]; 4] =
            [&[VERSION], self.mailbox.as_bytes(), &self.kem_ciphertext, &self.nonce];
        let mut at = 0;
        for part in parts {
            if let Some(slot) = out.get_mut(at..at + part.len()) {
                slot.copy_from_slice(part);
            }
            at += part.len();
        }
        out
    }
}

fn aead_key(shared: &[u8]) -> XChaCha20Poly1305 {
    let key = Zeroizing::new(blake3::derive_key(KEY_CONTEXT, shared));
    XChaCha20Poly1305::new(key.as_ref().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_resealed_to_a_third_party_is_refused() {
        let alice = Identity::from_seed_bytes([1; 32], [2; 32]);
        let bob = Identity::from_seed_bytes([3; 32], [4; 32]);
        let carol = Identity::from_seed_bytes([5; 32], [6; 32]);
        let letter = Letter {
            message_id: MessageId::from_bytes([7; 16]),
            timestamp: Timestamp::from_millis(1),
            kind: Kind::Text,
            body: b"for bob only",
        };
        let to_bob = Envelope::seal(&alice, bob.public(), letter).unwrap();
        // Bob takes alice's signed payload out and seals it, unchanged, to carol.
        let signed = to_bob.decrypt(&bob).unwrap();
        let to_carol = Envelope::seal_payload(carol.public(), &signed, &[9; 64], [9; NONCE_LEN]);
        assert_eq!(to_carol.open(&carol), Err(OpenError::WrongRecipient));
        assert!(to_bob.open(&bob).is_ok());
    }
}
