//! The mailbox server's clocks, probed over the network: a challenge's nonce is good
//! once and for [`NONCE_TTL`] (60 s), and a proven fetch opens a session in which
//! acks are taken for [`SESSION_TTL`] (600 s). The link has no jitter so that the
//! scenario knows to the millisecond when the server sees each frame; each seed
//! starts at another time and draws other nonces.

use std::time::Duration;

use communitas_crypto::Kind;
use communitas_proto::Random;
use communitas_proto::mbox::server::{NONCE_TTL, SESSION_TTL};
use communitas_proto::mbox::{MboxRequest, MboxResponse, Refusal, fetch_signed_bytes};
use communitas_proto::random::Seeded;
use communitas_types::Timestamp;

use super::fixtures::{self, identity, mailbox};
use super::mnode::{Command, Disk, Event, MboxNode};
use super::net::Link;
use super::seed::sweep;
use super::world::{Config, NetError, NodeId, World};

const SERVER: NodeId = NodeId(0);
const OWNER: NodeId = NodeId(1);
const SENDER: NodeId = NodeId(2);
/// One way, exactly.
const LATENCY: Duration = Duration::from_millis(20);

/// Sends `request` from `from` now and runs until its answer is back.
fn ask(
    world: &mut World<MboxNode>,
    from: NodeId,
    request: MboxRequest,
) -> Result<MboxResponse, NetError> {
    let before = world.events_of(from).count();
    world.command(from, Command::Ask(SERVER, request));
    let deadline = world.now().saturating_add(Duration::from_secs(60));
    let answered = |w: &World<MboxNode>| {
        w.events_of(from).skip(before).any(|e| matches!(e, Event::Answer(..)))
    };
    assert!(world.run_until_true(deadline, answered).is_some(), "no answer");
    world
        .events_of(from)
        .skip(before)
        .find_map(|e| if let Event::Answer(_, a) = e { Some(a.clone()) } else { None })
        .expect("just seen")
}

/// A challenge; returns the nonce and the server's time when it issued it.
fn challenge(world: &mut World<MboxNode>) -> ([u8; 32], Timestamp) {
    let sent = world.now();
    match ask(world, OWNER, MboxRequest::Challenge { mailbox: mailbox(OWNER) }) {
        Ok(MboxResponse::Nonce(n)) => (n, sent.saturating_add(LATENCY)),
        other => panic!("a challenge is answered with a nonce: {other:?}"),
    }
}

fn fetch_request(nonce: [u8; 32]) -> MboxRequest {
    let signed = fetch_signed_bytes(&Vec::from(SERVER), &Vec::from(OWNER), &nonce, &mailbox(OWNER));
    MboxRequest::Fetch {
        identity: identity(OWNER).public().to_bytes(),
        nonce,
        signature: identity(OWNER).sign(&signed),
        max_bytes: 1 << 20,
    }
}

/// Runs until `from`'s next frame, sent now, reaches the server at `at`.
fn arrive_at(world: &mut World<MboxNode>, at: Timestamp) {
    world.run_until(at.saturating_sub(LATENCY));
}

fn put(world: &mut World<MboxNode>, rng: &mut Seeded) -> [u8; 32] {
    let id = fixtures::message_id(rng);
    let envelope = fixtures::seal(SENDER, OWNER, id, world.now(), Kind::Text, b"hello", rng);
    let hash = *blake3::hash(&envelope).as_bytes();
    assert_eq!(ask(world, SENDER, MboxRequest::Put { envelope }), Ok(MboxResponse::Stored));
    hash
}

fn fetched(answer: Result<MboxResponse, NetError>) -> Vec<[u8; 32]> {
    match answer {
        Ok(MboxResponse::Envelopes(list)) => list.into_iter().map(|(h, _)| h).collect(),
        other => panic!("a proven fetch is answered with envelopes: {other:?}"),
    }
}

const UNAUTHORIZED: Result<MboxResponse, NetError> =
    Ok(MboxResponse::Refused(Refusal::Unauthorized));

#[test]
fn nonces_and_sessions_expire() {
    sweep("nonces_and_sessions_expire", |seed| {
        let link = Link { latency: LATENCY, jitter: Duration::ZERO, loss: 0.0 };
        let config = Config { link, ..Config::default() };
        let servers = [SERVER];
        let disks =
            vec![Disk::new(true, &servers), Disk::new(false, &servers), Disk::new(false, &servers)];
        let mut world = World::new(seed, config, disks);
        let mut rng = Seeded::new(seed ^ 0x5E55_1011);
        world.run_for(Duration::from_millis(rng.below(10_000)));
        let nonce_ttl = NONCE_TTL.as_millis() as u64;
        let session_ttl = SESSION_TTL.as_millis() as u64;

        // A nonce is good just under its TTL, once.
        let (nonce, issued) = challenge(&mut world);
        arrive_at(&mut world, issued.saturating_add(Duration::from_millis(nonce_ttl - 1)));
        assert!(fetched(ask(&mut world, OWNER, fetch_request(nonce))).is_empty());
        assert_eq!(
            ask(&mut world, OWNER, fetch_request(nonce)),
            UNAUTHORIZED,
            "a nonce is good once"
        );

        // ... and not at its TTL.
        let (nonce, issued) = challenge(&mut world);
        arrive_at(&mut world, issued.saturating_add(NONCE_TTL));
        assert_eq!(ask(&mut world, OWNER, fetch_request(nonce)), UNAUTHORIZED, "a nonce expires");

        // A session takes acks just under its TTL...
        let first = put(&mut world, &mut rng);
        let (nonce, _) = challenge(&mut world);
        let opened = world.now().saturating_add(LATENCY);
        assert_eq!(fetched(ask(&mut world, OWNER, fetch_request(nonce))), vec![first]);
        arrive_at(&mut world, opened.saturating_add(Duration::from_millis(session_ttl - 1)));
        let ack = |h| MboxRequest::Ack { mailbox: mailbox(OWNER), hashes: vec![h] };
        assert_eq!(ask(&mut world, OWNER, ack(first)), Ok(MboxResponse::Acked(1)));

        // ... and none at its TTL: the envelope stays for the next session.
        let second = put(&mut world, &mut rng);
        let (nonce, _) = challenge(&mut world);
        let opened = world.now().saturating_add(LATENCY);
        assert_eq!(fetched(ask(&mut world, OWNER, fetch_request(nonce))), vec![second]);
        arrive_at(&mut world, opened.saturating_add(SESSION_TTL));
        assert_eq!(ask(&mut world, OWNER, ack(second)), UNAUTHORIZED, "a session expires");
        let (nonce, _) = challenge(&mut world);
        assert_eq!(fetched(ask(&mut world, OWNER, fetch_request(nonce))), vec![second]);
        assert_eq!(ask(&mut world, OWNER, ack(second)), Ok(MboxResponse::Acked(1)));

        // An acknowledged envelope is not taken back (its tombstone), and nothing waits.
        assert!(world.disk(SERVER).mbox.tombstones.contains_key(&first));
        let (nonce, _) = challenge(&mut world);
        assert!(fetched(ask(&mut world, OWNER, fetch_request(nonce))).is_empty());
    });
}
