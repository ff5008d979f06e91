//! The ratchet itself: Signal's Double Ratchet with header encryption (§3.5, §4),
//! with the post-quantum step of [`super::pq`] folded into the root KDF.
//!
//! [`State`] is the live state; [`super::Session`] clones it, runs one operation on
//! the clone and hands the clone back only if the operation succeeded, so a failed
//! decryption (tampered, duplicate, unknown) leaves the caller's state untouched,
//! and a succeeded one is not final until the caller stores it.
//!
//! One departure from the spec's pseudo-code: the sending half of a DH ratchet step
//! runs on the first *encrypt* after a new ratchet key arrives, not in the decrypt
//! that saw it. Both sides derive the same keys (no other root step can come
//! between), and decrypting needs no randomness, so it is a pure function of the
//! state and the message.

use chacha20poly1305::aead::{Aead, Payload as AeadInput};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use communitas_crypto::dh::{DhPublic, DhSecret};
use communitas_crypto::mlkem::{CT_LEN, EK_LEN, KemPublic};
use communitas_types::Timestamp;
use zeroize::Zeroizing;

use super::header::{self, Header};
use super::kdf::{self, Key};
use super::pq::Pq;
use super::skipped::{MAX_SKIP_PER_CHAIN, Skipped};
use super::wire;
use super::{DecryptError, EncryptError};
use crate::Random;

/// The chain this side sends on.
#[derive(Clone, Debug)]
pub(crate) struct SendChain {
    pub(crate) ck: Key,
    pub(crate) hk: Key,
    pub(crate) n: u32,
    /// The post-quantum fields every header of this chain carries.
    pub(crate) kem_ek: Option<Box<[u8; EK_LEN]>>,
    pub(crate) kem_ct: Option<Box<[u8; CT_LEN]>>,
}

/// The chain this side receives on.
#[derive(Clone, Debug)]
pub(crate) struct RecvChain {
    pub(crate) ck: Key,
    pub(crate) hk: Key,
    pub(crate) n: u32,
}

/// The whole state of one session.
#[derive(Clone, Debug)]
pub(crate) struct State {
    pub(crate) initiator: bool,
    /// The handshake's associated data: bound into every header and body.
    pub(crate) ad: [u8; 32],
    /// BLAKE3 of the init message: names the handshake.
    pub(crate) handshake_id: [u8; 32],
    pub(crate) peer_device: [u8; 32],
    /// The init message, sent in front of every message until the peer answers.
    pub(crate) prefix: Option<Vec<u8>>,
    pub(crate) rk: Key,
    pub(crate) dhs: DhSecret,
    pub(crate) dhr: Option<DhPublic>,
    pub(crate) send: Option<SendChain>,
    pub(crate) next_send_hk: Key,
    pub(crate) recv: Option<RecvChain>,
    pub(crate) next_recv_hk: Key,
    pub(crate) pn: u32,
    /// A new remote ratchet key arrived: the next encrypt starts a sending chain.
    pub(crate) send_step_pending: bool,
    pub(crate) pq: Pq,
    pub(crate) skipped: Skipped,
}

fn header_aad(ad: &[u8; 32]) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = wire::VERSION;
    out[1..].copy_from_slice(ad);
    out
}

fn body_aad(ad: &[u8; 32], sealed_header: &[u8]) -> Vec<u8> {
    [ad.as_slice(), sealed_header].concat()
}

impl State {
    /// Encrypts one message; the state moves one step along its sending chain.
    pub(crate) fn encrypt(
        &mut self,
        plaintext: &[u8],
        now: Timestamp,
        rng: &mut impl Random,
    ) -> Result<Vec<u8>, EncryptError> {
        if plaintext.len() > super::MAX_PLAINTEXT_LEN {
            return Err(EncryptError::TooLarge {
                len: plaintext.len(),
                max: super::MAX_PLAINTEXT_LEN,
            });
        }
        self.skipped.expire(now);
        if self.send_step_pending {
            self.send_step(now, rng)?;
        }
        let dh = self.dhs.public();
        let pn = self.pn;
        let send = self.send.as_mut().ok_or(EncryptError::NotReady)?;
        let n = send.n;
        send.n = n.checked_add(1).ok_or(EncryptError::ChainExhausted)?;
        let (ck, mk) = kdf::chain(&send.ck);
        send.ck = ck;
        // An offer rides only the first messages of its chain (if all of those are
        // lost it stays open and rides the next chain); an answer rides every one,
        // since the chain's keys depend on it.
        let kem_ek = send.kem_ek.clone().filter(|_| n < super::pq::OFFER_MESSAGES);
        let h = Header { dh, pn, n, kem_ek, kem_ct: send.kem_ct.clone() };
        let sealed = header::seal(&send.hk, &h, rng.bytes(), &header_aad(&self.ad));
        let (key, nonce) = kdf::message(&mk);
        #[allow(clippy::expect_used)]
        let body = ChaCha20Poly1305::new((&key.0).into())
            .encrypt(
                Nonce::from_slice(&nonce),
                AeadInput { msg: plaintext, aad: &body_aad(&self.ad, &sealed) },
            )
            .expect("ChaCha20-Poly1305 encrypts anything under 256 GiB");
        Ok(wire::encode(self.prefix.as_deref(), &sealed, &body))
    }

