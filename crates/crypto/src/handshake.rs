//! The session handshake: PQXDH's shape, hybrid X25519 + ML-KEM-768 (decision 0050).
//!
//! The initiator (A) fetches the responder's (B) [`PrekeyBundle`] and, when the
//! supply lasts, one X25519 and one ML-KEM-768 [`OneTimePrekey`]. With a fresh
//! ephemeral X25519 key `EK` and fresh KEM randomness it computes
//!
//! ```text
//! DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK, IK_B)   DH3 = DH(EK, SPK_B)   [DH4 = DH(EK, OPK_B)]
//! (CT, SS) = ML-KEM-768.Encaps(PQOPK_B if given, else PQSPK_B)
//! ```
//!
//! where `IK` is a device's Ed25519 device key in Montgomery form. The session
//! secret depends on all of them, so it is safe while either X25519 or ML-KEM-768
//! holds. The [`InitMessage`] carries `EK`, the prekey ids, `CT`, and A's device key
//! *encrypted* under a key from DH2, DH3, DH4 and SS: only B learns who is calling,
//! and B learns it from DH1 and DH2 without any signature (deniable).
//!
//! Layout of an [`InitMessage`], version 1:
//!
//! | bytes | field |
//! | --- | --- |
//! | 1 | version = 1 |
//! | 32 | `EK`, X25519 |
//! | 4 | signed prekey id |
//! | 4 | ML-KEM prekey id (one-time or last-resort) |
//! | 1 | flags: bit 0 = the ML-KEM prekey is one-time; bit 1 = an X25519 one-time prekey was used |
//! | 0 or 4 | X25519 one-time prekey id (when bit 1) |
//! | 1088 | `CT` |
//! | 48 | A's device Ed25519 key, ChaCha20-Poly1305 under `K_id`, nonce 0 |
//!
//! Derivations (BLAKE3 `derive_key`; `‖` concatenates; every input has a fixed size
//! or is fixed by the flags, so the concatenations are unambiguous):
//!
//! ```text
//! T0  = derive_key(TRANSCRIPT, every InitMessage byte before CT's end ‖ IK_B(Ed25519) ‖ SPK_B ‖ BLAKE3(PQPK used) ‖ [OPK_B])
//! K_id = derive_key(IDENTITY_BOX, T0 ‖ DH2 ‖ DH3 ‖ [DH4] ‖ SS)
//! AD  = derive_key(ASSOCIATED, T0 ‖ IK_A(Ed25519))
//! SK  = derive_key(SECRET, AD ‖ DH1 ‖ DH2 ‖ DH3 ‖ [DH4] ‖ SS)
//! ```

