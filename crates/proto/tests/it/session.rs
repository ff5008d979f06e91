//! Sessions end to end: golden vectors, long random runs with loss, duplication and
//! reordering, forward secrecy and post-compromise security.

mod flow;
mod props;
mod security;
mod vectors;

use communitas_crypto::dh::DhSecret;
use communitas_crypto::handshake::ResponderKeys;
use communitas_crypto::identity::DeviceKey;
use communitas_crypto::mlkem::KemSecret;
use communitas_crypto::prekey::{OneTimeKey, OneTimePrekey, PrekeyBundle, PrekeyId};
use communitas_proto::Random;
use communitas_proto::session::{DecryptError, Peeked, Session, peek};
use communitas_types::Timestamp;

pub(crate) const T0: Timestamp = Timestamp::from_millis(1_780_000_000_000);

/// The responder's device and the secrets behind its published prekeys.
pub(crate) struct Responder {
    pub(crate) device: DeviceKey,
    pub(crate) spk: DhSecret,
    pub(crate) pq: KemSecret,
    pub(crate) opk: DhSecret,
    pub(crate) pq_opk: KemSecret,
    pub(crate) bundle: PrekeyBundle,
}

impl Responder {
    pub(crate) fn new() -> Self {
        let device = DeviceKey::from_secret_bytes([0xb0; 32]);
        let spk = DhSecret::from_bytes([0xb1; 32]);
        let pq = KemSecret::from_seed([0xb2; 64]);
        let bundle = PrekeyBundle::sign(&device, T0, (PrekeyId(10), &spk), (PrekeyId(11), &pq));
        let opk = DhSecret::from_bytes([0xb3; 32]);
        let pq_opk = KemSecret::from_seed([0xb4; 64]);
        Self { device, spk, pq, opk, pq_opk, bundle }
    }

    pub(crate) fn one_time(&self) -> (OneTimePrekey, OneTimePrekey) {
        (
            OneTimePrekey::sign(&self.device, PrekeyId(12), OneTimeKey::Dh(self.opk.public())),
            OneTimePrekey::sign(&self.device, PrekeyId(13), OneTimeKey::Kem(self.pq_opk.public())),
        )
    }

    /// Accepts an initial message, looking the secrets up by the ids it names.
    pub(crate) fn accept(&self, bytes: &[u8], now: Timestamp) -> (Session, Vec<u8>) {
        let Peeked::Initial { init, .. } = peek(bytes).unwrap() else { panic!("not initial") };
        let keys = ResponderKeys {
            device: &self.device,
            signed_prekey: &self.spk,
            kem_prekey: if init.kem_one_time { &self.pq_opk } else { &self.pq },
            one_time_prekey: init.one_time_prekey_id.map(|_| &self.opk),
        };
        let accepted = Session::accept(&keys, bytes, now).unwrap();
        (accepted.session, accepted.plaintext.to_vec())
    }
}

pub(crate) fn alice_device() -> DeviceKey {
    DeviceKey::from_secret_bytes([0xa0; 32])
}

/// Encrypts and commits.
pub(crate) fn send(s: &mut Session, text: &[u8], now: Timestamp, rng: &mut impl Random) -> Vec<u8> {
    let out = s.encrypt(text, now, rng).unwrap();
    *s = out.next;
    out.bytes
}

/// Decrypts and commits.
pub(crate) fn recv(s: &mut Session, bytes: &[u8], now: Timestamp) -> Result<Vec<u8>, DecryptError> {
    let out = s.decrypt(bytes, now)?;
    *s = out.next;
    Ok(out.plaintext.to_vec())
}
