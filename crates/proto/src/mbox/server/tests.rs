//! The server's rules on a virtual clock: every time below is unix ms fed by the test.

use communitas_crypto::envelope::Letter;
use communitas_crypto::{Identity, Kind};
use communitas_types::MessageId;

use super::*;
use crate::random::Seeded;
use communitas_crypto::Envelope;

/// A peer: its binary form is what the fetch signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Peer(u16);

impl From<Peer> for Vec<u8> {
    fn from(p: Peer) -> Self {
        [b"peer".as_slice(), &p.0.to_be_bytes()].concat()
    }
}

const SERVER: Peer = Peer(1000);
const T0: u64 = 1_780_000_000_000;

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

fn alice() -> Identity {
    Identity::from_seed_bytes([1; 32], [11; 32])
}

fn bob() -> Identity {
    Identity::from_seed_bytes([2; 32], [12; 32])
}

struct Harness {
    server: Server<Peer>,
    rng: Seeded,
    next: u64,
}

impl Harness {
    fn new(config: Config) -> Self {
        let own = Identity::from_seed_bytes([9; 32], [19; 32]).public().mailbox_id();
        Self { server: Server::new(config, SERVER, own), rng: Seeded::new(5), next: 0 }
    }

    fn serving() -> Self {
        Self::new(Config::new(true))
    }

    fn request(&mut self, peer: Peer, request: MboxRequest, now: Timestamp) -> Vec<Output<Peer>> {
        self.next += 1;
        let input = Input::Request { peer, request_id: RequestId(self.next), request };
        self.server.handle(input, now, &mut self.rng).collect()
    }

    /// The one answer to a request that needs no store work.
    fn answer(&mut self, peer: Peer, request: MboxRequest, now: Timestamp) -> MboxResponse {
        match self.request(peer, request, now).as_slice() {
            [Output::Respond { request_id, response }] if *request_id == RequestId(self.next) => {
                response.clone()
            }
            other => panic!("expected one answer, got {other:?}"),
        }
    }

    /// The one piece of store work a request asks for.
    fn work(&mut self, peer: Peer, request: MboxRequest, now: Timestamp) -> Work<Peer> {
        match self.request(peer, request, now).as_slice() {
            [Output::Store(work)] => work.clone(),
            other => panic!("expected store work, got {other:?}"),
        }
    }

    fn done(
        &mut self,
        request_id: RequestId,
        outcome: Outcome,
        now: Timestamp,
    ) -> Vec<Output<Peer>> {
        self.server.handle(Input::StoreDone { request_id, outcome }, now, &mut self.rng).collect()
    }

    fn tick(&mut self, now: Timestamp) -> Vec<Output<Peer>> {
        self.server.handle(Input::Tick, now, &mut self.rng).collect()
    }

    fn nonce(&mut self, peer: Peer, mailbox: MailboxId, now: Timestamp) -> [u8; 32] {
        match self.answer(peer, MboxRequest::Challenge { mailbox }, now) {
            MboxResponse::Nonce(n) => n,
            other => panic!("no nonce: {other:?}"),
        }
    }

    /// A fetch by `peer` as `owner` with `nonce`, signed as the layout says.
    fn fetch(
        &mut self,
        peer: Peer,
        owner: &Identity,
        nonce: [u8; 32],
        now: Timestamp,
    ) -> Vec<Output<Peer>> {
        let request = fetch_request(peer, owner, nonce, 1 << 20);
        self.request(peer, request, now)
    }

    /// Proves `owner`'s mailbox for `peer` at `now`: the session opens.
    fn open_session(&mut self, peer: Peer, owner: &Identity, now: Timestamp) {
        let nonce = self.nonce(peer, owner.public().mailbox_id(), now);
        assert!(is_fetch(&self.fetch(peer, owner, nonce, now)));
    }

    fn ack(&mut self, peer: Peer, mailbox: MailboxId, now: Timestamp) -> Vec<Output<Peer>> {
        self.request(peer, MboxRequest::Ack { mailbox, hashes: vec![[7; 32]] }, now)
    }
}

