//! What a session carries for one message, and the version-2 envelopes that carry a
//! session message (issue 14 items 3 and 5, decision 0053).
//!
//! Inside a session the letter needs no keys and no signature (the session
//! authenticates both ends): `version (1) ‖ flags (1) ‖ [intro length (4) ‖ intro] ‖
//! [n (8) ‖ clock (8)] ‖ message id (16) ‖ timestamp (8) ‖ kind (1) ‖ body`. The
//! stamp (flag bit 1) is the message's place in the conversation
//! ([`crate::order`]): texts and files carry one, receipts, presence and typing none.
//! A letter with an intro also carries a first-contact proof of work (flag bit 2,
//! `nonce (8)` after the stamp; [`crate::work`]). The intro (flag bit 0) is the
//! sender's signed identity record: an initiator puts it in every letter it sends
//! before the first reply, so that the responder learns which identity the
//! handshake's device belongs to (the record lists the device, signed by the
//! identity key) — inside the session, so only the responder sees it.
//!
//! Envelopes, version 2 (version 1 is `communitas_crypto::Envelope`):
//! - direct, over a connection Noise already authenticates:
//!   `0x02 ‖ 0x01 ‖ session message` — no KEM and no signature per message;
//! - mailbox: `0x02 ‖ 0x03 ‖ mailbox id (32) ‖ session message`. No outer layer: the
//!   server sees the mailbox id, as for version 1, and nothing of the sender; the
//!   recipient finds the session by its handshake id (initial messages) or by trying
//!   its sessions' header keys (decision 0053).

use communitas_crypto::Kind;
use communitas_types::codec::{DecodeError, Reader, Writer};
use communitas_types::{MailboxId, MessageId, Timestamp};

use super::wire;
use crate::order::Stamp;

/// The letter format version.
pub const LETTER_VERSION: u8 = 1;
/// Bytes a letter without an intro adds around its body.
pub const LETTER_OVERHEAD: usize = 1 + 1 + 16 + 8 + 1;
/// Longest intro (an identity record: `communitas_crypto::record::MAX_RECORD_LEN`).
pub const MAX_INTRO_LEN: usize = communitas_crypto::record::MAX_RECORD_LEN;
const FLAG_INTRO: u8 = 1;
const FLAG_STAMP: u8 = 2;
const FLAG_WORK: u8 = 4;
/// Bytes a stamp adds.
pub const STAMP_LEN: usize = 16;
/// The envelope version that carries session messages.
pub const ENVELOPE_VERSION: u8 = 2;
/// The envelope form for a direct connection.
pub const DIRECT: u8 = 1;
/// The envelope form for a mailbox deposit.
pub const MAILBOX: u8 = 3;
/// Bytes a direct envelope adds around its session message.
pub const DIRECT_OVERHEAD: usize = 2;
/// Bytes a mailbox envelope adds around its session message.
pub const MAILBOX_OVERHEAD: usize = 2 + 32;

/// One message's fields inside a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLetter {
    /// The sender's signed identity record, while the sender awaits a first reply.
    pub intro: Option<Vec<u8>>,
    /// The message's place in the conversation, for the kinds that have one.
    pub stamp: Option<Stamp>,
    /// A first-contact proof of work ([`crate::work`]), with an intro.
    pub work: Option<u64>,
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
        let intro = self.intro.as_deref();
        let intro_len = intro.map_or(0, |i| 4 + i.len());
        let stamp_len = if self.stamp.is_some() { STAMP_LEN } else { 0 };
        let work_len = if self.work.is_some() { 8 } else { 0 };
        let mut w = Writer::with_capacity(
            LETTER_OVERHEAD + intro_len + stamp_len + work_len + self.body.len(),
        );
        let flags = if intro.is_some() { FLAG_INTRO } else { 0 }
            | if self.stamp.is_some() { FLAG_STAMP } else { 0 }
            | if self.work.is_some() { FLAG_WORK } else { 0 };
        w.u8(LETTER_VERSION).u8(flags);
        if let Some(intro) = intro {
            // Records are at most 7 KiB, so the length always fits.
            w.u32(u32::try_from(intro.len()).unwrap_or(u32::MAX)).raw(intro);
        }
        if let Some(stamp) = self.stamp {
            w.u64(stamp.n).u64(stamp.clock);
        }
        if let Some(nonce) = self.work {
            w.u64(nonce);
        }
        w.raw(self.message_id.as_bytes())
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
        let flags = r.u8("letter flags")?;
        if flags & !(FLAG_INTRO | FLAG_STAMP | FLAG_WORK) != 0 {
            return Err(DecodeError::InvalidValue { field: "letter flags" });
        }
        let intro = if flags & FLAG_INTRO != 0 {
            let len = r.u32("intro length")? as usize;
            if len == 0 || len > MAX_INTRO_LEN {
                return Err(DecodeError::InvalidValue { field: "intro length" });
            }
            Some(r.take("intro", len)?.to_vec())
        } else {
            None
        };
        let stamp = if flags & FLAG_STAMP != 0 {
            let n = r.u64("stamp n")?;
            if n == 0 {
                return Err(DecodeError::InvalidValue { field: "stamp n" });
            }
            Some(Stamp { n, clock: r.u64("stamp clock")? })
        } else {
            None
        };
        let work = if flags & FLAG_WORK != 0 { Some(r.u64("work")?) } else { None };
        let message_id = MessageId::from_bytes(r.array("message id")?);
        let timestamp = Timestamp::from_millis(r.u64("timestamp")?);
        let kind = Kind::from_u8(r.u8("kind")?)?;
        let body = r.take("body", r.remaining())?.to_vec();
        r.finish()?;
        Ok(Self { intro, stamp, work, message_id, timestamp, kind, body })
    }
}

