//! What a status is, and what we know of a contact's: the values the presence
//! machine keeps and the API shows.

use communitas_types::Timestamp;
use serde::{Deserialize, Serialize};

/// A presence status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Here.
    Online,
    /// Away from the keyboard.
    Away,
    /// Do not disturb.
    Busy,
    /// Not reachable, or appearing offline.
    Offline,
}

impl Status {
    /// The wire number (presence body, `docs/protocol.md`).
    pub fn to_u8(self) -> u8 {
        match self {
            Status::Online => 1,
            Status::Away => 2,
            Status::Busy => 3,
            Status::Offline => 4,
        }
    }

    /// The status with this wire number, if any.
    pub fn from_u8(n: u8) -> Option<Self> {
        Some(match n {
            1 => Status::Online,
            2 => Status::Away,
            3 => Status::Busy,
            4 => Status::Offline,
            _ => return None,
        })
    }

    /// `online`, `away`, `busy` or `offline`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Away => "away",
            Status::Busy => "busy",
            Status::Offline => "offline",
        }
    }
}

/// Text that is not a presence status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown presence status {0:?}: expected online, away, busy or offline")]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "online" => Status::Online,
            "away" => Status::Away,
            "busy" => Status::Busy,
            "offline" => Status::Offline,
            _ => return Err(UnknownStatus(s.chars().take(32).collect())),
        })
    }
}

/// What we know of a contact's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Presence {
    /// Its status now.
    pub status: Status,
    /// When we last heard from it (our clock, unix ms); `None` if never.
    pub last_seen: Option<Timestamp>,
}

impl Presence {
    /// A contact never heard from.
    pub const UNKNOWN: Self = Self { status: Status::Offline, last_seen: None };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text_and_wire() {
        for s in [Status::Online, Status::Away, Status::Busy, Status::Offline] {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
            assert_eq!(Status::from_u8(s.to_u8()), Some(s));
        }
        assert_eq!(" AWAY ".parse::<Status>(), Ok(Status::Away));
        assert!("sleepy".parse::<Status>().is_err());
        assert_eq!(Status::from_u8(0), None);
        assert_eq!(Status::from_u8(5), None);
    }
}