fn fetch_request(peer: Peer, owner: &Identity, nonce: [u8; 32], max_bytes: u32) -> MboxRequest {
    let mailbox = owner.public().mailbox_id();
    let requester: Vec<u8> = peer.into();
    let server: Vec<u8> = SERVER.into();
    let signature = owner.sign(&fetch_signed_bytes(&server, &requester, &nonce, &mailbox));
    MboxRequest::Fetch { identity: owner.public().to_bytes(), nonce, signature, max_bytes }
}

fn is_fetch(outputs: &[Output<Peer>]) -> bool {
    matches!(outputs, [Output::Store(Work::Fetch { .. })])
}

fn unauthorized(outputs: &[Output<Peer>]) -> bool {
    matches!(
        outputs,
        [Output::Respond { response: MboxResponse::Refused(Refusal::Unauthorized), .. }]
    )
}

fn envelope_to(recipient: &Identity, n: u8) -> Vec<u8> {
    let letter = Letter {
        message_id: MessageId::from_bytes([n; 16]),
        timestamp: Timestamp::from_millis(T0),
        kind: Kind::Text,
        body: b"hi",
    };
    Envelope::seal_deterministic(&alice(), recipient.public(), letter, &[n; 64], [n; 24])
        .unwrap()
        .to_bytes()
}

#[test]
fn a_nonce_is_good_once_and_for_exactly_60_s() {
    let mut h = Harness::serving();
    let owner = bob();
    let mailbox = owner.public().mailbox_id();
    let nonce = h.nonce(Peer(1), mailbox, at(0));
    assert!(is_fetch(&h.fetch(Peer(1), &owner, nonce, at(59_999))));
    assert!(unauthorized(&h.fetch(Peer(1), &owner, nonce, at(59_999))), "used once");

    let nonce = h.nonce(Peer(1), mailbox, at(100_000));
    assert!(unauthorized(&h.fetch(Peer(1), &owner, nonce, at(160_000))), "60 s later");
    // The stale nonce was taken by that try: it is gone for good.
    assert!(unauthorized(&h.fetch(Peer(1), &owner, nonce, at(160_001))));

    // A new challenge replaces the peer's nonce for that mailbox.
    let old = h.nonce(Peer(1), mailbox, at(200_000));
    let new = h.nonce(Peer(1), mailbox, at(200_001));
    assert_ne!(old, new);
    assert!(unauthorized(&h.fetch(Peer(1), &owner, old, at(200_002))));
}

#[test]
fn a_session_lets_acks_in_for_exactly_600_s_and_not_after() {
    let mut h = Harness::serving();
    let owner = bob();
    let mailbox = owner.public().mailbox_id();
    assert!(unauthorized(&h.ack(Peer(1), mailbox, at(0))), "no session yet");
    h.open_session(Peer(1), &owner, at(1_000));
    match h.ack(Peer(1), mailbox, at(600_999)).as_slice() {
        [Output::Store(Work::Ack { mailbox: m, hashes, .. })] => {
            assert_eq!(*m, mailbox);
            assert_eq!(hashes, &vec![[7; 32]]);
        }
        other => panic!("ack not taken: {other:?}"),
    }
    assert!(unauthorized(&h.ack(Peer(1), mailbox, at(601_000))), "600 s after the fetch");
    // Another peer, or another mailbox, has no session.
    h.open_session(Peer(1), &owner, at(700_000));
    assert!(unauthorized(&h.ack(Peer(2), mailbox, at(700_001))));
    assert!(unauthorized(&h.ack(Peer(1), alice().public().mailbox_id(), at(700_001))));
    // Each proven fetch renews the session.
    h.open_session(Peer(1), &owner, at(1_200_000));
    assert!(!unauthorized(&h.ack(Peer(1), mailbox, at(1_799_999))));
}

