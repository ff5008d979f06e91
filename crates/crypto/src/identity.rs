//! Identity keys: an Ed25519 signing key and an X-Wing KEM key per person, plus an
//! Ed25519 libp2p key per device.
//!
//! The public half, [`PublicIdentity`], is what contacts pin and what the address,
//! the fingerprint and the mailbox id are derived from. Its binary form is the
//! signing key (32 bytes) followed by the X-Wing encapsulation key (1216 bytes).

use std::fmt;

use communitas_types::codec::{DecodeError, Reader};
use communitas_types::{Fingerprint, MailboxId};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use x_wing::{Decapsulator, KeyExport};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::random::{self, RandomError};

/// Bytes of an Ed25519 public key.
pub const SIGNING_PK_LEN: usize = 32;
/// Bytes of an X-Wing encapsulation key (draft-connolly-cfrg-xwing-kem-06).
pub const KEM_PK_LEN: usize = x_wing::ENCAPSULATION_KEY_SIZE;
/// Bytes of a [`PublicIdentity`] in binary form.
pub const PUBLIC_IDENTITY_LEN: usize = SIGNING_PK_LEN + KEM_PK_LEN;
/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// BLAKE3 `derive_key` contexts. Each use of a hash has its own, so no two can collide.
const FINGERPRINT_CONTEXT: &str = "communitas 2026-11 identity fingerprint v1";
const MAILBOX_CONTEXT: &str = "communitas 2026-11 mailbox id v1";

/// The public keys of an identity. Cheap to compare; validated on construction.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicIdentity {
    signing: VerifyingKey,
    kem: x_wing::EncapsulationKey,
}

/// Why bytes are not a public identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The Ed25519 key is not a valid curve point.
    #[error("invalid signing key")]
    InvalidSigningKey,
    /// The X-Wing key is malformed.
    #[error("invalid KEM key")]
    InvalidKemKey,
    /// The bytes could not be read.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl PublicIdentity {
    /// Parses the 1248-byte binary form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let mut r = Reader::new(bytes, PUBLIC_IDENTITY_LEN)?;
        let identity = Self::read(&mut r)?;
        r.finish()?;
        Ok(identity)
    }

    /// Reads the binary form from inside a larger structure.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let signing = r.array::<SIGNING_PK_LEN>("signing key")?;
        let kem = r.take("kem key", KEM_PK_LEN)?;
        let signing =
            VerifyingKey::from_bytes(&signing).map_err(|_| KeyError::InvalidSigningKey)?;
        let kem = x_wing::EncapsulationKey::try_from(kem).map_err(|_| KeyError::InvalidKemKey)?;
        Ok(Self { signing, kem })
    }

    /// The 1248-byte binary form: Ed25519 key, then X-Wing key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PUBLIC_IDENTITY_LEN);
        out.extend_from_slice(self.signing.as_bytes());
        out.extend_from_slice(&self.kem.to_bytes());
        out
    }

    /// The Ed25519 public key.
    pub fn signing_key_bytes(&self) -> [u8; SIGNING_PK_LEN] {
        self.signing.to_bytes()
    }

    /// BLAKE3 of the public keys: equal fingerprints mean equal keys.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::from_bytes(blake3::derive_key(FINGERPRINT_CONTEXT, &self.to_bytes()))
    }

    /// Where envelopes for this identity are addressed.
    pub fn mailbox_id(&self) -> MailboxId {
        MailboxId::from_bytes(blake3::derive_key(MAILBOX_CONTEXT, &self.to_bytes()))
    }

    /// Checks an Ed25519 signature made by this identity (strict verification: no
    /// malleable or small-order signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let signature = Signature::from_bytes(signature);
        self.signing.verify_strict(message, &signature).is_ok()
    }

    pub(crate) fn kem_key(&self) -> &x_wing::EncapsulationKey {
        &self.kem
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicIdentity").field(&self.fingerprint().fmt_short()).finish()
    }
}

/// The seeds an identity is made from. Zeroed on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct IdentitySeeds {
    pub(crate) signing: [u8; 32],
    pub(crate) kem: [u8; 32],
}

/// A person's secret keys. Never printed, zeroed on drop.
pub struct Identity {
    seeds: IdentitySeeds,
    signing: SigningKey,
    kem: x_wing::DecapsulationKey,
    public: PublicIdentity,
}

