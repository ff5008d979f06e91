//! Prekeys: what a device publishes so that others can open a session with it while
//! it is offline (decision 0050, `docs/protocol.md` "Sessions").
//!
//! - A [`PrekeyBundle`] per device, published next to the identity record: the
//!   device's Ed25519 key, an X25519 *signed prekey* and an ML-KEM-768 *last-resort
//!   prekey*, signed by the device key. Rotated weekly ([`ROTATE_AFTER`]); a replaced
//!   prekey's secret is kept [`KEEP_REPLACED`] so initial messages still in mailboxes
//!   open.
//! - [`OneTimePrekey`]s, X25519 or ML-KEM-768, each signed by the device key and
//!   handed out once (by the device's mailbox servers). Either may be missing when
//!   the supply runs out; the handshake then uses the signed and last-resort ones.
//!
//! Bundle layout, version 1 (big-endian):
//!
//! | bytes | field |
//! | --- | --- |
//! | 1 | version = 1 |
//! | 32 | device Ed25519 public key |
//! | 8 | created at, unix ms |
//! | 4 | signed prekey id |
//! | 32 | signed prekey, X25519 |
//! | 4 | last-resort prekey id |
//! | 1184 | last-resort prekey, ML-KEM-768 encapsulation key |
//! | 64 | Ed25519 signature by the device over `BUNDLE_DOMAIN ‖` every byte above |
//!
//! One-time prekey layout, version 1: version (1) = 1, kind (1: 1 = X25519, 2 =
//! ML-KEM-768), id (4), key (32 or 1184), then the device's signature (64) over
//! `ONE_TIME_DOMAIN ‖ device public key ‖` every byte before it.

use std::time::Duration;

use communitas_types::Timestamp;
use communitas_types::codec::{DecodeError, Reader, Writer};

use crate::dh::{DhPublic, DhSecret, device_verify};
use crate::identity::DeviceKey;
use crate::mlkem::{self, KemPublic, KemSecret};

/// The format version of bundles and one-time prekeys this build writes and reads.
pub const VERSION: u8 = 1;
const BUNDLE_DOMAIN: &[u8] = b"communitas/prekey-bundle/v1\0";
const ONE_TIME_DOMAIN: &[u8] = b"communitas/one-time-prekey/v1\0";
/// Bytes of an encoded bundle.
pub const BUNDLE_LEN: usize = 1 + 32 + 8 + 4 + 32 + 4 + mlkem::EK_LEN + 64;
/// Longest encoded one-time prekey (an ML-KEM one).
pub const MAX_ONE_TIME_LEN: usize = 1 + 1 + 4 + mlkem::EK_LEN + 64;
/// A signed prekey (and the last-resort one) is replaced after a week: the interval
/// Signal recommends between a week and a month; shorter bounds what a stolen prekey
/// secret opens.
pub const ROTATE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a replaced prekey's secret is kept: the message TTL (30 days) plus a
/// week for a bundle cached or fetched just before it was replaced.
pub const KEEP_REPLACED: Duration = Duration::from_secs(37 * 24 * 3600);

/// Names one prekey of a device. Chosen by the device (random, so ids of rotated
/// keys do not collide); the handshake repeats it so the device finds the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrekeyId(pub u32);

/// Why a bundle or one-time prekey was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrekeyError {
    /// Malformed bytes.
    #[error("malformed prekey: {0}")]
    Decode(#[from] DecodeError),
    /// The device key is not a valid Ed25519 point.
    #[error("prekey names an invalid device key")]
    InvalidDeviceKey,
    /// The ML-KEM key fails its validity check.
    #[error("prekey holds an invalid ML-KEM-768 key")]
    InvalidKemKey,
    /// The signature does not verify under the device key.
    #[error("prekey signature does not verify")]
    BadSignature,
}

/// Whether a signed (or last-resort) prekey created at `created_at` is due to be
/// replaced at `now`.
pub fn rotation_due(created_at: Timestamp, now: Timestamp) -> bool {
    now >= created_at.saturating_add(ROTATE_AFTER)
}

/// Whether the secret of a prekey replaced at `replaced_at` may be deleted at `now`.
pub fn replaced_expired(replaced_at: Timestamp, now: Timestamp) -> bool {
    now >= replaced_at.saturating_add(KEEP_REPLACED)
}

