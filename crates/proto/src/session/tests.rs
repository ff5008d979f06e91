//! Unit tests of the session: the ratchet's rules, one at a time. The long random
//! runs, vectors and benches are in `tests/it/session*.rs` and `benches/`.

use communitas_crypto::dh::DhSecret;
use communitas_crypto::handshake::ResponderKeys;
use communitas_crypto::identity::DeviceKey;
use communitas_crypto::mlkem::KemSecret;
use communitas_crypto::prekey::{PrekeyBundle, PrekeyId};
use communitas_types::Timestamp;

use super::*;
use crate::random::Seeded;

pub(super) const T0: Timestamp = Timestamp::from_millis(1_780_000_000_000);

struct Bob {
    device: DeviceKey,
    spk: DhSecret,
    pq: KemSecret,
    bundle: PrekeyBundle,
}

fn bob() -> Bob {
    let device = DeviceKey::from_secret_bytes([2; 32]);
    let spk = DhSecret::from_bytes([3; 32]);
    let pq = KemSecret::from_seed([4; 64]);
    let bundle = PrekeyBundle::sign(&device, T0, (PrekeyId(1), &spk), (PrekeyId(2), &pq));
    Bob { device, spk, pq, bundle }
}

/// Alice and Bob after Alice's first message ("hello") was accepted.
fn pair(rng: &mut Seeded) -> (Session, Session) {
    let b = bob();
    let alice = DeviceKey::from_secret_bytes([1; 32]);
    let a = Session::initiate(&alice, &b.bundle, None, None, T0, rng).unwrap();
    let first = a.encrypt(b"hello", T0, rng).unwrap();
    let keys = ResponderKeys {
        device: &b.device,
        signed_prekey: &b.spk,
        kem_prekey: &b.pq,
        one_time_prekey: None,
    };
    let accepted = Session::accept(&keys, &first.bytes, T0).unwrap();
    assert_eq!(&accepted.plaintext[..], b"hello");
    assert_eq!(accepted.initiator_device, alice.public_bytes());
    (first.next, accepted.session)
}

fn send(s: &mut Session, text: &[u8], rng: &mut Seeded) -> Vec<u8> {
    let out = s.encrypt(text, T0, rng).unwrap();
    *s = out.next;
    out.bytes
}

fn recv(s: &mut Session, bytes: &[u8]) -> Vec<u8> {
    let out = s.decrypt(bytes, T0).unwrap();
    *s = out.next;
    out.plaintext.to_vec()
}

#[test]
fn messages_flow_both_ways_and_the_init_message_stops_after_a_reply() {
    let mut rng = Seeded::new(1);
    let (mut a, mut b) = pair(&mut rng);
    let m = send(&mut a, b"second", &mut rng);
    assert!(matches!(peek(&m).unwrap(), Peeked::Initial { .. }), "no reply yet");
    assert_eq!(recv(&mut b, &m), b"second");
    let r = send(&mut b, b"reply", &mut rng);
    assert_eq!(peek(&r).unwrap(), Peeked::Message);
    assert_eq!(recv(&mut a, &r), b"reply");
    let m = send(&mut a, b"third", &mut rng);
    assert_eq!(peek(&m).unwrap(), Peeked::Message, "the reply ends the init message");
    assert_eq!(recv(&mut b, &m), b"third");
}

#[test]
fn a_warm_ten_byte_message_is_far_under_200_bytes() {
    let mut rng = Seeded::new(2);
    let (mut a, mut b) = pair(&mut rng);
    let r = send(&mut b, b"x", &mut rng);
    recv(&mut a, &r);
    let m = send(&mut a, b"0123456789", &mut rng);
    assert_eq!(m.len(), 10 + wire::OVERHEAD);
    assert!(m.len() <= 200, "{}", m.len());
}

