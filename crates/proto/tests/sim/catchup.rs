//! Catch-up after coming online (issue 13, point 4, with point 1's budget): the
//! owner's 60 envelopes (real sealed letters) wait at the five servers nearest its
//! mailbox, and one of the five is dead from the start: up, but every request to it
//! is lost, so it never answers (the transport would give up after 30 s). The owner's
//! node starts at a time drawn from the seed, and its fetcher drives the mailbox
//! client machine (`communitas_proto::mbox::client`) with its default settings.
//!
//! Every envelope is accepted exactly once (opened by acceptance once, though four
//! live holders bring it), acknowledged at each live holder, and the last is in within
//! [`BUDGET`] of the start; the sender is owed one receipt for all 60. The dead holder
//! is asked once and costs the round one [`REQUEST_DEADLINE`], no more: then the next
//! nearest server is asked instead. In the variant it is the nearest of all, the very
//! first request out, and nobody waits on it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use communitas_proto::Random;
use communitas_proto::mbox::client::{self, Acceptance, REQUEST_DEADLINE};
use communitas_proto::random::Seeded;
use communitas_types::Timestamp;

use super::fixtures::{closest, mailbox};
use super::holders::{MESSAGES, OWNER, SENDER, SERVERS, deposit, waiting};
use super::mnode::{Disk, Event, MboxNode};
use super::net::Link;
use super::replicate::REPLICAS;
use super::seed::sweep;
use super::world::{Config, EPOCH, Happened, NodeId, World};

/// All mail in within this of the start (issue 13, point 1).
const BUDGET: Duration = Duration::from_secs(2);

/// Which of the five holders is dead.
#[derive(Clone, Copy)]
enum Dead {
    /// Any, drawn from the seed.
    Any,
    /// The nearest the mailbox: the first the client asks.
    Nearest,
}

/// What a run gives the checks.
struct Run {
    world: World<MboxNode>,
    /// The servers nearest the mailbox, nearest first.
    nearest: Vec<NodeId>,
    dead: NodeId,
    start: Timestamp,
}

/// The world: the envelopes at the five nearest servers, the dead one's link lost
/// both ways, the owner started at a time drawn from the seed; run well past one
/// round (and short of the next poll).
fn run(seed: u64, dead: Dead) -> Run {
    let mut plan = Seeded::new(seed ^ 0xCA7C_0B5E);
    let servers: Vec<NodeId> = (0..SERVERS).map(NodeId).collect();
    let nearest = closest(mailbox(OWNER), &servers, servers.len());
    let holders = &nearest[..REPLICAS];
    let dead = match dead {
        Dead::Any => holders[plan.below(REPLICAS as u64) as usize],
        Dead::Nearest => holders[0],
    };
    let mut disks: Vec<Disk> = servers.iter().map(|_| Disk::new(true, &servers)).collect();
    let mut owner = Disk::new(false, &servers);
    owner.fetcher = Some(client::Config::default());
    disks.push(owner);
    disks.push(Disk::new(false, &servers));
    deposit(&mut disks, holders);
    let config = Config { request_timeout: Duration::from_secs(30), ..Config::default() };
    let mut world = World::with_down(seed, config, disks, &[OWNER]);
    world.link(OWNER, dead, Link { loss: 1.0, ..Link::default() });
    let start = EPOCH.saturating_add(Duration::from_millis(plan.below(10_000)));
    world.restart_at(start, OWNER);
    world.run_until(start.saturating_add(Duration::from_secs(10)));
    Run { world, nearest, dead, start }
}

/// The owner's events with their times.
fn timed(world: &World<MboxNode>) -> Vec<(Timestamp, Event)> {
    let of_owner = world.log.iter().filter(|r| r.node == OWNER);
    of_owner
        .filter_map(|r| match &r.what {
            Happened::Event(e) => Some((r.at, e.clone())),
            _ => None,
        })
        .collect()
}

