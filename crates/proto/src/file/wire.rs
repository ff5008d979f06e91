//! Frames of `/communitas/file/1` (`docs/protocol.md` §9).
//!
//! A stream carries requests and answers in turn: the fetcher writes one [`Request`]
//! frame, the holder answers with one [`Response`] frame, and so on until either side
//! closes it. Each frame is a `u32` big-endian length and that many bytes; a frame is
//! at most [`MAX_FRAME`] bytes, checked before anything is allocated.

use communitas_types::FileId;
use communitas_types::codec::{DecodeError, Reader, Writer};

use super::upload::{PutSignature, UploadPublic};
use super::{Hash, SHARDS};

/// The protocol name.
pub const PROTOCOL: &str = "/communitas/file/1";
/// Largest frame: a whole stripe of shards with its hashes fits with room to spare.
pub const MAX_FRAME: usize = 4 << 20;
/// Longest shard accepted on the wire.
pub const MAX_SHARD_LEN: usize = 256 << 10;

/// A bit per shard of a stripe: bit `i` asks for (or reports) shard `i`.
pub type ShardMask = u16;

/// The mask of every data shard.
pub const DATA_MASK: ShardMask = (1 << super::DATA_SHARDS) - 1;

/// What a fetcher (or uploader) asks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// The shards of a stripe named by `mask`, with the stripe's shard hashes.
    Get {
        /// The file.
        file_id: FileId,
        /// The stripe.
        stripe: u32,
        /// Which shards.
        mask: ShardMask,
    },
    /// Keep a shard (server nodes, for a recipient who is offline).
    Put {
        /// The file.
        file_id: FileId,
        /// The stripe.
        stripe: u32,
        /// Which shard of it.
        index: u8,
        /// The stripe's shard hashes (the shard must match its own).
        hashes: Vec<Hash>,
        /// The file's upload public key: it must hash to `file_id`
        /// ([`super::upload`]).
        upload: UploadPublic,
        /// The upload key's signature over the file id, the stripe and its digest.
        signature: PutSignature,
        /// The shard.
        shard: Vec<u8>,
    },
    /// Which shards of a file do you hold?
    Have {
        /// The file.
        file_id: FileId,
    },
    /// The recipient has the file: drop the shards of it that I put here.
    Drop {
        /// The file.
        file_id: FileId,
    },
}

/// Why a request was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No such file here (or not these shards).
    NotFound,
    /// Too busy now; try again shortly.
    Busy,
    /// The sender's copy changed since it was sent: it can no longer be served.
    SourceChanged,
    /// The request was malformed or inconsistent.
    Invalid,
    /// Too many requests from this peer.
    RateLimited,
    /// The holder's quota for this file or sender is full.
    QuotaExceeded,
    /// A code from a newer version.
    Unknown(u8),
}

impl Refusal {
    fn to_u8(self) -> u8 {
        match self {
            Refusal::NotFound => 1,
            Refusal::Busy => 2,
            Refusal::SourceChanged => 3,
            Refusal::Invalid => 4,
            Refusal::RateLimited => 5,
            Refusal::QuotaExceeded => 6,
            Refusal::Unknown(n) => n,
        }
    }

    fn from_u8(n: u8) -> Self {
        match n {
            1 => Refusal::NotFound,
            2 => Refusal::Busy,
            3 => Refusal::SourceChanged,
            4 => Refusal::Invalid,
            5 => Refusal::RateLimited,
            6 => Refusal::QuotaExceeded,
            n => Refusal::Unknown(n),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotFound => f.write_str("not found"),
            Refusal::Busy => f.write_str("busy"),
            Refusal::SourceChanged => f.write_str("the sender's copy of the file changed"),
            Refusal::Invalid => f.write_str("invalid request"),
            Refusal::RateLimited => f.write_str("rate limited"),
            Refusal::QuotaExceeded => f.write_str("quota exceeded"),
            Refusal::Unknown(n) => write!(f, "refused ({n})"),
        }
    }
}

/// A holder's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// Shards of one stripe: every shard hash of the stripe, and the shards asked for
    /// that the holder has, each with its index.
    Shards {
        /// The stripe's [`SHARDS`] shard hashes.
        hashes: Vec<Hash>,
        /// `(index, shard)` pairs.
        shards: Vec<(u8, Vec<u8>)>,
    },
    /// A `Put` was kept.
    Stored,
    /// The shards held of a file: `(stripe, mask)` pairs.
    Holding(Vec<(u32, ShardMask)>),
    /// A `Drop` was done: this many shards of the asker's were removed.
    Dropped(u32),
    /// Not served.
    Refused(Refusal),
}

