//! A device's prekey secrets over time (decision 0050): the current signed and
//! last-resort prekeys, the ones they replaced (kept for
//! [`KEEP_REPLACED`](communitas_crypto::prekey::KEEP_REPLACED) so initial messages
//! still in mailboxes open), and the one-time prekeys not used yet.
//!
//! Sans-IO like the rest of the crate: time and randomness come in, the bundle and
//! one-time prekeys to publish come out, and the node stores [`PrekeySecrets::to_bytes`]
//! (secret: only in its encrypted store). Accepting a session is try-then-commit here
//! too: [`PrekeySecrets::keys_for`] borrows the secrets an init message names;
//! [`PrekeySecrets::consume`] (on a copy the caller commits with the new session)
//! deletes the one-time ones it used, so each is used once.

use communitas_crypto::dh::DhSecret;
use communitas_crypto::handshake::{InitMessage, ResponderKeys};
use communitas_crypto::identity::DeviceKey;
use communitas_crypto::mlkem::KemSecret;
use communitas_crypto::prekey::{
    OneTimeKey, OneTimePrekey, PrekeyBundle, PrekeyId, replaced_expired, rotation_due,
};
use communitas_types::Timestamp;
use communitas_types::codec::{DecodeError, Reader, Writer};
use zeroize::Zeroizing;

use crate::Random;

/// The format version of [`PrekeySecrets::to_bytes`].
pub const VERSION: u8 = 1;
/// Most unused one-time prekeys of each kind kept (what the mailbox servers hold).
pub const MAX_ONE_TIME: usize = 200;
/// Most signed (or last-resort) prekeys kept: the current one and those replaced in
/// the last 37 days at one rotation a week, with room to spare.
pub const MAX_GENERATIONS: usize = 8;

/// Why an init message's prekeys could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrekeyLookupError {
    /// No signed prekey with that id (never ours, or expired).
    #[error("no signed prekey {0:?}")]
    UnknownSignedPrekey(PrekeyId),
    /// No ML-KEM prekey with that id (never ours, expired, or a one-time one used).
    #[error("no ML-KEM prekey {0:?}")]
    UnknownKemPrekey(PrekeyId),
    /// No X25519 one-time prekey with that id (already used, or never ours).
    #[error("no one-time prekey {0:?}")]
    UnknownOneTimePrekey(PrekeyId),
}

#[derive(Clone, Debug)]
struct Generation<K> {
    id: PrekeyId,
    secret: K,
    created_at: Timestamp,
    replaced_at: Option<Timestamp>,
}

/// A device's prekey secrets. Not printed.
#[derive(Clone)]
pub struct PrekeySecrets {
    /// Newest last; the last one is current.
    signed: Vec<Generation<DhSecret>>,
    last_resort: Vec<Generation<KemSecret>>,
    one_time_dh: Vec<(PrekeyId, DhSecret)>,
    one_time_kem: Vec<(PrekeyId, KemSecret)>,
}

impl std::fmt::Debug for PrekeySecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrekeySecrets")
            .field("signed", &self.signed.len())
            .field("one_time", &(self.one_time_dh.len(), self.one_time_kem.len()))
            .finish_non_exhaustive()
    }
}

impl PrekeySecrets {
    /// Fresh prekeys made at `now`.
    pub fn new(now: Timestamp, rng: &mut impl Random) -> Self {
        let mut s = Self {
            signed: Vec::new(),
            last_resort: Vec::new(),
            one_time_dh: Vec::new(),
            one_time_kem: Vec::new(),
        };
        s.add_generation(now, rng);
        s
    }

    /// A new id, different from every id held.
    fn fresh_id(&self, rng: &mut impl Random) -> PrekeyId {
        loop {
            let id = PrekeyId(u32::from_be_bytes(rng.bytes()));
            let taken = self.signed.iter().any(|g| g.id == id)
                || self.last_resort.iter().any(|g| g.id == id)
                || self.one_time_dh.iter().any(|(i, _)| *i == id)
                || self.one_time_kem.iter().any(|(i, _)| *i == id);
            if !taken {
                return id;
            }
        }
    }

    fn add_generation(&mut self, now: Timestamp, rng: &mut impl Random) {
        for g in &mut self.signed {
            g.replaced_at.get_or_insert(now);
        }
        for g in &mut self.last_resort {
            g.replaced_at.get_or_insert(now);
        }
        let id = self.fresh_id(rng);
        let secret = DhSecret::from_bytes(rng.bytes());
        self.signed.push(Generation { id, secret, created_at: now, replaced_at: None });
        let id = self.fresh_id(rng);
        let secret = KemSecret::from_seed(rng.bytes());
        self.last_resort.push(Generation { id, secret, created_at: now, replaced_at: None });
        // Never more than MAX_GENERATIONS, even if rotation ran far more often than
        // weekly: the oldest go first.
        if self.signed.len() > MAX_GENERATIONS {
            self.signed.remove(0);
        }
        if self.last_resort.len() > MAX_GENERATIONS {
            self.last_resort.remove(0);
        }
    }

