//! Entry points for the fuzz targets in `fuzz/` and for the test that replays their
//! corpora. Each feeds arbitrary bytes to one decoder the network, the disk or a user
//! can reach; none may panic, whatever the input.

use communitas_types::{Address, MessageId, Timestamp};

use crate::at_rest::StorageKey;
use crate::dh::DhSecret;
use crate::envelope::{Envelope, Letter, MAX_BODY_LEN};
use crate::handshake::{self, InitMessage, InitRandomness, ResponderKeys};
use crate::identity::{DeviceKey, Identity, PublicIdentity};
use crate::keystore::{KdfParams, Keystore, Secrets};
use crate::mlkem::KemSecret;
use crate::payload::{self, Kind};
use crate::prekey::{OneTimeKey, OneTimePrekey, PrekeyBundle, PrekeyId};

/// The fixed recipient the envelope target opens as.
fn recipient() -> Identity {
    Identity::from_seed_bytes([2; 32], [102; 32])
}

fn sender() -> Identity {
    Identity::from_seed_bytes([1; 32], [101; 32])
}

/// Parses and opens an envelope as the fixed recipient. True if it opened.
pub fn envelope(bytes: &[u8]) -> bool {
    Envelope::from_bytes(bytes).is_ok_and(|e| e.open(&recipient()).is_ok())
}

/// Decodes and verifies a signed payload. True if valid.
pub fn payload(bytes: &[u8]) -> bool {
    payload::decode_verified(bytes, MAX_BODY_LEN).is_ok()
}

/// Parses a keystore file (without the costly unlock). True if it parsed.
pub fn keystore(bytes: &[u8]) -> bool {
    Keystore::from_bytes(bytes).is_ok()
}

/// Parses a four-word address from (possibly non-UTF-8) text. True if valid.
pub fn address(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|t| t.parse::<Address>().is_ok())
}

/// Parses a public identity. True if valid.
pub fn public_identity(bytes: &[u8]) -> bool {
    PublicIdentity::from_bytes(bytes).is_ok()
}

/// Parses an identity record set (signatures checked, no address derivation).
pub fn record_set(bytes: &[u8]) -> bool {
    crate::record::RecordSet::from_bytes(bytes).is_ok()
}

/// The fixed responder device the prekey and init message targets use, and the
/// secrets of its prekeys: signed, last-resort, one-time X25519, one-time ML-KEM.
struct Prekeys {
    device: DeviceKey,
    spk: DhSecret,
    pq: KemSecret,
    opk: DhSecret,
    pq_opk: KemSecret,
}

fn prekeys() -> Prekeys {
    Prekeys {
        device: DeviceKey::from_secret_bytes([30; 32]),
        spk: DhSecret::from_bytes([31; 32]),
        pq: KemSecret::from_seed([32; 64]),
        opk: DhSecret::from_bytes([33; 32]),
        pq_opk: KemSecret::from_seed([34; 64]),
    }
}

/// Parses a prekey bundle, and a one-time prekey of the fixed device. True if
/// either parsed (and its signature verified).
pub fn prekey(bytes: &[u8]) -> bool {
    let device = DeviceKey::from_secret_bytes([30; 32]).public_bytes();
    let bundle = PrekeyBundle::from_bytes(bytes);
    if let Ok(b) = &bundle {
        debug_assert_eq!(b.to_bytes(), bytes);
    }
    bundle.is_ok() | OneTimePrekey::from_bytes(bytes, &device).is_ok()
}

/// Parses an init message and answers it with the fixed device's prekeys (the ones
/// its ids would name). A message that parses must encode back to the same bytes.
/// True if the handshake completed.
pub fn init_message(bytes: &[u8]) -> bool {
    let Ok(message) = InitMessage::from_bytes(bytes) else { return false };
    debug_assert_eq!(message.to_bytes(), bytes);
    let p = prekeys();
    let keys = ResponderKeys {
        device: &p.device,
        signed_prekey: &p.spk,
        kem_prekey: if message.kem_one_time { &p.pq_opk } else { &p.pq },
        one_time_prekey: message.one_time_prekey_id.map(|_| &p.opk),
    };
    handshake::respond(&keys, &message).is_ok()
}

