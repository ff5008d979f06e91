//! One end-to-end session between two devices (issue 14; decisions 0050, 0051;
//! `docs/protocol.md` "Sessions"): the PQXDH-shaped handshake of
//! [`communitas_crypto::handshake`], then a double ratchet with header encryption
//! and a post-quantum (ML-KEM-768) step on a cadence.
//!
//! Sessions are per pair of devices. Nothing in a session is signed: the handshake
//! authenticates both devices to each other (and to nobody else), and every message
//! after it is bound to the handshake by the associated data.
//!
//! # The shape: try, then commit
//!
//! A [`Session`] is a value. [`Session::encrypt`] and [`Session::decrypt`] take
//! `&self` and return the result *and the next session*; `self` stays valid. The
//! node stores the next session's [`Session::to_bytes`] in the same transaction as
//! the message that moved it, and only then acts (sends, shows). If it crashes
//! before the commit, the stored session is the old one, which still opens the
//! message again. A failed decryption returns an error and nothing else: there is
//! no state to roll back.
//!
//! No IO, no clock, no OS randomness: the time is an argument (skipped keys expire,
//! the post-quantum cadence has a time bound), and randomness comes in as a
//! [`Random`] — the OS source in the node, a seeded one in tests and
//! vectors.
//!
//! # Flow
//!
//! - Initiator: [`Session::initiate`] with the responder's checked bundle (and
//!   one-time prekeys if its mailbox servers had any), then `encrypt`. Its
//!   messages carry the init message until the first reply decrypts.
//! - Responder: [`peek`] a message; a [`Peeked::Initial`] for no known handshake id
//!   goes to [`Session::accept`] with the secrets its ids name; anything else to
//!   the session it belongs to (for a plain message, the node tries its sessions
//!   with that peer device).
//!
//! ```no_run
//! use communitas_crypto::prekey::PrekeyBundle;
//! use communitas_crypto::DeviceKey;
//! use communitas_proto::random::Seeded;
//! use communitas_proto::session::Session;
//! use communitas_types::Timestamp;
//! # fn bundle() -> PrekeyBundle { unimplemented!() }
//!
//! let mut rng = Seeded::new(1); // the node passes the OS source
//! let now = Timestamp::from_millis(1_780_000_000_000);
//! let me = DeviceKey::from_secret_bytes([1; 32]);
//! let session = Session::initiate(&me, &bundle(), None, None, now, &mut rng)?;
//! let sent = session.encrypt(b"hi", now, &mut rng)?;
//! // store sent.next.to_bytes() with the outgoing message, then send sent.bytes
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use communitas_crypto::dh::DhSecret;
use communitas_crypto::handshake::{
    self, HandshakeError, InitMessage, InitRandomness, ResponderKeys,
};
use communitas_crypto::identity::DeviceKey;
use communitas_crypto::prekey::{OneTimePrekey, PrekeyBundle};
use communitas_types::Timestamp;
use communitas_types::codec::DecodeError;
use zeroize::Zeroizing;

use crate::Random;

pub mod header;
mod kdf;
pub mod letter;
pub mod pq;
pub mod prekeys;
pub mod skipped;
pub mod snapshot;
mod state;
pub mod wire;

pub use kdf::{
    CHAIN_CONTEXT, INIT_CONTEXT, MESSAGE_AEAD_CONTEXT, MESSAGE_KEY_CONTEXT, ROOT_CONTEXT,
};
use state::{SendChain, State};

/// Longest plaintext a session message carries (what an envelope's body may hold).
pub const MAX_PLAINTEXT_LEN: usize = wire::MAX_LEN - 8 * 1024;