    /// The bundle of the current prekeys, signed by `device`.
    pub fn bundle(&self, device: &DeviceKey) -> Option<PrekeyBundle> {
        let spk = self.signed.last()?;
        let pq = self.last_resort.last()?;
        Some(PrekeyBundle::sign(device, spk.created_at, (spk.id, &spk.secret), (pq.id, &pq.secret)))
    }

    /// Replaces the current prekeys when they are a week old
    /// ([`rotation_due`]), and forgets replaced ones past their grace period.
    /// Returns whether the bundle changed (then publish [`Self::bundle`] again).
    pub fn rotate(&mut self, now: Timestamp, rng: &mut impl Random) -> bool {
        self.signed.retain(|g| !g.replaced_at.is_some_and(|at| replaced_expired(at, now)));
        self.last_resort.retain(|g| !g.replaced_at.is_some_and(|at| replaced_expired(at, now)));
        let due = self.signed.last().is_none_or(|g| rotation_due(g.created_at, now));
        if due {
            self.add_generation(now, rng);
        }
        due
    }

    /// Makes `count` one-time prekeys of each kind (at most [`MAX_ONE_TIME`]), signed
    /// by `device`, for the mailbox servers. Never more than [`MAX_ONE_TIME`] of a kind
    /// are held: the oldest go first to make room — they were handed to servers
    /// longest ago, and a server drops the ones nobody claimed after 30 days (decision
    /// 0064), so a device whose servers came and went still mints fresh ones.
    pub fn mint_one_time(
        &mut self,
        device: &DeviceKey,
        count: usize,
        rng: &mut impl Random,
    ) -> Vec<OneTimePrekey> {
        let count = count.min(MAX_ONE_TIME);
        let room = |held: usize| (held + count).saturating_sub(MAX_ONE_TIME);
        self.one_time_dh.drain(..room(self.one_time_dh.len()));
        self.one_time_kem.drain(..room(self.one_time_kem.len()));
        let mut out = Vec::new();
        let (dh, kem) = (count, count);
        for _ in 0..dh {
            let id = self.fresh_id(rng);
            let secret = DhSecret::from_bytes(rng.bytes());
            out.push(OneTimePrekey::sign(device, id, OneTimeKey::Dh(secret.public())));
            self.one_time_dh.push((id, secret));
        }
        for _ in 0..kem {
            let id = self.fresh_id(rng);
            let secret = KemSecret::from_seed(rng.bytes());
            out.push(OneTimePrekey::sign(device, id, OneTimeKey::Kem(secret.public())));
            self.one_time_kem.push((id, secret));
        }
        out
    }

    /// Unused one-time prekeys held, `(X25519, ML-KEM)`.
    pub fn one_time_left(&self) -> (usize, usize) {
        (self.one_time_dh.len(), self.one_time_kem.len())
    }

