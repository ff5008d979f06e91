//! One stripe: seal a segment, cut it into data shards, add parity, hash; and back.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use communitas_types::FileId;

use super::{DATA_SHARDS, FileError, FileKey, Hash, PARITY_SHARDS, SHARDS, shard_len};

/// Domain prefix of every stripe's associated data.
const AAD_DOMAIN: &[u8] = b"communitas/file/v1\0";

/// A stripe ready to serve: its shards (data first, then parity) and their hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedStripe {
    /// [`SHARDS`] shards of equal length: `DATA_SHARDS` data, then `PARITY_SHARDS` parity.
    pub shards: Vec<Vec<u8>>,
    /// The BLAKE3 hash of each shard, in the same order.
    pub hashes: Vec<Hash>,
}

impl EncodedStripe {
    /// The stripe's digest, as the manifest records it.
    pub fn digest(&self) -> Hash {
        stripe_digest(&self.hashes)
    }
}

/// The digest of a stripe: BLAKE3 of its shard hashes, in order.
pub fn stripe_digest(hashes: &[Hash]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    for hash in hashes {
        hasher.update(hash);
    }
    *hasher.finalize().as_bytes()
}

/// Where a stripe sits in its file: what its associated data binds.
#[derive(Debug, Clone, Copy)]
struct Position {
    file_id: FileId,
    index: u64,
    count: u64,
    size: u64,
}

impl Position {
    fn nonce(&self) -> XNonce {
        let mut nonce = [0u8; 24];
        nonce[16..].copy_from_slice(&self.index.to_be_bytes());
        XNonce::from(nonce)
    }

    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 16 + 24);
        aad.extend_from_slice(AAD_DOMAIN);
        aad.extend_from_slice(self.file_id.as_bytes());
        aad.extend_from_slice(&self.index.to_be_bytes());
        aad.extend_from_slice(&self.count.to_be_bytes());
        aad.extend_from_slice(&self.size.to_be_bytes());
        aad
    }
}

/// Seals, shards and hashes stripe `index` of a file of `size` bytes whose plaintext
/// for that stripe is `plaintext` (exactly its segment).
pub fn encode_stripe(
    key: &FileKey,
    file_id: FileId,
    size: u64,
    index: u64,
    plaintext: &[u8],
) -> Result<EncodedStripe, FileError> {
    let (_, expected) = super::segment_range(size, index)?;
    if plaintext.len() != expected {
        return Err(FileError::WrongLength { index, expected, got: plaintext.len() });
    }
    let position = Position { file_id, index, count: super::stripe_count(size), size };
    let cipher = XChaCha20Poly1305::new(key.into());
    let sealed = cipher
        .encrypt(&position.nonce(), Payload { msg: plaintext, aad: &position.aad() })
        .map_err(|_| FileError::Coding("encryption failed".into()))?;

    let len = shard_len(plaintext.len());
    let mut shards: Vec<Vec<u8>> = Vec::with_capacity(usize::from(SHARDS));
    for chunk in 0..usize::from(DATA_SHARDS) {
        let start = (chunk * len).min(sealed.len());
        let end = ((chunk + 1) * len).min(sealed.len());
        let mut shard = Vec::with_capacity(len);
        shard.extend_from_slice(&sealed[start..end]);
        shard.resize(len, 0);
        shards.push(shard);
    }
    let parity =
        reed_solomon_simd::encode(usize::from(DATA_SHARDS), usize::from(PARITY_SHARDS), &shards)
            .map_err(|e| FileError::Coding(e.to_string()))?;
    shards.extend(parity);
    let hashes = shards.iter().map(|s| *blake3::hash(s).as_bytes()).collect();
    Ok(EncodedStripe { shards, hashes })
}

