use std::time::Duration;

use communitas_crypto::prekey::{KEEP_REPLACED, ROTATE_AFTER};

use super::*;
use crate::random::Seeded;
use crate::session::{Peeked, Session, peek};

const T0: Timestamp = Timestamp::from_millis(1_780_000_000_000);

fn initial(bundle: &PrekeyBundle, otps: &[OneTimePrekey], rng: &mut Seeded) -> Vec<u8> {
    let alice = DeviceKey::from_secret_bytes([1; 32]);
    let dh = otps.iter().find(|p| matches!(p.key, OneTimeKey::Dh(_)));
    let kem = otps.iter().find(|p| matches!(p.key, OneTimeKey::Kem(_)));
    let a = Session::initiate(&alice, bundle, dh, kem, T0, rng).unwrap();
    a.encrypt(b"hi", T0, rng).unwrap().bytes
}

fn init_of(bytes: &[u8]) -> InitMessage {
    match peek(bytes).unwrap() {
        Peeked::Initial { init, .. } => init,
        Peeked::Message => panic!("not initial"),
    }
}

#[test]
fn one_time_prekeys_open_one_session_each() {
    let mut rng = Seeded::new(1);
    let device = DeviceKey::from_secret_bytes([2; 32]);
    let mut secrets = PrekeySecrets::new(T0, &mut rng);
    let bundle = secrets.bundle(&device).unwrap();
    let otps = secrets.mint_one_time(&device, 2, &mut rng);
    assert_eq!(secrets.one_time_left(), (2, 2));
    let first = initial(&bundle, &[otps[0].clone(), otps[2].clone()], &mut rng);
    let init = init_of(&first);
    let keys = secrets.keys_for(&device, &init).unwrap();
    let accepted = Session::accept(&keys, &first, T0).unwrap();
    assert_eq!(accepted.plaintext.as_slice(), b"hi");
    let mut next = secrets.clone();
    next.consume(&init);
    assert_eq!(next.one_time_left(), (1, 1));
    // A replay (or a second sender given the same keys) finds them gone.
    assert!(matches!(
        next.keys_for(&device, &init),
        Err(PrekeyLookupError::UnknownKemPrekey(_) | PrekeyLookupError::UnknownOneTimePrekey(_))
    ));
    // Without one-time prekeys the last-resort ones serve, any number of times.
    let plain = initial(&bundle, &[], &mut rng);
    let init = init_of(&plain);
    next.consume(&init);
    assert!(Session::accept(&next.keys_for(&device, &init).unwrap(), &plain, T0).is_ok());
    assert_eq!(next.one_time_left(), (1, 1));
}

#[test]
fn rotation_is_weekly_and_replaced_prekeys_open_for_37_days() {
    let mut rng = Seeded::new(2);
    let device = DeviceKey::from_secret_bytes([2; 32]);
    let mut secrets = PrekeySecrets::new(T0, &mut rng);
    let old = secrets.bundle(&device).unwrap();
    let message = initial(&old, &[], &mut rng);
    let init = init_of(&message);
    assert!(!secrets.rotate(T0.saturating_add(ROTATE_AFTER - Duration::from_secs(1)), &mut rng));
    let replaced = T0.saturating_add(ROTATE_AFTER);
    assert!(secrets.rotate(replaced, &mut rng));
    let new = secrets.bundle(&device).unwrap();
    assert_ne!(new.signed_prekey_id, old.signed_prekey_id);
    assert_ne!(new.last_resort_id, old.last_resort_id);
    // Weekly rotations until just before the grace period ends: the old message opens.
    let mut now = replaced;
    while now < replaced.saturating_add(KEEP_REPLACED - ROTATE_AFTER) {
        now = now.saturating_add(ROTATE_AFTER);
        secrets.rotate(now, &mut rng);
    }
    let keys = secrets.keys_for(&device, &init).unwrap();
    assert!(Session::accept(&keys, &message, now).is_ok());
    secrets.rotate(replaced.saturating_add(KEEP_REPLACED), &mut rng);
    assert_eq!(
        secrets.keys_for(&device, &init).unwrap_err(),
        PrekeyLookupError::UnknownSignedPrekey(old.signed_prekey_id)
    );
    assert!(secrets.signed.len() <= MAX_GENERATIONS);
}

#[test]
fn secrets_round_trip_and_one_time_prekeys_are_bounded() {
    let mut rng = Seeded::new(3);
    let device = DeviceKey::from_secret_bytes([2; 32]);
    let mut secrets = PrekeySecrets::new(T0, &mut rng);
    secrets.rotate(T0.saturating_add(ROTATE_AFTER), &mut rng);
    let first = secrets.mint_one_time(&device, 3, &mut rng);
    assert_eq!(first.len(), 6);
    assert_eq!(secrets.mint_one_time(&device, MAX_ONE_TIME - 3, &mut rng).len(), 2 * 197);
    assert_eq!(secrets.one_time_left(), (MAX_ONE_TIME, MAX_ONE_TIME));
    // Full: minting more drops the oldest, never holds more.
    let later = secrets.mint_one_time(&device, 2, &mut rng);
    assert_eq!(later.len(), 4);
    assert_eq!(secrets.one_time_left(), (MAX_ONE_TIME, MAX_ONE_TIME));
    let held = |id: PrekeyId| {
        secrets.one_time_dh.iter().any(|(i, _)| *i == id)
            || secrets.one_time_kem.iter().any(|(i, _)| *i == id)
    };
    assert!(!held(first[0].id) && !held(first[3].id), "the oldest of each kind went");
    assert!(held(first[2].id) && held(later[0].id) && held(later[3].id));
    assert_eq!(secrets.mint_one_time(&device, 10 * MAX_ONE_TIME, &mut rng).len(), 2 * MAX_ONE_TIME);
    let bytes = secrets.to_bytes();
    let back = PrekeySecrets::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes(), bytes);
    assert_eq!(back.bundle(&device), secrets.bundle(&device));
    for cut in [0, 1, 50, bytes.len() - 1] {
        assert!(PrekeySecrets::from_bytes(&bytes[..cut]).is_err());
    }
    assert_eq!(format!("{back:?}"), "PrekeySecrets { signed: 2, one_time: (200, 200), .. }");
}