const REQ_GET: u8 = 1;
// 2 was an unsigned put (before decision 0043): now refused as an unknown request.
const REQ_PUT: u8 = 5;
const REQ_HAVE: u8 = 3;
const REQ_DROP: u8 = 4;
const RESP_SHARDS: u8 = 1;
const RESP_STORED: u8 = 2;
const RESP_HOLDING: u8 = 3;
const RESP_REFUSED: u8 = 4;
const RESP_DROPPED: u8 = 5;

fn write_hashes(w: &mut Writer, hashes: &[Hash]) {
    w.u8(u8::try_from(hashes.len()).unwrap_or(u8::MAX));
    for hash in hashes {
        w.raw(hash);
    }
}

fn read_hashes(r: &mut Reader<'_>) -> Result<Vec<Hash>, DecodeError> {
    let count = r.u8("hash count")?;
    if count != SHARDS {
        return Err(DecodeError::InvalidValue { field: "hash count" });
    }
    (0..count).map(|_| r.array("shard hash")).collect()
}

impl Request {
    /// The frame body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        match self {
            Request::Get { file_id, stripe, mask } => {
                w.u8(REQ_GET).raw(file_id.as_bytes()).u32(*stripe).u32(u32::from(*mask));
            }
            Request::Put { file_id, stripe, index, hashes, upload, signature, shard } => {
                w.u8(REQ_PUT).raw(file_id.as_bytes()).u32(*stripe).u8(*index);
                write_hashes(&mut w, hashes);
                w.raw(upload).raw(signature).bytes(shard);
            }
            Request::Have { file_id } => {
                w.u8(REQ_HAVE).raw(file_id.as_bytes());
            }
            Request::Drop { file_id } => {
                w.u8(REQ_DROP).raw(file_id.as_bytes());
            }
        }
        w.into_vec()
    }

    /// Decodes a frame body.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, MAX_FRAME)?;
        let request = match r.u8("request")? {
            REQ_GET => {
                let file_id = FileId::from_bytes(r.array("file id")?);
                let stripe = r.u32("stripe")?;
                let mask = u16::try_from(r.u32("mask")?)
                    .ok()
                    .filter(|m| *m != 0 && u32::from(*m) < 1 << SHARDS)
                    .ok_or(DecodeError::InvalidValue { field: "mask" })?;
                Request::Get { file_id, stripe, mask }
            }
            REQ_PUT => {
                let file_id = FileId::from_bytes(r.array("file id")?);
                let stripe = r.u32("stripe")?;
                let index = r.u8("index")?;
                if index >= SHARDS {
                    return Err(DecodeError::InvalidValue { field: "index" });
                }
                let hashes = read_hashes(&mut r)?;
                let upload = r.array("upload key")?;
                let signature = r.array("put signature")?;
                let shard = r.bytes("shard", MAX_SHARD_LEN)?.to_vec();
                Request::Put { file_id, stripe, index, hashes, upload, signature, shard }
            }
            REQ_HAVE => Request::Have { file_id: FileId::from_bytes(r.array("file id")?) },
            REQ_DROP => Request::Drop { file_id: FileId::from_bytes(r.array("file id")?) },
            _ => return Err(DecodeError::InvalidValue { field: "request" }),
        };
        r.finish()?;
        Ok(request)
    }
}

