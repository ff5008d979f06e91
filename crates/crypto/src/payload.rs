//! The signed payload inside an envelope: who sent it, to whom, what, and when.
//!
//! Binary layout, version 1 (all integers big-endian; see `docs/protocol.md`):
//!
//! | bytes | field |
//! | --- | --- |
//! | 1 | payload version = 1 |
//! | 1248 | sender's public identity (Ed25519 key ‖ X-Wing key) |
//! | 32 | recipient's fingerprint |
//! | 16 | message id |
//! | 8 | timestamp, unix ms |
//! | 1 | kind |
//! | 4 + n | body (length-prefixed) |
//! | 64 | Ed25519 signature over `SIGNING_DOMAIN ‖` every byte above |
//!
//! The signature covers the recipient's fingerprint, so a payload taken out of one
//! envelope and sealed to somebody else is refused by its new recipient.

use communitas_types::codec::{DecodeError, Reader, Writer};
use communitas_types::{Fingerprint, MessageId, Timestamp};

use crate::identity::{Identity, KeyError, PUBLIC_IDENTITY_LEN, PublicIdentity, SIGNATURE_LEN};

/// The payload format version this build writes.
pub const VERSION: u8 = 1;
/// Prefix of every signed byte string, so a payload signature can never be mistaken
/// for a signature over anything else.
const SIGNING_DOMAIN: &[u8] = b"communitas/payload/v1\0";

/// Longest text body: 64 KiB (ARCHITECTURE §4).
pub const MAX_TEXT_LEN: usize = 64 * 1024;
/// Bytes a payload adds around its body.
pub const OVERHEAD: usize = 1 + PUBLIC_IDENTITY_LEN + 32 + 16 + 8 + 1 + 4 + SIGNATURE_LEN;

/// What a message is. Numbers are never reused (house style §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A text message (UTF-8, at most [`MAX_TEXT_LEN`] bytes).
    Text,
    /// A file manifest.
    File,
    /// A delivery or read receipt.
    Receipt,
    /// A presence update.
    Presence,
    /// A typing indicator.
    Typing,
    /// A system message.
    System,
    /// A kind from a newer version; kept so that it can be ignored politely.
    Unknown(u8),
}

impl Kind {
    /// The wire number.
    pub fn to_u8(self) -> u8 {
        match self {
            Kind::Text => 1,
            Kind::File => 2,
            Kind::Receipt => 3,
            Kind::Presence => 4,
            Kind::Typing => 5,
            Kind::System => 6,
            Kind::Unknown(n) => n,
        }
    }

    /// From the wire number. 0 is reserved and refused.
    pub fn from_u8(n: u8) -> Result<Self, DecodeError> {
        Ok(match n {
            0 => return Err(DecodeError::InvalidValue { field: "kind" }),
            1 => Kind::Text,
            2 => Kind::File,
            3 => Kind::Receipt,
            4 => Kind::Presence,
            5 => Kind::Typing,
            6 => Kind::System,
            n => Kind::Unknown(n),
        })
    }
}

/// A decoded payload whose signature has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The sender's public keys (signature verified against them).
    pub sender: PublicIdentity,
    /// The fingerprint of the identity it was signed for.
    pub recipient: Fingerprint,
    /// The sender's id for the message.
    pub message_id: MessageId,
    /// When the sender wrote it (sender's clock).
    pub timestamp: Timestamp,
    /// What it is.
    pub kind: Kind,
    /// The body: UTF-8 text for [`Kind::Text`], a kind-specific encoding otherwise.
    pub body: Vec<u8>,
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The bytes are malformed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The sender's keys are not valid keys.
    #[error("invalid sender key: {0}")]
    SenderKey(KeyError),
    /// The signature does not match.
    #[error("bad signature")]
    BadSignature,
    /// A text body that is not UTF-8.
    #[error("text is not valid UTF-8")]
    TextNotUtf8,
}

