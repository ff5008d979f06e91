//! Identity records: what a node publishes in the DHT so that others can find its
//! keys and devices from its four-word address (ARCHITECTURE §3).
//!
//! Binary layout, version 1 or 2 (big-endian; see `docs/protocol.md` §6):
//!
//! | bytes | field |
//! | --- | --- |
//! | 1 | version = 1 or 2 |
//! | 1248 | public identity |
//! | 8 | seq: higher replaces lower |
//! | 8 | created at, unix ms |
//! | 4 + n | display name (UTF-8, ≤ 128 bytes; empty = none) |
//! | 1 | device count (1..=4) |
//! | per device | PeerId (byte string ≤ 64), address count (u8 ≤ 8), addresses (byte strings ≤ 128, binary multiaddrs); version 2 only: the device's prekey bundle as a byte string (empty = none) |
//! | 64 | Ed25519 signature over `SIGNING_DOMAIN ‖` every byte above |
//!
//! Version 2 (issue 14, decision 0053) adds each device's signed prekey bundle, so a
//! contact can open a session with it. A record with no bundle is written as version 1,
//! byte for byte what older builds write and read; both versions are read.
//!
//! A DHT value is a [`RecordSet`]: up to [`MAX_RECORDS_PER_KEY`] records for one
//! address. Normally one; more only if someone forged keys whose address collides
//! (~2^47 Argon2id hashes), in which case all are kept and the client warns instead
//! of choosing.
//!
//! Checking a record is split by cost: [`IdentityRecord::from_bytes`] checks size,
//! version and signature (cheap); whether the keys really derive the address is
//! [`IdentityRecord::derives`], an Argon2id hash the caller should cache.

use communitas_types::codec::{DecodeError, Reader, Writer};
use communitas_types::{Address, Timestamp};
use libp2p_identity::PeerId;

use crate::address::derive_address;
use crate::identity::{Identity, KeyError, PublicIdentity, SIGNATURE_LEN};
use crate::prekey::{BUNDLE_LEN, PrekeyBundle, PrekeyError};

/// The record format version written when a device carries a prekey bundle (the
/// newest this build reads).
pub const VERSION: u8 = 2;
/// The record format version written when no device carries a bundle (the oldest this
/// build reads).
pub const VERSION_NO_PREKEYS: u8 = 1;
const SET_VERSION: u8 = 1;
const SIGNING_DOMAIN: &[u8] = b"communitas/record/v1\0";
const KEY_DOMAIN: &[u8] = b"communitas/id/v1";
/// Longest encoded record: a version-1 record fits 3 KiB; version 2 adds up to
/// 4 + [`BUNDLE_LEN`] bytes per device.
pub const MAX_RECORD_LEN: usize = 7 * 1024;
/// Most records kept under one DHT key.
pub const MAX_RECORDS_PER_KEY: usize = 4;
/// Most devices in one record.
pub const MAX_DEVICES: usize = 4;
/// Most addresses per device.
pub const MAX_ADDRS: usize = 8;
/// Longest binary multiaddr.
pub const MAX_ADDR_LEN: usize = 128;
const MAX_NAME_LEN: usize = 128;
const MAX_PEER_ID_LEN: usize = 64;
/// Longest encoded record set: fits Kademlia's 16 KiB packets with room to spare. A
/// set of [`MAX_RECORDS_PER_KEY`] records of [`MAX_RECORD_LEN`] would not, so a merge
/// that would make the set longer than this is refused ([`RecordSet::merge`]).
pub const MAX_SET_LEN: usize = 15 * 1024;

/// One device of an identity and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The device's libp2p PeerId.
    pub peer_id: PeerId,
    /// Binary multiaddrs it can be reached on (`net` parses them).
    pub addrs: Vec<Vec<u8>>,
    /// The device's signed prekey bundle, so contacts can open a session with it
    /// (record version 2); `None` in a version-1 record. Its device key is the one
    /// `peer_id` names (checked when a record is built or parsed).
    pub prekeys: Option<PrekeyBundle>,
}