/// Why a message could not be encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// The responder has not read a message yet, so it has no sending chain.
    #[error("the session cannot send before it has received")]
    NotReady,
    /// 2^32 messages in one chain.
    #[error("the sending chain is exhausted")]
    ChainExhausted,
    /// The plaintext is over [`MAX_PLAINTEXT_LEN`].
    #[error("plaintext is {len} bytes, the limit is {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a message did not decrypt. The session is unchanged in every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// Malformed framing.
    #[error("malformed session message: {0}")]
    Decode(#[from] DecodeError),
    /// No header key of this session opens the header: another session's message,
    /// a tampered header, or one whose keys are gone.
    #[error("the header does not decrypt under this session's keys")]
    UnknownHeader,
    /// The header opened but its message was read already (or its skipped key
    /// expired or was evicted).
    #[error("message already read, or its key has expired")]
    Duplicate,
    /// The header opened but the body did not: tampered body or tag.
    #[error("the body does not decrypt (tampered)")]
    Decrypt,
    /// The header asks to skip more keys than [`skipped::MAX_SKIP_PER_CHAIN`].
    #[error("message skips {skipped} keys, the limit is {max}")]
    TooManySkipped {
        /// Keys it would skip.
        skipped: u32,
        /// The limit.
        max: u32,
    },
    /// The header answers a post-quantum offer this side never made.
    #[error("unexpected ML-KEM ciphertext in the header")]
    UnexpectedKemCiphertext,
    /// The header offers an invalid ML-KEM key.
    #[error("invalid ML-KEM key in the header")]
    InvalidKemKey,
    /// The header's ratchet key is of low order.
    #[error("the header's ratchet key is of low order")]
    WeakKey,
    /// An init message for a different handshake than this session's.
    #[error("the message belongs to another handshake")]
    OtherHandshake,
}

/// Why an initial message did not start a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// Malformed framing, or a plain message (no init message in front).
    #[error("malformed initial message: {0}")]
    Decode(#[from] DecodeError),
    /// The handshake failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The handshake succeeded but its first message did not decrypt.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
}

/// What [`peek`] sees in a message without opening it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peeked {
    /// A ratchet message: for an existing session.
    Message,
    /// A message behind an init message: for the session of its handshake, or a
    /// new one.
    Initial {
        /// BLAKE3 of the init message: [`Session::handshake_id`] of its session.
        handshake_id: [u8; 32],
        /// The init message (its ids name the prekeys [`Session::accept`] needs).
        init: InitMessage,
    },
}

/// Reads a message's framing (and its init message, if any) without keys.
pub fn peek(bytes: &[u8]) -> Result<Peeked, DecodeError> {
    let frame = wire::decode(bytes)?;
    match frame.init {
        None => Ok(Peeked::Message),
        Some(init) => Ok(Peeked::Initial {
            handshake_id: *blake3::hash(init).as_bytes(),
            init: InitMessage::from_bytes(init)?,
        }),
    }
}

/// One end of a session. Holds every secret of it; zeroed on drop; not printed.
#[derive(Clone)]
pub struct Session {
    state: State,
}

/// A message encrypted, and the session after it.
#[derive(Debug)]
pub struct Encrypted {
    /// The message to send.
    pub bytes: Vec<u8>,
    /// The session to store (with the message) before sending.
    pub next: Session,
}

/// A message decrypted, and the session after it.
#[derive(Debug)]
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The session to store in the same transaction as the plaintext.
    pub next: Session,
}

/// A session started by its first message.
#[derive(Debug)]
pub struct Accepted {
    /// The new session (after the first message).
    pub session: Session,
    /// The first message's plaintext.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The initiator's device Ed25519 key, proven by the handshake: the caller
    /// checks that its PeerId is in a contact's identity record.
    pub initiator_device: [u8; 32],
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("initiator", &self.state.initiator).finish_non_exhaustive()
    }
}

impl Session {
    /// Starts a session with the device that published `bundle` (its signature
    /// checked when parsed; that the device belongs to the contact is the caller's
    /// check), using its one-time prekeys when the caller got any.
    pub fn initiate(
        device: &DeviceKey,
        bundle: &PrekeyBundle,
        one_time_dh: Option<&OneTimePrekey>,
        one_time_kem: Option<&OneTimePrekey>,
        now: Timestamp,
        rng: &mut impl Random,
    ) -> Result<Self, HandshakeError> {
        let randomness = InitRandomness { ephemeral: rng.bytes(), kem: rng.bytes() };
        let done = handshake::initiate(device, bundle, one_time_dh, one_time_kem, &randomness)?;
        let init = done.message.to_bytes();
        let (rk0, hka, nhkb) = kdf::init(done.secret.as_bytes());
        let dhs = DhSecret::from_bytes(rng.bytes());
        let dh = dhs.agree(&done.signed_prekey)?;
        let (rk, ck, nhk) = kdf::root(&rk0, &dh, None);
        let state = State {
            initiator: true,
            ad: done.associated_data,
            handshake_id: *blake3::hash(&init).as_bytes(),
            peer_device: bundle.device,
            prefix: Some(init),
            rk,
            dhs,
            dhr: Some(done.signed_prekey),
            send: Some(SendChain { ck, hk: hka, n: 0, kem_ek: None, kem_ct: None }),
            next_send_hk: nhk,
            recv: None,
            next_recv_hk: nhkb,
            pn: 0,
            send_step_pending: false,
            pq: pq::Pq::new(now),
            skipped: skipped::Skipped::default(),
        };
        Ok(Self { state })
    }