    /// The secrets `init` names, for [`Session::accept`](super::Session::accept).
    pub fn keys_for<'a>(
        &'a self,
        device: &'a DeviceKey,
        init: &InitMessage,
    ) -> Result<ResponderKeys<'a>, PrekeyLookupError> {
        let spk = self
            .signed
            .iter()
            .find(|g| g.id == init.signed_prekey_id)
            .ok_or(PrekeyLookupError::UnknownSignedPrekey(init.signed_prekey_id))?;
        let kem = if init.kem_one_time {
            self.one_time_kem.iter().find(|(id, _)| *id == init.kem_prekey_id).map(|(_, s)| s)
        } else {
            self.last_resort.iter().find(|g| g.id == init.kem_prekey_id).map(|g| &g.secret)
        }
        .ok_or(PrekeyLookupError::UnknownKemPrekey(init.kem_prekey_id))?;
        let one_time_prekey = match init.one_time_prekey_id {
            None => None,
            Some(wanted) => Some(
                self.one_time_dh
                    .iter()
                    .find(|(id, _)| *id == wanted)
                    .map(|(_, s)| s)
                    .ok_or(PrekeyLookupError::UnknownOneTimePrekey(wanted))?,
            ),
        };
        Ok(ResponderKeys { device, signed_prekey: &spk.secret, kem_prekey: kem, one_time_prekey })
    }

    /// Deletes the one-time prekeys `init` used. Call on the copy that is committed
    /// with the session [`Session::accept`](super::Session::accept) made.
    pub fn consume(&mut self, init: &InitMessage) {
        if init.kem_one_time {
            self.one_time_kem.retain(|(id, _)| *id != init.kem_prekey_id);
        }
        if let Some(used) = init.one_time_prekey_id {
            self.one_time_dh.retain(|(id, _)| *id != used);
        }
    }

    /// The secrets as bytes (version 1): version, then for the signed and the
    /// last-resort prekeys a count (u8) and per prekey id (4), secret (32 or 64),
    /// created at (8), replaced at (8; 0 = current); then for the X25519 and the
    /// ML-KEM one-time prekeys a count (u16) and per prekey id (4), secret (32 or 64).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(
            64 + 100 * MAX_GENERATIONS + 36 * self.one_time_dh.len() + 68 * self.one_time_kem.len(),
        );
        w.u8(VERSION);
        // Both lists are bounded by MAX_GENERATIONS and MAX_ONE_TIME.
        w.u8(u8::try_from(self.signed.len()).unwrap_or(u8::MAX));
        for g in &self.signed {
            w.u32(g.id.0).raw(&g.secret.to_bytes()).u64(g.created_at.as_millis());
            w.u64(g.replaced_at.map_or(0, |t| t.as_millis()));
        }
        w.u8(u8::try_from(self.last_resort.len()).unwrap_or(u8::MAX));
        for g in &self.last_resort {
            w.u32(g.id.0).raw(g.secret.seed()).u64(g.created_at.as_millis());
            w.u64(g.replaced_at.map_or(0, |t| t.as_millis()));
        }
        w.raw(&u16::try_from(self.one_time_dh.len()).unwrap_or(u16::MAX).to_be_bytes());
        for (id, s) in &self.one_time_dh {
            w.u32(id.0).raw(&s.to_bytes());
        }
        w.raw(&u16::try_from(self.one_time_kem.len()).unwrap_or(u16::MAX).to_be_bytes());
        for (id, s) in &self.one_time_kem {
            w.u32(id.0).raw(s.seed());
        }
        Zeroizing::new(w.into_vec())
    }

    /// Reads what [`Self::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let max = 64 + 2 * MAX_GENERATIONS * 84 + MAX_ONE_TIME * (36 + 68);
        let mut r = Reader::new(bytes, max)?;
        let version = r.u8("prekey secrets version")?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "prekey secrets",
                got: version,
                min: VERSION,
                max: VERSION,
            });
        }
        let time = |ms: u64| (ms != 0).then_some(Timestamp::from_millis(ms));
        let count = usize::from(r.u8("signed prekeys")?);
        if count > MAX_GENERATIONS {
            return Err(DecodeError::InvalidValue { field: "signed prekeys" });
        }
        let mut signed = Vec::with_capacity(count);
        for _ in 0..count {
            let id = PrekeyId(r.u32("id")?);
            let secret = DhSecret::from_bytes(*Zeroizing::new(r.array("secret")?));
            let created_at = Timestamp::from_millis(r.u64("created at")?);
            let replaced_at = time(r.u64("replaced at")?);
            signed.push(Generation { id, secret, created_at, replaced_at });
        }
        let count = usize::from(r.u8("last-resort prekeys")?);
        if count > MAX_GENERATIONS {
            return Err(DecodeError::InvalidValue { field: "last-resort prekeys" });
        }
        let mut last_resort = Vec::with_capacity(count);
        for _ in 0..count {
            let id = PrekeyId(r.u32("id")?);
            let secret = KemSecret::from_seed(*Zeroizing::new(r.array("seed")?));
            let created_at = Timestamp::from_millis(r.u64("created at")?);
            let replaced_at = time(r.u64("replaced at")?);
            last_resort.push(Generation { id, secret, created_at, replaced_at });
        }
        let count = usize::from(u16::from_be_bytes(r.array("one-time X25519 prekeys")?));
        if count > MAX_ONE_TIME {
            return Err(DecodeError::InvalidValue { field: "one-time X25519 prekeys" });
        }
        let mut one_time_dh = Vec::with_capacity(count);
        for _ in 0..count {
            let id = PrekeyId(r.u32("id")?);
            one_time_dh.push((id, DhSecret::from_bytes(*Zeroizing::new(r.array("secret")?))));
        }
        let count = usize::from(u16::from_be_bytes(r.array("one-time ML-KEM prekeys")?));
        if count > MAX_ONE_TIME {
            return Err(DecodeError::InvalidValue { field: "one-time ML-KEM prekeys" });
        }
        let mut one_time_kem = Vec::with_capacity(count);
        for _ in 0..count {
            let id = PrekeyId(r.u32("id")?);
            one_time_kem.push((id, KemSecret::from_seed(*Zeroizing::new(r.array("seed")?))));
        }
        r.finish()?;
        Ok(Self { signed, last_resort, one_time_dh, one_time_kem })
    }
}

#[cfg(test)]
mod tests;
