//! The framing of a session message (`docs/protocol.md` "Sessions").
//!
//! | bytes | field |
//! | --- | --- |
//! | 1 | version = 1 |
//! | 1 | kind: 1 = ratchet message, 2 = ratchet message behind the handshake |
//! | 2 + n | kind 2 only: length (u16) and the handshake's init message |
//! | 2 | length of the sealed header (u16) |
//! | n | sealed header: nonce (24), XChaCha20-Poly1305 of the header (see `header`) |
//! | rest | body: ChaCha20-Poly1305 of the plaintext (plaintext + 16-byte tag) |
//!
//! Nothing in clear names the session: the version and kind are the same for all,
//! the lengths depend only on whether the post-quantum fields ride along and on the
//! plaintext's length. The init message (kind 2) repeats in every message the
//! initiator sends until it hears back, and does link those to each other.

use communitas_crypto::handshake;
use communitas_types::codec::{DecodeError, Reader, Writer};

use super::header;

/// The session message format version this build writes and reads.
pub const VERSION: u8 = 1;
const KIND_MESSAGE: u8 = 1;
const KIND_INITIAL: u8 = 2;
/// Largest session message accepted or produced (the envelope limit, 256 KiB).
pub const MAX_LEN: usize = 256 * 1024;
/// Bytes of the AEAD tag on the body.
pub const TAG_LEN: usize = 16;
/// Bytes a warm message adds to its plaintext: version, kind, header length, the
/// sealed header without post-quantum fields, and the body's tag.
pub const OVERHEAD: usize = 2 + 2 + header::BASE_LEN + header::SEAL_OVERHEAD + TAG_LEN;

/// A session message, split but not opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub(crate) init: Option<&'a [u8]>,
    pub(crate) header: &'a [u8],
    pub(crate) body: &'a [u8],
}

pub(crate) fn encode(init: Option<&[u8]>, sealed_header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut w =
        Writer::with_capacity(6 + init.map_or(0, <[u8]>::len) + sealed_header.len() + body.len());
    w.u8(VERSION);
    match init {
        Some(init) => w.u8(KIND_INITIAL).raw(&len16(init)).raw(init),
        None => w.u8(KIND_MESSAGE),
    };
    w.raw(&len16(sealed_header)).raw(sealed_header).raw(body);
    w.into_vec()
}

// Both lengths are bounded far below 65,536 (init ≤ 1,182, header ≤ 2,354 bytes).
fn len16(bytes: &[u8]) -> [u8; 2] {
    u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes()
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Frame<'_>, DecodeError> {
    let mut r = Reader::new(bytes, MAX_LEN)?;
    let version = r.u8("session message version")?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion {
            what: "session message",
            got: version,
            min: VERSION,
            max: VERSION,
        });
    }
    let init = match r.u8("session message kind")? {
        KIND_MESSAGE => None,
        KIND_INITIAL => {
            let len = usize::from(u16::from_be_bytes(r.array("init length")?));
            if len > handshake::MAX_LEN {
                return Err(DecodeError::TooLong {
                    field: "init message",
                    len,
                    max: handshake::MAX_LEN,
                });
            }
            Some(r.take("init message", len)?)
        }
        _ => return Err(DecodeError::InvalidValue { field: "session message kind" }),
    };
    let len = usize::from(u16::from_be_bytes(r.array("header length")?));
    let max = header::MAX_LEN + header::SEAL_OVERHEAD;
    if len > max {
        return Err(DecodeError::TooLong { field: "sealed header", len, max });
    }
    if len < header::BASE_LEN + header::SEAL_OVERHEAD {
        return Err(DecodeError::InvalidValue { field: "sealed header length" });
    }
    let header = r.take("sealed header", len)?;
    let body = r.rest();
    if body.len() < TAG_LEN {
        return Err(DecodeError::Truncated {
            field: "body",
            needed: TAG_LEN,
            remaining: body.len(),
        });
    }
    Ok(Frame { init, header, body })
}
