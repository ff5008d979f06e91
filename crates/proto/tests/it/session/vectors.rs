//! Golden vectors of the session (`test-vectors/session-v1.json`): a handshake with
//! every prekey, and a conversation that crosses DH and post-quantum steps and
//! delivers out of order, made by the deterministic twins (fixed keys, a seeded
//! `Random`). The test rebuilds the file byte for byte, then opens every stored
//! message with sessions rebuilt from the stored bytes alone.
//! `COMMUNITAS_WRITE_VECTORS=1` rewrites it after a deliberate format change.

use std::time::Duration;

use communitas_crypto::handshake::{self, InitRandomness, ResponderKeys};
use communitas_proto::random::Seeded;
use communitas_proto::session::{Session, wire};
use serde_json::{Value, json};

use super::{Responder, T0, alice_device, recv, send};

const SEED: u64 = 14;

fn handshake_vector() -> Value {
    let r = Responder::new();
    let (opk, pq_opk) = r.one_time();
    let randomness = InitRandomness { ephemeral: [0xe0; 32], kem: [0xe1; 32] };
    let init =
        handshake::initiate(&alice_device(), &r.bundle, Some(&opk), Some(&pq_opk), &randomness)
            .unwrap();
    let keys = ResponderKeys {
        device: &r.device,
        signed_prekey: &r.spk,
        kem_prekey: &r.pq_opk,
        one_time_prekey: Some(&r.opk),
    };
    let done = handshake::respond(&keys, &init.message).unwrap();
    assert_eq!(done.secret.as_bytes(), init.secret.as_bytes());
    json!({
        "init_message_layout": [
            { "field": "version = 1", "offset": 0, "len": 1 },
            { "field": "ephemeral key EK", "offset": 1, "len": 32 },
            { "field": "signed prekey id", "offset": 33, "len": 4 },
            { "field": "ML-KEM prekey id (here the one-time one)", "offset": 37, "len": 4 },
            { "field": "flags (bit 0 ML-KEM one-time, bit 1 X25519 one-time) = 3", "offset": 41, "len": 1 },
            { "field": "X25519 one-time prekey id", "offset": 42, "len": 4 },
            { "field": "ML-KEM-768 ciphertext CT", "offset": 46, "len": 1088 },
            { "field": "identity box: initiator's device key, ChaCha20-Poly1305", "offset": 1134, "len": 48 },
        ],
        "initiator_device_secret": hex::encode([0xa0; 32]),
        "responder_device_secret": hex::encode([0xb0; 32]),
        "signed_prekey_secret": hex::encode(r.spk.to_bytes()),
        "last_resort_seed": hex::encode(r.pq.seed()),
        "one_time_prekey_secret": hex::encode(r.opk.to_bytes()),
        "one_time_kem_seed": hex::encode(r.pq_opk.seed()),
        "bundle": hex::encode(r.bundle.to_bytes()),
        "one_time_prekey": hex::encode(opk.to_bytes()),
        "one_time_kem_prekey": hex::encode(pq_opk.to_bytes()),
        "ephemeral_secret": hex::encode(randomness.ephemeral),
        "kem_randomness": hex::encode(randomness.kem),
        "init_message": hex::encode(init.message.to_bytes()),
        "associated_data": hex::encode(init.associated_data),
        "session_secret": hex::encode(init.secret.as_bytes()),
    })
}

/// The conversation: `(from, text, time offset s, delivered late?)`.
fn conversation() -> Vec<(char, &'static str, u64)> {
    vec![
        ('a', "hello bob", 0),
        ('a', "are you there?", 1),
        ('b', "hi alice", 2),
        ('a', "good", 3),
        ('b', "see you tomorrow", 4),
        // A day later: the time cadence makes Alice offer an ML-KEM key.
        ('a', "morning", 86_400 + 5),
        ('b', "morning to you", 86_400 + 6),
        ('a', "0123456789", 86_400 + 7),
    ]
}

