//! The responder's flow as the node will run it (docs/protocol.md §11): prekey
//! secrets over time, `peek` and routing by handshake id, accept with the secrets
//! the init message names, commit the session with the consumed one-time prekeys.

use std::collections::HashMap;

use communitas_crypto::identity::DeviceKey;
use communitas_crypto::prekey::{OneTimeKey, ROTATE_AFTER};
use communitas_proto::random::Seeded;
use communitas_proto::session::prekeys::PrekeySecrets;
use communitas_proto::session::{DecryptError, Peeked, Session, peek};
use communitas_types::Timestamp;

use super::{T0, alice_device, send};

/// Bob's device: its prekey secrets and its sessions by handshake id.
struct Device {
    key: DeviceKey,
    prekeys: PrekeySecrets,
    sessions: HashMap<[u8; 32], Session>,
}

impl Device {
    /// One incoming message; commits (prekeys, session) only on success.
    fn receive(&mut self, bytes: &[u8], now: Timestamp) -> Result<Vec<u8>, String> {
        match peek(bytes).map_err(|e| e.to_string())? {
            Peeked::Initial { handshake_id, init } => {
                if let Some(s) = self.sessions.get(&handshake_id) {
                    let out = s.decrypt(bytes, now).map_err(|e| format!("{e:?}"))?;
                    self.sessions.insert(handshake_id, out.next);
                    return Ok(out.plaintext.to_vec());
                }
                let keys = self.prekeys.keys_for(&self.key, &init).map_err(|e| format!("{e:?}"))?;
                let accepted = Session::accept(&keys, bytes, now).map_err(|e| format!("{e:?}"))?;
                let mut prekeys = self.prekeys.clone();
                prekeys.consume(&init);
                // One transaction: the session, the consumed prekeys, the message.
                self.prekeys = prekeys;
                self.sessions.insert(handshake_id, accepted.session);
                Ok(accepted.plaintext.to_vec())
            }
            Peeked::Message => {
                // A plain message: try the sessions with this peer (here: all).
                for (id, s) in &self.sessions {
                    if let Ok(out) = s.decrypt(bytes, now) {
                        let id = *id;
                        self.sessions.insert(id, out.next);
                        return Ok(out.plaintext.to_vec());
                    }
                }
                Err("no session opens it".into())
            }
            _ => Err("unknown kind".into()),
        }
    }
}

#[test]
fn two_initiators_one_time_prekeys_replays_and_a_rotation() {
    let mut rng = Seeded::new(31);
    let key = DeviceKey::from_secret_bytes([0xb0; 32]);
    let mut bob =
        Device { prekeys: PrekeySecrets::new(T0, &mut rng), key, sessions: HashMap::new() };
    let bundle = bob.prekeys.bundle(&bob.key).unwrap();
    let otps = bob.prekeys.mint_one_time(&bob.key, 1, &mut rng);
    let (dh, kem) = (&otps[0], &otps[1]);
    assert!(matches!(dh.key, OneTimeKey::Dh(_)) && matches!(kem.key, OneTimeKey::Kem(_)));

    // Alice gets the one-time prekeys; Carol comes after the supply ran out.
    let mut alice =
        Session::initiate(&alice_device(), &bundle, Some(dh), Some(kem), T0, &mut rng).unwrap();
    let carol_device = DeviceKey::from_secret_bytes([0xc0; 32]);
    let mut carol = Session::initiate(&carol_device, &bundle, None, None, T0, &mut rng).unwrap();
    let a1 = send(&mut alice, b"a1", T0, &mut rng);
    let a2 = send(&mut alice, b"a2", T0, &mut rng);
    let c1 = send(&mut carol, b"c1", T0, &mut rng);
    assert_eq!(bob.receive(&a2, T0).unwrap(), b"a2");
    assert_eq!(bob.prekeys.one_time_left(), (0, 0), "consumed with the session");
    assert_eq!(bob.receive(&c1, T0).unwrap(), b"c1");
    assert_eq!(bob.receive(&a1, T0).unwrap(), b"a1", "routed by handshake id");
    assert_eq!(bob.sessions.len(), 2);
    // A replayed initial message goes to its session and is a duplicate there.
    let err = bob.receive(&a1, T0).unwrap_err();
    assert_eq!(err, format!("{:?}", DecryptError::Duplicate));

    // Bob rotates; Dave still has last week's bundle, and it still opens.
    assert!(bob.prekeys.rotate(T0.saturating_add(ROTATE_AFTER), &mut rng));
    let mut dave = Session::initiate(
        &DeviceKey::from_secret_bytes([0xd0; 32]),
        &bundle,
        None,
        None,
        T0,
        &mut rng,
    )
    .unwrap();
    let later = T0.saturating_add(ROTATE_AFTER);
    let d1 = send(&mut dave, b"d1", later, &mut rng);
    assert_eq!(bob.receive(&d1, later).unwrap(), b"d1");
    assert_eq!(bob.sessions.len(), 3);
}