fn prekey_seeds(out: &mut Vec<(&'static str, String, Vec<u8>)>) {
    let p = prekeys();
    let created = Timestamp::from_millis(1_780_000_000_000);
    let bundle =
        PrekeyBundle::sign(&p.device, created, (PrekeyId(1), &p.spk), (PrekeyId(2), &p.pq));
    let opk = OneTimePrekey::sign(&p.device, PrekeyId(3), OneTimeKey::Dh(p.opk.public()));
    let pq_opk = OneTimePrekey::sign(&p.device, PrekeyId(4), OneTimeKey::Kem(p.pq_opk.public()));
    out.push(("prekey", "seed-bundle".into(), bundle.to_bytes().to_vec()));
    out.push(("prekey", "seed-one-time-dh".into(), opk.to_bytes().to_vec()));
    out.push(("prekey", "seed-one-time-kem".into(), pq_opk.to_bytes().to_vec()));
    let initiator = DeviceKey::from_secret_bytes([35; 32]);
    for (name, dh, kem) in
        [("seed-plain", None, None), ("seed-one-time", Some(&opk), Some(&pq_opk))]
    {
        let randomness = InitRandomness { ephemeral: [36; 32], kem: [37; 32] };
        if let Ok(init) = handshake::initiate(&initiator, &bundle, dh, kem, &randomness) {
            out.push(("init_message", name.into(), init.message.to_bytes()));
        }
    }
}

/// Valid inputs to start each corpus from: `(target, name, bytes)`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let (alice, bob) = (sender(), recipient());
    #[allow(clippy::cast_possible_truncation)]
    let mut out = Vec::new();
    for (i, (kind, body)) in [
        (Kind::Text, "hi".as_bytes().to_vec()),
        (Kind::Text, "héllo 👋 مرحبا".as_bytes().to_vec()),
        (Kind::Receipt, vec![0; 17]),
        (Kind::File, vec![7; 300]),
    ]
    .into_iter()
    .enumerate()
    {
        let letter = Letter {
            message_id: MessageId::from_bytes([i as u8; 16]),
            timestamp: Timestamp::from_millis(1_780_000_000_000),
            kind,
            body: &body,
        };
        let seed = [i as u8; 64];
        if let Ok(env) = Envelope::seal_deterministic(&alice, bob.public(), letter, &seed, [3; 24])
        {
            out.push(("envelope", format!("seed-{i}"), env.to_bytes()));
        }
        let signed = payload::encode_signed(
            &alice,
            &bob.public().fingerprint(),
            &letter.message_id,
            letter.timestamp,
            kind,
            &body,
        );
        out.push(("payload", format!("seed-{i}"), signed));
    }
    out.push(("public_identity", "seed-0".into(), alice.public().to_bytes()));
    let device = crate::record::Device {
        peer_id: DeviceKey::from_secret_bytes([4; 32]).peer_id(),
        addrs: vec![vec![4, 127, 0, 0, 1, 6, 0x1f, 0x90]],
        prekeys: None,
    };
    let created = Timestamp::from_millis(1_780_000_000_000);
    if let Ok(record) =
        crate::record::IdentityRecord::sign(&alice, 7, created, Some("alice".into()), vec![device])
    {
        let set = crate::record::RecordSet { records: vec![record] };
        out.push(("record_set", "seed-0".into(), set.to_bytes()));
    }
    let secrets = Secrets {
        identity: alice,
        device: DeviceKey::from_secret_bytes([4; 32]),
        storage: StorageKey::from_bytes([5; 32]),
    };
    // The address is not derived here (costly); the keystore does not check it.
    let address = Address::from_bytes([1, 2, 3, 4, 5, 6]);
    let created = Timestamp::from_millis(1_780_000_000_000);
    let kdf = KdfParams::INSECURE_FOR_TESTS;
    if let Ok(store) = Keystore::create_with(
        &secrets,
        Some("alice".into()),
        address,
        created,
        b"pw",
        kdf,
        ([6; 16], [7; 24]),
    ) {
        out.push(("keystore", "seed-0".into(), store.to_bytes()));
    }
    for (i, text) in
        ["abacus-zebra-zone-zoom", "ABACUS ZEBRA.zone zoom", "abdom zebra zone zoom", "x y"]
            .iter()
            .enumerate()
    {
        out.push(("address", format!("seed-{i}"), text.as_bytes().to_vec()));
    }
    prekey_seeds(&mut out);
    out
}
