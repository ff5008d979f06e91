//! The bodies of `Kind::Presence` and `Kind::Typing` payloads (inside sealed
//! envelopes; see `docs/protocol.md`).
//!
//! Presence, version 1, 6 bytes: `version (1) ‖ status (1: 1 online, 2 away, 3 busy,
//! 4 offline) ‖ heartbeat interval in ms (u32, big-endian)`. The interval tells the
//! receiver when to give up on the sender: after three missed heartbeats.
//!
//! Typing, version 1, 2 bytes: `version (1) ‖ state (0 stopped, 1 typing)`.

use std::time::Duration;

use communitas_types::DecodeError;
use communitas_types::codec::{Reader, Writer};

use super::Status;

const VERSION: u8 = 1;
/// The shortest and longest heartbeat interval a sender may announce.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(500);
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(600);

/// A decoded presence update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PresenceBody {
    pub(crate) status: Status,
    pub(crate) interval: Duration,
}

pub(crate) fn encode_presence(status: Status, interval: Duration) -> Vec<u8> {
    let ms =
        u32::try_from(interval.clamp(MIN_INTERVAL, MAX_INTERVAL).as_millis()).unwrap_or(u32::MAX);
    let mut w = Writer::with_capacity(6);
    w.u8(VERSION).u8(status.to_u8()).u32(ms);
    w.into_vec()
}

pub(crate) fn decode_presence(body: &[u8]) -> Result<PresenceBody, DecodeError> {
    let mut r = Reader::new(body, 6)?;
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

pub(crate) fn encode_typing(typing: bool) -> Vec<u8> {
    vec![VERSION, u8::from(typing)]
}

pub(crate) fn decode_typing(body: &[u8]) -> Result<bool, DecodeError> {
    let mut r = Reader::new(body, 2)?;
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

    #[test]
    fn presence_golden_and_round_trip() {
        let bytes = encode_presence(Status::Away, Duration::from_secs(30));
        // version 1, status 2 (away), 30 000 ms.
        assert_eq!(hex(&bytes), "010200007530");
        let body = decode_presence(&bytes).unwrap();
        assert_eq!((body.status, body.interval), (Status::Away, Duration::from_secs(30)));
    }

    #[test]
    fn presence_refuses_bad_bodies() {
        for bad in [
            "",
            "02010000ea60",
            "01000000ea60",
            "01050000ea60",
            "0101000001f3",
            "0101ffffffff",
            "010100007530ff",
        ] {
            let bytes: Vec<u8> = (0..bad.len() / 2)
                .map(|i| u8::from_str_radix(&bad[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            assert!(decode_presence(&bytes).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn typing_round_trip_and_refusals() {
        assert_eq!(encode_typing(true), [1, 1]);
        assert!(decode_typing(&encode_typing(true)).unwrap());
        assert!(!decode_typing(&encode_typing(false)).unwrap());
        for bad in [&[][..], &[1], &[2, 1], &[1, 2], &[1, 1, 0]] {
            assert!(decode_typing(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