#[test]
fn out_of_order_messages_open_once_and_duplicates_are_refused() {
    let mut rng = Seeded::new(3);
    let (mut a, mut b) = pair(&mut rng);
    let ms: Vec<_> = (0..5u8).map(|i| send(&mut a, &[i], &mut rng)).collect();
    assert_eq!(recv(&mut b, &ms[3]), [3]);
    assert_eq!(b.skipped_keys(), 3);
    assert_eq!(recv(&mut b, &ms[1]), [1]);
    assert_eq!(b.decrypt(&ms[1], T0).unwrap_err(), DecryptError::Duplicate);
    assert_eq!(b.decrypt(&ms[3], T0).unwrap_err(), DecryptError::Duplicate);
    // A new chain of Bob's, and Alice's answer chain: old chain's keys still open.
    let r = send(&mut b, b"r", &mut rng);
    recv(&mut a, &r);
    let n = send(&mut a, b"new chain", &mut rng);
    assert_eq!(recv(&mut b, &n), b"new chain");
    assert_eq!(recv(&mut b, &ms[4]), [4]);
    assert_eq!(recv(&mut b, &ms[2]), [2]);
    assert_eq!(recv(&mut b, &ms[0]), [0]);
    assert_eq!(b.skipped_keys(), 0);
}

#[test]
fn tampering_anywhere_is_a_typed_error_and_changes_nothing() {
    let mut rng = Seeded::new(4);
    let (mut a, b) = pair(&mut rng);
    let m = send(&mut a, b"tamper me", &mut rng);
    let before = b.to_bytes();
    for i in 0..m.len() {
        let mut bad = m.clone();
        bad[i] ^= 0x20;
        let err = b.decrypt(&bad, T0).unwrap_err();
        assert!(
            matches!(
                err,
                DecryptError::Decode(_)
                    | DecryptError::UnknownHeader
                    | DecryptError::Decrypt
                    | DecryptError::OtherHandshake
            ),
            "byte {i}: {err:?}"
        );
    }
    assert_eq!(b.to_bytes(), before, "a failed decrypt is side-effect free");
    // The body and the tag, specifically.
    let mut body = m.clone();
    let last = body.len() - 1;
    body[last] ^= 1;
    assert_eq!(b.decrypt(&body, T0).unwrap_err(), DecryptError::Decrypt);
    body[last] ^= 1;
    body[last - 16] ^= 1;
    assert_eq!(b.decrypt(&body, T0).unwrap_err(), DecryptError::Decrypt);
    assert_eq!(b.decrypt(&m, T0).unwrap().plaintext.as_slice(), b"tamper me");
}

#[test]
fn a_warm_message_tampered_anywhere_is_refused_and_changes_nothing() {
    let mut rng = Seeded::new(14);
    let (mut a, mut b) = pair(&mut rng);
    let r = send(&mut b, b"r", &mut rng);
    recv(&mut a, &r);
    let m = send(&mut a, b"warm and tampered", &mut rng);
    assert_eq!(peek(&m).unwrap(), Peeked::Message);
    let before = b.to_bytes();
    let sealed_header_end = 4 + header::BASE_LEN + header::SEAL_OVERHEAD;
    for i in 0..m.len() {
        let mut bad = m.clone();
        bad[i] ^= 0x01;
        let err = b.decrypt(&bad, T0).unwrap_err();
        let expected = match i {
            0..4 => matches!(err, DecryptError::Decode(_) | DecryptError::UnknownHeader),
            // Header nonce, header or header tag: no key opens it.
            _ if i < sealed_header_end => err == DecryptError::UnknownHeader,
            // Body or tag: the header opens, the body does not.
            _ => err == DecryptError::Decrypt,
        };
        assert!(expected, "byte {i}: {err:?}");
    }
    assert_eq!(b.to_bytes(), before);
    assert_eq!(recv(&mut b, &m), b"warm and tampered");
}