#[test]
fn a_fetch_with_another_peers_nonce_or_a_wrong_signature_is_unauthorized() {
    let mut h = Harness::serving();
    let owner = bob();
    let mailbox = owner.public().mailbox_id();
    // Peer 1's nonce, used by peer 2 (signed correctly for peer 2).
    let nonce = h.nonce(Peer(1), mailbox, at(0));
    assert!(unauthorized(&h.fetch(Peer(2), &owner, nonce, at(1))));
    // Signed for peer 2 but sent by peer 1.
    let stolen = fetch_request(Peer(2), &owner, nonce, 1000);
    assert!(unauthorized(&h.request(Peer(1), stolen, at(2))));
    // Signed by someone else for bob's mailbox.
    let nonce = h.nonce(Peer(1), mailbox, at(3));
    let MboxRequest::Fetch { identity, signature: _, .. } =
        fetch_request(Peer(1), &owner, nonce, 9)
    else {
        unreachable!()
    };
    let server: Vec<u8> = SERVER.into();
    let requester: Vec<u8> = Peer(1).into();
    let forged = alice().sign(&fetch_signed_bytes(&server, &requester, &nonce, &mailbox));
    let request = MboxRequest::Fetch { identity, nonce, signature: forged, max_bytes: 9 };
    assert!(unauthorized(&h.request(Peer(1), request, at(4))));
    // The nonce is spent by the failed try: even a good signature now fails.
    assert!(unauthorized(&h.fetch(Peer(1), &owner, nonce, at(5))));
    // A nonce that was never issued.
    assert!(unauthorized(&h.fetch(Peer(1), &owner, [0; 32], at(6))));
    // An identity that does not parse.
    let garbage =
        MboxRequest::Fetch { identity: vec![0xff; 10], nonce, signature: [0; 64], max_bytes: 1 };
    assert_eq!(h.answer(Peer(1), garbage, at(7)), MboxResponse::Refused(Refusal::Invalid));
    // And with everything right, it works.
    let nonce = h.nonce(Peer(1), mailbox, at(8));
    assert!(is_fetch(&h.fetch(Peer(1), &owner, nonce, at(9))));
}

#[test]
fn max_bytes_is_clamped() {
    let mut h = Harness::serving();
    let owner = bob();
    let mailbox = owner.public().mailbox_id();
    for (asked, granted) in [(u32::MAX, MAX_FETCH_BYTES), (100, 100)] {
        let nonce = h.nonce(Peer(1), mailbox, at(0));
        let work = h.work(Peer(1), fetch_request(Peer(1), &owner, nonce, asked), at(1));
        let Work::Fetch { max_bytes, mailbox: m, now, .. } = work else { panic!("{work:?}") };
        assert_eq!((max_bytes, m, now), (granted as usize, mailbox, at(1)));
    }
}

#[test]
fn a_peer_asking_for_many_nonces_only_pushes_out_its_own_oldest() {
    let mut h = Harness::serving();
    let (a, b) = (alice(), bob());
    let bob_nonce = h.nonce(Peer(2), b.public().mailbox_id(), at(0));
    // Peer 1 asks for alice's mailbox, then for 20 more.
    let first = h.nonce(Peer(1), a.public().mailbox_id(), at(1));
    for n in 0..20u8 {
        h.nonce(Peer(1), MailboxId::from_bytes([n; 32]), at(2 + u64::from(n)));
    }
    assert_eq!(h.server.pending().0, NONCES_PER_PEER + 1, "8 of peer 1 and bob's");
    assert!(unauthorized(&h.fetch(Peer(1), &a, first, at(30))), "its own oldest went");
    assert!(is_fetch(&h.fetch(Peer(2), &b, bob_nonce, at(30))), "bob's stayed");
    // Within the bound nothing of its own goes either.
    let first = h.nonce(Peer(1), a.public().mailbox_id(), at(40));
    for n in 0..NONCES_PER_PEER as u8 - 1 {
        h.nonce(Peer(1), MailboxId::from_bytes([100 + n; 32]), at(41));
    }
    assert!(is_fetch(&h.fetch(Peer(1), &a, first, at(42))));
}

