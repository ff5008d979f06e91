//! The manifest: everything a recipient needs to fetch, check and open a file.
//!
//! Layout, version 1 (big-endian; `docs/protocol.md` §9):
//!
//! | bytes | field |
//! | --- | --- |
//! | 1 | manifest version = 1 |
//! | 16 | file id |
//! | 32 | file key |
//! | 8 | size |
//! | 4 | segment length (must be [`SEGMENT_LEN`]) |
//! | 1 + 1 | data shards, parity shards (must be 10, 4) |
//! | 32 | BLAKE3 of the whole plaintext |
//! | 4 + n | name, raw bytes as the sender's file system had them (≤ 1024) |
//! | 4 + n | media type, ASCII (≤ 255) |
//! | 4 + n | the sending device's PeerId, where the shards can be pulled (≤ 64) |
//! | 4 + n | caption, UTF-8 (≤ 64 KiB) |
//! | 4 + 32·k | stripe digests, k = ⌈size / segment length⌉ |
//!
//! The manifest has no signature of its own: it is the body of a `File` payload,
//! whose Ed25519 signature covers it together with the sender and recipient.

use communitas_types::FileId;
use communitas_types::codec::{DecodeError, Reader, Writer};
use zeroize::Zeroize;

use super::{DATA_SHARDS, FileKey, Hash, PARITY_SHARDS, SEGMENT_LEN, stripe_count};

/// The manifest version this build writes.
const VERSION: u8 = 1;
/// Longest file name, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest caption, in bytes (the text limit).
pub const MAX_CAPTION_LEN: usize = 64 * 1024;
const MAX_MEDIA_TYPE_LEN: usize = 255;
const MAX_PEER_LEN: usize = 64;

/// A file's description, sent end-to-end with its key.
#[derive(Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The file's id.
    pub file_id: FileId,
    /// Its key.
    pub key: FileKey,
    /// Its size in bytes.
    pub size: u64,
    /// BLAKE3 of the whole plaintext.
    pub blake3: Hash,
    /// The original name, raw bytes (not necessarily UTF-8; sanitise before use).
    pub name: Vec<u8>,
    /// Media type, e.g. `image/png`.
    pub media_type: String,
    /// The sending device's PeerId bytes: where to pull shards from.
    pub source: Vec<u8>,
    /// Text sent with the file (may be empty).
    pub caption: String,
    /// One digest per stripe (see [`super::stripe_digest`]).
    pub digests: Vec<Hash>,
}

impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Manifest")
            .field("file_id", &self.file_id)
            .field("size", &self.size)
            .field("name", &String::from_utf8_lossy(&self.name))
            .field("stripes", &self.digests.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Manifest {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl Manifest {
    /// The encoded manifest.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(200 + self.caption.len() + 32 * self.digests.len());
        w.u8(VERSION)
            .raw(self.file_id.as_bytes())
            .raw(&self.key)
            .u64(self.size)
            .u32(SEGMENT_LEN)
            .u8(DATA_SHARDS)
            .u8(PARITY_SHARDS)
            .raw(&self.blake3)
            .bytes(&self.name)
            .bytes(self.media_type.as_bytes())
            .bytes(&self.source)
            .bytes(self.caption.as_bytes())
            .u32(u32::try_from(self.digests.len()).unwrap_or(u32::MAX));
        for digest in &self.digests {
            w.raw(digest);
        }
        w.into_vec()
    }

    /// Decodes and checks a manifest (at most `max` bytes).
    pub fn from_bytes(bytes: &[u8], max: usize) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, max)?;
        let version = r.u8("manifest version")?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "manifest",
                got: version,
                min: VERSION,
                max: VERSION,
            });
        }
        let file_id = FileId::from_bytes(r.array("file id")?);
        let key = r.array("file key")?;
        let size = r.u64("size")?;
        if r.u32("segment length")? != SEGMENT_LEN {
            return Err(DecodeError::InvalidValue { field: "segment length" });
        }
        if r.u8("data shards")? != DATA_SHARDS || r.u8("parity shards")? != PARITY_SHARDS {
            return Err(DecodeError::InvalidValue { field: "shard counts" });
        }
        let blake3 = r.array("blake3")?;
        let name = r.bytes("name", MAX_NAME_LEN)?.to_vec();
        let media_type = std::str::from_utf8(r.bytes("media type", MAX_MEDIA_TYPE_LEN)?)
            .ok()
            .filter(|t| t.is_ascii() && !t.chars().any(|c| c.is_ascii_control()))
            .ok_or(DecodeError::InvalidValue { field: "media type" })?
            .to_owned();
        let source = r.bytes("source", MAX_PEER_LEN)?.to_vec();
        let caption = String::from_utf8(r.bytes("caption", MAX_CAPTION_LEN)?.to_vec())
            .map_err(|_| DecodeError::InvalidValue { field: "caption" })?;
        let count = r.u32("stripe count")?;
        if u64::from(count) != stripe_count(size) {
            return Err(DecodeError::InvalidValue { field: "stripe count" });
        }
        // Checked against what is left before allocating.
        let needed = usize::try_from(count).unwrap_or(usize::MAX).saturating_mul(32);
        if needed > r.remaining() {
            return Err(DecodeError::Truncated {
                field: "stripe digests",
                needed,
                remaining: r.remaining(),
            });
        }
        let digests =
            (0..count).map(|_| r.array("stripe digest")).collect::<Result<Vec<Hash>, _>>()?;
        r.finish()?;
        Ok(Self { file_id, key, size, blake3, name, media_type, source, caption, digests })
    }

    /// The name for display: lossy UTF-8, not yet safe as a path (see the node's
    /// sanitiser).
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(size: u64) -> Manifest {
        Manifest {
            file_id: FileId::from_bytes([1; 16]),
            key: [2; 32],
            size,
            blake3: [3; 32],
            name: b"caf\xe9.txt".to_vec(),
            media_type: "text/plain".into(),
            source: vec![0, 36, 8, 1],
            caption: "hello 🌍".into(),
            digests: vec![[4; 32]; stripe_count(size) as usize],
        }
    }

    #[test]
    fn round_trips() {
        for size in [0, 1, u64::from(SEGMENT_LEN), 3 * u64::from(SEGMENT_LEN) + 1] {
            let m = sample(size);
            assert_eq!(Manifest::from_bytes(&m.to_bytes(), 1 << 20).unwrap(), m);
        }
    }

    #[test]
    fn inconsistent_or_truncated_manifests_are_refused() {
        let mut m = sample(5);
        m.digests.push([0; 32]);
        assert_eq!(
            Manifest::from_bytes(&m.to_bytes(), 1 << 20),
            Err(DecodeError::InvalidValue { field: "stripe count" })
        );
        let bytes = sample(u64::from(SEGMENT_LEN) * 2).to_bytes();
        for cut in [0, 1, 17, bytes.len() - 1] {
            assert!(Manifest::from_bytes(&bytes[..cut], 1 << 20).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Manifest::from_bytes(&long, 1 << 20).is_err());
        // A huge declared size with no digests cannot make the decoder allocate.
        let mut huge = sample(0);
        huge.size = u64::MAX / 2;
        assert!(Manifest::from_bytes(&huge.to_bytes(), 1 << 20).is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let text = format!("{:?}", sample(1));
        assert!(!text.contains("key"), "{text}");
    }
}
