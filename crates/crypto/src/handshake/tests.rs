use communitas_types::Timestamp;

use super::*;
use crate::prekey::OneTimeKey;

struct Responder {
    device: DeviceKey,
    spk: DhSecret,
    pq: KemSecret,
    opk: DhSecret,
    pq_opk: KemSecret,
    bundle: PrekeyBundle,
}

fn responder() -> Responder {
    let device = DeviceKey::from_secret_bytes([11; 32]);
    let spk = DhSecret::from_bytes([12; 32]);
    let pq = KemSecret::from_seed([13; 64]);
    let bundle = PrekeyBundle::sign(
        &device,
        Timestamp::from_millis(1),
        (PrekeyId(1), &spk),
        (PrekeyId(2), &pq),
    );
    Responder {
        device,
        spk,
        pq,
        opk: DhSecret::from_bytes([14; 32]),
        pq_opk: KemSecret::from_seed([15; 64]),
        bundle,
    }
}

fn randomness() -> InitRandomness {
    InitRandomness { ephemeral: [21; 32], kem: [22; 32] }
}

#[test]
fn both_sides_agree_with_and_without_one_time_prekeys() {
    let b = responder();
    let alice = DeviceKey::from_secret_bytes([1; 32]);
    let opk = OneTimePrekey::sign(&b.device, PrekeyId(3), OneTimeKey::Dh(b.opk.public()));
    let pq_opk = OneTimePrekey::sign(&b.device, PrekeyId(4), OneTimeKey::Kem(b.pq_opk.public()));
    let mut secrets = Vec::new();
    for (dh, kem) in [(false, false), (true, false), (false, true), (true, true)] {
        let init =
            initiate(&alice, &b.bundle, dh.then_some(&opk), kem.then_some(&pq_opk), &randomness())
                .unwrap();
        let parsed = InitMessage::from_bytes(&init.message.to_bytes()).unwrap();
        assert_eq!(parsed, init.message);
        assert_eq!(parsed.kem_one_time, kem);
        assert_eq!(parsed.one_time_prekey_id, dh.then_some(PrekeyId(3)));
        let keys = ResponderKeys {
            device: &b.device,
            signed_prekey: &b.spk,
            kem_prekey: if kem { &b.pq_opk } else { &b.pq },
            one_time_prekey: dh.then_some(&b.opk),
        };
        let done = respond(&keys, &parsed).unwrap();
        assert_eq!(done.secret.as_bytes(), init.secret.as_bytes());
        assert_eq!(done.associated_data, init.associated_data);
        assert_eq!(done.initiator_device, alice.public_bytes());
        secrets.push(*init.secret.as_bytes());
    }
    secrets.sort();
    secrets.dedup();
    assert_eq!(secrets.len(), 4, "each prekey changes the secret");
}

#[test]
fn the_initiators_device_key_is_not_in_clear() {
    let b = responder();
    let alice = DeviceKey::from_secret_bytes([1; 32]);
    let bytes = initiate(&alice, &b.bundle, None, None, &randomness()).unwrap().message.to_bytes();
    let key = alice.public_bytes();
    assert!(!bytes.windows(32).any(|w| w == key));
    let dh = alice.dh_secret().public();
    assert!(!bytes.windows(32).any(|w| w == dh.as_bytes()));
}

#[test]
fn every_flipped_byte_or_wrong_prekey_is_refused() {
    let b = responder();
    let alice = DeviceKey::from_secret_bytes([1; 32]);
    let bytes = initiate(&alice, &b.bundle, None, None, &randomness()).unwrap().message.to_bytes();
    let keys = ResponderKeys {
        device: &b.device,
        signed_prekey: &b.spk,
        kem_prekey: &b.pq,
        one_time_prekey: None,
    };
    // Every byte outside the KEM ciphertext, and every 13th inside it.
    let ct = 46..46 + mlkem::CT_LEN;
    for i in (0..bytes.len()).filter(|i| !ct.contains(i) || i % 13 == 0) {
        let mut bad = bytes.clone();
        bad[i] ^= 0x04;
        let refused = InitMessage::from_bytes(&bad).map_or(true, |m| respond(&keys, &m).is_err());
        assert!(refused, "flip at {i} accepted");
    }
    let other_spk = DhSecret::from_bytes([99; 32]);
    let wrong = ResponderKeys { signed_prekey: &other_spk, ..keys };
    let parsed = InitMessage::from_bytes(&bytes).unwrap();
    assert_eq!(respond(&wrong, &parsed).unwrap_err(), HandshakeError::Decrypt);
    let other_device = DeviceKey::from_secret_bytes([98; 32]);
    let wrong = ResponderKeys { device: &other_device, ..keys };
    assert_eq!(respond(&wrong, &parsed).unwrap_err(), HandshakeError::Decrypt);
}

#[test]
fn wrong_kinds_and_missing_one_time_keys_are_typed_errors() {
    let b = responder();
    let alice = DeviceKey::from_secret_bytes([1; 32]);
    let opk = OneTimePrekey::sign(&b.device, PrekeyId(3), OneTimeKey::Dh(b.opk.public()));
    let err = initiate(&alice, &b.bundle, None, Some(&opk), &randomness()).unwrap_err();
    assert_eq!(err, HandshakeError::WrongKind);
    let init = initiate(&alice, &b.bundle, Some(&opk), None, &randomness()).unwrap();
    let keys = ResponderKeys {
        device: &b.device,
        signed_prekey: &b.spk,
        kem_prekey: &b.pq,
        one_time_prekey: None,
    };
    assert_eq!(
        respond(&keys, &init.message).unwrap_err(),
        HandshakeError::MissingOneTimePrekey(PrekeyId(3))
    );
    let weak = InitMessage { ephemeral: DhPublic::from_bytes([0; 32]), ..init.message };
    let keys = ResponderKeys { one_time_prekey: Some(&b.opk), ..keys };
    assert!(matches!(respond(&keys, &weak), Err(HandshakeError::WeakKey(_))));
}
