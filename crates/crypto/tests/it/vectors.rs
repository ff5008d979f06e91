//! Known-answer tests: the X-Wing draft's vectors, and our own golden vectors for the
//! identity derivations and the envelope format (`test-vectors/`).
//!
//! Our vectors pin the formats: a change that alters them breaks compatibility with
//! every node already running. To regenerate after a deliberate format change (which
//! also needs a new version byte), run with `COMMUNITAS_WRITE_VECTORS=1`.

use std::path::PathBuf;

use communitas_crypto::{Envelope, Kind, Letter, SafetyNumber, derive_address};
use communitas_types::{MessageId, Timestamp};
use serde::{Deserialize, Serialize};
use x_wing::{Decapsulate, KeyExport};

use super::identity;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors")
}

#[derive(Deserialize)]
struct XWingVector {
    seed: String,
    eseed: String,
    ss: String,
    sk: String,
    pk: String,
    ct: String,
}

/// draft-connolly-cfrg-xwing-kem-06, test-vectors.json.
#[test]
fn xwing_draft_vectors() {
    let text = std::fs::read_to_string(vectors_dir().join("xwing-draft-06.json")).unwrap();
    let vectors: Vec<XWingVector> = serde_json::from_str(&text).unwrap();
    assert_eq!(vectors.len(), 3);
    for v in vectors {
        let seed: [u8; 32] = hex::decode(&v.seed).unwrap().try_into().unwrap();
        assert_eq!(v.sk, v.seed);
        // Our identity's KEM half is exactly X-Wing's key from that seed.
        let ours = communitas_crypto::Identity::from_seed_bytes([0; 32], seed);
        assert_eq!(hex::encode(&ours.public().to_bytes()[32..]), v.pk);

        let sk = x_wing::DecapsulationKey::from(seed);
        let pk =
            x_wing::EncapsulationKey::try_from(hex::decode(&v.pk).unwrap().as_slice()).unwrap();
        assert_eq!(hex::encode(pk.to_bytes()), v.pk);
        let eseed: [u8; 64] = hex::decode(&v.eseed).unwrap().try_into().unwrap();
        let (ct, ss) = pk.encapsulate_deterministic(&eseed.into());
        assert_eq!(hex::encode(ct), v.ct);
        assert_eq!(hex::encode(ss), v.ss);
        assert_eq!(hex::encode(sk.decapsulate(&ct)), v.ss);
    }
}

