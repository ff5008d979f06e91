//! The keystore: an identity's secret keys, encrypted under the user's passphrase.
//!
//! Binary layout, version 1 (big-endian; see `docs/protocol.md`):
//!
//! | bytes | field |
//! | --- | --- |
//! | 8 | magic `CMTSKEYS` |
//! | 1 | version = 1 |
//! | 12 | Argon2id memory KiB, passes, lanes (3 × u32) |
//! | 16 | Argon2id salt |
//! | 4 + n | public section: name, public identity, address, PeerId, created_at |
//! | 24 | XChaCha20-Poly1305 nonce |
//! | 4 + 144 | ciphertext: signing seed ‖ KEM seed ‖ device secret ‖ storage key, + tag |
//!
//! The key is Argon2id(passphrase, salt); every byte before the nonce is associated
//! data, so the public section cannot be altered without the passphrase. The public
//! section is readable without the passphrase, but commands still unlock the keystore
//! to prove the user holds it.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use communitas_types::address::ADDRESS_LEN;
use communitas_types::codec::{DecodeError, Reader, Writer};
use communitas_types::{Address, Timestamp};
use libp2p_identity::PeerId;
use zeroize::Zeroizing;

use crate::at_rest::StorageKey;
use crate::identity::{DeviceKey, Identity, IdentitySeeds, KeyError, PublicIdentity};
use crate::random::{self, RandomError};

const MAGIC: &[u8; 8] = b"CMTSKEYS";
/// The keystore format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Longest display name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// The fewest characters (Unicode scalar values, as people count them) a new
/// passphrase may have: one rule for `init`, `passphrase`, and the web UI's first run
/// and passphrase change (issue 23 item 6). Eight is the floor NIST SP 800-63B sets
/// for a memorised secret the user chooses; Argon2id makes each guess cost the rest.
/// Unlocking checks nothing of the kind: older keystores keep opening.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// A new passphrase under [`MIN_PASSPHRASE_CHARS`]. Its text is the one message the
/// CLI, the API (`passphrase_too_short`) and the web UI show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("The passphrase is too short: use at least {min} characters.")]
pub struct PassphraseTooShort {
    /// The characters it has.
    pub chars: usize,
    /// The fewest allowed.
    pub min: usize,
}

/// Checks a new passphrase against [`MIN_PASSPHRASE_CHARS`].
pub fn check_new_passphrase(passphrase: &str) -> Result<(), PassphraseTooShort> {
    let chars = passphrase.chars().count();
    if chars < MIN_PASSPHRASE_CHARS {
        return Err(PassphraseTooShort { chars, min: MIN_PASSPHRASE_CHARS });
    }
    Ok(())
}
const MAX_PUBLIC_LEN: usize = 4096;
const MAX_PEER_ID_LEN: usize = 64;
const SECRETS_LEN: usize = 4 * 32;
const TAG_LEN: usize = 16;
const MAX_FILE_LEN: usize = 8192;

/// Argon2id cost for the passphrase. Bounds on read stop a tampered file from making
/// an unlock allocate gigabytes or spin for minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub lanes: u32,
}

impl KdfParams {
    /// What `init` uses: 64 MiB, 3 passes, 1 lane (cost measured in docs/protocol.md).
    pub const DEFAULT: Self = Self { memory_kib: 64 * 1024, iterations: 3, lanes: 1 };
    /// Cheap parameters for tests that create many keystores. Never for users.
    pub const INSECURE_FOR_TESTS: Self = Self { memory_kib: 64, iterations: 1, lanes: 1 };

    fn check(self) -> Result<Params, KeystoreError> {
        let in_bounds = (8..=1024 * 1024).contains(&self.memory_kib)
            && (1..=16).contains(&self.iterations)
            && (1..=16).contains(&self.lanes);
        if !in_bounds {
            return Err(KeystoreError::Decode(DecodeError::InvalidValue { field: "kdf params" }));
        }
        Params::new(self.memory_kib, self.iterations, self.lanes, Some(32))
            .map_err(|_| KeystoreError::Decode(DecodeError::InvalidValue { field: "kdf params" }))
    }
}

/// The secret keys of one identity on one device.
pub struct Secrets {
    /// The person's signing and KEM keys.
    pub identity: Identity,
    /// This device's libp2p key.
    pub device: DeviceKey,
    /// The key message bodies are encrypted with at rest.
    pub storage: StorageKey,
}

impl Secrets {
    /// Fresh keys from the OS random source.
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self {
            identity: Identity::generate()?,
            device: DeviceKey::generate()?,
            storage: StorageKey::generate()?,
        })
    }
}

