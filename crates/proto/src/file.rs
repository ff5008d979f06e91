//! The file pipeline (ARCHITECTURE §7, parameters and reasons in `docs/protocol.md` §9).
//!
//! A file of `size` bytes is cut into segments of [`SEGMENT_LEN`] bytes (the last one
//! shorter; an empty file has none). Segment `i` becomes stripe `i`:
//!
//! 1. sealed with XChaCha20-Poly1305 under the file's random key, the nonce made of
//!    `i`, the associated data binding the file id, `i`, the stripe count and the size
//!    (so no stripe can be moved, dropped or appended unnoticed);
//! 2. cut into [`DATA_SHARDS`] equal data shards (zero-padded) and extended with
//!    [`PARITY_SHARDS`] Reed-Solomon parity shards: any `DATA_SHARDS` of them rebuild it;
//! 3. every shard named by its BLAKE3 hash; the stripe's digest is the BLAKE3 of its
//!    shard hashes in order.
//!
//! The [`Manifest`] carries the key, the stripe digests and the BLAKE3 of the whole
//! plaintext; it travels inside an ordinary end-to-end message (kind `File`), whose
//! payload signature covers it. A holder of shards answers with the stripe's shard
//! hashes; the fetcher checks them against the digest, then each shard against its
//! hash, before a byte is used. Memory stays O(segment) on both sides.

mod manifest;
mod stripe;
pub mod upload;
pub mod wire;

pub use manifest::{MAX_CAPTION_LEN, MAX_NAME_LEN, Manifest};
pub use stripe::{EncodedStripe, decode_stripe, encode_stripe, stripe_digest};
pub use upload::{Unauthorized, UploadKey, file_id_of, verify_put};

/// Plaintext bytes per segment (= per stripe): 1 MiB. Large enough that the
/// per-stripe costs (a round trip, 14 hashes, an AEAD tag) vanish, small enough that a
/// node holds a few stripes in memory and a broken transfer loses at most a few.
pub const SEGMENT_LEN: u32 = 1 << 20;
/// Data shards per stripe.
pub const DATA_SHARDS: u8 = 10;
/// Parity shards per stripe: any 4 of the 14 may be lost.
pub const PARITY_SHARDS: u8 = 4;
/// Shards per stripe.
pub const SHARDS: u8 = DATA_SHARDS + PARITY_SHARDS;
/// The AEAD tag each sealed segment carries.
pub const TAG_LEN: usize = 16;
/// Shard lengths are rounded up to this (Reed-Solomon works on even lengths; 64
/// keeps its SIMD paths aligned).
const SHARD_ALIGN: usize = 64;

/// A file's symmetric key: 32 random bytes, used for this file only.
pub type FileKey = [u8; 32];
/// A BLAKE3 hash.
pub type Hash = [u8; 32];

/// Why a stripe or manifest could not be made or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The stripe index is past the end of the file.
    #[error("stripe {index} is out of range (the file has {count})")]
    OutOfRange {
        /// The index asked for.
        index: u64,
        /// Stripes in the file.
        count: u64,
    },
    /// The plaintext given for a stripe has the wrong length.
    #[error("stripe {index} should hold {expected} bytes, got {got}")]
    WrongLength {
        /// The stripe.
        index: u64,
        /// Its length in the file.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// Fewer than [`DATA_SHARDS`] good shards: the stripe cannot be rebuilt yet.
    #[error("stripe {index} has {have} good shards, {need} are needed")]
    NotEnoughShards {
        /// The stripe.
        index: u64,
        /// Good shards at hand.
        have: usize,
        /// Shards needed.
        need: usize,
    },
    /// A shard does not match its hash, or the shard hashes not the stripe's digest.
    #[error("stripe {index}: {what} does not match the manifest")]
    Mismatch {
        /// The stripe.
        index: u64,
        /// What did not match.
        what: &'static str,
    },
    /// The sealed segment does not open: wrong key, or shards from another file.
    #[error("stripe {index} does not decrypt")]
    Decrypt {
        /// The stripe.
        index: u64,
    },
    /// Reed-Solomon refused the shards (internal: lengths are checked before).
    #[error("erasure coding failed: {0}")]
    Coding(String),
}

/// The stripes of a file of `size` bytes.
pub fn stripe_count(size: u64) -> u64 {
    size.div_ceil(u64::from(SEGMENT_LEN))
}

/// Where stripe `index`'s plaintext lies in the file: (offset, length).
pub fn segment_range(size: u64, index: u64) -> Result<(u64, usize), FileError> {
    let count = stripe_count(size);
    if index >= count {
        return Err(FileError::OutOfRange { index, count });
    }
    let offset = index * u64::from(SEGMENT_LEN);
    let len = (size - offset).min(u64::from(SEGMENT_LEN));
    // At most SEGMENT_LEN, which fits any usize we build for.
    Ok((offset, usize::try_from(len).unwrap_or(SEGMENT_LEN as usize)))
}

/// The length of each shard of a stripe whose plaintext is `plain_len` bytes.
pub fn shard_len(plain_len: usize) -> usize {
    let sealed = plain_len + TAG_LEN;
    sealed.div_ceil(usize::from(DATA_SHARDS)).next_multiple_of(SHARD_ALIGN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_map_to_stripes() {
        let seg = u64::from(SEGMENT_LEN);
        assert_eq!(stripe_count(0), 0);
        assert_eq!(stripe_count(1), 1);
        assert_eq!(stripe_count(seg), 1);
        assert_eq!(stripe_count(seg + 1), 2);
        assert_eq!(segment_range(seg + 1, 1), Ok((seg, 1)));
        assert_eq!(segment_range(seg * 2, 1), Ok((seg, SEGMENT_LEN as usize)));
        assert_eq!(segment_range(seg, 1), Err(FileError::OutOfRange { index: 1, count: 1 }));
        assert_eq!(segment_range(0, 0), Err(FileError::OutOfRange { index: 0, count: 0 }));
    }

    #[test]
    fn shards_cover_the_sealed_segment() {
        for len in [0, 1, 63, 64, 1000, SEGMENT_LEN as usize] {
            let shard = shard_len(len);
            assert_eq!(shard % SHARD_ALIGN, 0);
            assert!(shard * usize::from(DATA_SHARDS) >= len + TAG_LEN);
            assert!((shard - SHARD_ALIGN) * usize::from(DATA_SHARDS) < len + TAG_LEN);
        }
    }
}
