//! What a session carries for one message, and the version-2 envelope that carries a
//! session message over a direct connection (issue 14 item 5, decision 0053).
//!
//! Inside a session the letter needs no keys and no signature (the session
//! authenticates both ends): `version (1) ‖ message id (16) ‖ timestamp (8) ‖ kind (1)
//! ‖ body`. Over a direct connection, which Noise already authenticates, the envelope
//! is `0x02 ‖ 0x01 (direct) ‖ session message`: no KEM and no signature per message.
//! The mailbox form (with its sealed-sender outer layer) is not settled yet (0053).

use communitas_crypto::Kind;
use communitas_types::codec::{DecodeError, Reader, Writer};
use communitas_types::{MessageId, Timestamp};

use super::wire;

/// The letter format version.
pub const LETTER_VERSION: u8 = 1;
/// Bytes a letter adds around its body.
pub const LETTER_OVERHEAD: usize = 1 + 16 + 8 + 1;
/// The envelope version that carries session messages (version 1 is
/// `communitas_crypto::Envelope`).
pub const ENVELOPE_VERSION: u8 = 2;
/// The envelope form for a direct connection.
pub const DIRECT: u8 = 1;
/// Bytes a direct envelope adds around its session message.
pub const DIRECT_OVERHEAD: usize = 2;

/// One message's fields inside a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLetter {
    /// The sender's id for the message.
    pub message_id: MessageId,
    /// The sender's clock.
    pub timestamp: Timestamp,
    /// What it is.
    pub kind: Kind,
    /// The body (UTF-8 for a text).
    pub body: Vec<u8>,
}

impl SessionLetter {
    /// The bytes to hand `Session::encrypt`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(LETTER_OVERHEAD + self.body.len());
        w.u8(LETTER_VERSION)
            .raw(self.message_id.as_bytes())
            .u64(self.timestamp.as_millis())
            .u8(self.kind.to_u8())
            .raw(&self.body);
        w.into_vec()
    }

    /// Parses what `Session::decrypt` returned.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, wire::MAX_LEN)?;
        let version = r.u8("letter version")?;
        if version != LETTER_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "session letter",
                got: version,
                min: LETTER_VERSION,
                max: LETTER_VERSION,
            });
        }
        let message_id = MessageId::from_bytes(r.array("message id")?);
        let timestamp = Timestamp::from_millis(r.u64("timestamp")?);
        let kind = Kind::from_u8(r.u8("kind")?)?;
        let body = r.take("body", r.remaining())?.to_vec();
        r.finish()?;
        Ok(Self { message_id, timestamp, kind, body })
    }
}

/// Wraps a session message for a direct connection.
pub fn direct_envelope(session_message: &[u8]) -> Vec<u8> {
    [&[ENVELOPE_VERSION, DIRECT][..], session_message].concat()
}

/// The session message inside a direct envelope; `None` if `bytes` is not one (a
/// version-1 envelope, or another form).
pub fn open_direct(bytes: &[u8]) -> Option<&[u8]> {
    match bytes {
        [ENVELOPE_VERSION, DIRECT, rest @ ..] if !rest.is_empty() => Some(rest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use communitas_crypto::identity::DeviceKey;

    use super::*;
    use crate::random::Seeded;
    use crate::session::prekeys::PrekeySecrets;
    use crate::session::{Peeked, Session, peek};

    const T0: Timestamp = Timestamp::from_millis(1_780_000_000_000);

    fn letter(n: u8, body: &[u8]) -> SessionLetter {
        SessionLetter {
            message_id: MessageId::from_bytes([n; 16]),
            timestamp: T0,
            kind: Kind::Text,
            body: body.to_vec(),
        }
    }

    #[test]
    fn letters_round_trip_and_other_versions_are_refused() {
        let l = letter(1, b"hello");
        assert_eq!(SessionLetter::from_bytes(&l.to_bytes()).unwrap(), l);
        assert_eq!(l.to_bytes().len(), LETTER_OVERHEAD + 5);
        let mut bad = l.to_bytes();
        bad[0] = 2;
        assert!(SessionLetter::from_bytes(&bad).is_err());
        assert!(SessionLetter::from_bytes(&l.to_bytes()[..LETTER_OVERHEAD - 1]).is_err());
        let mut zero_kind = l.to_bytes();
        zero_kind[25] = 0;
        assert!(SessionLetter::from_bytes(&zero_kind).is_err());
        assert_eq!(open_direct(&direct_envelope(b"xyz")), Some(&b"xyz"[..]));
        assert_eq!(open_direct(&[1, 1, 9]), None, "a version-1 envelope is not direct");
        assert_eq!(open_direct(&[ENVELOPE_VERSION, DIRECT]), None);
    }

    /// The size a warm 10-byte text has on a direct connection (issue 14's budget:
    /// ≤ 200 bytes), measured through a real handshake and reply.
    #[test]
    fn a_warm_ten_byte_text_fits_the_direct_budget() {
        let mut rng = Seeded::new(53);
        let (alice, bob) =
            (DeviceKey::from_secret_bytes([0xa0; 32]), DeviceKey::from_secret_bytes([0xb0; 32]));
        let prekeys = PrekeySecrets::new(T0, &mut rng);
        let bundle = prekeys.bundle(&bob).unwrap();
        let a = Session::initiate(&alice, &bundle, None, None, T0, &mut rng).unwrap();
        let first = a.encrypt(&letter(1, b"hi").to_bytes(), T0, &mut rng).unwrap();
        let Peeked::Initial { init, .. } = peek(&first.bytes).unwrap() else { panic!("initial") };
        let keys = prekeys.keys_for(&bob, &init).unwrap();
        let accepted = Session::accept(&keys, &first.bytes, T0).unwrap();
        assert_eq!(SessionLetter::from_bytes(&accepted.plaintext).unwrap(), letter(1, b"hi"));
        let reply = accepted.session.encrypt(&letter(2, b"yo").to_bytes(), T0, &mut rng).unwrap();
        let a = a.decrypt(&reply.bytes, T0).unwrap().next;

        let warm = a.encrypt(&letter(3, b"0123456789").to_bytes(), T0, &mut rng).unwrap();
        let envelope = direct_envelope(&warm.bytes);
        assert_eq!(envelope.len(), DIRECT_OVERHEAD + wire::OVERHEAD + LETTER_OVERHEAD + 10);
        assert!(envelope.len() <= 200, "{} bytes", envelope.len());
        let opened = reply.next.decrypt(open_direct(&envelope).unwrap(), T0).unwrap();
        assert_eq!(SessionLetter::from_bytes(&opened.plaintext).unwrap(), letter(3, b"0123456789"));
    }
}