    /// Starts the responder's session from an initial message, with the secrets its
    /// ids name (see [`peek`]). Decrypts the message the init message carries.
    pub fn accept(
        keys: &ResponderKeys<'_>,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<Accepted, AcceptError> {
        let frame = wire::decode(bytes)?;
        let init_bytes =
            frame.init.ok_or(DecodeError::InvalidValue { field: "session message kind" })?;
        let init = InitMessage::from_bytes(init_bytes)?;
        let done = handshake::respond(keys, &init)?;
        let (rk, hka, nhkb) = kdf::init(done.secret.as_bytes());
        let mut state = State {
            initiator: false,
            ad: done.associated_data,
            handshake_id: *blake3::hash(init_bytes).as_bytes(),
            peer_device: done.initiator_device,
            prefix: None,
            rk,
            dhs: keys.signed_prekey.clone(),
            dhr: None,
            send: None,
            next_send_hk: nhkb,
            recv: None,
            next_recv_hk: hka,
            pn: 0,
            send_step_pending: false,
            pq: pq::Pq::new(now),
            skipped: skipped::Skipped::default(),
        };
        let plaintext = state.decrypt(frame.header, frame.body, now)?;
        Ok(Accepted { session: Self { state }, plaintext, initiator_device: done.initiator_device })
    }

    /// Encrypts `plaintext`. Returns the message and the next session; `self` is
    /// unchanged (store `next` before sending).
    pub fn encrypt(
        &self,
        plaintext: &[u8],
        now: Timestamp,
        rng: &mut impl Random,
    ) -> Result<Encrypted, EncryptError> {
        let mut next = self.clone();
        let bytes = next.state.encrypt(plaintext, now, rng)?;
        Ok(Encrypted { bytes, next })
    }

    /// Decrypts a message of this session. Returns the plaintext and the next
    /// session; `self` is unchanged, and stays able to open the same message again.
    pub fn decrypt(&self, bytes: &[u8], now: Timestamp) -> Result<Decrypted, DecryptError> {
        let frame = wire::decode(bytes)?;
        if let Some(init) = frame.init {
            // The whole init message must be this session's: a changed byte in it is
            // tampering even though the ratchet message behind it is intact.
            if *blake3::hash(init).as_bytes() != self.state.handshake_id {
                return Err(DecryptError::OtherHandshake);
            }
        }
        let mut next = self.clone();
        let plaintext = next.state.decrypt(frame.header, frame.body, now)?;
        Ok(Decrypted { plaintext, next })
    }

    /// The session's state as bytes (versioned; see [`snapshot`]). Secret: store it
    /// only encrypted.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        snapshot::encode(&self.state)
    }

    /// The session stored by [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        snapshot::decode(bytes).map(|state| Self { state })
    }

    /// The other device's Ed25519 key.
    pub fn peer_device(&self) -> [u8; 32] {
        self.state.peer_device
    }

    /// The handshake's id (BLAKE3 of the init message): what [`Peeked::Initial`]
    /// messages of this session carry.
    pub fn handshake_id(&self) -> [u8; 32] {
        self.state.handshake_id
    }

    /// Whether this side started the session.
    pub fn is_initiator(&self) -> bool {
        self.state.initiator
    }

    /// Skipped message keys held.
    pub fn skipped_keys(&self) -> usize {
        self.state.skipped.len()
    }

    /// Whether this side started the session and has not read a reply yet: its
    /// messages still carry the init message (and the node introduces itself in them).
    pub fn awaiting_reply(&self) -> bool {
        self.state.prefix.is_some()
    }

    /// Whether a post-quantum offer of this side is open.
    pub fn pq_offer_open(&self) -> bool {
        self.state.pq.own_offer.is_some()
    }
}

#[cfg(test)]
mod tests;