    /// The sending half of a DH ratchet step (plus the post-quantum answer or
    /// offer this chain carries).
    fn send_step(&mut self, now: Timestamp, rng: &mut impl Random) -> Result<(), EncryptError> {
        let dhr = self.dhr.ok_or(EncryptError::NotReady)?;
        let dhs = DhSecret::from_bytes(rng.bytes());
        // `dhr` already gave a contributory result in the receiving step (or is the
        // bundle's checked signed prekey), so this cannot fail for a fresh secret.
        let dh = dhs.agree(&dhr).map_err(|_| EncryptError::NotReady)?;
        let (kem_ek, kem_ct, ss) = self.pq.on_send_step(now, rng);
        let (rk, ck, nhk) = kdf::root(&self.rk, &dh, ss.as_deref());
        self.pn = self.send.as_ref().map_or(0, |s| s.n);
        let hk = std::mem::replace(&mut self.next_send_hk, nhk);
        self.send = Some(SendChain { ck, hk, n: 0, kem_ek, kem_ct });
        self.rk = rk;
        self.dhs = dhs;
        self.send_step_pending = false;
        Ok(())
    }

    /// Decrypts one message. On error the caller drops this (cloned) state.
    pub(crate) fn decrypt(
        &mut self,
        sealed: &[u8],
        body: &[u8],
        now: Timestamp,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        self.skipped.expire(now);
        let haad = header_aad(&self.ad);
        let current = self.recv.as_ref().map(|r| r.hk.clone());
        for hk in self.skipped.header_keys() {
            let Some(h) = header::open(&hk, sealed, &haad) else { continue };
            if let Some(mk) = self.skipped.take(&hk, h.n) {
                return self.open_body(&mk, sealed, body);
            }
            if current.as_ref() != Some(&hk) {
                return Err(DecryptError::Duplicate);
            }
            break;
        }
        if let Some(h) = current.and_then(|hk| header::open(&hk, sealed, &haad)) {
            let mk = self.receive(h.n, now)?;
            return self.open_body(&mk, sealed, body);
        }
        if let Some(h) = header::open(&self.next_recv_hk, sealed, &haad) {
            if self.recv.is_some() {
                self.skip_to(h.pn, now)?;
            }
            self.receive_step(&h, now)?;
            let mk = self.receive(h.n, now)?;
            return self.open_body(&mk, sealed, body);
        }
        Err(DecryptError::UnknownHeader)
    }

    /// The receiving half of a DH ratchet step.
    fn receive_step(&mut self, h: &Header, now: Timestamp) -> Result<(), DecryptError> {
        let offer = h
            .kem_ek
            .as_ref()
            .map(|ek| KemPublic::from_bytes(ek.as_slice()))
            .transpose()
            .map_err(|_| DecryptError::InvalidKemKey)?;
        let ss = self.pq.on_receive_step(h.kem_ct.as_deref(), offer, now)?;
        let dh = self.dhs.agree(&h.dh).map_err(|_| DecryptError::WeakKey)?;
        let (rk, ck, nhk) = kdf::root(&self.rk, &dh, ss.as_deref());
        let hk = std::mem::replace(&mut self.next_recv_hk, nhk);
        self.rk = rk;
        self.recv = Some(RecvChain { ck, hk, n: 0 });
        self.dhr = Some(h.dh);
        self.send_step_pending = true;
        Ok(())
    }

    /// Stores the keys of the current receiving chain below `until`.
    fn skip_to(&mut self, until: u32, now: Timestamp) -> Result<(), DecryptError> {
        let Some(recv) = self.recv.as_mut() else { return Ok(()) };
        if until <= recv.n {
            return Ok(());
        }
        if until - recv.n > MAX_SKIP_PER_CHAIN {
            return Err(DecryptError::TooManySkipped {
                skipped: until - recv.n,
                max: MAX_SKIP_PER_CHAIN,
            });
        }
        while recv.n < until {
            let (ck, mk) = kdf::chain(&recv.ck);
            self.skipped.push(&recv.hk, recv.n, mk, now);
            recv.ck = ck;
            recv.n += 1;
        }
        Ok(())
    }

    /// The key of message `n` of the current receiving chain.
    fn receive(&mut self, n: u32, now: Timestamp) -> Result<Key, DecryptError> {
        let at = self.recv.as_ref().map_or(0, |r| r.n);
        if n < at {
            return Err(DecryptError::Duplicate);
        }
        self.skip_to(n, now)?;
        let recv = self.recv.as_mut().ok_or(DecryptError::UnknownHeader)?;
        let (ck, mk) = kdf::chain(&recv.ck);
        recv.ck = ck;
        recv.n = n.checked_add(1).ok_or(DecryptError::Duplicate)?;
        Ok(mk)
    }

    fn open_body(
        &mut self,
        mk: &Key,
        sealed: &[u8],
        body: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let (key, nonce) = kdf::message(mk);
        let plaintext = ChaCha20Poly1305::new((&key.0).into())
            .decrypt(
                Nonce::from_slice(&nonce),
                AeadInput { msg: body, aad: &body_aad(&self.ad, sealed) },
            )
            .map_err(|_| DecryptError::Decrypt)?;
        // The peer has the session: stop sending the handshake.
        self.prefix = None;
        Ok(Zeroizing::new(plaintext))
    }
}