/// Rebuilds and opens stripe `index` from whatever shards are at hand.
///
/// `shards[i]` is shard `i` (data `0..DATA_SHARDS`, then parity) or `None`. Each
/// present shard is checked against `hashes` (which the caller has checked against
/// the manifest's digest); a shard that does not match is dropped (set to `None`), so
/// after an error the caller sees in `shards` which ones it still needs.
pub fn decode_stripe(
    key: &FileKey,
    file_id: FileId,
    size: u64,
    index: u64,
    hashes: &[Hash],
    shards: &mut [Option<Vec<u8>>],
) -> Result<Vec<u8>, FileError> {
    let (_, plain_len) = super::segment_range(size, index)?;
    let len = shard_len(plain_len);
    if hashes.len() != usize::from(SHARDS) || shards.len() != usize::from(SHARDS) {
        return Err(FileError::Mismatch { index, what: "shard count" });
    }
    for (slot, hash) in shards.iter_mut().zip(hashes) {
        let good = slot.as_ref().is_some_and(|s| s.len() == len && blake3::hash(s) == *hash);
        if !good {
            *slot = None;
        }
    }
    let have = shards.iter().filter(|s| s.is_some()).count();
    let need = usize::from(DATA_SHARDS);
    if have < need {
        return Err(FileError::NotEnoughShards { index, have, need });
    }

    let data = usize::from(DATA_SHARDS);
    let missing_data = shards[..data].iter().any(Option::is_none);
    if missing_data {
        let original = shards[..data]
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s.as_slice())));
        let recovery = shards[data..]
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s.as_slice())));
        let restored =
            reed_solomon_simd::decode(data, usize::from(PARITY_SHARDS), original, recovery)
                .map_err(|e| FileError::Coding(e.to_string()))?;
        for (i, shard) in restored {
            if let Some(slot) = shards.get_mut(i) {
                *slot = Some(shard);
            }
        }
    }

    let sealed_len = plain_len + super::TAG_LEN;
    let mut sealed = Vec::with_capacity(len * data);
    for shard in &shards[..data] {
        let shard = shard.as_ref().ok_or(FileError::NotEnoughShards { index, have, need })?;
        sealed.extend_from_slice(shard);
    }
    sealed.truncate(sealed_len);
    let position = Position { file_id, index, count: super::stripe_count(size), size };
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(&position.nonce(), Payload { msg: &sealed, aad: &position.aad() })
        .map_err(|_| FileError::Decrypt { index })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{SEGMENT_LEN, segment_range, stripe_count};
    use super::*;

    const KEY: FileKey = [7; 32];
    const ID: FileId = FileId::from_bytes([9; 16]);

    fn file(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn round_trip(size: usize, lose: &[usize]) -> Vec<u8> {
        let data = file(size);
        let size = size as u64;
        let mut out = Vec::new();
        for index in 0..stripe_count(size) {
            let (offset, len) = segment_range(size, index).unwrap();
            let offset = offset as usize;
            let stripe = encode_stripe(&KEY, ID, size, index, &data[offset..offset + len]).unwrap();
            let mut shards: Vec<_> = stripe.shards.iter().cloned().map(Some).collect();
            for &i in lose {
                shards[i] = None;
            }
            out.extend(decode_stripe(&KEY, ID, size, index, &stripe.hashes, &mut shards).unwrap());
        }
        assert_eq!(out, data);
        out
    }

    #[test]
    fn edges_round_trip() {
        let seg = SEGMENT_LEN as usize;
        for size in [0, 1, 2, 1000, seg - 1, seg, seg + 1, 2 * seg, 3 * seg + 17] {
            round_trip(size, &[]);
        }
    }

    #[test]
    fn any_four_shards_may_be_lost() {
        round_trip(SEGMENT_LEN as usize + 5, &[0, 3, 9, 13]);
        round_trip(4096, &[1, 2, 10, 11]);
        round_trip(1, &[0, 1, 2, 3]);
    }

    #[test]
    fn five_lost_shards_are_too_many() {
        let data = file(5000);
        let stripe = encode_stripe(&KEY, ID, 5000, 0, &data).unwrap();
        let mut shards: Vec<_> = stripe.shards.iter().cloned().map(Some).collect();
        for i in [0, 1, 2, 3, 4] {
            shards[i] = None;
        }
        assert_eq!(
            decode_stripe(&KEY, ID, 5000, 0, &stripe.hashes, &mut shards),
            Err(FileError::NotEnoughShards { index: 0, have: 9, need: 10 })
        );
    }

    #[test]
    fn a_corrupt_shard_is_dropped_and_rebuilt_from_parity() {
        let data = file(70_000);
        let stripe = encode_stripe(&KEY, ID, 70_000, 0, &data).unwrap();
        let mut shards: Vec<_> = stripe.shards.iter().cloned().map(Some).collect();
        shards[4].as_mut().unwrap()[10] ^= 1;
        let out = decode_stripe(&KEY, ID, 70_000, 0, &stripe.hashes, &mut shards).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn a_stripe_cannot_be_moved_or_opened_with_another_key() {
        let seg = SEGMENT_LEN as usize;
        let size = 2 * seg as u64;
        let data = file(2 * seg);
        let first = encode_stripe(&KEY, ID, size, 0, &data[..seg]).unwrap();
        let mut shards: Vec<_> = first.shards.iter().cloned().map(Some).collect();
        // Presented as stripe 1, with matching hashes: the AEAD still refuses.
        assert_eq!(
            decode_stripe(&KEY, ID, size, 1, &first.hashes, &mut shards),
            Err(FileError::Decrypt { index: 1 })
        );
        let mut shards: Vec<_> = first.shards.iter().cloned().map(Some).collect();
        assert_eq!(
            decode_stripe(&[8; 32], ID, size, 0, &first.hashes, &mut shards),
            Err(FileError::Decrypt { index: 0 })
        );
        let other = FileId::from_bytes([1; 16]);
        let mut shards: Vec<_> = first.shards.iter().cloned().map(Some).collect();
        assert_eq!(
            decode_stripe(&KEY, other, size, 0, &first.hashes, &mut shards),
            Err(FileError::Decrypt { index: 0 })
        );
    }

    #[test]
    fn wrong_plaintext_length_is_refused() {
        assert_eq!(
            encode_stripe(&KEY, ID, 10, 0, &[0; 9]),
            Err(FileError::WrongLength { index: 0, expected: 10, got: 9 })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn small_files_survive_any_four_losses(
            size in 0usize..20_000,
            lost in proptest::sample::subsequence((0..14usize).collect::<Vec<_>>(), 0..=4),
        ) {
            round_trip(size, &lost);
        }
    }
}
