//! Presence and typing indicators (ARCHITECTURE §8, decision 0030) as a sans-IO
//! machine, and their wire bodies ([`wire`]).
//!
//! Presence (online, away, busy, offline) goes only to contacts, sealed end to end
//! like any message (`Kind::Presence`), straight to their devices over
//! `/communitas/msg/1` — never through the outbox, a mailbox or the DHT, and never
//! into history. Typing indicators (`Kind::Typing`) travel the same way.
//!
//! [`Machine`] owns every piece of presence state: our own status, what each contact
//! last said and when, the heartbeat interval it announced, where its devices are
//! (and how fresh that is), which of them are connected, and when each contact is
//! next due a heartbeat. The driver (`communitas_node::presence`) feeds it
//! [`Input`]s — commands, updates that arrived, connection events, the contact list,
//! the results of sends it asked for, timers — and carries out its [`Output`]s in
//! order: seal and send an update, show an [`Event`], wake it at a time.
//!
//! ```text
//! driver ── Heard / Connected / Typing / SendDone / Tick ──▶ Machine
//!        ◀─ Send { to, kind, body, devices } / Event / WakeAt ──
//! ```
//!
//! Liveness: every node sends its status to each reachable contact once per
//! heartbeat interval (announced in the update itself). A contact is shown `offline`
//! when three announced intervals pass without an update, or at once when the last
//! connection to its devices closes. Contacts we cannot reach are retried with
//! [`Backoff::PRESENCE`](crate::backoff::Backoff::PRESENCE) (full jitter, 1 s doubling
//! to 5 min); a connection from one, or an update from one that was offline or that
//! we could not reach, makes it due at once — so a restarted peer is back within a
//! round trip of its first update. (An update from a contact we reach normally does
//! not: two nodes would answer each other's heartbeats forever.)
//!
//! Bounds: the machine tracks the contacts the driver names (the contacts table);
//! the driver refuses updates from anyone else, and stale ones ([`is_stale`]), before
//! they reach it. Per contact it keeps the devices of one identity record (at most
//! four), and at most [`MAX_SENDS`] sends are in flight at once.

mod machine;
mod status;
pub mod wire;

#[cfg(test)]
mod tests;

use std::time::Duration;

use communitas_types::Timestamp;

pub use machine::{Body, Devices, Event, Input, Machine, Output, Update};
pub use status::{Presence, Status, UnknownStatus};

/// Missed heartbeats after which a contact is shown offline.
pub const MISSED: u32 = 3;
/// Resolved device addresses are trusted this long before they are looked up again.
pub const DEVICE_TTL: Duration = Duration::from_secs(600);
/// Sends in flight at once; due heartbeats wait for a free slot, typing beyond it is
/// dropped (it is best effort and worthless late).
pub const MAX_SENDS: usize = 32;
/// A typing indicator shows this long unless renewed.
pub const TYPING_SHOWN: Duration = Duration::from_secs(6);
/// A "typing" is re-sent to the same contact at most this often: twice within
/// [`TYPING_SHOWN`], so the other side's indicator never lapses while we type.
pub const TYPING_RESEND: Duration = Duration::from_secs(3);
/// Updates older than this (sender's clock) are refused: they say nothing about now.
pub const STALE: Duration = Duration::from_secs(120);
/// While we appear offline, contacts are told once; the next heartbeat is this far off.
pub const QUIET: Duration = Duration::from_secs(24 * 3600);
/// The longest heartbeat interval we use: below the connection's idle timeout, so a
/// heartbeat keeps the connection to a contact open.
pub const MAX_HEARTBEAT: Duration = Duration::from_secs(60);

/// Presence settings.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// How often we tell each contact our status. Contacts show us offline after
    /// three missed intervals (90 s with the default 30 s). Clamped to 0.5–60 s, so
    /// that a heartbeat always comes before the connection's idle timeout.
    pub heartbeat: Duration,
}

impl Config {
    /// The heartbeat interval used: [`Config::heartbeat`] clamped to
    /// [`wire::MIN_INTERVAL`]..=[`MAX_HEARTBEAT`].
    pub fn interval(&self) -> Duration {
        self.heartbeat.clamp(wire::MIN_INTERVAL, MAX_HEARTBEAT)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self { heartbeat: Duration::from_secs(30) }
    }
}

/// Whether an update sent at `timestamp` (sender's clock) is too old to say anything
/// about `now`: older than [`STALE`].
pub fn is_stale(timestamp: Timestamp, now: Timestamp) -> bool {
    timestamp < now.saturating_sub(STALE)
}