#[test]
fn the_global_cap_drops_the_oldest_tenth() {
    let config = Config { max_pending: 100, ..Config::new(true) };
    let mut h = Harness::new(config);
    let owner = bob();
    let mailbox = owner.public().mailbox_id();
    // 100 peers, one nonce each, a millisecond apart: the table is full.
    let nonces: Vec<[u8; 32]> =
        (0..100).map(|p| h.nonce(Peer(p), mailbox, at(u64::from(p)))).collect();
    assert_eq!(h.server.pending().0, 100);
    // One more: the ten oldest go, not everybody's.
    let late = h.nonce(Peer(100), mailbox, at(200));
    assert_eq!(h.server.pending().0, 91);
    assert!(unauthorized(&h.fetch(Peer(9), &owner, nonces[9], at(201))), "among the oldest tenth");
    assert!(is_fetch(&h.fetch(Peer(10), &owner, nonces[10], at(201))), "the eleventh stays");
    assert!(is_fetch(&h.fetch(Peer(99), &owner, nonces[99], at(201))));
    assert!(is_fetch(&h.fetch(Peer(100), &owner, late, at(201))));
    // Stale entries go first: after 60 s a new nonce finds room without dropping any.
    let _ = h.nonce(Peer(200), mailbox, at(100_000));
    assert_eq!(h.server.pending().0, 1);
}

#[test]
fn sessions_are_bounded_per_peer() {
    let config = Config { sessions_per_peer: 2, ..Config::new(true) };
    let mut h = Harness::new(config);
    let ids: Vec<Identity> =
        (0..3).map(|n| Identity::from_seed_bytes([30 + n; 32], [40 + n; 32])).collect();
    for (n, id) in ids.iter().enumerate() {
        h.open_session(Peer(1), id, at(n as u64));
    }
    assert_eq!(h.server.pending().1, 2);
    assert!(unauthorized(&h.ack(Peer(1), ids[0].public().mailbox_id(), at(10))), "oldest went");
    assert!(!unauthorized(&h.ack(Peer(1), ids[2].public().mailbox_id(), at(10))));
}

#[test]
fn a_replica_never_outlives_its_original() {
    let mut h = Harness::serving();
    let envelope = envelope_to(&bob(), 1);
    let ttl = ENVELOPE_TTL.as_millis() as u64;
    // Returns when the kept envelope expires and whether it is charged as a copy (to
    // the holder's replica quota) rather than a put (to its sender quota).
    let work = |h: &mut Harness, request| match h.work(Peer(3), request, at(0)) {
        Work::Put { expires_at, replica, .. } => (expires_at, replica),
        other => panic!("{other:?}"),
    };
    assert_eq!(work(&mut h, MboxRequest::Put { envelope: envelope.clone() }), (at(ttl), false));
    let copy = MboxRequest::Replicate { expires_at: T0 + ttl, envelope: envelope.clone() };
    assert_eq!(work(&mut h, copy), (at(ttl), true));
    let put = |h: &mut Harness, request| work(h, request).0;
    let sooner = MboxRequest::Replicate { expires_at: T0 + 1_000, envelope: envelope.clone() };
    assert_eq!(put(&mut h, sooner), at(1_000), "the original expires sooner");
    let later = MboxRequest::Replicate { expires_at: T0 + 2 * ttl, envelope: envelope.clone() };
    assert_eq!(put(&mut h, later), at(ttl), "our own TTL is the longest");
    let expired = MboxRequest::Replicate { expires_at: T0, envelope };
    assert_eq!(h.answer(Peer(3), expired, at(0)), MboxResponse::Refused(Refusal::Invalid));
}

#[test]
fn puts_are_keyed_by_their_hash_and_charged_to_the_sending_peer() {
    let mut h = Harness::serving();
    let envelope = envelope_to(&bob(), 2);
    let Work::Put { hash, mailbox, sender, now, envelope: kept, .. } =
        h.work(Peer(4), MboxRequest::Put { envelope: envelope.clone() }, at(5))
    else {
        panic!("not a put")
    };
    assert_eq!(hash, *blake3::hash(&envelope).as_bytes());
    assert_eq!((mailbox, sender, now), (bob().public().mailbox_id(), Peer(4), at(5)));
    assert_eq!(kept, envelope);
    let again = h.work(Peer(5), MboxRequest::Put { envelope: envelope.clone() }, at(6));
    assert!(
        matches!(again, Work::Put { hash: h2, .. } if h2 == hash),
        "same key: the store dedups"
    );
    let other = h.work(Peer(5), MboxRequest::Put { envelope: envelope_to(&bob(), 3) }, at(6));
    assert!(matches!(other, Work::Put { hash: h3, .. } if h3 != hash));
    let broken = MboxRequest::Put { envelope: vec![1, 2, 3] };
    assert_eq!(h.answer(Peer(4), broken, at(7)), MboxResponse::Refused(Refusal::Invalid));
}