impl Secrets {
    /// Every secret byte, concatenated: signing seed, KEM seed, device secret, storage
    /// key. Only for tests that search files and logs for leaked key material; never
    /// write or log this.
    #[doc(hidden)]
    pub fn expose_secret_bytes(&self) -> Zeroizing<[u8; SECRETS_LEN]> {
        let seeds = self.identity.seeds();
        let mut out = Zeroizing::new([0u8; SECRETS_LEN]);
        for (slot, part) in out.chunks_exact_mut(32).zip([
            &seeds.signing,
            &seeds.kem,
            self.device.secret_bytes(),
            self.storage.as_bytes(),
        ]) {
            slot.copy_from_slice(part);
        }
        out
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets").field("identity", &self.identity).finish_non_exhaustive()
    }
}

/// What anybody may know about the identity in a keystore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystorePublic {
    /// The display name chosen at `init`, if any.
    pub name: Option<String>,
    /// The public keys.
    pub identity: PublicIdentity,
    /// The four-word address (derived from `identity` at `init`).
    pub address: Address,
    /// This device's PeerId.
    pub peer_id: PeerId,
    /// When the identity was created.
    pub created_at: Timestamp,
}

/// Why a keystore could not be made, read or unlocked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// The passphrase does not open it.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The file is not a keystore, or is damaged.
    #[error("keystore is damaged: {0}")]
    Decode(#[from] DecodeError),
    /// The public keys in the file are invalid.
    #[error("keystore holds invalid keys: {0}")]
    Keys(#[from] KeyError),
    /// The secrets do not match the public section.
    #[error("keystore is inconsistent: its secret keys do not match its public keys")]
    Mismatch,
    /// The display name is too long.
    #[error("name is {len} bytes, the limit is {MAX_NAME_LEN}")]
    NameTooLong {
        /// Its length.
        len: usize,
    },
    /// No randomness.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A keystore, as stored. Holds only ciphertext of the secrets.
#[derive(Clone)]
pub struct Keystore {
    kdf: KdfParams,
    salt: [u8; 16],
    public: KeystorePublic,
    nonce: [u8; 24],
    ciphertext: Vec<u8>,
}

impl Keystore {
    /// Encrypts `secrets` under `passphrase`. `address` must be
    /// `derive_address(secrets.identity.public())` (the caller has it already; it is
    /// costly to compute twice).
    pub fn create(
        secrets: &Secrets,
        name: Option<String>,
        address: Address,
        created_at: Timestamp,
        passphrase: &[u8],
        kdf: KdfParams,
    ) -> Result<Self, KeystoreError> {
        let salt_and_nonce = (random::bytes()?, random::bytes()?);
        Self::create_with(secrets, name, address, created_at, passphrase, kdf, salt_and_nonce)
    }

    /// [`create`](Self::create) with a given salt and nonce (for fixed fuzz seeds).
    pub(crate) fn create_with(
        secrets: &Secrets,
        name: Option<String>,
        address: Address,
        created_at: Timestamp,
        passphrase: &[u8],
        kdf: KdfParams,
        (salt, nonce): ([u8; 16], [u8; 24]),
    ) -> Result<Self, KeystoreError> {
        if let Some(len) = name.as_ref().map(String::len).filter(|&l| l > MAX_NAME_LEN) {
            return Err(KeystoreError::NameTooLong { len });
        }
        let public = KeystorePublic {
            name,
            identity: secrets.identity.public().clone(),
            address,
            peer_id: secrets.device.peer_id(),
            created_at,
        };
        Self::seal(secrets, public, passphrase, kdf, (salt, nonce))
    }

    /// The same keystore under `new` passphrase: the same public section, secrets and
    /// Argon2id parameters, with a fresh salt and nonce. `old` must unlock it; a wrong
    /// one is [`KeystoreError::WrongPassphrase`] and `self` is left as it was.
    pub fn rekey(&self, old: &[u8], new: &[u8]) -> Result<Self, KeystoreError> {
        let salt_and_nonce = (random::bytes()?, random::bytes()?);
        self.rekey_with(old, new, salt_and_nonce)
    }

    /// [`rekey`](Self::rekey) with a given salt and nonce.
    pub(crate) fn rekey_with(
        &self,
        old: &[u8],
        new: &[u8],
        salt_and_nonce: ([u8; 16], [u8; 24]),
    ) -> Result<Self, KeystoreError> {
        let secrets = self.unlock(old)?;
        Self::seal(&secrets, self.public.clone(), new, self.kdf, salt_and_nonce)
    }

    /// Encrypts `secrets` under `passphrase`, `public` as associated data.
    fn seal(
        secrets: &Secrets,
        public: KeystorePublic,
        passphrase: &[u8],
        kdf: KdfParams,
        (salt, nonce): ([u8; 16], [u8; 24]),
    ) -> Result<Self, KeystoreError> {
        let mut store = Self { kdf, salt, public, nonce, ciphertext: Vec::new() };
        let plain = secrets.expose_secret_bytes();
        let cipher = store.cipher(passphrase)?;
        let aad = store.associated_data();
        #[allow(clippy::expect_used)]
        let ciphertext = cipher
            .encrypt(XNonce::from_slice(&store.nonce), Payload { msg: plain.as_slice(), aad: &aad })
            .expect("XChaCha20-Poly1305 encrypts 128 bytes");
        store.ciphertext = ciphertext;
        Ok(store)
    }

    /// The public section (no passphrase needed, not authenticated until unlocked).
    pub fn public(&self) -> &KeystorePublic {
        &self.public
    }

    /// Decrypts the secrets. A wrong passphrase is [`KeystoreError::WrongPassphrase`].
    pub fn unlock(&self, passphrase: &[u8]) -> Result<Secrets, KeystoreError> {
        let cipher = self.cipher(passphrase)?;
        let aad = self.associated_data();
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&self.nonce),
                    Payload { msg: &self.ciphertext, aad: &aad },
                )
                .map_err(|_| KeystoreError::WrongPassphrase)?,
        );
        let part = |i: usize| -> Result<[u8; 32], KeystoreError> {
            plain
                .get(i * 32..(i + 1) * 32)
                .and_then(|s| <[u8; 32]>::try_from(s).ok())
                .ok_or(KeystoreError::Mismatch)
        };
        let secrets = Secrets {
            identity: Identity::from_seeds(IdentitySeeds { signing: part(0)?, kem: part(1)? }),
            device: DeviceKey::from_secret_bytes(part(2)?),
            storage: StorageKey::from_bytes(part(3)?),
        };
        if secrets.identity.public() != &self.public.identity
            || secrets.device.peer_id() != self.public.peer_id
        {
            return Err(KeystoreError::Mismatch);
        }
        Ok(secrets)
    }

    /// Parses a keystore file. Checks size, magic and version first.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeystoreError> {
        let mut r = Reader::new(bytes, MAX_FILE_LEN)?;
        if &r.array::<8>("magic")? != MAGIC {
            return Err(DecodeError::InvalidValue { field: "magic" }.into());
        }
        let version = r.u8("keystore version")?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "keystore",
                got: version,
                min: VERSION,
                max: VERSION,
            }
            .into());
        }
        let kdf = KdfParams {
            memory_kib: r.u32("kdf memory")?,
            iterations: r.u32("kdf iterations")?,
            lanes: r.u32("kdf lanes")?,
        };
        kdf.check()?;
        let salt = r.array("salt")?;
        let public = decode_public(r.bytes("public section", MAX_PUBLIC_LEN)?)?;
        let nonce = r.array("nonce")?;
        let ciphertext = r.bytes("secrets", SECRETS_LEN + TAG_LEN)?.to_vec();
        r.finish()?;
        Ok(Self { kdf, salt, public, nonce, ciphertext })
    }

    /// The binary form (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(2048);
        w.raw(&self.associated_data()).raw(&self.nonce).bytes(&self.ciphertext);
        w.into_vec()
    }

    fn associated_data(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(2048);
        w.raw(MAGIC)
            .u8(VERSION)
            .u32(self.kdf.memory_kib)
            .u32(self.kdf.iterations)
            .u32(self.kdf.lanes)
            .raw(&self.salt)
            .bytes(&encode_public(&self.public));
        w.into_vec()
    }

    fn cipher(&self, passphrase: &[u8]) -> Result<XChaCha20Poly1305, KeystoreError> {
        let params = self.kdf.check()?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase, &self.salt, key.as_mut())
            .map_err(|_| {
                KeystoreError::Decode(DecodeError::InvalidValue { field: "kdf params" })
            })?;
        Ok(XChaCha20Poly1305::new(key.as_ref().into()))
    }
}