/// A signed identity record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    /// The identity's keys.
    pub identity: PublicIdentity,
    /// Sequence number: a record replaces one with a lower `seq` for the same keys.
    pub seq: u64,
    /// When the identity was created.
    pub created_at: Timestamp,
    /// Display name.
    pub display_name: Option<String>,
    /// The identity's devices.
    pub devices: Vec<Device>,
    bytes: Vec<u8>,
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Malformed bytes.
    #[error("malformed identity record: {0}")]
    Decode(#[from] DecodeError),
    /// Invalid keys.
    #[error("identity record has invalid keys: {0}")]
    Keys(#[from] KeyError),
    /// The signature does not match the keys.
    #[error("identity record has a bad signature")]
    BadSignature,
    /// A device's prekey bundle is malformed or badly signed.
    #[error("identity record has an invalid prekey bundle: {0}")]
    Prekeys(#[from] PrekeyError),
    /// A device's prekey bundle is signed by another device than the one listed.
    #[error("identity record has a prekey bundle of another device")]
    PrekeysDevice,
    /// Too many devices or addresses, or a name too long (when building one).
    #[error("identity record is over its limits ({what})")]
    OverLimit {
        /// Which limit.
        what: &'static str,
    },
}

impl IdentityRecord {
    /// Builds and signs a record.
    pub fn sign(
        identity: &Identity,
        seq: u64,
        created_at: Timestamp,
        display_name: Option<String>,
        devices: Vec<Device>,
    ) -> Result<Self, RecordError> {
        if devices.is_empty() || devices.len() > MAX_DEVICES {
            return Err(RecordError::OverLimit { what: "devices" });
        }
        if devices
            .iter()
            .any(|d| d.addrs.len() > MAX_ADDRS || d.addrs.iter().any(|a| a.len() > MAX_ADDR_LEN))
        {
            return Err(RecordError::OverLimit { what: "addresses" });
        }
        if display_name.as_ref().is_some_and(|n| n.len() > MAX_NAME_LEN) {
            return Err(RecordError::OverLimit { what: "name" });
        }
        for device in &devices {
            if let Some(bundle) = &device.prekeys {
                check_bundle_device(bundle, &device.peer_id)?;
            }
        }
        let version =
            if devices.iter().any(|d| d.prekeys.is_some()) { VERSION } else { VERSION_NO_PREKEYS };
        let mut w = Writer::with_capacity(2048);
        w.u8(version)
            .raw(&identity.public().to_bytes())
            .u64(seq)
            .u64(created_at.as_millis())
            .bytes(display_name.as_deref().unwrap_or("").as_bytes());
        // Counts are bounded above (≤ 8), so the casts cannot truncate.
        w.u8(devices.len() as u8);
        for device in &devices {
            w.bytes(&device.peer_id.to_bytes()).u8(device.addrs.len() as u8);
            for addr in &device.addrs {
                w.bytes(addr);
            }
            if version == VERSION {
                w.bytes(device.prekeys.as_ref().map_or(&[][..], PrekeyBundle::to_bytes));
            }
        }
        let signature = identity.sign(&[SIGNING_DOMAIN, w.as_slice()].concat());
        w.raw(&signature);
        let bytes = w.into_vec();
        if bytes.len() > MAX_RECORD_LEN {
            return Err(RecordError::OverLimit { what: "size" });
        }
        Ok(Self {
            identity: identity.public().clone(),
            seq,
            created_at,
            display_name,
            devices,
            bytes,
        })
    }

    /// Parses a record and checks its signature (not the address: see [`Self::derives`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(bytes, MAX_RECORD_LEN)?;
        let version = r.u8("record version")?;
        if !(VERSION_NO_PREKEYS..=VERSION).contains(&version) {
            return Err(DecodeError::UnsupportedVersion {
                what: "identity record",
                got: version,
                min: VERSION_NO_PREKEYS,
                max: VERSION,
            }
            .into());
        }
        let identity = PublicIdentity::read(&mut r)?;
        let seq = r.u64("seq")?;
        let created_at = Timestamp::from_millis(r.u64("created at")?);
        let name = std::str::from_utf8(r.bytes("name", MAX_NAME_LEN)?)
            .map_err(|_| DecodeError::InvalidValue { field: "name" })?;
        let device_count = usize::from(r.u8("device count")?);
        if device_count == 0 || device_count > MAX_DEVICES {
            return Err(DecodeError::InvalidValue { field: "device count" }.into());
        }
        let mut devices = Vec::with_capacity(device_count);
        for _ in 0..device_count {
            let peer_id = PeerId::from_bytes(r.bytes("peer id", MAX_PEER_ID_LEN)?)
                .map_err(|_| DecodeError::InvalidValue { field: "peer id" })?;
            let addr_count = usize::from(r.u8("address count")?);
            if addr_count > MAX_ADDRS {
                return Err(DecodeError::InvalidValue { field: "address count" }.into());
            }
            let addrs = (0..addr_count)
                .map(|_| r.bytes("address", MAX_ADDR_LEN).map(<[u8]>::to_vec))
                .collect::<Result<_, _>>()?;
            let prekeys = if version == VERSION {
                let bytes = r.bytes("prekey bundle", BUNDLE_LEN)?;
                (!bytes.is_empty()).then(|| PrekeyBundle::from_bytes(bytes)).transpose()?
            } else {
                None
            };
            if let Some(bundle) = &prekeys {
                check_bundle_device(bundle, &peer_id)?;
            }
            devices.push(Device { peer_id, addrs, prekeys });
        }
        let signed_len = bytes.len() - r.remaining();
        let signature = r.array::<SIGNATURE_LEN>("signature")?;
        r.finish()?;
        let signed =
            bytes.get(..signed_len).ok_or(DecodeError::InvalidValue { field: "length" })?;
        if !identity.verify(&[SIGNING_DOMAIN, signed].concat(), &signature) {
            return Err(RecordError::BadSignature);
        }
        Ok(Self {
            identity,
            seq,
            created_at,
            display_name: (!name.is_empty()).then(|| name.to_owned()),
            devices,
            bytes: bytes.to_vec(),
        })
    }

    /// The signed bytes.
    pub fn to_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether this record's keys derive `address`. Costly (Argon2id): cache it.
    pub fn derives(&self, address: &Address) -> bool {
        derive_address(&self.identity) == *address
    }
}

/// A bundle must be signed by the device the record lists it under: the Ed25519 key
/// its PeerId wraps.
fn check_bundle_device(bundle: &PrekeyBundle, peer_id: &PeerId) -> Result<(), RecordError> {
    let key = libp2p_identity::ed25519::PublicKey::try_from_bytes(&bundle.device)
        .map_err(|_| RecordError::PrekeysDevice)?;
    if libp2p_identity::PublicKey::from(key).to_peer_id() == *peer_id {
        Ok(())
    } else {
        Err(RecordError::PrekeysDevice)
    }
}

/// The DHT key an address's records live under: `BLAKE3("communitas/id/v1" ‖ address)`.
pub fn dht_key(address: &Address) -> [u8; 32] {
    *blake3::hash(&[KEY_DOMAIN, &address.to_bytes()].concat()).as_bytes()
}

/// The records stored under one DHT key. Encoding: version (1), count (1), then each
/// record as a byte string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordSet {
    /// The records, each signature-checked.
    pub records: Vec<IdentityRecord>,
}