use chacha20poly1305::aead::{Aead, Payload as AeadInput};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use communitas_types::codec::{DecodeError, Reader, Writer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::dh::{DhPublic, DhSecret, WeakKey, device_dh_public};
use crate::identity::DeviceKey;
use crate::mlkem::{self, KemSecret};
use crate::prekey::{OneTimeKey, OneTimePrekey, PrekeyBundle, PrekeyId};

/// The init message format version this build writes and reads.
pub const VERSION: u8 = 1;
const FLAG_PQ_ONE_TIME: u8 = 1;
const FLAG_DH_ONE_TIME: u8 = 2;
const BOX_LEN: usize = 32 + 16;
/// Longest encoded [`InitMessage`].
pub const MAX_LEN: usize = 1 + 32 + 4 + 4 + 1 + 4 + mlkem::CT_LEN + BOX_LEN;

/// BLAKE3 `derive_key` contexts of the handshake.
pub const TRANSCRIPT_CONTEXT: &str = "communitas 2026-12 handshake transcript v1";
/// Key of the box that carries the initiator's device key.
pub const IDENTITY_BOX_CONTEXT: &str = "communitas 2026-12 handshake identity box v1";
/// The associated data both sides bind every session message to.
pub const ASSOCIATED_CONTEXT: &str = "communitas 2026-12 handshake associated data v1";
/// The session secret.
pub const SECRET_CONTEXT: &str = "communitas 2026-12 handshake secret v1";

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Malformed init message.
    #[error("malformed init message: {0}")]
    Decode(#[from] DecodeError),
    /// A one-time prekey of the wrong kind was given (X25519 where ML-KEM belongs).
    #[error("one-time prekey of the wrong kind")]
    WrongKind,
    /// A DH gave an all-zero result (a low-order key).
    #[error(transparent)]
    WeakKey(#[from] WeakKey),
    /// The message names a one-time X25519 prekey but the caller had none for it.
    #[error("the init message uses one-time prekey {0:?}, which is not available")]
    MissingOneTimePrekey(PrekeyId),
    /// The identity box does not open: tampered, or made for other prekeys.
    #[error("init message does not decrypt (tampered or for other prekeys)")]
    Decrypt,
    /// The initiator's device key inside is not a valid Ed25519 key.
    #[error("init message carries an invalid device key")]
    InvalidDeviceKey,
}

/// The 32-byte secret both sides start the ratchet from. Zeroed on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionSecret([u8; 32]);

impl SessionSecret {
    /// The bytes, for the ratchet's first derivation.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSecret").finish_non_exhaustive()
    }
}

/// The first message of a session, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitMessage {
    /// The initiator's ephemeral key; also names the handshake.
    pub ephemeral: DhPublic,
    /// The responder's signed prekey that was used.
    pub signed_prekey_id: PrekeyId,
    /// The responder's ML-KEM prekey that was used.
    pub kem_prekey_id: PrekeyId,
    /// Whether that ML-KEM prekey is a one-time one (else the last-resort one).
    pub kem_one_time: bool,
    /// The responder's X25519 one-time prekey that was used, if any.
    pub one_time_prekey_id: Option<PrekeyId>,
    kem_ciphertext: Box<[u8; mlkem::CT_LEN]>,
    identity_box: [u8; BOX_LEN],
}

/// The randomness the initiator draws: the ephemeral key and the KEM's `m`.
pub struct InitRandomness {
    /// The ephemeral X25519 secret.
    pub ephemeral: [u8; 32],
    /// ML-KEM encapsulation randomness.
    pub kem: [u8; 32],
}

/// The initiator's result.
#[derive(Debug)]
pub struct Initiated {
    /// The message to send (in front of the first ratchet message).
    pub message: InitMessage,
    /// The session secret.
    pub secret: SessionSecret,
    /// The associated data: binds both devices and the whole handshake.
    pub associated_data: [u8; 32],
    /// The responder's signed prekey: the ratchet's first remote key.
    pub signed_prekey: DhPublic,
}

/// The secrets the responder looks up by the ids an [`InitMessage`] names. (`Debug`
/// shows public keys only.)
#[derive(Debug, Clone, Copy)]
pub struct ResponderKeys<'a> {
    /// The responder's device key.
    pub device: &'a DeviceKey,
    /// The signed prekey's secret.
    pub signed_prekey: &'a DhSecret,
    /// The ML-KEM prekey's secret (one-time or last-resort, as the message says).
    pub kem_prekey: &'a KemSecret,
    /// The X25519 one-time prekey's secret, when the message names one.
    pub one_time_prekey: Option<&'a DhSecret>,
}

/// The responder's result.
#[derive(Debug)]
pub struct Responded {
    /// The session secret.
    pub secret: SessionSecret,
    /// The associated data (equal to the initiator's).
    pub associated_data: [u8; 32],
    /// The initiator's device Ed25519 key, authenticated by DH1/DH2. The caller
    /// checks that its PeerId is in the record of the contact it claims to be.
    pub initiator_device: [u8; 32],
}