impl fmt::Debug for Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystore").field("public", &self.public).finish_non_exhaustive()
    }
}

fn encode_public(p: &KeystorePublic) -> Vec<u8> {
    let mut w = Writer::with_capacity(1400);
    w.bytes(p.name.as_deref().unwrap_or("").as_bytes())
        .raw(&p.identity.to_bytes())
        .raw(&p.address.to_bytes())
        .bytes(&p.peer_id.to_bytes())
        .u64(p.created_at.as_millis());
    w.into_vec()
}

fn decode_public(bytes: &[u8]) -> Result<KeystorePublic, KeystoreError> {
    let mut r = Reader::new(bytes, MAX_PUBLIC_LEN)?;
    let name = std::str::from_utf8(r.bytes("name", MAX_NAME_LEN)?)
        .map_err(|_| DecodeError::InvalidValue { field: "name" })?;
    let identity = PublicIdentity::read(&mut r)?;
    let address = Address::from_bytes(r.array::<ADDRESS_LEN>("address")?);
    let peer_id = PeerId::from_bytes(r.bytes("peer id", MAX_PEER_ID_LEN)?)
        .map_err(|_| DecodeError::InvalidValue { field: "peer id" })?;
    let created_at = Timestamp::from_millis(r.u64("created at")?);
    r.finish()?;
    Ok(KeystorePublic {
        name: (!name.is_empty()).then(|| name.to_owned()),
        identity,
        address,
        peer_id,
        created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive_address;

    fn sample() -> (Secrets, Keystore) {
        let secrets = Secrets::generate().unwrap();
        let address = derive_address(secrets.identity.public());
        let store = Keystore::create(
            &secrets,
            Some("alice".into()),
            address,
            Timestamp::from_millis(1),
            b"correct horse",
            KdfParams::INSECURE_FOR_TESTS,
        )
        .unwrap();
        (secrets, store)
    }

    #[test]
    fn unlocks_with_the_passphrase_only() {
        let (secrets, store) = sample();
        let parsed = Keystore::from_bytes(&store.to_bytes()).unwrap();
        assert_eq!(parsed.public(), store.public());
        let opened = parsed.unlock(b"correct horse").unwrap();
        assert_eq!(opened.identity.public(), secrets.identity.public());
        assert_eq!(opened.device.peer_id(), secrets.device.peer_id());
        assert!(matches!(parsed.unlock(b"wrong"), Err(KeystoreError::WrongPassphrase)));
    }

    #[test]
    fn public_section_is_authenticated() {
        let (_, store) = sample();
        let mut bytes = store.to_bytes();
        // The name "alice" sits right after the header and the section's length prefix.
        let at = 8 + 1 + 12 + 16 + 4 + 4;
        assert_eq!(&bytes[at..at + 5], b"alice");
        bytes[at] = b'm';
        let tampered = Keystore::from_bytes(&bytes).unwrap();
        assert!(matches!(tampered.unlock(b"correct horse"), Err(KeystoreError::WrongPassphrase)));
    }

    #[test]
    fn rekey_moves_the_secrets_under_the_new_passphrase() {
        let (secrets, store) = sample();
        let salt_and_nonce = ([7; 16], [9; 24]);
        let rekeyed =
            store.rekey_with(b"correct horse", b"battery staple", salt_and_nonce).unwrap();
        let parsed = Keystore::from_bytes(&rekeyed.to_bytes()).unwrap();

        assert_eq!(parsed.public(), store.public());
        assert_eq!(parsed.kdf, store.kdf);
        assert_eq!((parsed.salt, parsed.nonce), salt_and_nonce);
        let opened = parsed.unlock(b"battery staple").unwrap();
        assert_eq!(*opened.expose_secret_bytes(), *secrets.expose_secret_bytes());
        assert!(matches!(parsed.unlock(b"correct horse"), Err(KeystoreError::WrongPassphrase)));
    }

    #[test]
    fn rekey_draws_a_fresh_salt_and_nonce() {
        let (_, store) = sample();
        let rekeyed = store.rekey(b"correct horse", b"correct horse").unwrap();
        assert_ne!(rekeyed.salt, store.salt);
        assert_ne!(rekeyed.nonce, store.nonce);
        assert_ne!(rekeyed.to_bytes(), store.to_bytes());
    }

    #[test]
    fn rekey_with_a_wrong_old_passphrase_is_refused() {
        let (_, store) = sample();
        let before = store.to_bytes();
        assert!(matches!(
            store.rekey(b"wrong", b"battery staple"),
            Err(KeystoreError::WrongPassphrase)
        ));
        assert_eq!(store.to_bytes(), before);
        store.unlock(b"correct horse").unwrap();
    }

    #[test]
    fn absurd_kdf_parameters_are_refused_before_hashing() {
        let (_, store) = sample();
        let mut bytes = store.to_bytes();
        bytes[9..13].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(Keystore::from_bytes(&bytes), Err(KeystoreError::Decode(_))));
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        let (_, store) = sample();
        let bytes = store.to_bytes();
        for len in 0..bytes.len() {
            assert!(Keystore::from_bytes(&bytes[..len]).is_err());
        }
    }

    #[test]
    fn new_passphrases_have_at_least_eight_characters() {
        assert!(check_new_passphrase("").is_err());
        // Characters, not bytes: seven two-byte letters are still seven.
        let seven = check_new_passphrase("ééééééé").unwrap_err();
        assert_eq!(seven, PassphraseTooShort { chars: 7, min: 8 });
        assert_eq!(seven.to_string(), "The passphrase is too short: use at least 8 characters.");
        assert_eq!(check_new_passphrase("correct horse"), Ok(()));
        assert_eq!(check_new_passphrase("12345678"), Ok(()));
    }
}