impl Response {
    /// The frame body.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Response::Shards { hashes, shards } => {
                let len: usize = shards.iter().map(|(_, s)| s.len() + 5).sum();
                let mut w = Writer::with_capacity(2 + 32 * hashes.len() + len);
                w.u8(RESP_SHARDS);
                write_hashes(&mut w, hashes);
                w.u8(u8::try_from(shards.len()).unwrap_or(u8::MAX));
                for (index, shard) in shards {
                    w.u8(*index).bytes(shard);
                }
                w.into_vec()
            }
            Response::Stored => vec![RESP_STORED],
            Response::Holding(stripes) => {
                let mut w = Writer::with_capacity(5 + 6 * stripes.len());
                w.u8(RESP_HOLDING).u32(u32::try_from(stripes.len()).unwrap_or(u32::MAX));
                for (stripe, mask) in stripes {
                    w.u32(*stripe).u32(u32::from(*mask));
                }
                w.into_vec()
            }
            Response::Dropped(count) => {
                let mut w = Writer::with_capacity(5);
                w.u8(RESP_DROPPED).u32(*count);
                w.into_vec()
            }
            Response::Refused(why) => vec![RESP_REFUSED, why.to_u8()],
        }
    }

    /// Decodes a frame body.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, MAX_FRAME)?;
        let response = match r.u8("response")? {
            RESP_SHARDS => {
                let hashes = read_hashes(&mut r)?;
                let count = r.u8("shard count")?;
                if count > SHARDS {
                    return Err(DecodeError::InvalidValue { field: "shard count" });
                }
                let mut shards = Vec::with_capacity(usize::from(count));
                for _ in 0..count {
                    let index = r.u8("index")?;
                    if index >= SHARDS {
                        return Err(DecodeError::InvalidValue { field: "index" });
                    }
                    shards.push((index, r.bytes("shard", MAX_SHARD_LEN)?.to_vec()));
                }
                Response::Shards { hashes, shards }
            }
            RESP_STORED => Response::Stored,
            RESP_HOLDING => {
                let count = r.u32("stripe count")?;
                let needed = usize::try_from(count).unwrap_or(usize::MAX).saturating_mul(8);
                if needed > r.remaining() {
                    return Err(DecodeError::Truncated {
                        field: "stripes",
                        needed,
                        remaining: r.remaining(),
                    });
                }
                let mut stripes = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
                for _ in 0..count {
                    let stripe = r.u32("stripe")?;
                    let mask = u16::try_from(r.u32("mask")?)
                        .map_err(|_| DecodeError::InvalidValue { field: "mask" })?;
                    stripes.push((stripe, mask));
                }
                Response::Holding(stripes)
            }
            RESP_DROPPED => Response::Dropped(r.u32("dropped")?),
            RESP_REFUSED => Response::Refused(Refusal::from_u8(r.u8("refusal")?)),
            _ => return Err(DecodeError::InvalidValue { field: "response" }),
        };
        r.finish()?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: FileId = FileId::from_bytes([5; 16]);

    #[test]
    fn requests_round_trip() {
        let hashes = vec![[1; 32]; 14];
        for request in [
            Request::Get { file_id: ID, stripe: 3, mask: DATA_MASK },
            Request::Put {
                file_id: ID,
                stripe: 9,
                index: 13,
                hashes,
                upload: [5; 32],
                signature: [6; 64],
                shard: vec![1, 2, 3],
            },
            Request::Have { file_id: ID },
            Request::Drop { file_id: ID },
        ] {
            assert_eq!(Request::from_bytes(&request.to_bytes()), Ok(request));
        }
    }

    #[test]
    fn responses_round_trip() {
        for response in [
            Response::Shards {
                hashes: vec![[2; 32]; 14],
                shards: vec![(0, vec![9; 64]), (12, vec![])],
            },
            Response::Stored,
            Response::Holding(vec![(0, 0x3fff), (7, 1)]),
            Response::Dropped(28),
            Response::Refused(Refusal::SourceChanged),
            Response::Refused(Refusal::Unknown(77)),
        ] {
            assert_eq!(Response::from_bytes(&response.to_bytes()), Ok(response));
        }
    }

    #[test]
    fn bad_frames_are_refused() {
        assert!(Request::from_bytes(&[]).is_err());
        assert!(Request::from_bytes(&[9]).is_err());
        // Mask 0 and a mask naming a 15th shard.
        for mask in [0u32, 1 << 14] {
            let mut bytes = Request::Get { file_id: ID, stripe: 0, mask: 1 }.to_bytes();
            let at = bytes.len() - 4;
            bytes[at..].copy_from_slice(&mask.to_be_bytes());
            assert!(Request::from_bytes(&bytes).is_err());
        }
        let put = Request::Put {
            file_id: ID,
            stripe: 0,
            index: 14,
            hashes: vec![[0; 32]; 14],
            upload: [0; 32],
            signature: [0; 64],
            shard: vec![],
        };
        assert!(Request::from_bytes(&put.to_bytes()).is_err());
        // The unsigned put of before decision 0043 is no longer a request.
        let mut unsigned = put.to_bytes();
        unsigned[0] = 2;
        assert!(Request::from_bytes(&unsigned).is_err());
        let few = Response::Shards { hashes: vec![[0; 32]; 3], shards: vec![] };
        assert!(Response::from_bytes(&few.to_bytes()).is_err());
        // A holding list that claims more entries than it carries.
        let mut holding = Response::Holding(vec![(1, 1)]).to_bytes();
        holding[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Response::from_bytes(&holding).is_err());
    }
}