#[test]
fn store_outcomes_map_to_answers_and_metrics() {
    let mut h = Harness::serving();
    let mailbox = bob().public().mailbox_id();
    let cases = [
        (PutOutcome::Stored, MboxResponse::Stored, None),
        (PutOutcome::AlreadyStored, MboxResponse::Stored, None),
        (PutOutcome::AlreadyAcked, MboxResponse::Stored, Some(Metric::AckedRefused(1))),
        (
            PutOutcome::MailboxFull,
            MboxResponse::Refused(Refusal::MailboxFull),
            Some(Metric::MailboxFull),
        ),
        (
            PutOutcome::SenderOverQuota,
            MboxResponse::Refused(Refusal::SenderOverQuota),
            Some(Metric::SenderOverQuota),
        ),
        (
            PutOutcome::ServerFull,
            MboxResponse::Refused(Refusal::MailboxFull),
            Some(Metric::ServerFull),
        ),
        (
            PutOutcome::Failed,
            MboxResponse::Refused(Refusal::Unavailable),
            Some(Metric::Unavailable),
        ),
    ];
    for (outcome, response, metric) in cases {
        let out = h.done(RequestId(7), Outcome::Put { mailbox, outcome }, at(0));
        let mut expected: Vec<Output<Peer>> = metric.map(Output::Count).into_iter().collect();
        expected.push(Output::Respond { request_id: RequestId(7), response });
        assert_eq!(out, expected, "{outcome:?}");
    }
    let list = vec![([1; 32], vec![2; 10])];
    let answers = [
        (Outcome::Fetched(list.clone()), vec![], MboxResponse::Envelopes(list)),
        (Outcome::Acked(3), vec![], MboxResponse::Acked(3)),
        (
            Outcome::Wanted { hashes: vec![[4; 32]], acked: 2 },
            vec![Output::Count(Metric::AckedRefused(2))],
            MboxResponse::Wanted(vec![[4; 32]]),
        ),
        (Outcome::Wanted { hashes: vec![], acked: 0 }, vec![], MboxResponse::Wanted(vec![])),
        (Outcome::Failed, vec![], MboxResponse::Refused(Refusal::Unavailable)),
    ];
    for (outcome, mut expected, response) in answers {
        expected.push(Output::Respond { request_id: RequestId(8), response });
        assert_eq!(h.done(RequestId(8), outcome, at(0)), expected);
    }
    // An offer asks the store by hash.
    let offer = MboxRequest::Offer { mailbox, hashes: vec![[5; 32]] };
    assert!(
        matches!(h.work(Peer(1), offer, at(0)), Work::Wanted { hashes, .. } if hashes == vec![[5; 32]])
    );
}

#[test]
fn notifications_go_only_to_owners_with_live_sessions() {
    let mut h = Harness::serving();
    let owner = bob();
    let mailbox = owner.public().mailbox_id();
    let notified = |out: &[Output<Peer>]| -> Vec<Peer> {
        out.iter()
            .filter_map(|o| match o {
                Output::Notify { owner, mailbox: m } if *m == mailbox => Some(*owner),
                Output::Notify { .. } => panic!("a notification for another mailbox"),
                _ => None,
            })
            .collect()
    };
    let stored = Outcome::Put { mailbox, outcome: PutOutcome::Stored };
    assert!(notified(&h.done(RequestId(1), stored.clone(), at(0))).is_empty(), "no session yet");
    h.open_session(Peer(1), &owner, at(1_000));
    // Peer 2 only asked for a nonce: not proven, not told.
    h.nonce(Peer(2), mailbox, at(1_000));
    assert_eq!(notified(&h.done(RequestId(2), stored.clone(), at(2_000))), vec![Peer(1)]);
    let again = Outcome::Put { mailbox, outcome: PutOutcome::AlreadyStored };
    assert_eq!(notified(&h.done(RequestId(3), again, at(2_000))), vec![Peer(1)]);
    // Not kept here, or already delivered: nobody is told.
    for outcome in [PutOutcome::AlreadyAcked, PutOutcome::MailboxFull, PutOutcome::Failed] {
        assert!(
            notified(&h.done(RequestId(4), Outcome::Put { mailbox, outcome }, at(2_000)))
                .is_empty()
        );
    }
    // Another mailbox's put tells bob nothing.
    let other =
        Outcome::Put { mailbox: alice().public().mailbox_id(), outcome: PutOutcome::Stored };
    assert!(
        h.done(RequestId(5), other, at(2_000)).iter().all(|o| !matches!(o, Output::Notify { .. }))
    );
    // The session ended: nobody is told.
    assert!(notified(&h.done(RequestId(6), stored.clone(), at(601_000))).is_empty());
    // Many devices of the owner: at most NOTIFY_PER_PUT, the most recent first.
    for p in 10..30u16 {
        h.open_session(Peer(p), &owner, at(700_000 + u64::from(p)));
    }
    let told = notified(&h.done(RequestId(7), stored, at(800_000)));
    let expected: Vec<Peer> = (22..30).rev().map(Peer).collect();
    assert_eq!(told, expected);
}

