//! Delivery by the outbox: a message to a peer that never comes online becomes a
//! dead letter exactly at its TTL (30 days of virtual time); one to a peer that comes
//! back on day 29 is delivered instead (the sender crashes once meanwhile); and 1,000 messages over a link that loses
//! 5 % of frames, with the sender crashing after every 100, arrive exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use communitas_proto::Random;
use communitas_proto::inbound::MESSAGE_TTL;
use communitas_proto::outbox::Status;
use communitas_proto::random::Seeded;
use communitas_types::{MessageId, Timestamp};

use super::fixtures::message_id;
use super::net::Link;
use super::post::{Command, Disk, Event, PostNode};
use super::seed::{sweep, sweep_n};
use super::world::{Config, EPOCH, Happened, NodeId, World};

/// Seeds for a month of virtual time (about 17,000 retries, 30 ms a run).
const MONTH_SEEDS: u64 = 8;

const SENDER: NodeId = NodeId(0);
const RECIPIENT: NodeId = NodeId(1);

/// When `node` reported `event` first.
fn when(world: &World<PostNode>, node: NodeId, event: &Event) -> Option<Timestamp> {
    world
        .log
        .iter()
        .find(|r| r.node == node && r.what == Happened::Event(event.clone()))
        .map(|r| r.at)
}

/// The recipient is offline for `offline`; the sender crashes once on the way.
fn to_an_offline_peer(seed: u64, offline: Duration) -> (World<PostNode>, MessageId, Timestamp) {
    let mut world: World<PostNode> =
        World::new(seed, Config::default(), vec![Disk::default(), Disk::default()]);
    let mut plan = Seeded::new(seed ^ 0x7711);
    let sent = EPOCH.saturating_add(Duration::from_millis(1 + plan.below(10_000)));
    world.net().offline(RECIPIENT, EPOCH..sent.saturating_add(offline));
    let id = message_id(&mut plan);
    world.command_at(
        sent,
        SENDER,
        Command::Send { to: RECIPIENT, id, body: b"are you there?".to_vec() },
    );
    let day = 24 * 3600 * 1000;
    let crash = sent.saturating_add(Duration::from_millis(day + plan.below(20 * day)));
    world.crash_at(crash, SENDER, Some(Duration::from_millis(plan.below(3_600_000))));
    world.run_until(sent.saturating_add(MESSAGE_TTL + Duration::from_secs(3600)));
    (world, id, sent)
}

#[test]
fn a_message_to_an_offline_peer_is_a_dead_letter_exactly_at_its_ttl() {
    sweep_n(
        "a_message_to_an_offline_peer_is_a_dead_letter_exactly_at_its_ttl",
        MONTH_SEEDS,
        |seed| {
            let (world, id, sent) = to_an_offline_peer(seed, MESSAGE_TTL * 2);
            let expires = sent.saturating_add(MESSAGE_TTL);
            assert!(world.disk(SENDER).dead.contains_key(&id), "a dead letter");
            assert!(world.disk(SENDER).rows.is_empty(), "out of the outbox");
            // Never given up before the expiry: the last attempt is the one running at
            // the expiry (the last wait ends on it, or an attempt straddles it), and the
            // dead letter is written as soon as it fails — its dial, `dial_timeout` later.
            let attempts: Vec<Timestamp> = world
                .log
                .iter()
                .filter(|r| r.node == SENDER && r.what == Happened::Event(Event::Attempt(id)))
                .map(|r| r.at)
                .collect();
            let dial = Config::default().dial_timeout;
            let last = *attempts.last().expect("attempts");
            assert!(
                last <= expires && last.saturating_add(dial) >= expires,
                "last attempt {last:?}, expiry {expires:?}"
            );
            assert!(attempts.len() > 1000, "attempts all along: {}", attempts.len());
            let failed = when(&world, SENDER, &Event::Status(id, Status::Failed)).expect("failed");
            let written = last.saturating_add(dial);
            assert!(
                failed >= written && failed <= written.saturating_add(Duration::from_millis(2)),
                "failed at {failed:?}: the last attempt failed at {written:?}"
            );
            assert_eq!(world.disk(RECIPIENT).history.messages, Vec::<MessageId>::new());
        },
    );
}