/// A device's signed prekey bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrekeyBundle {
    /// The device's Ed25519 public key (its PeerId is made from it).
    pub device: [u8; 32],
    /// When the prekeys were made.
    pub created_at: Timestamp,
    /// The X25519 signed prekey's id.
    pub signed_prekey_id: PrekeyId,
    /// The X25519 signed prekey.
    pub signed_prekey: DhPublic,
    /// The ML-KEM-768 last-resort prekey's id.
    pub last_resort_id: PrekeyId,
    /// The ML-KEM-768 last-resort prekey.
    pub last_resort: KemPublic,
    bytes: Vec<u8>,
}

impl PrekeyBundle {
    /// Builds and signs a bundle for `device`.
    pub fn sign(
        device: &DeviceKey,
        created_at: Timestamp,
        signed_prekey: (PrekeyId, &DhSecret),
        last_resort: (PrekeyId, &KemSecret),
    ) -> Self {
        let (spk_id, spk) = (signed_prekey.0, signed_prekey.1.public());
        let (pq_id, pq) = (last_resort.0, last_resort.1.public());
        let mut w = Writer::with_capacity(BUNDLE_LEN);
        w.u8(VERSION)
            .raw(&device.public_bytes())
            .u64(created_at.as_millis())
            .u32(spk_id.0)
            .raw(spk.as_bytes())
            .u32(pq_id.0)
            .raw(pq.as_bytes());
        let signature = device.sign(&[BUNDLE_DOMAIN, w.as_slice()].concat());
        w.raw(&signature);
        Self {
            device: device.public_bytes(),
            created_at,
            signed_prekey_id: spk_id,
            signed_prekey: spk,
            last_resort_id: pq_id,
            last_resort: pq,
            bytes: w.into_vec(),
        }
    }

    /// Parses a bundle and checks its signature. Whether the device belongs to the
    /// identity the caller expects is the caller's check (its PeerId must be in that
    /// identity's record).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PrekeyError> {
        let mut r = Reader::new(bytes, BUNDLE_LEN)?;
        check_version(r.u8("bundle version")?, "prekey bundle")?;
        let device = r.array::<32>("device key")?;
        let created_at = Timestamp::from_millis(r.u64("created at")?);
        let spk_id = PrekeyId(r.u32("signed prekey id")?);
        let spk = DhPublic::from_bytes(r.array("signed prekey")?);
        let pq_id = PrekeyId(r.u32("last-resort prekey id")?);
        let pq = KemPublic::from_bytes(r.take("last-resort prekey", mlkem::EK_LEN)?)
            .map_err(|_| PrekeyError::InvalidKemKey)?;
        let signed_len = bytes.len() - r.remaining();
        let signature = r.array::<64>("signature")?;
        r.finish()?;
        let signed =
            bytes.get(..signed_len).ok_or(DecodeError::InvalidValue { field: "length" })?;
        verify(&device, &[BUNDLE_DOMAIN, signed].concat(), &signature)?;
        Ok(Self {
            device,
            created_at,
            signed_prekey_id: spk_id,
            signed_prekey: spk,
            last_resort_id: pq_id,
            last_resort: pq,
            bytes: bytes.to_vec(),
        })
    }

    /// The signed bytes.
    pub fn to_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The public key of a one-time prekey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneTimeKey {
    /// X25519: a fourth DH in the handshake.
    Dh(DhPublic),
    /// ML-KEM-768: used instead of the last-resort prekey.
    Kem(KemPublic),
}

const KIND_DH: u8 = 1;
const KIND_KEM: u8 = 2;

/// A signed one-time prekey, as a mailbox server hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimePrekey {
    /// Its id.
    pub id: PrekeyId,
    /// Its public key.
    pub key: OneTimeKey,
    bytes: Vec<u8>,
}

impl OneTimePrekey {
    /// Builds and signs a one-time prekey.
    pub fn sign(device: &DeviceKey, id: PrekeyId, key: OneTimeKey) -> Self {
        let mut w = Writer::with_capacity(MAX_ONE_TIME_LEN);
        w.u8(VERSION);
        match &key {
            OneTimeKey::Dh(pk) => w.u8(KIND_DH).u32(id.0).raw(pk.as_bytes()),
            OneTimeKey::Kem(pk) => w.u8(KIND_KEM).u32(id.0).raw(pk.as_bytes()),
        };
        let signature =
            device.sign(&[ONE_TIME_DOMAIN, &device.public_bytes(), w.as_slice()].concat());
        w.raw(&signature);
        Self { id, key, bytes: w.into_vec() }
    }