fn ratchet_vector() -> Value {
    let r = Responder::new();
    let mut rng = Seeded::new(SEED);
    let mut alice =
        Session::initiate(&alice_device(), &r.bundle, None, None, T0, &mut rng).unwrap();
    let mut bob: Option<Session> = None;
    let mut messages = Vec::new();
    let mut late = None;
    for (i, (from, text, secs)) in conversation().into_iter().enumerate() {
        let now = T0.saturating_add(Duration::from_secs(secs));
        let bytes = match from {
            'a' => send(&mut alice, text.as_bytes(), now, &mut rng),
            _ => send(bob.as_mut().unwrap(), text.as_bytes(), now, &mut rng),
        };
        // Message 0 is delivered late, after message 1 started Bob's session.
        match (from, bob.as_mut()) {
            ('a', None) if i == 0 => late = Some(bytes.clone()),
            ('a', None) => {
                let (s, plain) = r.accept(&bytes, now);
                assert_eq!(plain, text.as_bytes());
                bob = Some(s);
                let late = late.take().unwrap();
                assert_eq!(recv(bob.as_mut().unwrap(), &late, now).unwrap(), b"hello bob");
            }
            ('a', Some(b)) => assert_eq!(recv(b, &bytes, now).unwrap(), text.as_bytes()),
            _ => assert_eq!(recv(&mut alice, &bytes, now).unwrap(), text.as_bytes()),
        }
        messages.push(json!({
            "from": from.to_string(),
            "time_offset_s": secs,
            "plaintext_utf8": text,
            "message": hex::encode(&bytes),
            "len": bytes.len(),
        }));
    }
    json!({
        "note": "Session::initiate(alice, bundle, no one-time prekeys, T0, Seeded(14)); messages in order, the first delivered after the second; every draw from the one Seeded source in call order",
        "warm_layout": [
            { "field": "version = 1", "offset": 0, "len": 1 },
            { "field": "kind (1 = ratchet message)", "offset": 1, "len": 1 },
            { "field": "sealed header length (u16 BE) = 81", "offset": 2, "len": 2 },
            { "field": "header nonce (XChaCha20-Poly1305)", "offset": 4, "len": 24 },
            { "field": "header ciphertext: ratchet key 32, PN 4, N 4, flags 1", "offset": 28, "len": 41 },
            { "field": "header tag", "offset": 69, "len": 16 },
            { "field": "body ciphertext (ChaCha20-Poly1305)", "offset": 85, "len": 10 },
            { "field": "body tag", "offset": 95, "len": 16 },
        ],
        "t0_ms": T0.as_millis(),
        "seeded_random": SEED,
        "warm_overhead": wire::OVERHEAD,
        "messages": messages,
        "alice_state_after": hex::encode(alice.to_bytes()),
        "bob_state_after": hex::encode(bob.unwrap().to_bytes()),
    })
}

#[test]
fn session_vectors_rebuild_and_open() {
    let file = super::super::vectors::path("session-v1.json");
    let ours = json!({ "handshake": handshake_vector(), "ratchet": ratchet_vector() });
    if std::env::var_os("COMMUNITAS_WRITE_VECTORS").is_some() {
        std::fs::write(&file, serde_json::to_string_pretty(&ours).unwrap() + "\n").unwrap();
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored, ours, "{} differs from the implementation", file.display());

    // From the stored bytes alone, with only Bob's prekey secrets: the initial
    // messages open, in the stored (reversed) order. Later messages need Bob's own
    // ratchet secrets, which the rebuild above checked.
    let r = Responder::new();
    let msgs = stored["ratchet"]["messages"].as_array().unwrap();
    let bytes = |i: usize| hex::decode(msgs[i]["message"].as_str().unwrap()).unwrap();
    let (mut bob, plain) = r.accept(&bytes(1), T0);
    assert_eq!(plain, b"are you there?");
    assert_eq!(recv(&mut bob, &bytes(0), T0).unwrap(), b"hello bob");
    // The stored states parse and re-encode to the same bytes.
    for who in ["alice_state_after", "bob_state_after"] {
        let state = hex::decode(stored["ratchet"][who].as_str().unwrap()).unwrap();
        assert_eq!(Session::from_bytes(&state).unwrap().to_bytes().as_slice(), state.as_slice());
    }
    let warm = &msgs[7];
    assert_eq!(warm["len"], 10 + wire::OVERHEAD);
    // The layouts tile their messages exactly.
    for (layout, len) in [
        (&stored["ratchet"]["warm_layout"], warm["len"].as_u64().unwrap()),
        (&stored["handshake"]["init_message_layout"], 1182),
    ] {
        let mut at = 0;
        for f in layout.as_array().unwrap() {
            assert_eq!(f["offset"].as_u64().unwrap(), at, "{f}");
            at += f["len"].as_u64().unwrap();
        }
        assert_eq!(at, len);
    }
    let init = hex::decode(stored["handshake"]["init_message"].as_str().unwrap()).unwrap();
    assert_eq!(init.len(), 1182);
    assert_eq!(init[41], 3, "both one-time prekeys used");
}