impl InitMessage {
    /// The binary form (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(MAX_LEN);
        w.raw(&self.public_part()).raw(&self.identity_box);
        w.into_vec()
    }

    /// Parses an init message; version and size first.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, MAX_LEN)?;
        let version = r.u8("init message version")?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "init message",
                got: version,
                min: VERSION,
                max: VERSION,
            });
        }
        let ephemeral = DhPublic::from_bytes(r.array("ephemeral key")?);
        let signed_prekey_id = PrekeyId(r.u32("signed prekey id")?);
        let kem_prekey_id = PrekeyId(r.u32("kem prekey id")?);
        let flags = r.u8("flags")?;
        if flags & !(FLAG_PQ_ONE_TIME | FLAG_DH_ONE_TIME) != 0 {
            return Err(DecodeError::InvalidValue { field: "init message flags" });
        }
        let one_time_prekey_id = if flags & FLAG_DH_ONE_TIME != 0 {
            Some(PrekeyId(r.u32("one-time prekey id")?))
        } else {
            None
        };
        let kem_ciphertext = Box::new(r.array::<{ mlkem::CT_LEN }>("kem ciphertext")?);
        let identity_box = r.array("identity box")?;
        r.finish()?;
        Ok(Self {
            ephemeral,
            signed_prekey_id,
            kem_prekey_id,
            kem_one_time: flags & FLAG_PQ_ONE_TIME != 0,
            one_time_prekey_id,
            kem_ciphertext,
            identity_box,
        })
    }

    /// Every byte up to the end of the KEM ciphertext.
    fn public_part(&self) -> Vec<u8> {
        let mut flags = 0;
        if self.kem_one_time {
            flags |= FLAG_PQ_ONE_TIME;
        }
        if self.one_time_prekey_id.is_some() {
            flags |= FLAG_DH_ONE_TIME;
        }
        let mut w = Writer::with_capacity(MAX_LEN);
        w.u8(VERSION)
            .raw(self.ephemeral.as_bytes())
            .u32(self.signed_prekey_id.0)
            .u32(self.kem_prekey_id.0)
            .u8(flags);
        if let Some(id) = self.one_time_prekey_id {
            w.u32(id.0);
        }
        w.raw(self.kem_ciphertext.as_slice());
        w.into_vec()
    }
}

/// Starts a session with the device whose `bundle` (and one-time prekeys, when
/// available) the caller fetched and checked belongs to the contact. `randomness`
/// must be fresh and uniform: the node draws it from the OS, vectors fix it.
pub fn initiate(
    device: &DeviceKey,
    bundle: &PrekeyBundle,
    one_time_dh: Option<&OneTimePrekey>,
    one_time_kem: Option<&OneTimePrekey>,
    randomness: &InitRandomness,
) -> Result<Initiated, HandshakeError> {
    let opk = match one_time_dh.map(|p| (&p.key, p.id)) {
        None => None,
        Some((OneTimeKey::Dh(pk), id)) => Some((id, *pk)),
        Some((OneTimeKey::Kem(_), _)) => return Err(HandshakeError::WrongKind),
    };
    let (kem_id, kem_key, kem_one_time) = match one_time_kem.map(|p| (&p.key, p.id)) {
        None => (bundle.last_resort_id, &bundle.last_resort, false),
        Some((OneTimeKey::Kem(pk), id)) => (id, pk, true),
        Some((OneTimeKey::Dh(_), _)) => return Err(HandshakeError::WrongKind),
    };
    let responder_ik = device_dh_public(&bundle.device).ok_or(WeakKey)?;
    let ek = DhSecret::from_bytes(randomness.ephemeral);
    let (ct, ss) = kem_key.encapsulate(&randomness.kem);
    let mut message = InitMessage {
        ephemeral: ek.public(),
        signed_prekey_id: bundle.signed_prekey_id,
        kem_prekey_id: kem_id,
        kem_one_time,
        one_time_prekey_id: opk.map(|(id, _)| id),
        kem_ciphertext: ct,
        identity_box: [0; BOX_LEN],
    };
    let t0 = transcript(
        &message,
        &bundle.device,
        &bundle.signed_prekey,
        &kem_key.digest(),
        opk.map(|(_, pk)| pk).as_ref(),
    );
    let dh2 = ek.agree(&responder_ik)?;
    let dh3 = ek.agree(&bundle.signed_prekey)?;
    let dh4 = opk.map(|(_, pk)| ek.agree(&pk)).transpose()?;
    let own = device.public_bytes();
    let key = box_key(&t0, &dh2, &dh3, dh4.as_deref(), &ss);
    #[allow(clippy::expect_used)]
    let sealed = key
        .encrypt(&Nonce::default(), AeadInput { msg: &own, aad: &t0 })
        .expect("ChaCha20-Poly1305 encrypts 32 bytes");
    message.identity_box.copy_from_slice(&sealed);
    let dh1 = device.dh_secret().agree(&bundle.signed_prekey)?;
    let associated_data = associated(&t0, &own);
    let secret = session_secret(&associated_data, &dh1, &dh2, &dh3, dh4.as_deref(), &ss);
    Ok(Initiated { message, secret, associated_data, signed_prekey: bundle.signed_prekey })
}

