//! The frames of `/communitas/mbox/1`: mailboxes on server nodes for offline
//! recipients. (The libp2p codec that carries them is `communitas_net::mbox`.)
//!
//! Requests and responses are one frame each: `u32 length ‖ version (1) ‖ tag ‖
//! fields`, with the length checked against the frame's limit before allocating.
//!
//! | request | tag | fields |
//! | --- | --- | --- |
//! | put | 1 | envelope (byte string ≤ 256 KiB); its mailbox id is in its header |
//! | challenge | 2 | mailbox id (32) |
//! | fetch | 3 | public identity (1248), nonce (32), signature (64), max bytes (u32) |
//! | ack | 4 | mailbox id (32), count (u32 ≤ 1024), hashes (32 each) |
//! | notify | 5 | mailbox id (32): "mail is waiting for you" (server → owner) |
//! | offer | 6 | mailbox id (32), count (u32 ≤ 1024), hashes (32 each): "I hold these" (holder → holder) |
//! | replicate | 7 | expires at (u64, unix ms), envelope (byte string ≤ 256 KiB) (holder → holder) |
//! | deposit | 8 | mailbox id (32), device key (32), count (u32 ≤ 64), one-time prekeys (byte strings): the owner's, for one of its devices |
//! | claim | 9 | mailbox id (32), device key (32): "one of each kind, for a first message to it" |
//!
//! | response | tag | fields |
//! | --- | --- | --- |
//! | stored | 1 | — |
//! | refused | 2 | reason code (u8) |
//! | nonce | 3 | nonce (32) |
//! | envelopes | 4 | count (u16), then per envelope: hash (32), envelope (byte string) |
//! | acked | 5 | count (u32) |
//! | wanted | 6 | count (u32 ≤ 1024), hashes (32 each): the offered ones this server lacks |
//! | held | 7 | X25519 count (u32), ML-KEM-768 count (u32): one-time prekeys held for the device after a deposit |
//! | prekeys | 8 | count (u32 ≤ 2), one-time prekeys (byte strings): handed out, and gone from here |
//!
//! Fetching proves ownership of the mailbox: the signature is the identity's Ed25519
//! signature over `"communitas/mbox/fetch/v1\0" ‖ server PeerId ‖ requester PeerId ‖
//! nonce ‖ mailbox id`, and the identity's mailbox id must be the one asked for. The
//! nonce is fresh per challenge and good once, so a fetch cannot be replayed.
//!
//! One-time prekeys (issue 14 item 1, decision 0064): an owner deposits its devices'
//! signed one-time prekeys only inside a fetch session for its mailbox (as an ack);
//! anyone may claim, and each prekey is handed out once. The server checks each
//! deposited key's signature by the device key it is filed under; the claimer checks
//! it again against the bundle it trusts, so a server can withhold keys but not
//! substitute its own.
//!
//! Re-replication (decision 0020): a holder offers the hashes it keeps for a mailbox
//! to the other servers closest to it; each answers with the hashes it lacks (neither
//! kept nor acknowledged there by the owner), and the holder sends those as
//! `replicate`, a put that carries the original's expiry (the receiver keeps the
//! earlier of it and its own TTL, so a copy never outlives the original).
//!
//! The rules around the frames: [`server`] is the server's machine (nonces, sessions,
//! puts, fetches, acks, owner notifications, the expiry sweep); [`client`] is the
//! owner's (when to look, holders asked at once with a deadline each, every envelope
//! opened once and acknowledged at every holder); [`replicate`] is the
//! re-replication policy (whom to offer to, what to send); [`fuzz`] is the entry point
//! of the `mbox` fuzz target.

pub mod client;
pub mod fuzz;
pub mod replicate;
pub mod server;

use communitas_types::MailboxId;
use communitas_types::codec::{Reader, Writer};

/// The protocol id.
pub const PROTOCOL: &str = "/communitas/mbox/1";
const VERSION: u8 = 1;
const MAX_ENVELOPE: usize = communitas_crypto::envelope::MAX_LEN;
/// Largest request frame.
pub const MAX_REQUEST: usize = MAX_ENVELOPE + 64 + 2048;
/// Largest response frame: a fetch answers at most about this much.
pub const MAX_RESPONSE: usize = 8 * 1024 * 1024 + MAX_ENVELOPE + 64 * 1024;
/// Most hashes in one ack.
pub const MAX_ACK: usize = 1024;
/// Most one-time prekeys in one deposit.
pub const MAX_DEPOSIT: usize = 64;
/// Most one-time prekeys in one claim's answer: one of each kind.
pub const MAX_CLAIMED: usize = 2;
const MAX_ONE_TIME: usize = communitas_crypto::prekey::MAX_ONE_TIME_LEN;
const PUBLIC_IDENTITY_LEN: usize = communitas_crypto::identity::PUBLIC_IDENTITY_LEN;

