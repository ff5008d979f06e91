//! The bodies of `Kind::Presence` and `Kind::Typing` payloads (inside sealed
//! envelopes; see `docs/protocol.md`). Golden vectors: `test-vectors/presence-v1.json`.
//!
//! Presence, version 1, 6 bytes: `version (1) ‖ status (1: 1 online, 2 away, 3 busy,
//! 4 offline) ‖ heartbeat interval in ms (u32, big-endian)`. The interval tells the
//! receiver when to give up on the sender: after three missed heartbeats.
//!
//! Typing, version 1, 2 bytes: `version (1) ‖ state (0 stopped, 1 typing)`.
//!
//! Both encodings are canonical: a body that decodes encodes back to the same bytes.

use std::time::Duration;

use communitas_types::DecodeError;
use communitas_types::codec::{Reader, Writer};

use super::Status;

/// The version byte both bodies start with.
pub const VERSION: u8 = 1;
/// Bytes of a presence body.
pub const PRESENCE_LEN: usize = 6;
/// Bytes of a typing body.
pub const TYPING_LEN: usize = 2;
/// The shortest heartbeat interval a sender may announce.
pub const MIN_INTERVAL: Duration = Duration::from_millis(500);
/// The longest heartbeat interval a sender may announce.
pub const MAX_INTERVAL: Duration = Duration::from_secs(600);

/// A decoded presence update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceBody {
    /// The sender's status.
    pub status: Status,
    /// How often the sender heartbeats, within [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
    pub interval: Duration,
}

/// A presence body: `version ‖ status ‖ interval ms (u32 BE)`; the interval is
/// clamped to [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
pub fn encode_presence(status: Status, interval: Duration) -> Vec<u8> {
    let ms =
        u32::try_from(interval.clamp(MIN_INTERVAL, MAX_INTERVAL).as_millis()).unwrap_or(u32::MAX);
    let mut w = Writer::with_capacity(PRESENCE_LEN);
    w.u8(VERSION).u8(status.to_u8()).u32(ms);
    w.into_vec()
}

/// Decodes a presence body; refuses another version, an unknown status, an interval
/// out of range and trailing bytes.
pub fn decode_presence(body: &[u8]) -> Result<PresenceBody, DecodeError> {
    let mut r = Reader::new(body, PRESENCE_LEN)?;
    if r.u8("presence version")? != VERSION {
        return Err(DecodeError::InvalidValue { field: "presence version" });
    }
    let status = Status::from_u8(r.u8("presence status")?)
        .ok_or(DecodeError::InvalidValue { field: "presence status" })?;
    let interval = Duration::from_millis(u64::from(r.u32("heartbeat interval")?));
    r.finish()?;
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
        return Err(DecodeError::InvalidValue { field: "heartbeat interval" });
    }
    Ok(PresenceBody { status, interval })
}

/// A typing body: `version ‖ state`.
pub fn encode_typing(typing: bool) -> Vec<u8> {
    vec![VERSION, u8::from(typing)]
}

/// Decodes a typing body: `true` for typing, `false` for stopped.
pub fn decode_typing(body: &[u8]) -> Result<bool, DecodeError> {
    let mut r = Reader::new(body, TYPING_LEN)?;
    if r.u8("typing version")? != VERSION {
        return Err(DecodeError::InvalidValue { field: "typing version" });
    }
    let state = match r.u8("typing state")? {
        0 => false,
        1 => true,
        _ => return Err(DecodeError::InvalidValue { field: "typing state" }),
    };
    r.finish()?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len() / 2)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn presence_golden_and_round_trip() {
        let bytes = encode_presence(Status::Away, Duration::from_secs(30));
        assert_eq!(
            hex(&bytes),
            concat!(
                "01",       // version 1
                "02",       // status 2: away
                "00007530", // interval: 30 000 ms, big-endian
            )
        );
        let body = decode_presence(&bytes).unwrap();
        assert_eq!((body.status, body.interval), (Status::Away, Duration::from_secs(30)));
    }

    #[test]
    fn presence_clamps_the_interval_it_announces() {
        let short = decode_presence(&encode_presence(Status::Online, Duration::ZERO)).unwrap();
        assert_eq!(short.interval, MIN_INTERVAL);
        let long = decode_presence(&encode_presence(Status::Busy, Duration::MAX)).unwrap();
        assert_eq!(long.interval, MAX_INTERVAL);
    }

    #[test]
    fn presence_refuses_bad_bodies() {
        for bad in [
            "",
            "0101000075",     // one byte short
            "02010000ea60",   // version 2
            "01000000ea60",   // status 0
            "01050000ea60",   // status 5
            "0101000001f3",   // 499 ms: below the minimum
            "0101000927c1",   // 600 001 ms: above the maximum
            "0101ffffffff",   // u32::MAX ms
            "010100007530ff", // a trailing byte
        ] {
            assert!(decode_presence(&unhex(bad)).is_err(), "{bad} accepted");
        }
        // The bounds themselves are fine.
        assert!(decode_presence(&unhex("0104000001f4")).is_ok());
        assert!(decode_presence(&unhex("0104000927c0")).is_ok());
    }

    #[test]
    fn typing_golden_round_trip_and_refusals() {
        assert_eq!(hex(&encode_typing(true)), "0101"); // version 1, state 1: typing
        assert_eq!(hex(&encode_typing(false)), "0100"); // version 1, state 0: stopped
        assert!(decode_typing(&encode_typing(true)).unwrap());
        assert!(!decode_typing(&encode_typing(false)).unwrap());
        for bad in [&[][..], &[1], &[2, 1], &[1, 2], &[1, 1, 0]] {
            assert!(decode_typing(bad).is_err(), "{bad:?} accepted");
        }
    }
}