#[test]
fn nothing_in_clear_tells_two_sessions_or_two_chains_apart() {
    let mut rng = Seeded::new(15);
    let mut warm = Vec::new();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (mut a, mut b) = pair(&mut rng);
        let r = send(&mut b, b"r", &mut rng);
        recv(&mut a, &r);
        for _ in 0..3 {
            warm.push(send(&mut a, b"same length", &mut rng));
            keys.push(a.state.dhs.public());
            warm.push(send(&mut b, b"same length", &mut rng));
            keys.push(b.state.dhs.public());
            recv(&mut a, warm.last().unwrap());
            recv(&mut b, &warm[warm.len() - 2]);
        }
    }
    // Equal lengths and equal clear prefixes (version, kind, header length) …
    assert!(warm.iter().all(|m| m.len() == warm[0].len() && m[..4] == warm[0][..4]));
    // … and no ratchet key, and no 8-byte run shared between two messages after it.
    for m in &warm {
        for k in &keys {
            assert!(!m.windows(32).any(|w| w == k.as_bytes()));
        }
    }
    for (i, x) in warm.iter().enumerate() {
        for y in &warm[i + 1..] {
            let shared = x[4..].windows(8).any(|w| y[4..].windows(8).any(|v| v == w));
            assert!(!shared, "two messages share bytes after the prefix");
        }
    }
}

#[test]
fn decrypt_is_try_then_commit() {
    let mut rng = Seeded::new(5);
    let (mut a, b) = pair(&mut rng);
    let m = send(&mut a, b"once", &mut rng);
    let first = b.decrypt(&m, T0).unwrap();
    // The caller crashed before committing: the old state opens it again.
    let again = b.decrypt(&m, T0).unwrap();
    assert_eq!(first.plaintext, again.plaintext);
    assert_eq!(first.next.to_bytes(), again.next.to_bytes());
    // After the commit it is a duplicate.
    assert_eq!(first.next.decrypt(&m, T0).unwrap_err(), DecryptError::Duplicate);
}

