//! End-to-end receipts (ARCHITECTURE §6, docs/protocol.md §8–9): the body of a
//! `Receipt` letter (payload kind 3), and what one does when it arrives.
//!
//! A message delivered directly is acknowledged by the `/communitas/msg/1` response.
//! One fetched from a mailbox has no open request to answer, so its recipient seals
//! the sender a receipt letter instead, through the outbox like any letter. The same
//! letter carries read receipts (the user read those messages) and "fetched" receipts
//! (the recipient has the whole file those messages carried).
//!
//! This module owns the wire body ([`Receipt::to_bytes`], [`Receipt::from_bytes`]),
//! the cut of a long list of ids into letters ([`Receipt::chunks`]), and the rules
//! for a received one ([`Receipt::steps`], [`may_mark`]). The node's `receipts`
//! driver seals and queues what [`Receipt::chunks`] yields, and carries out the
//! [`Step`]s of a received receipt against its store, in order.
//!
//! Flow: recipient `chunks` → seal → outbox → … → sender `from_bytes` (inside inbound
//! acceptance, after the seen id is committed) → `steps` → release shards / mark
//! `delivered` or `read`, each only for a message of ours to the receipt's sender.

use communitas_types::codec::{Reader, Writer};
use communitas_types::{Address, DecodeError, MessageId};

/// The body's version byte.
pub const VERSION: u8 = 1;
/// Most ids in one receipt: 16 KiB of ids, far under a letter's body limit, and the
/// count fits the body's `u16`.
pub const MAX_IDS: usize = 1024;
/// Bytes before the ids: version, type, count.
const HEADER_LEN: usize = 4;
/// Bytes per id.
const ID_LEN: usize = 16;
/// The longest valid body.
pub const MAX_LEN: usize = HEADER_LEN + ID_LEN * MAX_IDS;

/// What a receipt says of its messages. The numbers are the wire's; never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// 1: the recipient has these messages (they came through a mailbox).
    Delivered,
    /// 2: the recipient read these messages (sent unless read receipts are off).
    Read,
    /// 3: the recipient has the whole file each of these messages carried.
    Fetched,
}

impl Kind {
    /// The wire number.
    pub const fn to_u8(self) -> u8 {
        match self {
            Kind::Delivered => 1,
            Kind::Read => 2,
            Kind::Fetched => 3,
        }
    }

    /// From the wire number.
    pub fn from_u8(n: u8) -> Result<Self, DecodeError> {
        match n {
            1 => Ok(Kind::Delivered),
            2 => Ok(Kind::Read),
            3 => Ok(Kind::Fetched),
            _ => Err(DecodeError::InvalidValue { field: "receipt type" }),
        }
    }
}

/// A receipt: a type and at most [`MAX_IDS`] message ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    kind: Kind,
    ids: Vec<MessageId>,
}

/// The receipt would hold more than [`MAX_IDS`] ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a receipt holds at most {max} ids, not {count}")]
pub struct TooMany {
    /// The ids given.
    pub count: usize,
    /// [`MAX_IDS`].
    pub max: usize,
}

/// What the driver does for one id of a received receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Release the file shards the message `id` stored on server nodes (its file
    /// transfer becomes `fetched`), if `id` is ours to the receipt's sender.
    Release(MessageId),
    /// Mark our message `id` as `mark`, if it is ours to the receipt's sender
    /// ([`may_mark`]). When the mark changes the row, the UI hears the new status and
    /// the outbox stops retrying the message.
    Mark(MessageId, Mark),
}

/// The status a receipt moves a message to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// `delivered`: counted, with its delivery latency.
    Delivered,
    /// `read`.
    Read,
}

impl Receipt {
    /// A receipt of `kind` for `ids`.
    pub fn new(kind: Kind, ids: Vec<MessageId>) -> Result<Self, TooMany> {
        if ids.len() > MAX_IDS {
            return Err(TooMany { count: ids.len(), max: MAX_IDS });
        }
        Ok(Self { kind, ids })
    }

    /// As many receipts of `kind` as `ids` need, each with at most [`MAX_IDS`] ids, in
    /// order. None for no ids.
    pub fn chunks(kind: Kind, ids: &[MessageId]) -> impl Iterator<Item = Receipt> + '_ {
        ids.chunks(MAX_IDS).map(move |chunk| Receipt { kind, ids: chunk.to_vec() })
    }

    /// Its type.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The messages it speaks of.
    pub fn ids(&self) -> &[MessageId] {
        &self.ids
    }

    /// The length of [`Self::to_bytes`].
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + ID_LEN * self.ids.len()
    }

    /// Version 1: `version (1) ‖ type (1 delivered, 2 read, 3 fetched) ‖ count (u16
    /// big-endian, ≤ 1024) ‖ message ids (16 bytes each)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.encoded_len());
        // `new` and `chunks` keep at most MAX_IDS (1024) ids: the count fits a u16.
        let count = u16::try_from(self.ids.len()).unwrap_or(u16::MAX);
        w.u8(VERSION).u8(self.kind.to_u8()).raw(&count.to_be_bytes());
        for id in &self.ids {
            w.raw(id.as_bytes());
        }
        w.into_vec()
    }

    /// Decodes a body. The whole body is bounded by [`MAX_LEN`] and the count by
    /// [`MAX_IDS`] before anything is allocated; a count that does not match the ids
    /// that follow (fewer or more) is refused.
    pub fn from_bytes(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, MAX_LEN)?;
        let version = r.u8("receipt version")?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "receipt",
                got: version,
                min: VERSION,
                max: VERSION,
            });
        }
        let kind = Kind::from_u8(r.u8("receipt type")?)?;
        let count = usize::from(u16::from_be_bytes(r.array("receipt count")?));
        if count > MAX_IDS {
            return Err(DecodeError::TooLong { field: "receipt", len: count, max: MAX_IDS });
        }
        let ids = (0..count)
            .map(|_| r.array("receipt id").map(MessageId::from_bytes))
            .collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Self { kind, ids })
    }

    /// What a received receipt asks of the driver, in order. A fetched file was a
    /// received message, so `fetched` releases the shards of every message first and
    /// then marks each one delivered.
    pub fn steps(&self) -> impl Iterator<Item = Step> + '_ {
        let (release, mark) = match self.kind {
            Kind::Delivered => (&[][..], Mark::Delivered),
            Kind::Read => (&[][..], Mark::Read),
            Kind::Fetched => (&self.ids[..], Mark::Delivered),
        };
        let releases = release.iter().map(|id| Step::Release(*id));
        releases.chain(self.ids.iter().map(move |id| Step::Mark(*id, mark)))
    }
}

/// Whether a receipt from `from` may mark a message: only the recipient of one of our
/// outgoing messages can acknowledge it (anyone can seal us a receipt naming any id).
pub fn may_mark(from: Address, recipient: Address, outgoing: bool) -> bool {
    outgoing && recipient == from
}

#[cfg(test)]
mod tests;
