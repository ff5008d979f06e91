//! The session state as bytes, so the node can store it in the same transaction as
//! the message that moved it (house style §5: a dedicated format, never the live
//! struct). The bytes hold every secret of the session: the node keeps them only
//! inside its encrypted store.
//!
//! Layout, version 1 (big-endian; a size in brackets = present when its flag is set):
//!
//! | bytes | field |
//! | --- | --- |
//! | 1 | snapshot version = 1 |
//! | 1 | flags: bit 0 initiator, 1 remote ratchet key, 2 sending chain, 3 receiving chain, 4 sending step pending, 5 init message, 6 own offer, 7 peer's offer |
//! | 32 × 5 | AD, handshake id, peer device key, root key, own ratchet secret |
//! | `[32]` | remote ratchet key |
//! | `[32 + 32 + 4 + 1 + [1184] + [1088]]` | sending chain: chain key, header key, N, flags (bit 0 key, bit 1 ciphertext), its post-quantum fields |
//! | 32 | next sending header key |
//! | `[32 + 32 + 4]` | receiving chain: chain key, header key, N |
//! | 32 | next receiving header key |
//! | 4 | PN |
//! | `[4 + n]` | init message |
//! | `[64]` | own offer: ML-KEM seed |
//! | `[1184]` | peer's offer: ML-KEM encapsulation key |
//! | 4 + 8 | chains since the last post-quantum step, its time (unix ms) |
//! | 4 + 76 × n | skipped keys, oldest first: header key, N, message key, stored at |

use communitas_crypto::dh::{DhPublic, DhSecret};
use communitas_crypto::handshake;
use communitas_crypto::mlkem::{CT_LEN, EK_LEN, KemPublic, KemSecret};
use communitas_types::Timestamp;
use communitas_types::codec::{DecodeError, Reader, Writer};
use zeroize::Zeroizing;

use super::kdf::Key;
use super::pq::Pq;
use super::skipped::{Entry, MAX_SKIPPED, Skipped};
use super::state::{RecvChain, SendChain, State};

/// The snapshot format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Longest snapshot: every optional field and [`MAX_SKIPPED`] skipped keys.
pub const MAX_LEN: usize = 2
    + 32 * 6
    + 32
    + 69
    + EK_LEN
    + CT_LEN
    + 32
    + 68
    + 4
    + 4
    + handshake::MAX_LEN
    + 64
    + EK_LEN
    + 12
    + 4
    + 76 * MAX_SKIPPED;

const INITIATOR: u8 = 1;
const DHR: u8 = 2;
const SEND: u8 = 4;
const RECV: u8 = 8;
const PENDING: u8 = 16;
const PREFIX: u8 = 32;
const OWN_OFFER: u8 = 64;
const PEER_OFFER: u8 = 128;

fn flag(on: bool, bit: u8) -> u8 {
    if on { bit } else { 0 }
}

pub(crate) fn encode(s: &State) -> Zeroizing<Vec<u8>> {
    let flags = flag(s.initiator, INITIATOR)
        | flag(s.dhr.is_some(), DHR)
        | flag(s.send.is_some(), SEND)
        | flag(s.recv.is_some(), RECV)
        | flag(s.send_step_pending, PENDING)
        | flag(s.prefix.is_some(), PREFIX)
        | flag(s.pq.own_offer.is_some(), OWN_OFFER)
        | flag(s.pq.peer_offer.is_some(), PEER_OFFER);
    let mut w = Writer::with_capacity(512 + 76 * s.skipped.len());
    w.u8(VERSION).u8(flags);
    w.raw(&s.ad).raw(&s.handshake_id).raw(&s.peer_device).raw(&s.rk.0);
    w.raw(&s.dhs.to_bytes());
    if let Some(dhr) = &s.dhr {
        w.raw(dhr.as_bytes());
    }
    if let Some(c) = &s.send {
        let pq = flag(c.kem_ek.is_some(), 1) | flag(c.kem_ct.is_some(), 2);
        w.raw(&c.ck.0).raw(&c.hk.0).u32(c.n).u8(pq);
        if let Some(ek) = &c.kem_ek {
            w.raw(ek.as_slice());
        }
        if let Some(ct) = &c.kem_ct {
            w.raw(ct.as_slice());
        }
    }
    w.raw(&s.next_send_hk.0);
    if let Some(c) = &s.recv {
        w.raw(&c.ck.0).raw(&c.hk.0).u32(c.n);
    }
    w.raw(&s.next_recv_hk.0).u32(s.pn);
    if let Some(prefix) = &s.prefix {
        w.bytes(prefix);
    }
    if let Some(sk) = &s.pq.own_offer {
        w.raw(sk.seed());
    }
    if let Some(pk) = &s.pq.peer_offer {
        w.raw(pk.as_bytes());
    }
    w.u32(s.pq.chains_since).u64(s.pq.last_at.as_millis());
    // The store never holds more than MAX_SKIPPED entries.
    w.u32(u32::try_from(s.skipped.len()).unwrap_or(u32::MAX));
    for e in &s.skipped.entries {
        w.raw(&e.hk.0).u32(e.n).raw(&e.mk.0).u64(e.stored_at.as_millis());
    }
    Zeroizing::new(w.into_vec())
}