    /// Parses a one-time prekey and checks that `device` signed it.
    pub fn from_bytes(bytes: &[u8], device: &[u8; 32]) -> Result<Self, PrekeyError> {
        let mut r = Reader::new(bytes, MAX_ONE_TIME_LEN)?;
        check_version(r.u8("one-time prekey version")?, "one-time prekey")?;
        let kind = r.u8("one-time prekey kind")?;
        let id = PrekeyId(r.u32("one-time prekey id")?);
        let key = match kind {
            KIND_DH => OneTimeKey::Dh(DhPublic::from_bytes(r.array("one-time prekey")?)),
            KIND_KEM => OneTimeKey::Kem(
                KemPublic::from_bytes(r.take("one-time prekey", mlkem::EK_LEN)?)
                    .map_err(|_| PrekeyError::InvalidKemKey)?,
            ),
            _ => return Err(DecodeError::InvalidValue { field: "one-time prekey kind" }.into()),
        };
        let signed_len = bytes.len() - r.remaining();
        let signature = r.array::<64>("signature")?;
        r.finish()?;
        let signed =
            bytes.get(..signed_len).ok_or(DecodeError::InvalidValue { field: "length" })?;
        verify(device, &[ONE_TIME_DOMAIN, device, signed].concat(), &signature)?;
        Ok(Self { id, key, bytes: bytes.to_vec() })
    }

    /// The signed bytes.
    pub fn to_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn check_version(got: u8, what: &'static str) -> Result<(), DecodeError> {
    if got == VERSION {
        Ok(())
    } else {
        Err(DecodeError::UnsupportedVersion { what, got, min: VERSION, max: VERSION })
    }
}

fn verify(device: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Result<(), PrekeyError> {
    if crate::dh::device_dh_public(device).is_none() {
        return Err(PrekeyError::InvalidDeviceKey);
    }
    if device_verify(device, message, signature) { Ok(()) } else { Err(PrekeyError::BadSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> (DeviceKey, PrekeyBundle) {
        let device = DeviceKey::from_secret_bytes([1; 32]);
        let b = PrekeyBundle::sign(
            &device,
            Timestamp::from_millis(5),
            (PrekeyId(7), &DhSecret::from_bytes([2; 32])),
            (PrekeyId(8), &KemSecret::from_seed([3; 64])),
        );
        (device, b)
    }

    #[test]
    fn bundle_round_trips_and_every_flip_or_cut_is_refused() {
        let (_, b) = bundle();
        assert_eq!(b.to_bytes().len(), BUNDLE_LEN);
        assert_eq!(PrekeyBundle::from_bytes(b.to_bytes()).unwrap(), b);
        let bytes = b.to_bytes();
        // Every byte of the header and the X25519 key, and a sample of the rest.
        for i in (0..bytes.len()).filter(|i| *i < 90 || i % 97 == 0) {
            let mut bad = bytes.to_vec();
            bad[i] ^= 0x01;
            assert!(PrekeyBundle::from_bytes(&bad).is_err(), "flip at {i}");
            assert!(PrekeyBundle::from_bytes(&bytes[..i]).is_err(), "cut at {i}");
        }
    }

    #[test]
    fn one_time_prekeys_verify_only_under_their_device() {
        let (device, _) = bundle();
        let dh = OneTimePrekey::sign(
            &device,
            PrekeyId(1),
            OneTimeKey::Dh(DhSecret::from_bytes([4; 32]).public()),
        );
        let kem = OneTimePrekey::sign(
            &device,
            PrekeyId(2),
            OneTimeKey::Kem(KemSecret::from_seed([5; 64]).public()),
        );
        for otp in [&dh, &kem] {
            assert_eq!(
                &OneTimePrekey::from_bytes(otp.to_bytes(), &device.public_bytes()).unwrap(),
                otp
            );
            let other = DeviceKey::from_secret_bytes([9; 32]).public_bytes();
            assert_eq!(
                OneTimePrekey::from_bytes(otp.to_bytes(), &other),
                Err(PrekeyError::BadSignature)
            );
            let mut bad = otp.to_bytes().to_vec();
            bad[3] ^= 1;
            assert!(OneTimePrekey::from_bytes(&bad, &device.public_bytes()).is_err());
        }
    }

    #[test]
    fn rotation_is_due_after_a_week_and_replaced_keys_live_37_days() {
        let t = Timestamp::from_millis(1_000);
        assert!(!rotation_due(t, t.saturating_add(ROTATE_AFTER - Duration::from_millis(1))));
        assert!(rotation_due(t, t.saturating_add(ROTATE_AFTER)));
        assert!(!replaced_expired(t, t.saturating_add(Duration::from_secs(30 * 24 * 3600))));
        assert!(replaced_expired(t, t.saturating_add(KEEP_REPLACED)));
    }
}
