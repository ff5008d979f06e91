//! Communitas' vocabulary: ids, four-word addresses, timestamps and the binary codec
//! that every wire format is built with.
//!
//! Nothing here does IO, spawns or locks: these types are parsed at the edges (API,
//! CLI, network decode) and passed around already valid.

#![deny(missing_docs)]

pub mod address;
pub mod codec;
mod ids;
mod time;

pub use address::{Address, AddressError};
pub use codec::DecodeError;
pub use ids::{FileId, Fingerprint, IdError, MailboxId, MessageId};
pub use time::Timestamp;