impl RecordSet {
    /// Parses a set; every record must parse and carry a valid signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(bytes, MAX_SET_LEN)?;
        let version = r.u8("record set version")?;
        if version != SET_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "record set",
                got: version,
                min: SET_VERSION,
                max: SET_VERSION,
            }
            .into());
        }
        let count = usize::from(r.u8("record count")?);
        if count == 0 || count > MAX_RECORDS_PER_KEY {
            return Err(DecodeError::InvalidValue { field: "record count" }.into());
        }
        let records = (0..count)
            .map(|_| IdentityRecord::from_bytes(r.bytes("record", MAX_RECORD_LEN)?))
            .collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Self { records })
    }

    /// The binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            self.records.iter().map(|r| r.bytes.len() + 4).sum::<usize>() + 2,
        );
        // At most MAX_RECORDS_PER_KEY records are ever kept, so the count fits.
        w.u8(SET_VERSION).u8(self.records.len().min(MAX_RECORDS_PER_KEY) as u8);
        for record in self.records.iter().take(MAX_RECORDS_PER_KEY) {
            w.bytes(&record.bytes);
        }
        w.into_vec()
    }

    /// Merges `incoming` into this set: a record for keys already present replaces
    /// the present one only with a higher `seq`; a record for new keys is added while
    /// there is room. Returns whether anything changed. The caller has checked that
    /// each incoming record derives the address.
    pub fn merge(&mut self, incoming: IdentityRecord) -> bool {
        // Encoded length after the merge, at worst (nothing replaced).
        let len = 2 + self.records.iter().map(|r| 4 + r.bytes.len()).sum::<usize>();
        let fits = |replaced: usize| len - replaced + 4 + incoming.bytes.len() <= MAX_SET_LEN;
        let room = self.records.len() < MAX_RECORDS_PER_KEY && fits(0);
        match self.records.iter_mut().find(|r| r.identity == incoming.identity) {
            Some(present) if incoming.seq > present.seq && fits(4 + present.bytes.len()) => {
                *present = incoming;
                true
            }
            Some(_) => false,
            None if room => {
                self.records.push(incoming);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(n: u8) -> Device {
        let peer_id = crate::DeviceKey::from_secret_bytes([n; 32]).peer_id();
        Device { peer_id, addrs: vec![vec![4, 127, 0, 0, 1, 6, 0x1f, 0x90]], prekeys: None }
    }

    fn record(seq: u64) -> (Identity, IdentityRecord) {
        let id = Identity::from_seed_bytes([1; 32], [2; 32]);
        let rec = IdentityRecord::sign(
            &id,
            seq,
            Timestamp::from_millis(9),
            Some("alice".into()),
            vec![device(1)],
        )
        .unwrap();
        (id, rec)
    }

    #[test]
    fn round_trip_and_every_flip_or_cut_refused() {
        let (_, rec) = record(1);
        let parsed = IdentityRecord::from_bytes(rec.to_bytes()).unwrap();
        assert_eq!(parsed, rec);
        let bytes = rec.to_bytes();
        for i in 0..bytes.len() {
            let mut bad = bytes.to_vec();
            bad[i] ^= 0x80;
            assert!(IdentityRecord::from_bytes(&bad).is_err(), "flip at {i}");
            assert!(IdentityRecord::from_bytes(&bytes[..i]).is_err(), "cut at {i}");
        }
    }

    #[test]
    fn sets_keep_the_highest_seq_per_identity() {
        let (_, r1) = record(1);
        let (_, r2) = record(2);
        let mut set = RecordSet::default();
        assert!(set.merge(r2.clone()));
        assert!(!set.merge(r1), "lower seq never replaces");
        assert!(!set.merge(r2.clone()), "equal seq changes nothing");
        let other = Identity::from_seed_bytes([3; 32], [4; 32]);
        let forged =
            IdentityRecord::sign(&other, 0, Timestamp::from_millis(1), None, vec![device(2)])
                .unwrap();
        assert!(set.merge(forged));
        assert_eq!(set.records.len(), 2);
        let parsed = RecordSet::from_bytes(&set.to_bytes()).unwrap();
        assert_eq!(parsed, set);
    }

    #[test]
    fn limits_are_enforced_when_signing() {
        let id = Identity::from_seed_bytes([1; 32], [2; 32]);
        let many = Device {
            peer_id: device(1).peer_id,
            addrs: vec![vec![0; 8]; MAX_ADDRS + 1],
            prekeys: None,
        };
        assert!(IdentityRecord::sign(&id, 0, Timestamp::from_millis(0), None, vec![many]).is_err());
        assert!(IdentityRecord::sign(&id, 0, Timestamp::from_millis(0), None, vec![]).is_err());
    }

    fn bundle(device_secret: u8) -> PrekeyBundle {
        let device = crate::DeviceKey::from_secret_bytes([device_secret; 32]);
        let spk = crate::dh::DhSecret::from_bytes([5; 32]);
        let pq = crate::mlkem::KemSecret::from_seed([6; 64]);
        PrekeyBundle::sign(
            &device,
            Timestamp::from_millis(10),
            (crate::prekey::PrekeyId(1), &spk),
            (crate::prekey::PrekeyId(2), &pq),
        )
    }

    #[test]
    fn a_record_without_bundles_stays_version_1_and_one_with_them_is_version_2() {
        let (id, v1) = record(1);
        assert_eq!(v1.to_bytes()[0], VERSION_NO_PREKEYS);
        let mut dev = device(1);
        dev.prekeys = Some(bundle(1));
        let v2 =
            IdentityRecord::sign(&id, 2, Timestamp::from_millis(9), None, vec![dev, device(2)])
                .unwrap();
        assert_eq!(v2.to_bytes()[0], VERSION);
        let parsed = IdentityRecord::from_bytes(v2.to_bytes()).unwrap();
        assert_eq!(parsed, v2);
        assert_eq!(parsed.devices[0].prekeys.as_ref().unwrap().to_bytes(), bundle(1).to_bytes());
        assert!(parsed.devices[1].prekeys.is_none());
        // Both versions live in one set, within the size Kademlia carries.
        let mut set = RecordSet { records: vec![v1] };
        assert!(set.merge(v2));
        assert!(set.to_bytes().len() <= MAX_SET_LEN);
        assert_eq!(RecordSet::from_bytes(&set.to_bytes()).unwrap(), set);
    }

    #[test]
    fn a_bundle_of_another_device_or_a_flipped_one_is_refused() {
        let id = Identity::from_seed_bytes([1; 32], [2; 32]);
        let mut dev = device(1);
        dev.prekeys = Some(bundle(3));
        let signed = IdentityRecord::sign(&id, 1, Timestamp::from_millis(0), None, vec![dev]);
        assert!(matches!(signed, Err(RecordError::PrekeysDevice)));

        let mut dev = device(1);
        dev.prekeys = Some(bundle(1));
        let rec = IdentityRecord::sign(&id, 1, Timestamp::from_millis(0), None, vec![dev]).unwrap();
        let bytes = rec.to_bytes();
        // Every flip anywhere (bundle included) is refused: by the record signature
        // or the bundle's own.
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.to_vec();
            bad[i] ^= 0x01;
            assert!(IdentityRecord::from_bytes(&bad).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn a_merge_that_would_overflow_the_set_is_refused() {
        let mut set = RecordSet::default();
        let mut added = 0;
        for n in 0..MAX_RECORDS_PER_KEY as u8 {
            let id = Identity::from_seed_bytes([10 + n; 32], [20 + n; 32]);
            let devices: Vec<Device> = (0..3)
                .map(|d| {
                    let mut dev = device(40 + d);
                    dev.addrs = vec![vec![7; 16]];
                    dev.prekeys = Some(bundle(40 + d));
                    dev
                })
                .collect();
            let rec =
                IdentityRecord::sign(&id, 1, Timestamp::from_millis(0), None, devices).unwrap();
            if set.merge(rec) {
                added += 1;
            }
        }
        assert!(added < MAX_RECORDS_PER_KEY, "four big records cannot all fit");
        assert!(set.to_bytes().len() <= MAX_SET_LEN);
        assert!(RecordSet::from_bytes(&set.to_bytes()).is_ok());
    }
}
