//! Communitas' sans-IO protocol (ARCHITECTURE §2, §4 "How a protocol is written"):
//! every rule of delivery lives here as a state machine or a pure function. Nothing in
//! this crate reads a clock, draws OS randomness, touches a socket or a database, or
//! depends on an async runtime; the drivers in `communitas-node` do that, and the
//! simulator in this crate's tests runs many machines on a virtual clock.
//!
//! # The shape of a machine
//!
//! iroh-gossip's `proto` is the model. A machine is a struct that owns its state and
//! has one entry point:
//!
//! ```text
//! fn handle(&mut self, input: Input, now: Timestamp, rng: &mut impl Random) -> outputs
//! ```
//!
//! - **Inputs** are everything that happens to it: a command from the user, a frame
//!   from the network, the result of I/O the machine asked for (`Persisted { .. }`,
//!   `Sent { .. }`, `LookedUp { .. }`), and its own timers firing (`Tick`).
//! - **Outputs** are everything it wants done, in the order it must be done: rows to
//!   persist, frames to send, events for the UI, and the next time it wants to be
//!   woken (`WakeAt`). A machine never does I/O itself.
//! - "Commit, then act" is explicit: a machine that must not act before a write is on
//!   disk asks for the write and acts on the `Persisted` input, not on `await` order.
//! - Time is a [`Timestamp`](communitas_types::Timestamp) (unix ms, the clock the wire
//!   and the store use); randomness comes in through [`Random`].
//!
//! # Modules
//!
//! - [`backoff`]: exponential backoff with full jitter, the one copy.
//! - [`fair`]: a queue bounded in total and per source, served round robin — where
//!   strangers' work waits (record puts, envelopes from unknown peers).
//! - [`inbound`]: inbound acceptance — opening, the freshness window, replay, routing
//!   by kind, and the answer, which only a commit produces.
//! - [`presence`]: presence and typing — heartbeats, missed windows, typing that runs
//!   out, backoff for unreachable contacts — and their wire bodies.
//! - [`fuzz`]: the entry points of the fuzz targets in `fuzz/`, replayed by the tests.
//! - [`receipts`]: the body of receipt letters (delivered, read, fetched) and what a
//!   received one does.
//! - [`order`]: the order of a conversation — each author's stamp (a count and a
//!   hybrid logical clock) and the position both ends sort by.
//! - [`outbox`]: the delivery schedule of queued messages — attempts, backoff, TTL
//!   and dead letters, stored vs delivered, the device cache.
//! - [`session`]: one end-to-end session between two devices — the PQXDH-shaped
//!   handshake, the double ratchet with header encryption and its post-quantum step;
//!   sans-IO, try then commit, state as versioned bytes.
//! - [`work`]: proof of work on first-contact letters, bound to both ends and the hour.
//! - [`random`]: the randomness a machine is handed, and a seeded source for tests.
//! - [`mod@file`]: the attachment pipeline (ARCHITECTURE §7) — fixed-size segments, each
//!   sealed with XChaCha20-Poly1305 under a per-file key, cut into Reed-Solomon data
//!   and parity shards, every shard named by its BLAKE3 hash — the manifest that
//!   describes a file, and the frames of `/communitas/file/1`.

#![deny(missing_docs)]

pub mod backoff;
pub mod fair;
pub mod file;
pub mod fuzz;
pub mod inbound;
pub mod mbox;
pub mod order;
pub mod outbox;
pub mod presence;
pub mod random;
pub mod receipts;
pub mod session;
pub mod work;

pub use random::Random;