/// Wraps a session message for a direct connection.
pub fn direct_envelope(session_message: &[u8]) -> Vec<u8> {
    [&[ENVELOPE_VERSION, DIRECT][..], session_message].concat()
}

/// Wraps a session message for the mailbox `mailbox`.
pub fn mailbox_envelope(mailbox: &MailboxId, session_message: &[u8]) -> Vec<u8> {
    [&[ENVELOPE_VERSION, MAILBOX][..], mailbox.as_bytes(), session_message].concat()
}

/// The session message inside a direct envelope; `None` if `bytes` is not one (a
/// version-1 envelope, or another form).
pub fn open_direct(bytes: &[u8]) -> Option<&[u8]> {
    match bytes {
        [ENVELOPE_VERSION, DIRECT, rest @ ..] if !rest.is_empty() => Some(rest),
        _ => None,
    }
}

/// A version-2 envelope, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form<'a> {
    /// Sent over a direct connection.
    Direct(&'a [u8]),
    /// Left in a mailbox.
    Mailbox(MailboxId, &'a [u8]),
}

impl<'a> Form<'a> {
    /// Parses a version-2 envelope (either form).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        match bytes {
            [ENVELOPE_VERSION, DIRECT, rest @ ..] if !rest.is_empty() => Ok(Form::Direct(rest)),
            [ENVELOPE_VERSION, MAILBOX, rest @ ..] if rest.len() > 32 => {
                let (mailbox, message) = rest.split_at(32);
                let mut id = [0u8; 32];
                id.copy_from_slice(mailbox);
                Ok(Form::Mailbox(MailboxId::from_bytes(id), message))
            }
            [ENVELOPE_VERSION, DIRECT | MAILBOX, ..] => {
                Err(DecodeError::Truncated { field: "session message", needed: 1, remaining: 0 })
            }
            [ENVELOPE_VERSION, ..] => Err(DecodeError::InvalidValue { field: "envelope form" }),
            _ => Err(DecodeError::InvalidValue { field: "envelope version" }),
        }
    }

    /// The session message inside.
    pub fn message(&self) -> &'a [u8] {
        match self {
            Form::Direct(m) | Form::Mailbox(_, m) => m,
        }
    }
}

/// The direct form of a mailbox envelope (what the outbox sends when it reaches the
/// recipient's device); `None` if `bytes` is not a version-2 mailbox envelope.
pub fn direct_from_mailbox(bytes: &[u8]) -> Option<Vec<u8>> {
    match Form::parse(bytes) {
        Ok(Form::Mailbox(_, message)) => Some(direct_envelope(message)),
        _ => None,
    }
}