/// Prefix of the fetch signature.
pub const FETCH_DOMAIN: &[u8] = b"communitas/mbox/fetch/v1\0";

/// The bytes a mailbox owner signs to fetch (see the module docs): the one copy of
/// this security-relevant layout. `server` and `requester` are the two devices'
/// PeerIds in their binary form.
pub fn fetch_signed_bytes(
    server: &[u8],
    requester: &[u8],
    nonce: &[u8; 32],
    mailbox: &MailboxId,
) -> Vec<u8> {
    [FETCH_DOMAIN, server, requester, nonce, mailbox.as_bytes()].concat()
}

/// A request to a mailbox server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MboxRequest {
    /// Keep this envelope for its recipient.
    Put {
        /// The sealed envelope.
        envelope: Vec<u8>,
    },
    /// Give me a nonce to prove I own this mailbox.
    Challenge {
        /// The mailbox.
        mailbox: MailboxId,
    },
    /// Hand over what waits in my mailbox.
    Fetch {
        /// The owner's public identity (its mailbox id is the one fetched).
        identity: Vec<u8>,
        /// The nonce from the challenge.
        nonce: [u8; 32],
        /// The owner's signature (see the module docs).
        signature: [u8; 64],
        /// Answer with at most about this many bytes.
        max_bytes: u32,
    },
    /// I have these: delete them.
    Ack {
        /// The mailbox.
        mailbox: MailboxId,
        /// Hashes from the fetch.
        hashes: Vec<[u8; 32]>,
    },
    /// Server to owner: new mail waits in this mailbox. It only prompts a fetch, which
    /// is authenticated as usual, so anyone may send it (rate-limited).
    Notify {
        /// The mailbox.
        mailbox: MailboxId,
    },
    /// Holder to holder: I keep these envelopes for this mailbox; which do you lack?
    Offer {
        /// The mailbox.
        mailbox: MailboxId,
        /// Hashes of envelopes kept for it (at most [`MAX_ACK`]).
        hashes: Vec<[u8; 32]>,
    },
    /// Holder to holder: a copy of an envelope you lack. A put that keeps the original's
    /// expiry.
    Replicate {
        /// When the copy expires at the sender, unix ms.
        expires_at: u64,
        /// The sealed envelope.
        envelope: Vec<u8>,
    },
    /// Owner to server, inside a fetch session: keep these one-time prekeys of one of
    /// my devices and hand each out once.
    Deposit {
        /// The mailbox of the session.
        mailbox: MailboxId,
        /// The device whose keys they are (its Ed25519 key, which signed each).
        device: [u8; 32],
        /// The signed one-time prekeys (at most [`MAX_DEPOSIT`]).
        prekeys: Vec<Vec<u8>>,
    },
    /// Anyone: one one-time prekey of each kind of this device, for a first message.
    Claim {
        /// The device's owner's mailbox.
        mailbox: MailboxId,
        /// The device.
        device: [u8; 32],
    },
}

/// Why a server refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// This node keeps no mailboxes.
    NotServer,
    /// The recipient's mailbox is at its quota.
    MailboxFull,
    /// The sender is at its quota.
    SenderOverQuota,
    /// Too many requests from this peer; try later.
    RateLimited,
    /// Malformed request or envelope.
    Invalid,
    /// The fetch or ack was not proven to come from the mailbox's owner.
    Unauthorized,
    /// The server failed; try another.
    Unavailable,
    /// A code from a newer version.
    Unknown(u8),
}

impl Refusal {
    fn code(self) -> u8 {
        match self {
            Refusal::NotServer => 1,
            Refusal::MailboxFull => 2,
            Refusal::SenderOverQuota => 3,
            Refusal::RateLimited => 4,
            Refusal::Invalid => 5,
            Refusal::Unauthorized => 6,
            Refusal::Unavailable => 7,
            Refusal::Unknown(c) => c,
        }
    }