#[test]
fn the_sweep_wakes_every_600_s() {
    let mut h = Harness::serving();
    let sweep = |at: Timestamp| Output::Store(Work::Expire { now: at });
    assert_eq!(h.tick(at(0)), vec![sweep(at(0)), Output::WakeAt(at(600_000))], "at start");
    assert_eq!(h.tick(at(599_999)), vec![Output::WakeAt(at(600_000))], "not yet");
    assert_eq!(h.tick(at(600_000)), vec![sweep(at(600_000)), Output::WakeAt(at(1_200_000))]);
    // A late tick sweeps and schedules from then.
    assert_eq!(h.tick(at(1_500_000)), vec![sweep(at(1_500_000)), Output::WakeAt(at(2_100_000))]);
    // Ticks also forget stale nonces.
    h.nonce(Peer(1), bob().public().mailbox_id(), at(1_500_000));
    h.tick(at(1_560_000));
    assert_eq!(h.server.pending(), (0, 0));
}

#[test]
fn a_node_that_is_not_a_server_answers_not_server_but_hears_notifications() {
    let mut h = Harness::new(Config::new(false));
    let mailbox = bob().public().mailbox_id();
    let refused = MboxResponse::Refused(Refusal::NotServer);
    assert_eq!(h.answer(Peer(1), MboxRequest::Challenge { mailbox }, at(0)), refused);
    let put = MboxRequest::Put { envelope: envelope_to(&bob(), 1) };
    assert_eq!(h.answer(Peer(1), put, at(0)), refused);
    let offer = MboxRequest::Offer { mailbox, hashes: vec![] };
    assert_eq!(h.answer(Peer(1), offer, at(0)), refused);
    assert!(h.tick(at(0)).is_empty(), "no sweep, no timer");
    // A notification for another mailbox is answered, nothing more.
    assert_eq!(h.answer(Peer(1), MboxRequest::Notify { mailbox }, at(0)), MboxResponse::Acked(0));
    // For our own: the fetcher wakes.
    let own = Identity::from_seed_bytes([9; 32], [19; 32]).public().mailbox_id();
    let out = h.request(Peer(1), MboxRequest::Notify { mailbox: own }, at(0));
    assert_eq!(
        out,
        vec![
            Output::WakeFetcher,
            Output::Respond { request_id: RequestId(h.next), response: MboxResponse::Acked(0) }
        ]
    );
}

/// A device's signed one-time prekeys: `n` X25519 and one ML-KEM-768.
fn one_time(device: &communitas_crypto::DeviceKey, n: u32) -> Vec<Vec<u8>> {
    use communitas_crypto::dh::DhSecret;
    use communitas_crypto::mlkem::KemSecret;
    use communitas_crypto::prekey::{OneTimeKey, OneTimePrekey, PrekeyId};
    let mut keys: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let key = OneTimeKey::Dh(DhSecret::from_bytes([i as u8 + 1; 32]).public());
            OneTimePrekey::sign(device, PrekeyId(i), key).to_bytes().to_vec()
        })
        .collect();
    let kem = OneTimeKey::Kem(KemSecret::from_seed([3; 64]).public());
    keys.push(OneTimePrekey::sign(device, PrekeyId(100), kem).to_bytes().to_vec());
    keys
}

