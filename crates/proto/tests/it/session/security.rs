//! Forward secrecy and post-compromise security, against a thief who gets a
//! device's complete stored state (what `Session::to_bytes` writes).

use communitas_proto::random::Seeded;
use communitas_proto::session::Session;

use super::{Responder, T0, alice_device, recv, send};

fn pair(rng: &mut Seeded) -> (Session, Session, Responder) {
    let responder = Responder::new();
    let (opk, pq_opk) = responder.one_time();
    let mut alice =
        Session::initiate(&alice_device(), &responder.bundle, Some(&opk), Some(&pq_opk), T0, rng)
            .unwrap();
    let first = send(&mut alice, b"hello", T0, rng);
    let (bob, plain) = responder.accept(&first, T0);
    assert_eq!(plain, b"hello");
    (alice, bob, responder)
}

/// Opening `bytes` with either side's state, or anything restored from it, fails.
fn opens_with(states: &[Vec<u8>], bytes: &[u8]) -> bool {
    states.iter().any(|s| Session::from_bytes(s).unwrap().decrypt(bytes, T0).is_ok())
}

#[test]
fn captured_messages_do_not_open_with_both_sides_later_state() {
    let mut rng = Seeded::new(21);
    let (mut alice, mut bob, _) = pair(&mut rng);
    let mut captured = Vec::new();
    for round in 0..3u8 {
        for i in 0..3u8 {
            let m = send(&mut alice, &[round, i], T0, &mut rng);
            recv(&mut bob, &m, T0).unwrap();
            captured.push(m);
        }
        let r = send(&mut bob, &[round, 0xff], T0, &mut rng);
        recv(&mut alice, &r, T0).unwrap();
        captured.push(r);
    }
    // Advance: a round trip after the last captured message.
    let m = send(&mut alice, b"later", T0, &mut rng);
    recv(&mut bob, &m, T0).unwrap();
    let states = vec![alice.to_bytes().to_vec(), bob.to_bytes().to_vec()];
    for (i, c) in captured.iter().enumerate() {
        assert!(!opens_with(&states, c), "captured message {i} opened");
    }
    // Nor does the state hold their plaintext or message keys: no skipped keys.
    assert_eq!((alice.skipped_keys(), bob.skipped_keys()), (0, 0));
}

#[test]
fn a_thief_with_the_state_opens_nothing_after_one_round_trip_each_way() {
    let mut rng = Seeded::new(22);
    let (mut alice, mut bob, _) = pair(&mut rng);
    let r = send(&mut bob, b"warm", T0, &mut rng);
    recv(&mut alice, &r, T0).unwrap();
    // The thief copies Bob's whole state.
    let mut thief = Session::from_bytes(&bob.to_bytes()).unwrap();
    // Before healing the thief reads what Alice sends on chains it can derive.
    let m = send(&mut alice, b"still readable", T0, &mut rng);
    recv(&mut bob, &m, T0).unwrap();
    assert_eq!(recv(&mut thief, &m, T0).unwrap(), b"still readable");
    // Bob answers (a fresh ratchet key the thief lacks), Alice answers back.
    let r = send(&mut bob, b"heal 1", T0, &mut rng);
    recv(&mut alice, &r, T0).unwrap();
    let m = send(&mut alice, b"heal 2", T0, &mut rng);
    recv(&mut bob, &m, T0).unwrap();
    // From here on, nothing either side sends opens with the thief's state, however
    // the thief advances it (it is also given every message in order).
    let mut after = Vec::new();
    for i in 0..4u8 {
        after.push(send(&mut alice, &[b'a', i], T0, &mut rng));
        let last = after.last().unwrap().clone();
        recv(&mut bob, &last, T0).unwrap();
        after.push(send(&mut bob, &[b'b', i], T0, &mut rng));
        let last = after.last().unwrap().clone();
        recv(&mut alice, &last, T0).unwrap();
    }
    let _ = recv(&mut thief, &r, T0);
    let _ = recv(&mut thief, &m, T0);
    for (i, msg) in after.iter().enumerate() {
        assert!(recv(&mut thief, msg, T0).is_err(), "thief opened message {i}");
    }
}