    fn from_code(c: u8) -> Self {
        match c {
            1 => Refusal::NotServer,
            2 => Refusal::MailboxFull,
            3 => Refusal::SenderOverQuota,
            4 => Refusal::RateLimited,
            5 => Refusal::Invalid,
            6 => Refusal::Unauthorized,
            7 => Refusal::Unavailable,
            c => Refusal::Unknown(c),
        }
    }
}

/// A mailbox server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MboxResponse {
    /// The envelope is kept (or already was).
    Stored,
    /// Refused.
    Refused(Refusal),
    /// A fresh nonce for a fetch.
    Nonce([u8; 32]),
    /// Waiting envelopes with their hashes.
    Envelopes(Vec<([u8; 32], Vec<u8>)>),
    /// How many acknowledged envelopes were deleted.
    Acked(u32),
    /// Of the offered hashes, those this server lacks.
    Wanted(Vec<[u8; 32]>),
    /// One-time prekeys held for the device after a deposit, by kind.
    Held {
        /// X25519.
        dh: u32,
        /// ML-KEM-768.
        kem: u32,
    },
    /// One-time prekeys handed out (none, one or one of each kind).
    Prekeys(Vec<Vec<u8>>),
}

impl MboxRequest {
    /// The frame body.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        w.u8(VERSION);
        match self {
            MboxRequest::Put { envelope } => {
                w.u8(1).bytes(envelope);
            }
            MboxRequest::Challenge { mailbox } => {
                w.u8(2).raw(mailbox.as_bytes());
            }
            MboxRequest::Fetch { identity, nonce, signature, max_bytes } => {
                w.u8(3).raw(identity).raw(nonce).raw(signature).u32(*max_bytes);
            }
            MboxRequest::Ack { mailbox, hashes } => {
                w.u8(4).raw(mailbox.as_bytes());
                write_hashes(&mut w, hashes);
            }
            MboxRequest::Notify { mailbox } => {
                w.u8(5).raw(mailbox.as_bytes());
            }
            MboxRequest::Offer { mailbox, hashes } => {
                w.u8(6).raw(mailbox.as_bytes());
                write_hashes(&mut w, hashes);
            }
            MboxRequest::Replicate { expires_at, envelope } => {
                w.u8(7).u64(*expires_at).bytes(envelope);
            }
            MboxRequest::Deposit { mailbox, device, prekeys } => {
                w.u8(8).raw(mailbox.as_bytes()).raw(device);
                write_list(&mut w, prekeys);
            }
            MboxRequest::Claim { mailbox, device } => {
                w.u8(9).raw(mailbox.as_bytes()).raw(device);
            }
        }
        w.into_vec()
    }

    /// Parses a frame body.
    pub fn decode(bytes: &[u8]) -> Result<Self, communitas_types::DecodeError> {
        let mut r = Reader::new(bytes, MAX_REQUEST)?;
        check_version(&mut r)?;
        let request = match r.u8("request tag")? {
            1 => MboxRequest::Put { envelope: r.bytes("envelope", MAX_ENVELOPE)?.to_vec() },
            2 => MboxRequest::Challenge { mailbox: MailboxId::from_bytes(r.array("mailbox")?) },
            3 => MboxRequest::Fetch {
                identity: r.take("identity", PUBLIC_IDENTITY_LEN)?.to_vec(),
                nonce: r.array("nonce")?,
                signature: r.array("signature")?,
                max_bytes: r.u32("max bytes")?,
            },
            4 => {
                let mailbox = MailboxId::from_bytes(r.array("mailbox")?);
                MboxRequest::Ack { mailbox, hashes: read_hashes(&mut r, "ack")? }
            }
            5 => MboxRequest::Notify { mailbox: MailboxId::from_bytes(r.array("mailbox")?) },
            6 => {
                let mailbox = MailboxId::from_bytes(r.array("mailbox")?);
                MboxRequest::Offer { mailbox, hashes: read_hashes(&mut r, "offer")? }
            }
            7 => MboxRequest::Replicate {
                expires_at: r.u64("expires at")?,
                envelope: r.bytes("envelope", MAX_ENVELOPE)?.to_vec(),
            },
            8 => MboxRequest::Deposit {
                mailbox: MailboxId::from_bytes(r.array("mailbox")?),
                device: r.array("device")?,
                prekeys: read_list(&mut r, "deposit", MAX_DEPOSIT)?,
            },
            9 => MboxRequest::Claim {
                mailbox: MailboxId::from_bytes(r.array("mailbox")?),
                device: r.array("device")?,
            },
            _ => return Err(communitas_types::DecodeError::InvalidValue { field: "request tag" }),
        };
        r.finish()?;
        Ok(request)
    }
}