/// Answers an init message with the secrets it names. Fails, with nothing learned,
/// if the message was not made for these prekeys or was changed on the way.
pub fn respond(
    keys: &ResponderKeys<'_>,
    message: &InitMessage,
) -> Result<Responded, HandshakeError> {
    let opk = match (message.one_time_prekey_id, keys.one_time_prekey) {
        (None, _) => None,
        (Some(_), Some(secret)) => Some(secret),
        (Some(id), None) => return Err(HandshakeError::MissingOneTimePrekey(id)),
    };
    let spk = keys.signed_prekey.public();
    let t0 = transcript(
        message,
        &keys.device.public_bytes(),
        &spk,
        &keys.kem_prekey.public().digest(),
        opk.map(DhSecret::public).as_ref(),
    );
    let ss = keys.kem_prekey.decapsulate(&message.kem_ciphertext);
    let dh2 = keys.device.dh_secret().agree(&message.ephemeral)?;
    let dh3 = keys.signed_prekey.agree(&message.ephemeral)?;
    let dh4 = opk.map(|s| s.agree(&message.ephemeral)).transpose()?;
    let key = box_key(&t0, &dh2, &dh3, dh4.as_deref(), &ss);
    let opened = key
        .decrypt(&Nonce::default(), AeadInput { msg: &message.identity_box, aad: &t0 })
        .map_err(|_| HandshakeError::Decrypt)?;
    let initiator_device: [u8; 32] =
        opened.as_slice().try_into().map_err(|_| HandshakeError::Decrypt)?;
    let initiator_ik =
        device_dh_public(&initiator_device).ok_or(HandshakeError::InvalidDeviceKey)?;
    let dh1 = keys.signed_prekey.agree(&initiator_ik)?;
    let associated_data = associated(&t0, &initiator_device);
    let secret = session_secret(&associated_data, &dh1, &dh2, &dh3, dh4.as_deref(), &ss);
    Ok(Responded { secret, associated_data, initiator_device })
}

fn transcript(
    message: &InitMessage,
    responder_device: &[u8; 32],
    spk: &DhPublic,
    kem_digest: &[u8; 32],
    opk: Option<&DhPublic>,
) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(TRANSCRIPT_CONTEXT);
    h.update(&message.public_part())
        .update(responder_device)
        .update(spk.as_bytes())
        .update(kem_digest);
    if let Some(opk) = opk {
        h.update(opk.as_bytes());
    }
    *h.finalize().as_bytes()
}

fn box_key(
    t0: &[u8; 32],
    dh2: &[u8; 32],
    dh3: &[u8; 32],
    dh4: Option<&[u8; 32]>,
    ss: &[u8; 32],
) -> ChaCha20Poly1305 {
    let mut h = blake3::Hasher::new_derive_key(IDENTITY_BOX_CONTEXT);
    h.update(t0).update(dh2).update(dh3);
    if let Some(dh4) = dh4 {
        h.update(dh4);
    }
    h.update(ss);
    let key = Zeroizing::new(*h.finalize().as_bytes());
    ChaCha20Poly1305::new(key.as_ref().into())
}

fn associated(t0: &[u8; 32], initiator_device: &[u8; 32]) -> [u8; 32] {
    *blake3::Hasher::new_derive_key(ASSOCIATED_CONTEXT)
        .update(t0)
        .update(initiator_device)
        .finalize()
        .as_bytes()
}

fn session_secret(
    ad: &[u8; 32],
    dh1: &[u8; 32],
    dh2: &[u8; 32],
    dh3: &[u8; 32],
    dh4: Option<&[u8; 32]>,
    ss: &[u8; 32],
) -> SessionSecret {
    let mut h = blake3::Hasher::new_derive_key(SECRET_CONTEXT);
    h.update(ad).update(dh1).update(dh2).update(dh3);
    if let Some(dh4) = dh4 {
        h.update(dh4);
    }
    h.update(ss);
    SessionSecret(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests;