/// The session wrappers (`dh`, `mlkem`) against the same draft vectors: X-Wing is
/// ML-KEM-768 and X25519 side by side, so each vector is a known answer for both.
/// The seed expands (SHAKE-256) into the ML-KEM seed `d ‖ z` and the X25519 secret;
/// `eseed` is the ML-KEM `m` then the X25519 ephemeral secret; the shared secret is
/// SHA3-256(ss_M ‖ ss_X ‖ ct_X ‖ pk_X ‖ label).
#[test]
fn session_primitives_match_the_xwing_draft_vectors() {
    use communitas_crypto::dh::{DhPublic, DhSecret};
    use communitas_crypto::mlkem::{KemPublic, KemSecret};
    use sha3::Digest;
    use shake::{ExtendableOutput, Update, XofReader};

    let text = std::fs::read_to_string(vectors_dir().join("xwing-draft-06.json")).unwrap();
    let vectors: Vec<XWingVector> = serde_json::from_str(&text).unwrap();
    for v in vectors {
        let seed = hex::decode(&v.seed).unwrap();
        let mut expanded = [0u8; 96];
        let mut xof = shake::Shake256::default();
        xof.update(&seed);
        xof.finalize_xof().read(&mut expanded);
        let pk = hex::decode(&v.pk).unwrap();
        let ct = hex::decode(&v.ct).unwrap();
        let eseed = hex::decode(&v.eseed).unwrap();

        let kem = KemSecret::from_seed(expanded[..64].try_into().unwrap());
        assert_eq!(kem.public().as_bytes().as_slice(), &pk[..1184]);
        let dh = DhSecret::from_bytes(expanded[64..].try_into().unwrap());
        assert_eq!(dh.public().as_bytes().as_slice(), &pk[1184..]);

        let ek = KemPublic::from_bytes(&pk[..1184]).unwrap();
        let (ct_m, ss_m) = ek.encapsulate(eseed[..32].try_into().unwrap());
        assert_eq!(ct_m.as_slice(), &ct[..1088]);
        assert_eq!(*kem.decapsulate(&ct_m), *ss_m);
        let ephemeral = DhSecret::from_bytes(eseed[32..].try_into().unwrap());
        assert_eq!(ephemeral.public().as_bytes().as_slice(), &ct[1088..]);
        let pk_x = DhPublic::from_bytes(pk[1184..].try_into().unwrap());
        let ss_x = ephemeral.agree(&pk_x).unwrap();
        assert_eq!(*dh.agree(&ephemeral.public()).unwrap(), *ss_x);

        let mut h = sha3::Sha3_256::new();
        Digest::update(&mut h, *ss_m);
        Digest::update(&mut h, *ss_x);
        Digest::update(&mut h, &ct[1088..]);
        Digest::update(&mut h, &pk[1184..]);
        Digest::update(&mut h, br"\.//^\");
        assert_eq!(hex::encode(h.finalize()), v.ss);
    }
}

/// RFC 7748 §6.1: the X25519 example of Alice and Bob.
#[test]
fn x25519_matches_rfc_7748() {
    use communitas_crypto::dh::DhSecret;
    let key = |h: &str| -> [u8; 32] { hex::decode(h).unwrap().try_into().unwrap() };
    let alice = DhSecret::from_bytes(key(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    ));
    let bob = DhSecret::from_bytes(key(
        "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
    ));
    assert_eq!(
        hex::encode(alice.public().as_bytes()),
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    );
    assert_eq!(
        hex::encode(bob.public().as_bytes()),
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    );
    let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    assert_eq!(hex::encode(*alice.agree(&bob.public()).unwrap()), shared);
    assert_eq!(hex::encode(*bob.agree(&alice.public()).unwrap()), shared);
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct IdentityVector {
    signing_seed: String,
    kem_seed: String,
    public_identity: String,
    fingerprint: String,
    mailbox_id: String,
    address: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct IdentityVectors {
    note: String,
    identities: Vec<IdentityVector>,
    safety_number_0_1: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Field {
    field: String,
    offset: usize,
    len: usize,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct EnvelopeVector {
    note: String,
    sender_seeds: [String; 2],
    recipient_seeds: [String; 2],
    message_id: String,
    timestamp_ms: u64,
    kind: u8,
    body_utf8: String,
    kem_randomness: String,
    nonce: String,
    envelope: String,
    layout: Vec<Field>,
}

fn check_or_write<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(
    name: &str,
    computed: T,
) {
    let path = vectors_dir().join(name);
    if std::env::var_os("COMMUNITAS_WRITE_VECTORS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&computed).unwrap() + "\n").unwrap();
    }
    let stored: T = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(stored, computed, "{name} no longer matches: the format changed");
}

#[test]
fn identity_golden_vectors() {
    let ids = [identity(1), identity(2)];
    let identities = ids
        .iter()
        .zip([1u8, 2])
        .map(|(id, n)| IdentityVector {
            signing_seed: hex::encode([n; 32]),
            kem_seed: hex::encode([n + 100; 32]),
            public_identity: hex::encode(id.public().to_bytes()),
            fingerprint: id.public().fingerprint().to_string(),
            mailbox_id: id.public().mailbox_id().to_string(),
            address: derive_address(id.public()).to_string(),
        })
        .collect();
    check_or_write(
        "identity-v1.json",
        IdentityVectors {
            note: "identity(n) = Identity::from_seed_bytes([n; 32], [n + 100; 32]); see docs/protocol.md".into(),
            identities,
            safety_number_0_1: SafetyNumber::new(ids[0].public(), ids[1].public()).to_string(),
        },
    );
}

#[test]
fn envelope_golden_vector() {
    let (alice, bob) = (identity(1), identity(2));
    let body = "golden 🌟";
    let letter = Letter {
        message_id: MessageId::from_bytes([0x42; 16]),
        timestamp: Timestamp::from_millis(1_780_000_000_000),
        kind: Kind::Text,
        body: body.as_bytes(),
    };
    let env = Envelope::seal_deterministic(&alice, bob.public(), letter, &[0x5a; 64], [0x6b; 24])
        .unwrap();
    let bytes = env.to_bytes();
    // Decrypting the stored vector still gives the letter.
    let opened = Envelope::from_bytes(&bytes).unwrap().open(&bob).unwrap();
    assert_eq!(opened.body, body.as_bytes());
    let layout = [
        ("version", 0, 1),
        ("recipient mailbox id", 1, 32),
        ("x-wing ciphertext", 33, 1120),
        ("xchacha20 nonce", 1153, 24),
        ("aead ciphertext (signed payload + 16-byte tag)", 1177, bytes.len() - 1177),
    ]
    .map(|(field, offset, len)| Field { field: field.into(), offset, len })
    .into();
    check_or_write(
        "envelope-v1.json",
        EnvelopeVector {
            note: "Envelope::seal_deterministic(identity(1), identity(2), letter, kem_randomness, nonce)".into(),
            sender_seeds: [hex::encode([1u8; 32]), hex::encode([101u8; 32])],
            recipient_seeds: [hex::encode([2u8; 32]), hex::encode([102u8; 32])],
            message_id: hex::encode([0x42; 16]),
            timestamp_ms: 1_780_000_000_000,
            kind: Kind::Text.to_u8(),
            body_utf8: body.into(),
            kem_randomness: hex::encode([0x5a; 64]),
            nonce: hex::encode([0x6b; 24]),
            envelope: hex::encode(&bytes),
            layout,
        },
    );
}
