//! Entry points for the fuzz targets in `fuzz/` and for the test that replays their
//! corpora (`tests/it/fuzz_corpus.rs`). Each feeds arbitrary bytes to decoders a
//! remote peer can reach; none may panic, whatever the input.

use std::sync::OnceLock;
use std::time::Duration;

use communitas_crypto::dh::DhSecret;
use communitas_crypto::handshake::ResponderKeys;
use communitas_crypto::identity::DeviceKey;
use communitas_crypto::mlkem::KemSecret;
use communitas_crypto::prekey::{PrekeyBundle, PrekeyId};
use communitas_types::Timestamp;

use crate::presence::{Status, wire};
use crate::random::Seeded;
use crate::session::prekeys::PrekeySecrets;
use crate::session::{Peeked, Session, peek};

/// Decodes `bytes` as a presence body and as a typing body (the two bodies a
/// contact's sealed update carries). A body that decodes must encode back to the
/// same bytes (checked with debug assertions, as fuzzing builds have them). Returns
/// which of the two decoded.
pub fn presence(bytes: &[u8]) -> (bool, bool) {
    let presence = wire::decode_presence(bytes);
    if let Ok(body) = &presence {
        debug_assert_eq!(wire::encode_presence(body.status, body.interval), bytes);
    }
    let typing = wire::decode_typing(bytes);
    if let Ok(state) = typing {
        debug_assert_eq!(wire::encode_typing(state), bytes);
    }
    (presence.is_ok(), typing.is_ok())
}

const T0: Timestamp = Timestamp::from_millis(1_780_000_000_000);

/// The fixed responder the session target opens messages as: its prekey secrets,
/// its session (after Alice's second message and its own reply), and the seeds
/// (messages that session opens, and both sides' states).
struct SessionFixture {
    device: DeviceKey,
    spk: DhSecret,
    pq: KemSecret,
    bob: Option<Session>,
    seeds: Vec<(String, Vec<u8>)>,
}

fn session_fixture() -> &'static SessionFixture {
    static FIXTURE: OnceLock<SessionFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let device = DeviceKey::from_secret_bytes([40; 32]);
        let spk = DhSecret::from_bytes([41; 32]);
        let pq = KemSecret::from_seed([42; 64]);
        let mut fixture = SessionFixture { device, spk, pq, bob: None, seeds: Vec::new() };
        fixture.build();
        fixture
    })
}

impl SessionFixture {
    fn keys(&self) -> ResponderKeys<'_> {
        ResponderKeys {
            device: &self.device,
            signed_prekey: &self.spk,
            kem_prekey: &self.pq,
            one_time_prekey: None,
        }
    }

    /// Alice sends m0, m1; Bob accepts m1 and replies; Alice reads it and sends a
    /// warm message and, a day later, one carrying a post-quantum offer. Bob's
    /// state is the one after his reply: m0, the warm one and the offer open with it.
    fn build(&mut self) {
        let mut rng = Seeded::new(40);
        let bundle =
            PrekeyBundle::sign(&self.device, T0, (PrekeyId(1), &self.spk), (PrekeyId(2), &self.pq));
        let alice = DeviceKey::from_secret_bytes([43; 32]);
        let Ok(a) = Session::initiate(&alice, &bundle, None, None, T0, &mut rng) else { return };
        let Ok(m0) = a.encrypt(b"m0", T0, &mut rng) else { return };
        let Ok(m1) = m0.next.encrypt(b"m1", T0, &mut rng) else { return };
        let Ok(accepted) = Session::accept(&self.keys(), &m1.bytes, T0) else { return };
        let Ok(reply) = accepted.session.encrypt(b"r", T0, &mut rng) else { return };
        let Ok(read) = m1.next.decrypt(&reply.bytes, T0) else { return };
        let Ok(warm) = read.next.encrypt(b"warm", T0, &mut rng) else { return };
        let day = T0.saturating_add(Duration::from_secs(86_400));
        let Ok(offer) = warm.next.encrypt(b"offer", day, &mut rng) else { return };
        self.seeds = vec![
            ("seed-initial".into(), m0.bytes),
            ("seed-warm".into(), warm.bytes),
            ("seed-offer".into(), offer.bytes),
            ("seed-state-bob".into(), reply.next.to_bytes().to_vec()),
            ("seed-state-alice".into(), offer.next.to_bytes().to_vec()),
        ];
        let mut prekeys = PrekeySecrets::new(T0, &mut rng);
        prekeys.mint_one_time(&self.device, 2, &mut rng);
        self.seeds.push(("seed-state-prekeys".into(), prekeys.to_bytes().to_vec()));
        self.bob = Some(reply.next);
    }
}

/// Reads `bytes` as a session message — framing, init message, and opening it with
/// a fixed session (or, for an initial message, accepting it with fixed prekeys) —
/// and as session state and as prekey secrets, each of which must encode back to
/// the same bytes. Returns whether it opened, and whether it was valid state.
pub fn session(bytes: &[u8]) -> (bool, bool) {
    let fixture = session_fixture();
    let opened = match peek(bytes) {
        Err(_) => false,
        Ok(peeked) => {
            let accepted = matches!(peeked, Peeked::Initial { .. })
                && Session::accept(&fixture.keys(), bytes, T0).is_ok();
            let decrypted = fixture.bob.as_ref().is_some_and(|s| s.decrypt(bytes, T0).is_ok());
            accepted | decrypted
        }
    };
    let state = Session::from_bytes(bytes);
    if let Ok(state) = &state {
        debug_assert_eq!(state.to_bytes().as_slice(), bytes);
    }
    let prekeys = PrekeySecrets::from_bytes(bytes);
    if let Ok(prekeys) = &prekeys {
        debug_assert_eq!(prekeys.to_bytes().as_slice(), bytes);
    }
    (opened, state.is_ok() | prekeys.is_ok())
}

/// Valid inputs for the `session` corpus: `(name, bytes)`.
pub fn session_seeds() -> Vec<(String, Vec<u8>)> {
    session_fixture().seeds.clone()
}

/// Valid inputs to start each corpus from: `(target, name, bytes)`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (status, secs) in
        [(Status::Online, 30), (Status::Away, 1), (Status::Busy, 60), (Status::Offline, 600)]
    {
        let body = wire::encode_presence(status, Duration::from_secs(secs));
        out.push(("presence", format!("seed-{}-{secs}s", status.as_str()), body));
    }
    out.push(("presence", "seed-typing".into(), wire::encode_typing(true)));
    out.push(("presence", "seed-stopped".into(), wire::encode_typing(false)));
    out
}
