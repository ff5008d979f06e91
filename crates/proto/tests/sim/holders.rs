//! Five mailbox holders, two die: the three left re-replicate (decision 0020) until
//! every envelope is again at R = 5 live servers — the survivors and the next
//! nearest live servers, no others.
//!
//! Ten servers; the owner's envelopes (real sealed letters) wait at the five nearest
//! its mailbox, as a sender's deposit leaves them. Two of those five crash for good a
//! little later; links lose 2 %, and one survivor crashes and restarts while it
//! works. Within three periods of re-replication, every envelope is at the five
//! nearest live servers (a walk that found a holder down or silent copies one server
//! further: more copies, never fewer).

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use communitas_crypto::Kind;
use communitas_proto::Random;
use communitas_proto::mbox::server::ENVELOPE_TTL;
use communitas_proto::random::Seeded;

use super::fixtures::{self, closest, mailbox};
use super::mnode::{Disk, MboxNode};
use super::mstore::Kept;
use super::net::Link;
use super::replicate::REPLICAS;
use super::seed::sweep;
use super::world::{Config, EPOCH, NodeId, World};
use communitas_types::Timestamp;

/// Server nodes in the world (nodes `0..SERVERS`).
pub const SERVERS: u16 = 10;
/// The mailbox's owner: the [`waiting`] envelopes are sealed to it.
pub const OWNER: NodeId = NodeId(SERVERS);
/// Who sealed them.
pub const SENDER: NodeId = NodeId(SERVERS + 1);
/// Envelopes waiting.
pub const MESSAGES: usize = 60;
const EVERY: Duration = Duration::from_secs(5 * 60);

/// The servers keeping each of `hashes`, among those up.
fn holders_of(world: &World<MboxNode>, hash: &[u8; 32]) -> BTreeSet<NodeId> {
    world.ids().filter(|n| world.is_up(*n) && world.disk(*n).mbox.kept.contains_key(hash)).collect()
}

/// One waiting envelope: when it was put, its hash, its bytes.
pub type Waiting = (Timestamp, [u8; 32], Vec<u8>);

/// The owner's waiting envelopes, each sealed when it was deposited (ten minutes
/// before the world starts, one a second): the same for every seed, sealed once.
pub fn waiting() -> &'static [Waiting] {
    static WAITING: OnceLock<Vec<Waiting>> = OnceLock::new();
    WAITING.get_or_init(|| {
        let mut rng = Seeded::new(0x401D_E125);
        (0..MESSAGES)
            .map(|i| {
                let at = EPOCH.saturating_sub(Duration::from_secs(600 - i as u64));
                let id = fixtures::message_id(&mut rng);
                let body = format!("message {i}");
                let envelope =
                    fixtures::seal(SENDER, OWNER, id, at, Kind::Text, body.as_bytes(), &mut rng);
                (at, *blake3::hash(&envelope).as_bytes(), envelope)
            })
            .collect()
    })
}

/// Leaves the [`waiting`] envelopes at each of `holders` (indexes into `disks`), as
/// a sender's deposit left them.
pub fn deposit(disks: &mut [Disk], holders: &[NodeId]) {
    for (at, hash, envelope) in waiting() {
        for h in holders {
            let kept = Kept {
                mailbox: mailbox(OWNER),
                envelope: envelope.clone(),
                sender: SENDER,
                received_at: *at,
                expires_at: at.saturating_add(ENVELOPE_TTL),
            };
            disks[h.index()].mbox.kept.insert(*hash, kept);
        }
    }
}

/// A world of [`SERVERS`] servers, the owner and the sender, with the [`waiting`]
/// envelopes at the five servers nearest the owner's mailbox.
pub fn deposited(seed: u64) -> (World<MboxNode>, Vec<NodeId>, Vec<[u8; 32]>) {
    let servers: Vec<NodeId> = (0..SERVERS).map(NodeId).collect();
    let holders = closest(mailbox(OWNER), &servers, REPLICAS);
    let mut disks: Vec<Disk> = servers.iter().map(|_| Disk::new(true, &servers)).collect();
    disks.push(Disk::new(false, &servers));
    disks.push(Disk::new(false, &servers));
    deposit(&mut disks, &holders);
    let link = Link { loss: 0.02, ..Link::default() };
    let config = Config { link, request_timeout: Duration::from_secs(30), ..Config::default() };
    let world = World::new(seed, config, disks);
    (world, holders, waiting().iter().map(|(_, h, _)| *h).collect())
}

#[test]
fn two_of_five_holders_die_and_the_copies_are_re_replicated() {
    sweep("two_of_five_holders_die_and_the_copies_are_re_replicated", |seed| {
        let (mut world, holders, hashes) = deposited(seed);
        let mut plan = Seeded::new(seed ^ 0xDEAD);
        // Two of the five die, at random, before the first period ends.
        let mut alive = holders.clone();
        for _ in 0..2 {
            let dead = alive.remove(plan.below(alive.len() as u64) as usize);
            let at = EPOCH
                .saturating_add(Duration::from_millis(plan.below(EVERY.as_millis() as u64 / 2)));
            world.crash_at(at, dead, None);
        }
        // A survivor crashes during the second period and comes back.
        let survivor = alive[plan.below(alive.len() as u64) as usize];
        let at = EPOCH.saturating_add(EVERY + Duration::from_millis(plan.below(20_000)));
        world.crash_at(at, survivor, Some(Duration::from_secs(30)));

        world.run_until(EPOCH.saturating_add(EVERY * 3 + Duration::from_secs(60)));
        let live: Vec<NodeId> = (0..SERVERS).map(NodeId).filter(|n| world.is_up(*n)).collect();
        let nearest: BTreeSet<NodeId> =
            closest(mailbox(OWNER), &live, REPLICAS).into_iter().collect();
        for h in &hashes {
            let at = holders_of(&world, h);
            assert!(
                at.is_superset(&nearest),
                "each envelope at the five nearest live servers: {at:?}"
            );
        }
        // Nobody else has the owner's mail but servers that were offered it: a
        // holder that was down (or whose answer was lost) during a walk is not
        // counted, so the walk copies one server further — more copies, never fewer.
        assert!(world.disk(OWNER).mbox.kept.is_empty() && world.disk(SENDER).mbox.kept.is_empty());
    });
}