#[test]
fn prekeys_are_deposited_only_by_the_owner_and_only_signed_by_their_device() {
    let mut h = Harness::serving();
    let owner = alice();
    let mailbox = owner.public().mailbox_id();
    let device = communitas_crypto::DeviceKey::from_secret_bytes([7; 32]);
    let keys = one_time(&device, 2);
    let deposit = |prekeys: Vec<Vec<u8>>| MboxRequest::Deposit {
        mailbox,
        device: device.public_bytes(),
        prekeys,
    };

    // Without a fetch session for the mailbox: refused, nothing asked of the store.
    assert!(unauthorized(&h.request(Peer(1), deposit(keys.clone()), at(0))));
    h.open_session(Peer(1), &owner, at(0));
    // Another peer's session does not count.
    assert!(unauthorized(&h.request(Peer(2), deposit(keys.clone()), at(1))));

    match h.work(Peer(1), deposit(keys.clone()), at(1)) {
        Work::Deposit { mailbox: m, device: d, prekeys, expires_at, .. } => {
            assert_eq!((m, d), (mailbox, device.public_bytes()));
            let kinds: Vec<(u8, u32)> = prekeys.iter().map(|p| (p.kind, p.id)).collect();
            assert_eq!(kinds, [(1, 0), (1, 1), (2, 100)]);
            assert_eq!(prekeys[2].bytes, keys[2], "held as it came");
            assert_eq!(expires_at, at(1).saturating_add(PREKEY_TTL));
        }
        other => panic!("{other:?}"),
    }

    // One key signed by another device (or altered) refuses the whole deposit.
    let other = communitas_crypto::DeviceKey::from_secret_bytes([8; 32]);
    let mut mixed = keys.clone();
    mixed.push(one_time(&other, 1).remove(0));
    let refused = h.answer(Peer(1), deposit(mixed), at(2));
    assert_eq!(refused, MboxResponse::Refused(Refusal::Invalid));
    let mut altered = keys;
    altered[0][10] ^= 1;
    assert_eq!(h.answer(Peer(1), deposit(altered), at(2)), refused);

    // The store's answer goes back as is; a full store is counted.
    let held = h.done(RequestId(7), Outcome::Held { dh: 2, kem: 1 }, at(3));
    assert!(matches!(
        held.as_slice(),
        [Output::Respond { response: MboxResponse::Held { dh: 2, kem: 1 }, .. }]
    ));
    let full = h.done(RequestId(8), Outcome::HeldFull, at(3));
    assert!(matches!(
        full.as_slice(),
        [
            Output::Count(Metric::PrekeysFull),
            Output::Respond { response: MboxResponse::Refused(Refusal::MailboxFull), .. }
        ]
    ));
}

#[test]
fn anyone_may_claim_and_an_empty_claim_is_counted() {
    let mut h = Harness::serving();
    let mailbox = bob().public().mailbox_id();
    let claim = MboxRequest::Claim { mailbox, device: [4; 32] };
    match h.work(Peer(3), claim, at(0)) {
        Work::Claim { mailbox: m, device, now, .. } => {
            assert_eq!((m, device, now), (mailbox, [4; 32], at(0)));
        }
        other => panic!("{other:?}"),
    }
    let given = h.done(RequestId(1), Outcome::Claimed(vec![vec![1], vec![2]]), at(0));
    assert!(matches!(
        given.as_slice(),
        [Output::Count(Metric::PrekeysClaimed(2)), Output::Respond { response: MboxResponse::Prekeys(p), .. }]
            if p.len() == 2
    ));
    let none = h.done(RequestId(2), Outcome::Claimed(vec![]), at(0));
    assert!(matches!(
        none.as_slice(),
        [Output::Count(Metric::PrekeysExhausted), Output::Respond { response: MboxResponse::Prekeys(p), .. }]
            if p.is_empty()
    ));
    // A node that keeps no mailboxes holds no prekeys either.
    let mut not = Harness::new(Config::new(false));
    let claim = MboxRequest::Claim { mailbox, device: [4; 32] };
    assert_eq!(not.answer(Peer(3), claim, at(0)), MboxResponse::Refused(Refusal::NotServer));
}