/// The mailbox an envelope of either version is for; a direct version-2 envelope
/// has none and is refused, like anything else that does not parse.
pub fn mailbox_of(bytes: &[u8]) -> Result<MailboxId, DecodeError> {
    match bytes.first() {
        Some(&ENVELOPE_VERSION) => match Form::parse(bytes)? {
            Form::Mailbox(mailbox, _) => Ok(mailbox),
            Form::Direct(_) => Err(DecodeError::InvalidValue { field: "envelope form" }),
        },
        _ => communitas_crypto::Envelope::from_bytes(bytes).map(|e| e.mailbox()),
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
            intro: None,
            stamp: None,
            work: None,
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
        zero_kind[26] = 0;
        assert!(SessionLetter::from_bytes(&zero_kind).is_err());
        let mut unknown_flag = l.to_bytes();
        unknown_flag[1] = 8;
        assert!(SessionLetter::from_bytes(&unknown_flag).is_err());
        let stamped = SessionLetter { stamp: Some(Stamp { n: 3, clock: 1 << 41 }), ..l.clone() };
        assert_eq!(SessionLetter::from_bytes(&stamped.to_bytes()).unwrap(), stamped);
        assert_eq!(stamped.to_bytes().len(), LETTER_OVERHEAD + STAMP_LEN + 5);
        let mut zero_n = stamped.to_bytes();
        zero_n[2..10].copy_from_slice(&0u64.to_be_bytes());
        assert!(SessionLetter::from_bytes(&zero_n).is_err(), "n counts from 1");
        let both = SessionLetter { intro: Some(vec![7; 30]), ..stamped.clone() };
        assert_eq!(SessionLetter::from_bytes(&both.to_bytes()).unwrap(), both);
        let worked = SessionLetter { work: Some(u64::MAX - 3), ..both.clone() };
        assert_eq!(SessionLetter::from_bytes(&worked.to_bytes()).unwrap(), worked);
        assert_eq!(worked.to_bytes().len(), both.to_bytes().len() + 8);
        let introduced = SessionLetter { intro: Some(vec![7; 300]), ..l.clone() };
        assert_eq!(SessionLetter::from_bytes(&introduced.to_bytes()).unwrap(), introduced);
        assert_eq!(introduced.to_bytes().len(), LETTER_OVERHEAD + 4 + 300 + 5);
        let mut long = introduced.to_bytes();
        long[2..6].copy_from_slice(&(MAX_INTRO_LEN as u32 + 1).to_be_bytes());
        assert!(SessionLetter::from_bytes(&long).is_err(), "an intro over the limit");
        let mut empty = introduced.to_bytes();
        empty[2..6].copy_from_slice(&0u32.to_be_bytes());
        assert!(SessionLetter::from_bytes(&empty).is_err(), "an empty intro");
        assert_eq!(open_direct(&direct_envelope(b"xyz")), Some(&b"xyz"[..]));
        assert_eq!(open_direct(&[1, 1, 9]), None, "a version-1 envelope is not direct");
        assert_eq!(open_direct(&[ENVELOPE_VERSION, DIRECT]), None);
    }

    #[test]
    fn envelope_forms_parse_and_convert() {
        let mailbox = MailboxId::from_bytes([9; 32]);
        let boxed = mailbox_envelope(&mailbox, b"msg");
        assert_eq!(boxed.len(), MAILBOX_OVERHEAD + 3);
        assert_eq!(Form::parse(&boxed).unwrap(), Form::Mailbox(mailbox, b"msg"));
        assert_eq!(mailbox_of(&boxed).unwrap(), mailbox);
        let direct = direct_from_mailbox(&boxed).unwrap();
        assert_eq!(direct, direct_envelope(b"msg"));
        assert_eq!(Form::parse(&direct).unwrap(), Form::Direct(b"msg"));
        assert!(mailbox_of(&direct).is_err(), "a direct envelope names no mailbox");
        assert_eq!(direct_from_mailbox(&direct), None);
        // Truncated, unknown forms and garbage are typed errors, never a panic.
        for bad in [&[2u8][..], &[2, 3], &[2, 3, 1, 2], &[2, 9, 1], &[], &[7, 1, 1]] {
            assert!(Form::parse(bad).is_err(), "{bad:?}");
            assert!(mailbox_of(bad).is_err(), "{bad:?}");
        }
        assert!(Form::parse(&boxed[..MAILBOX_OVERHEAD]).is_err(), "no session message");
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

        // A text carries its stamp (issue 23 item 1).
        let text = SessionLetter {
            stamp: Some(Stamp { n: 2, clock: T0.as_millis() }),
            ..letter(3, b"0123456789")
        };
        let warm = a.encrypt(&text.to_bytes(), T0, &mut rng).unwrap();
        let envelope = direct_envelope(&warm.bytes);
        let letter_len = LETTER_OVERHEAD + STAMP_LEN + 10;
        assert_eq!(envelope.len(), DIRECT_OVERHEAD + wire::OVERHEAD + letter_len);
        let stored = mailbox_envelope(&MailboxId::from_bytes([1; 32]), &warm.bytes);
        assert_eq!(stored.len(), MAILBOX_OVERHEAD + wire::OVERHEAD + letter_len);
        assert!(stored.len() <= 512, "{} bytes", stored.len());
        assert!(envelope.len() <= 200, "{} bytes", envelope.len());
        let opened = reply.next.decrypt(open_direct(&envelope).unwrap(), T0).unwrap();
        assert_eq!(SessionLetter::from_bytes(&opened.plaintext).unwrap(), text);
    }
}