impl Identity {
    /// A new identity from the OS random source.
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self::from_seeds(IdentitySeeds { signing: random::bytes()?, kem: random::bytes()? }))
    }

    /// The identity made from two 32-byte seeds (deterministic; for tests and vectors).
    pub fn from_seed_bytes(signing: [u8; 32], kem: [u8; 32]) -> Self {
        Self::from_seeds(IdentitySeeds { signing, kem })
    }

    pub(crate) fn from_seeds(seeds: IdentitySeeds) -> Self {
        let signing = SigningKey::from_bytes(&seeds.signing);
        let kem = x_wing::DecapsulationKey::from(seeds.kem);
        let public = PublicIdentity {
            signing: signing.verifying_key(),
            kem: kem.encapsulation_key().clone(),
        };
        Self { seeds, signing, kem, public }
    }

    pub(crate) fn seeds(&self) -> &IdentitySeeds {
        &self.seeds
    }

    /// The public keys.
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// An Ed25519 signature over `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }

    pub(crate) fn kem(&self) -> &x_wing::DecapsulationKey {
        &self.kem
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("public", &self.public).finish_non_exhaustive()
    }
}

/// A device's libp2p key (Ed25519). Its PeerId names the device on the network.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DeviceKey([u8; 32]);

impl DeviceKey {
    /// A new device key from the OS random source.
    pub fn generate() -> Result<Self, RandomError> {
        random::bytes().map(Self)
    }

    /// The device key with this secret (deterministic; for tests).
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        Self(secret)
    }

    pub(crate) fn secret_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The libp2p keypair.
    pub fn keypair(&self) -> libp2p_identity::Keypair {
        let mut secret = self.0;
        let pair = libp2p_identity::Keypair::ed25519_from_bytes(&mut secret);
        secret.zeroize();
        #[allow(clippy::expect_used)]
        pair.expect("any 32 bytes are a valid Ed25519 secret key")
    }

    /// The device's PeerId.
    pub fn peer_id(&self) -> libp2p_identity::PeerId {
        self.keypair().public().to_peer_id()
    }

    /// The device's Ed25519 public key (what its PeerId wraps; what prekey bundles
    /// and the session handshake name the device by).
    pub fn public_bytes(&self) -> [u8; 32] {
        SigningKey::from_bytes(&self.0).verifying_key().to_bytes()
    }

    /// An Ed25519 signature by the device key over `message` (prekey bundles and
    /// one-time prekeys; never a message in a session, which stays deniable).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        SigningKey::from_bytes(&self.0).sign(message).to_bytes()
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKey").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_identity_round_trips_and_rejects_bad_keys() {
        let id = Identity::from_seed_bytes([1; 32], [2; 32]);
        let bytes = id.public().to_bytes();
        assert_eq!(bytes.len(), PUBLIC_IDENTITY_LEN);
        assert_eq!(&PublicIdentity::from_bytes(&bytes).unwrap(), id.public());
        assert!(matches!(
            PublicIdentity::from_bytes(&bytes[1..]),
            Err(KeyError::Decode(DecodeError::Truncated { .. }))
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(PublicIdentity::from_bytes(&long), Err(KeyError::Decode(_))));
    }

    #[test]
    fn signatures_verify_only_for_the_signed_message() {
        let id = Identity::from_seed_bytes([3; 32], [4; 32]);
        let sig = id.sign(b"hello");
        assert!(id.public().verify(b"hello", &sig));
        assert!(!id.public().verify(b"hellp", &sig));
        let other = Identity::from_seed_bytes([5; 32], [4; 32]);
        assert!(!other.public().verify(b"hello", &sig));
    }

    #[test]
    fn fingerprint_and_mailbox_differ_and_follow_the_keys() {
        let a = Identity::from_seed_bytes([1; 32], [2; 32]);
        let b = Identity::from_seed_bytes([1; 32], [3; 32]);
        assert_ne!(a.public().fingerprint(), b.public().fingerprint());
        assert_ne!(a.public().fingerprint().to_bytes(), a.public().mailbox_id().to_bytes());
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let id = Identity::from_seed_bytes([0x42; 32], [0x43; 32]);
        let text = format!("{id:?} {:?}", DeviceKey::from_secret_bytes([0x44; 32]));
        assert!(!text.contains("42, 42") && !text.contains("4242"), "{text}");
        assert!(text.starts_with("Identity { public: PublicIdentity("), "{text}");
        assert!(text.ends_with("DeviceKey { .. }"), "{text}");
    }

    #[test]
    fn device_key_gives_a_stable_peer_id() {
        let d = DeviceKey::from_secret_bytes([9; 32]);
        assert_eq!(d.peer_id(), DeviceKey::from_secret_bytes([9; 32]).peer_id());
        assert_ne!(d.peer_id(), DeviceKey::from_secret_bytes([8; 32]).peer_id());
    }
}
