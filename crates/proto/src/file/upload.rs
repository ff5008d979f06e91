//! Who may put a file's shards on a holder (issue 16 item 2, decision 0043).
//!
//! A server node keeps shards for a recipient who is offline. Before this, the first
//! writer of a slot won it and supplied the hashes, so any peer that learned a file id
//! could pre-put junk: the real sender was told `Stored` and the recipient could never
//! rebuild the file. Now a file id commits to a per-file **upload key**:
//!
//! - the sender derives an Ed25519 key from the file's key:
//!   `seed = BLAKE3-derive_key("communitas 2026-12 file upload key v1", file key)`;
//! - the file id is `BLAKE3-derive_key("communitas 2026-12 file id v1", upload public
//!   key)[..16]`;
//! - every `Put` carries the upload public key and a signature over
//!   `"communitas file put v1" ‖ file id ‖ stripe (u32 BE) ‖ stripe digest` (the BLAKE3
//!   of the stripe's 14 shard hashes, the digest the manifest lists).
//!
//! A holder checks that the key hashes to the file id and that the signature holds,
//! then that the shard matches its hash. Nobody without the file key can occupy or
//! spoil a slot: that needs a second preimage of 128 bits of BLAKE3 or an Ed25519
//! forgery. Holders learn nothing new: the public key reveals nothing of the file key.

use communitas_types::FileId;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::{FileKey, Hash, stripe_digest};

const UPLOAD_KEY_CONTEXT: &str = "communitas 2026-12 file upload key v1";
const FILE_ID_CONTEXT: &str = "communitas 2026-12 file id v1";
const PUT_LABEL: &[u8] = b"communitas file put v1";

/// An upload public key on the wire.
pub type UploadPublic = [u8; 32];
/// A put's signature on the wire.
pub type PutSignature = [u8; 64];

/// The sender's per-file signing key, derived from the file key.
pub struct UploadKey(SigningKey);

impl std::fmt::Debug for UploadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_tuple("UploadKey").field(&self.file_id()).finish()
    }
}

impl UploadKey {
    /// The upload key of the file with `key`.
    pub fn from_file_key(key: &FileKey) -> Self {
        Self(SigningKey::from_bytes(&blake3::derive_key(UPLOAD_KEY_CONTEXT, key)))
    }

    /// Its public half, which every put carries.
    pub fn public(&self) -> UploadPublic {
        self.0.verifying_key().to_bytes()
    }

    /// The file id it commits to: the id the file must be sent under.
    pub fn file_id(&self) -> FileId {
        file_id_of(&self.public())
    }

    /// Signs the puts of one stripe (every shard of it shares the signature).
    pub fn sign_stripe(&self, file_id: FileId, stripe: u32, hashes: &[Hash]) -> PutSignature {
        self.0.sign(&put_message(file_id, stripe, hashes)).to_bytes()
    }
}

/// The file id an upload public key commits to.
pub fn file_id_of(upload: &UploadPublic) -> FileId {
    let digest = blake3::derive_key(FILE_ID_CONTEXT, upload);
    let mut id = [0u8; FileId::LEN];
    id.copy_from_slice(&digest[..FileId::LEN]);
    FileId::from_bytes(id)
}

/// Why a put is not authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unauthorized {
    /// The upload key does not hash to the file id.
    #[error("the upload key is not this file's")]
    WrongKey,
    /// The signature does not hold.
    #[error("the put's signature does not verify")]
    BadSignature,
}

/// Checks that a put of `stripe` with `hashes` comes from the holder of `file_id`'s
/// upload key.
pub fn verify_put(
    file_id: FileId,
    stripe: u32,
    hashes: &[Hash],
    upload: &UploadPublic,
    signature: &PutSignature,
) -> Result<(), Unauthorized> {
    if file_id_of(upload) != file_id {
        return Err(Unauthorized::WrongKey);
    }
    let key = VerifyingKey::from_bytes(upload).map_err(|_| Unauthorized::WrongKey)?;
    key.verify_strict(&put_message(file_id, stripe, hashes), &Signature::from_bytes(signature))
        .map_err(|_| Unauthorized::BadSignature)
}

fn put_message(file_id: FileId, stripe: u32, hashes: &[Hash]) -> Vec<u8> {
    let mut message = Vec::with_capacity(PUT_LABEL.len() + FileId::LEN + 4 + 32);
    message.extend_from_slice(PUT_LABEL);
    message.extend_from_slice(file_id.as_bytes());
    message.extend_from_slice(&stripe.to_be_bytes());
    message.extend_from_slice(&stripe_digest(hashes));
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(seed: u8) -> Vec<Hash> {
        (0..super::super::SHARDS).map(|i| [seed.wrapping_add(i); 32]).collect()
    }

    #[test]
    fn the_sender_s_puts_verify() {
        let key = UploadKey::from_file_key(&[7; 32]);
        let id = key.file_id();
        let signature = key.sign_stripe(id, 3, &hashes(1));
        assert_eq!(verify_put(id, 3, &hashes(1), &key.public(), &signature), Ok(()));
    }

    #[test]
    fn another_key_another_stripe_or_other_hashes_are_refused() {
        let key = UploadKey::from_file_key(&[7; 32]);
        let id = key.file_id();
        let signature = key.sign_stripe(id, 3, &hashes(1));
        // A squatter with its own key cannot put under the victim's id…
        let squatter = UploadKey::from_file_key(&[8; 32]);
        let forged = squatter.sign_stripe(id, 3, &hashes(2));
        assert_eq!(
            verify_put(id, 3, &hashes(2), &squatter.public(), &forged),
            Err(Unauthorized::WrongKey)
        );
        // …nor reuse the sender's signature for other hashes or another stripe.
        assert_eq!(
            verify_put(id, 3, &hashes(2), &key.public(), &signature),
            Err(Unauthorized::BadSignature)
        );
        assert_eq!(
            verify_put(id, 4, &hashes(1), &key.public(), &signature),
            Err(Unauthorized::BadSignature)
        );
    }

    #[test]
    fn the_file_id_is_a_function_of_the_file_key() {
        // Pinned: the derivation is part of the protocol (docs/protocol.md §9).
        let key = UploadKey::from_file_key(&[0; 32]);
        assert_eq!(key.file_id(), UploadKey::from_file_key(&[0; 32]).file_id());
        assert_ne!(key.file_id(), UploadKey::from_file_key(&[1; 32]).file_id());
        assert_eq!(key.file_id(), file_id_of(&key.public()));
    }
}