#[test]
fn a_message_to_a_peer_back_on_day_29_is_delivered_not_dead() {
    sweep_n("a_message_to_a_peer_back_on_day_29_is_delivered_not_dead", MONTH_SEEDS, |seed| {
        let (world, id, sent) = to_an_offline_peer(seed, Duration::from_secs(29 * 24 * 3600));
        assert!(world.disk(SENDER).dead.is_empty() && world.disk(SENDER).rows.is_empty());
        assert_eq!(world.disk(RECIPIENT).history.messages, vec![id]);
        let delivered =
            when(&world, SENDER, &Event::Status(id, Status::Delivered)).expect("delivered");
        // Within one backoff cap (5 min) of its coming back.
        let back = sent.saturating_add(Duration::from_secs(29 * 24 * 3600));
        assert!(delivered >= back && delivered <= back.saturating_add(Duration::from_secs(301)));
    });
}

#[test]
fn a_thousand_messages_over_5_percent_loss_with_crashes_arrive_exactly_once() {
    sweep("a_thousand_messages_over_5_percent_loss_with_crashes_arrive_exactly_once", |seed| {
        let link = Link {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
            loss: 0.05,
        };
        let mut world: World<PostNode> = World::new(
            seed,
            Config { link, ..Config::default() },
            vec![Disk::default(), Disk::default()],
        );
        let mut plan = Seeded::new(seed ^ 0x1000);
        for i in 0..1000u32 {
            world.run_for(Duration::from_millis(plan.below(300)));
            let id = message_id(&mut plan);
            let body = format!("message {i}").into_bytes();
            // The user sends until the send returns (its row is on disk): a crash
            // may take the app down before, or between the send and the commit.
            let queued = Event::Queued(id);
            loop {
                while !world.is_up(SENDER) {
                    world.step();
                }
                let mark = world.log.len();
                world.command(SENDER, Command::Send { to: RECIPIENT, id, body: body.clone() });
                let deadline = world.now().saturating_add(Duration::from_secs(1));
                let queued = Happened::Event(queued.clone());
                world.run_until_true(deadline, |w| {
                    !w.is_up(SENDER) || w.log[mark..].iter().any(|r| r.what == queued)
                });
                if world.is_up(SENDER) {
                    break;
                }
            }
            if (i + 1) % 100 == 0 {
                // The crash cuts attempts, answers and writes in flight.
                let at = world.now().saturating_add(Duration::from_millis(plan.below(200)));
                world.crash_at(at, SENDER, Some(Duration::from_millis(200 + plan.below(3_000))));
            }
        }
        let done = world
            .run_until_true(world.now().saturating_add(Duration::from_secs(3600)), |w| {
                w.disk(SENDER).rows.is_empty()
            });
        assert!(done.is_some(), "{} still in the outbox", world.disk(SENDER).rows.len());
        let queued: BTreeSet<MessageId> = world
            .events_of(SENDER)
            .filter_map(|e| if let Event::Queued(id) = e { Some(*id) } else { None })
            .collect();
        assert_eq!(queued.len(), 1000, "every send returned");
        let mut shown: BTreeMap<MessageId, usize> = BTreeMap::new();
        for e in world.events_of(RECIPIENT) {
            if let Event::Shown(id) = e {
                *shown.entry(*id).or_default() += 1;
            }
        }
        assert_eq!(shown.keys().copied().collect::<BTreeSet<_>>(), queued, "every message arrived");
        assert!(shown.values().all(|n| *n == 1), "each exactly once");
        assert_eq!(world.disk(RECIPIENT).history.messages.len(), 1000);
        assert!(world.disk(SENDER).dead.is_empty());
        let crashes = world.log.iter().filter(|r| r.what == Happened::Crashed).count();
        assert_eq!(crashes, 10);
    });
}