impl MboxResponse {
    /// The frame body.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        w.u8(VERSION);
        match self {
            MboxResponse::Stored => {
                w.u8(1);
            }
            MboxResponse::Refused(why) => {
                w.u8(2).u8(why.code());
            }
            MboxResponse::Nonce(n) => {
                w.u8(3).raw(n);
            }
            MboxResponse::Envelopes(list) => {
                w.u8(4).u32(u32::try_from(list.len()).unwrap_or(u32::MAX));
                for (hash, envelope) in list {
                    w.raw(hash).bytes(envelope);
                }
            }
            MboxResponse::Acked(n) => {
                w.u8(5).u32(*n);
            }
            MboxResponse::Wanted(hashes) => {
                w.u8(6);
                write_hashes(&mut w, hashes);
            }
            MboxResponse::Held { dh, kem } => {
                w.u8(7).u32(*dh).u32(*kem);
            }
            MboxResponse::Prekeys(prekeys) => {
                w.u8(8);
                write_list(&mut w, prekeys);
            }
        }
        w.into_vec()
    }

    /// Parses a frame body.
    pub fn decode(bytes: &[u8]) -> Result<Self, communitas_types::DecodeError> {
        let mut r = Reader::new(bytes, MAX_RESPONSE)?;
        check_version(&mut r)?;
        let response = match r.u8("response tag")? {
            1 => MboxResponse::Stored,
            2 => MboxResponse::Refused(Refusal::from_code(r.u8("reason")?)),
            3 => MboxResponse::Nonce(r.array("nonce")?),
            4 => {
                let count = usize::try_from(r.u32("count")?).unwrap_or(usize::MAX);
                // Each entry takes at least 36 bytes: a count beyond that is a lie.
                if count > r.remaining() / 36 {
                    return Err(communitas_types::DecodeError::InvalidValue {
                        field: "envelope count",
                    });
                }
                let mut list = Vec::with_capacity(count);
                for _ in 0..count {
                    list.push((r.array("hash")?, r.bytes("envelope", MAX_ENVELOPE)?.to_vec()));
                }
                MboxResponse::Envelopes(list)
            }
            5 => MboxResponse::Acked(r.u32("acked")?),
            6 => MboxResponse::Wanted(read_hashes(&mut r, "wanted")?),
            7 => MboxResponse::Held { dh: r.u32("held dh")?, kem: r.u32("held kem")? },
            8 => MboxResponse::Prekeys(read_list(&mut r, "prekeys", MAX_CLAIMED)?),
            _ => return Err(communitas_types::DecodeError::InvalidValue { field: "response tag" }),
        };
        r.finish()?;
        Ok(response)
    }
}

/// A hash list: count (u32), then the hashes. At most [`MAX_ACK`] are sent; the
/// decoder refuses more.
fn write_hashes(w: &mut Writer, hashes: &[[u8; 32]]) {
    w.u32(u32::try_from(hashes.len()).unwrap_or(u32::MAX));
    for h in hashes {
        w.raw(h);
    }
}