#[test]
fn snapshots_round_trip_and_resume_mid_conversation() {
    let mut rng = Seeded::new(6);
    let (mut a, mut b) = pair(&mut rng);
    let pending: Vec<_> = (0..3u8).map(|i| send(&mut a, &[i], &mut rng)).collect();
    recv(&mut b, &pending[2]);
    for s in [&mut a, &mut b] {
        let bytes = s.to_bytes();
        let back = Session::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        *s = back;
    }
    assert_eq!(recv(&mut b, &pending[0]), [0]);
    let r = send(&mut b, b"after restore", &mut rng);
    assert_eq!(recv(&mut a, &r), b"after restore");
    // Truncated or flipped snapshots are typed errors.
    let bytes = b.to_bytes();
    for cut in [0, 1, 2, 100, bytes.len() - 1] {
        assert!(Session::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
    }
    let mut bad = bytes.to_vec();
    bad[0] = 9;
    assert!(matches!(Session::from_bytes(&bad), Err(DecodeError::UnsupportedVersion { .. })));
}

#[test]
fn skipping_more_than_the_chain_limit_is_refused_without_change() {
    let mut rng = Seeded::new(7);
    let (mut a, b) = pair(&mut rng);
    for _ in 0..skipped::MAX_SKIP_PER_CHAIN + 1 {
        send(&mut a, b".", &mut rng);
    }
    let far = send(&mut a, b"far", &mut rng);
    assert!(matches!(b.decrypt(&far, T0), Err(DecryptError::TooManySkipped { .. })));
    assert_eq!(b.skipped_keys(), 0);
}

#[test]
fn skipped_keys_expire_with_the_message_ttl() {
    let mut rng = Seeded::new(8);
    let (mut a, mut b) = pair(&mut rng);
    let late = send(&mut a, b"late", &mut rng);
    let m = send(&mut a, b"now", &mut rng);
    recv(&mut b, &m);
    assert_eq!(b.skipped_keys(), 1);
    let later = T0.saturating_add(skipped::SKIPPED_TTL);
    assert_eq!(b.decrypt(&late, later).unwrap_err(), DecryptError::Duplicate);
    assert_eq!(recv(&mut b, &late), b"late", "before the TTL it opens");
}

#[test]
fn post_quantum_steps_happen_on_the_chain_cadence_and_cost_what_0051_says() {
    let mut rng = Seeded::new(9);
    let (mut a, mut b) = pair(&mut rng);
    let mut big = Vec::new();
    for turn in 0..(2 * pq::PQ_EVERY_CHAINS + 4) {
        let m = send(&mut b, b"ping", &mut rng);
        if m.len() > 200 {
            big.push((turn, 'b', m.len()));
        }
        recv(&mut a, &m);
        let m = send(&mut a, b"pong", &mut rng);
        if m.len() > 200 {
            big.push((turn, 'a', m.len()));
        }
        recv(&mut b, &m);
    }
    // Bob's chains reach the cadence first (his first chain came right after the
    // handshake): one offer (+1184 bytes), one answer (+1088), twice.
    let sizes: Vec<_> = big.iter().map(|(_, who, len)| (*who, *len)).collect();
    let offer = 4 + wire::OVERHEAD + 1184;
    let answer = 4 + wire::OVERHEAD + 1088;
    assert_eq!(sizes, [('b', offer), ('a', answer), ('b', offer), ('a', answer)], "{big:?}");
    assert!(!a.pq_offer_open() && !b.pq_offer_open());
}

#[test]
fn an_open_offer_is_repeated_until_answered_and_the_time_bound_starts_one() {
    let mut rng = Seeded::new(10);
    let (mut a, mut b) = pair(&mut rng);
    let day = T0.saturating_add(pq::PQ_EVERY);
    let r = send(&mut b, b"r", &mut rng);
    recv(&mut a, &r);
    let offer = a.encrypt(b"o", day, &mut rng).unwrap();
    assert!(offer.next.pq_offer_open());
    assert!(offer.bytes.len() > 1184);
    a = offer.next;
    // The same chain keeps offering; Bob reads only the second message.
    let second = send(&mut a, b"o2", &mut rng);
    assert!(second.len() > 1184);
    assert_eq!(recv(&mut b, &second), b"o2");
    let answer = send(&mut b, b"a", &mut rng);
    assert!(answer.len() > 1088 && answer.len() < 1184 + 100);
    recv(&mut a, &answer);
    assert!(!a.pq_offer_open());
    assert_eq!(recv(&mut b, &offer.bytes), b"o");
}

#[test]
fn an_offer_rides_only_the_first_messages_of_a_long_chain() {
    let mut rng = Seeded::new(13);
    let (mut a, mut b) = pair(&mut rng);
    let r = send(&mut b, b"r", &mut rng);
    recv(&mut a, &r);
    let day = T0.saturating_add(pq::PQ_EVERY);
    let sizes: Vec<usize> = (0..12)
        .map(|_| {
            let m = a.encrypt(b"monologue", day, &mut rng).unwrap();
            a = m.next;
            m.bytes.len()
        })
        .collect();
    let big = sizes.iter().filter(|len| **len > 1184).count();
    assert_eq!(big, pq::OFFER_MESSAGES as usize, "{sizes:?}");
    // Bob sees only message 9 of that chain (the first 8, with the offer, are lost):
    // he does not answer, and Alice's next chain offers again.
    let late = a.encrypt(b"9", day, &mut rng).unwrap();
    a = late.next;
    assert_eq!(recv(&mut b, &late.bytes), b"9");
    let r = send(&mut b, b"no answer", &mut rng);
    assert!(r.len() < 200, "nothing to answer");
    recv(&mut a, &r);
    assert!(a.pq_offer_open());
    let again = send(&mut a, b"offer again", &mut rng);
    assert!(again.len() > 1184);
    recv(&mut b, &again);
    let answer = send(&mut b, b"answer", &mut rng);
    assert!(answer.len() > 1088);
    recv(&mut a, &answer);
    assert!(!a.pq_offer_open());
}

#[test]
fn debug_output_holds_no_secret() {
    let mut rng = Seeded::new(11);
    let (a, _) = pair(&mut rng);
    let text = format!("{a:?}");
    assert_eq!(text, "Session { initiator: true, .. }");
}

/// Replays given bytes for the first draws, then a different seeded stream: a thief
/// that knows some of a party's randomness (what breaking X25519 gives) and not the
/// rest.
struct Replay(Vec<[u8; 32]>, Seeded);

impl crate::Random for Replay {
    fn fill(&mut self, out: &mut [u8]) {
        match self.0.pop() {
            Some(known) if out.len() == 32 => out.copy_from_slice(&known),
            _ => self.1.fill(out),
        }
    }
}

/// A thief who stole Bob's state *and* breaks X25519 (a quantum attacker: every
/// ratchet secret from its public key) follows the ratchet through any number of DH
/// steps — until one post-quantum step, whose ML-KEM secret the thief lacks.
#[test]
fn a_thief_who_breaks_x25519_is_locked_out_by_the_post_quantum_step() {
    let mut rng = Seeded::new(12);
    let (mut a, mut b) = pair(&mut rng);
    let r = send(&mut b, b"warm", &mut rng);
    recv(&mut a, &r);
    let mut thief = b.clone();
    let mut garbage = Seeded::new(999);
    // Bob's turn: the thief redoes Bob's sending step with Bob's new ratchet secret.
    let follow_bob = |thief: &mut Session, bob: &Session, garbage: &mut Seeded, at: Timestamp| {
        let known = bob.state.dhs.to_bytes();
        let mut replay = Replay(vec![known], Seeded::new(garbage.next_u64()));
        *thief = thief.encrypt(b"", at, &mut replay).unwrap().next;
    };
    // Phase 1: turns without a post-quantum step. The thief reads everything.
    for i in 0..5u8 {
        let m = send(&mut a, &[i], &mut rng);
        assert_eq!(recv(&mut thief, &m), [i], "the thief follows DH steps");
        recv(&mut b, &m);
        let r = send(&mut b, &[i], &mut rng);
        follow_bob(&mut thief, &b, &mut garbage, T0);
        assert!(thief.state.rk == b.state.rk, "same root key as Bob");
        recv(&mut a, &r);
    }
    // Phase 2: a day later Alice offers a fresh ML-KEM key, Bob answers.
    let day = T0.saturating_add(pq::PQ_EVERY);
    let offer = a.encrypt(b"offer", day, &mut rng).unwrap();
    a = offer.next;
    assert!(a.pq_offer_open());
    assert_eq!(thief.decrypt(&offer.bytes, day).unwrap().plaintext.as_slice(), b"offer");
    thief = thief.decrypt(&offer.bytes, day).unwrap().next;
    b = b.decrypt(&offer.bytes, day).unwrap().next;
    let answer = b.encrypt(b"answer", day, &mut rng).unwrap();
    b = answer.next;
    follow_bob(&mut thief, &b, &mut garbage, day);
    assert!(thief.state.rk != b.state.rk, "the KEM secret is not the thief's");
    a = a.decrypt(&answer.bytes, day).unwrap().next;
    assert!(!a.pq_offer_open());
    // From now on the thief reads nothing, even knowing every X25519 secret.
    for i in 0..4u8 {
        let m = a.encrypt(&[i], day, &mut rng).unwrap();
        a = m.next;
        let mut t = thief.clone();
        t.state.dhs = b.state.dhs.clone();
        assert!(t.decrypt(&m.bytes, day).is_err(), "thief opened {i}");
        b = b.decrypt(&m.bytes, day).unwrap().next;
        let r = b.encrypt(&[i], day, &mut rng).unwrap();
        b = r.next;
        follow_bob(&mut thief, &b, &mut garbage, day);
        a = a.decrypt(&r.bytes, day).unwrap().next;
    }
}