/// The checks both scenarios share; returns the owner's timed events.
fn caught_up(run: &Run) -> Vec<(Timestamp, Event)> {
    let Run { world, nearest, dead, start } = run;
    let events = timed(world);
    let hashes: BTreeSet<[u8; 32]> = waiting().iter().map(|(_, h, _)| *h).collect();

    // Exactly once: each envelope handed to acceptance once, and stored once.
    let mut opened: BTreeMap<[u8; 32], usize> = BTreeMap::new();
    for (_, e) in &events {
        if let Event::Accepting(h) = e {
            *opened.entry(*h).or_default() += 1;
        }
    }
    assert_eq!(opened.keys().copied().collect::<BTreeSet<_>>(), hashes, "every envelope opened");
    assert!(opened.values().all(|n| *n == 1), "each opened once: {opened:?}");
    let inbox = &world.disk(OWNER).inbox;
    assert_eq!(inbox.len(), MESSAGES, "all stored");
    assert_eq!(inbox.values().copied().collect::<BTreeSet<_>>(), hashes);

    // Within the budget of the start.
    let accepted: Vec<Timestamp> = events
        .iter()
        .filter_map(|(at, e)| {
            matches!(e, Event::Accepted(_, Acceptance::Accepted { .. })).then_some(*at)
        })
        .collect();
    assert_eq!(accepted.len(), MESSAGES, "each accepted once");
    let last = accepted.iter().max().expect("some accepted");
    let took = last.as_millis() - start.as_millis();
    assert!(
        Duration::from_millis(took) <= BUDGET,
        "the last accepted {took} ms after the start (budget {BUDGET:?})"
    );

    // Acknowledged at every live holder; the dead one never heard a thing.
    for h in nearest[..REPLICAS].iter().filter(|h| *h != dead) {
        let disk = &world.disk(*h).mbox;
        for hash in &hashes {
            assert!(
                !disk.kept.contains_key(hash) && disk.tombstones.contains_key(hash),
                "acked at live holder {h:?}"
            );
        }
    }
    assert_eq!(world.disk(*dead).mbox.kept.len(), MESSAGES, "the dead holder got no ack");

    // Asked once, dropped at its deadline, and the next nearest asked instead.
    let asked = |n: NodeId| {
        events
            .iter()
            .filter(move |(_, e)| matches!(e, Event::Asked { holder, .. } if *holder == n))
            .map(|(at, e)| (*at, e.clone()))
    };
    let to_dead: Vec<_> = asked(*dead).collect();
    assert!(
        matches!(to_dead.as_slice(), [(_, Event::Asked { challenge: true, .. })]),
        "the dead holder is asked once: {to_dead:?}"
    );
    let dead_asked = to_dead[0].0;
    let spare = nearest[REPLICAS];
    let spare_first = asked(spare).next().expect("the spare is asked").0;
    assert_eq!(
        spare_first,
        dead_asked.saturating_add(REQUEST_DEADLINE),
        "the spare, at the deadline"
    );
    assert!(asked(nearest[REPLICAS + 1]).next().is_none(), "no second spare");

    // One round: the four live holders and the spare served it.
    let rounds: Vec<_> =
        events.iter().filter(|(_, e)| matches!(e, Event::RoundDone { .. })).collect();
    assert!(
        matches!(rounds.as_slice(), [(_, Event::RoundDone { answered: 5 })]),
        "one round, five holders answered: {rounds:?}"
    );
    // The sender is owed one receipt for all of them.
    let receipts: Vec<_> = events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Receipts { to, ids } => Some((*to, ids.len())),
            _ => None,
        })
        .collect();
    assert_eq!(receipts, vec![(SENDER, MESSAGES)], "one receipt batch to the sender");
    events
}

#[test]
fn catch_up_at_start_from_five_holders_one_dead_all_in_exactly_once_within_two_seconds() {
    sweep(
        "catch_up_at_start_from_five_holders_one_dead_all_in_exactly_once_within_two_seconds",
        |seed| {
            caught_up(&run(seed, Dead::Any));
        },
    );
}

#[test]
fn catch_up_with_the_first_holder_asked_dead_waits_on_it_no_longer_than_its_deadline() {
    sweep(
        "catch_up_with_the_first_holder_asked_dead_waits_on_it_no_longer_than_its_deadline",
        |seed| {
            let run = run(seed, Dead::Nearest);
            let events = caught_up(&run);
            let first = events.iter().find(|(_, e)| matches!(e, Event::Asked { .. }));
            let (dead_asked, _) = first.expect("a request out");
            assert!(
                matches!(first, Some((_, Event::Asked { holder, .. })) if *holder == run.dead),
                "the dead holder is the first asked"
            );
            let deadline = dead_asked.saturating_add(REQUEST_DEADLINE);
            // Nobody waited on it: every envelope was in before its deadline...
            let last = events.iter().rev().find(|(_, e)| matches!(e, Event::Accepted(..)));
            assert!(last.is_some_and(|(at, _)| *at < deadline), "all in before its deadline");
            // ...and the round was over within the spare's walk after it.
            let done = events.iter().find(|(_, e)| matches!(e, Event::RoundDone { .. }));
            let walk = Duration::from_millis(500);
            assert!(
                done.is_some_and(|(at, _)| *at <= deadline.saturating_add(walk)),
                "the round over within {walk:?} of the deadline: {done:?}"
            );
        },
    );
}