fn read_hashes(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<Vec<[u8; 32]>, communitas_types::DecodeError> {
    let count = usize::try_from(r.u32("count")?).unwrap_or(usize::MAX);
    if count > MAX_ACK {
        return Err(communitas_types::DecodeError::TooLong { field, len: count, max: MAX_ACK });
    }
    (0..count).map(|_| r.array("hash")).collect()
}

/// A list of one-time prekeys: count (u32), then each as a byte string of at most
/// the longest one-time prekey. The decoder refuses more than `max`.
fn write_list(w: &mut Writer, items: &[Vec<u8>]) {
    w.u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
    for item in items {
        w.bytes(item);
    }
}

fn read_list(
    r: &mut Reader<'_>,
    field: &'static str,
    max: usize,
) -> Result<Vec<Vec<u8>>, communitas_types::DecodeError> {
    let count = usize::try_from(r.u32("count")?).unwrap_or(usize::MAX);
    if count > max {
        return Err(communitas_types::DecodeError::TooLong { field, len: count, max });
    }
    (0..count).map(|_| r.bytes("one-time prekey", MAX_ONE_TIME).map(<[u8]>::to_vec)).collect()
}

fn check_version(r: &mut Reader<'_>) -> Result<(), communitas_types::DecodeError> {
    match r.u8("mailbox version")? {
        VERSION => Ok(()),
        got => Err(communitas_types::DecodeError::UnsupportedVersion {
            what: "mailbox frame",
            got,
            min: VERSION,
            max: VERSION,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_lying_counts_are_refused() {
        let requests = [
            MboxRequest::Put { envelope: vec![1, 2, 3] },
            MboxRequest::Challenge { mailbox: MailboxId::from_bytes([4; 32]) },
            MboxRequest::Fetch {
                identity: vec![5; PUBLIC_IDENTITY_LEN],
                nonce: [6; 32],
                signature: [7; 64],
                max_bytes: 9,
            },
            MboxRequest::Ack {
                mailbox: MailboxId::from_bytes([8; 32]),
                hashes: vec![[9; 32], [10; 32]],
            },
            MboxRequest::Notify { mailbox: MailboxId::from_bytes([11; 32]) },
            MboxRequest::Offer { mailbox: MailboxId::from_bytes([12; 32]), hashes: vec![[13; 32]] },
            MboxRequest::Replicate { expires_at: 1_780_000_000_000, envelope: vec![14; 50] },
            MboxRequest::Deposit {
                mailbox: MailboxId::from_bytes([17; 32]),
                device: [18; 32],
                prekeys: vec![vec![19; 102], vec![20; 1254]],
            },
            MboxRequest::Claim { mailbox: MailboxId::from_bytes([21; 32]), device: [22; 32] },
        ];
        for req in requests {
            assert_eq!(MboxRequest::decode(&req.encode()).unwrap(), req);
        }
        let responses = [
            MboxResponse::Stored,
            MboxResponse::Refused(Refusal::MailboxFull),
            MboxResponse::Nonce([1; 32]),
            MboxResponse::Envelopes(vec![([2; 32], vec![3; 100])]),
            MboxResponse::Acked(7),
            MboxResponse::Wanted(vec![[15; 32], [16; 32]]),
            MboxResponse::Held { dh: 3, kem: 4 },
            MboxResponse::Prekeys(vec![vec![23; 102]]),
        ];
        for res in responses {
            assert_eq!(MboxResponse::decode(&res.encode()).unwrap(), res);
        }
        let mut lie = MboxResponse::Envelopes(vec![]).encode();
        lie[2..6].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(MboxResponse::decode(&lie).is_err());
        let mut too_many =
            MboxRequest::Ack { mailbox: MailboxId::from_bytes([0; 32]), hashes: vec![] }.encode();
        too_many[34..38].copy_from_slice(&(MAX_ACK as u32 + 1).to_be_bytes());
        assert!(MboxRequest::decode(&too_many).is_err());
        let mut offer_too_many =
            MboxRequest::Offer { mailbox: MailboxId::from_bytes([0; 32]), hashes: vec![] }.encode();
        offer_too_many[34..38].copy_from_slice(&(MAX_ACK as u32 + 1).to_be_bytes());
        assert!(MboxRequest::decode(&offer_too_many).is_err());
        let mut wanted_too_many = MboxResponse::Wanted(vec![]).encode();
        wanted_too_many[2..6].copy_from_slice(&(MAX_ACK as u32 + 1).to_be_bytes());
        assert!(MboxResponse::decode(&wanted_too_many).is_err());
        // A deposit or a claim's answer longer than its bound, or a prekey longer
        // than any one-time prekey, is refused before anything is allocated for it.
        let mut deposit_too_many = MboxRequest::Deposit {
            mailbox: MailboxId::from_bytes([0; 32]),
            device: [0; 32],
            prekeys: vec![],
        }
        .encode();
        deposit_too_many[66..70].copy_from_slice(&(MAX_DEPOSIT as u32 + 1).to_be_bytes());
        assert!(MboxRequest::decode(&deposit_too_many).is_err());
        let three = MboxResponse::Prekeys(vec![vec![1], vec![2], vec![3]]).encode();
        assert!(MboxResponse::decode(&three).is_err());
        let long = MboxResponse::Prekeys(vec![vec![0; MAX_ONE_TIME + 1]]).encode();
        assert!(MboxResponse::decode(&long).is_err());
    }
}