fn key(r: &mut Reader<'_>, field: &'static str) -> Result<Key, DecodeError> {
    Ok(Key(r.array(field)?))
}

pub(crate) fn decode(bytes: &[u8]) -> Result<State, DecodeError> {
    let mut r = Reader::new(bytes, MAX_LEN)?;
    let version = r.u8("snapshot version")?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion {
            what: "session snapshot",
            got: version,
            min: VERSION,
            max: VERSION,
        });
    }
    let flags = r.u8("snapshot flags")?;
    let ad = r.array("associated data")?;
    let handshake_id = r.array("handshake id")?;
    let peer_device = r.array("peer device")?;
    let rk = key(&mut r, "root key")?;
    let dhs = DhSecret::from_bytes(*Zeroizing::new(r.array("ratchet secret")?));
    let dhr = (flags & DHR != 0)
        .then(|| r.array("remote ratchet key").map(DhPublic::from_bytes))
        .transpose()?;
    let send = if flags & SEND != 0 {
        let ck = key(&mut r, "sending chain key")?;
        let hk = key(&mut r, "sending header key")?;
        let n = r.u32("sending N")?;
        let pq = r.u8("sending chain flags")?;
        if pq & !3 != 0 {
            return Err(DecodeError::InvalidValue { field: "sending chain flags" });
        }
        let kem_ek =
            (pq & 1 != 0).then(|| r.array::<EK_LEN>("offered key").map(Box::new)).transpose()?;
        let kem_ct =
            (pq & 2 != 0).then(|| r.array::<CT_LEN>("answer").map(Box::new)).transpose()?;
        Some(SendChain { ck, hk, n, kem_ek, kem_ct })
    } else {
        None
    };
    let next_send_hk = key(&mut r, "next sending header key")?;
    let recv = if flags & RECV != 0 {
        Some(RecvChain {
            ck: key(&mut r, "receiving chain key")?,
            hk: key(&mut r, "receiving header key")?,
            n: r.u32("receiving N")?,
        })
    } else {
        None
    };
    let next_recv_hk = key(&mut r, "next receiving header key")?;
    let pn = r.u32("PN")?;
    let prefix = (flags & PREFIX != 0)
        .then(|| r.bytes("init message", handshake::MAX_LEN).map(<[u8]>::to_vec))
        .transpose()?;
    let own_offer = (flags & OWN_OFFER != 0)
        .then(|| r.array::<64>("own offer").map(|s| KemSecret::from_seed(*Zeroizing::new(s))))
        .transpose()?;
    let peer_offer = (flags & PEER_OFFER != 0)
        .then(|| {
            KemPublic::from_bytes(r.take("peer offer", EK_LEN)?)
                .map_err(|_| DecodeError::InvalidValue { field: "peer offer" })
        })
        .transpose()?;
    let chains_since = r.u32("chains since")?;
    let last_at = Timestamp::from_millis(r.u64("last post-quantum step")?);
    let count = usize::try_from(r.u32("skipped count")?).unwrap_or(usize::MAX);
    if count > MAX_SKIPPED {
        return Err(DecodeError::TooLong { field: "skipped keys", len: count, max: MAX_SKIPPED });
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(Entry {
            hk: key(&mut r, "skipped header key")?,
            n: r.u32("skipped N")?,
            mk: key(&mut r, "skipped message key")?,
            stored_at: Timestamp::from_millis(r.u64("skipped at")?),
        });
    }
    r.finish()?;
    Ok(State {
        initiator: flags & INITIATOR != 0,
        ad,
        handshake_id,
        peer_device,
        prefix,
        rk,
        dhs,
        dhr,
        send,
        next_send_hk,
        recv,
        next_recv_hk,
        pn,
        send_step_pending: flags & PENDING != 0,
        pq: Pq { own_offer, peer_offer, chains_since, last_at },
        skipped: Skipped { entries },
    })
}