/// Encodes and signs a payload. The caller has checked the body's length.
pub(crate) fn encode_signed(
    sender: &Identity,
    recipient: &Fingerprint,
    message_id: &MessageId,
    timestamp: Timestamp,
    kind: Kind,
    body: &[u8],
) -> Vec<u8> {
    let mut w = Writer::with_capacity(OVERHEAD + body.len());
    w.u8(VERSION)
        .raw(&sender.public().to_bytes())
        .raw(recipient.as_bytes())
        .raw(message_id.as_bytes())
        .u64(timestamp.as_millis())
        .u8(kind.to_u8())
        .bytes(body);
    let signature = sender.sign(&signed_bytes(w.as_slice()));
    w.raw(&signature);
    w.into_vec()
}

/// Decodes a payload and checks its signature. `max_body` bounds the body before it
/// is read; text bodies are also held to [`MAX_TEXT_LEN`] and UTF-8.
pub fn decode_verified(bytes: &[u8], max_body: usize) -> Result<Payload, PayloadError> {
    let mut r = Reader::new(bytes, OVERHEAD + max_body)?;
    let version = r.u8("payload version")?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion {
            what: "payload",
            got: version,
            min: VERSION,
            max: VERSION,
        }
        .into());
    }
    let sender = PublicIdentity::read(&mut r).map_err(|e| match e {
        KeyError::Decode(d) => PayloadError::Decode(d),
        other => PayloadError::SenderKey(other),
    })?;
    let recipient = Fingerprint::from_bytes(r.array("recipient")?);
    let message_id = MessageId::from_bytes(r.array("message id")?);
    let timestamp = Timestamp::from_millis(r.u64("timestamp")?);
    let kind = Kind::from_u8(r.u8("kind")?)?;
    let body_limit = if kind == Kind::Text { MAX_TEXT_LEN.min(max_body) } else { max_body };
    let body = r.bytes("body", body_limit)?;
    let signed_len = bytes.len() - r.remaining();
    let signature = r.array::<SIGNATURE_LEN>("signature")?;
    r.finish()?;

    let signed = bytes.get(..signed_len).ok_or(DecodeError::InvalidValue { field: "length" })?;
    if !sender.verify(&signed_bytes(signed), &signature) {
        return Err(PayloadError::BadSignature);
    }
    if kind == Kind::Text && std::str::from_utf8(body).is_err() {
        return Err(PayloadError::TextNotUtf8);
    }
    Ok(Payload { sender, recipient, message_id, timestamp, kind, body: body.to_vec() })
}

fn signed_bytes(encoded: &[u8]) -> Vec<u8> {
    [SIGNING_DOMAIN, encoded].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Identity, Vec<u8>) {
        let alice = Identity::from_seed_bytes([1; 32], [2; 32]);
        let to = Fingerprint::from_bytes([7; 32]);
        let bytes = encode_signed(
            &alice,
            &to,
            &MessageId::from_bytes([5; 16]),
            Timestamp::from_millis(1_700_000_000_000),
            Kind::Text,
            "héllo".as_bytes(),
        );
        (alice, bytes)
    }

    #[test]
    fn round_trip() {
        let (alice, bytes) = sample();
        assert_eq!(bytes.len(), OVERHEAD + "héllo".len());
        let p = decode_verified(&bytes, 1024).unwrap();
        assert_eq!(&p.sender, alice.public());
        assert_eq!(p.body, "héllo".as_bytes());
        assert_eq!(p.kind, Kind::Text);
    }

    #[test]
    fn any_flipped_signed_byte_is_refused() {
        let (_, bytes) = sample();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(decode_verified(&bad, 1024).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn kind_numbers_are_stable() {
        for n in 1..=255u8 {
            assert_eq!(Kind::from_u8(n).unwrap().to_u8(), n);
        }
        assert!(Kind::from_u8(0).is_err());
    }
}
