//! Presence between two contacts: shown offline after three missed heartbeats, and
//! back on the first heartbeat that gets through.
//!
//! Each node runs `communitas_proto::presence::Machine`. Its `Send` output becomes a
//! request carrying a stand-in letter (kind, sender's address, sender's clock, body:
//! presence goes end to end sealed in production; sealing is not what is tested
//! here), and the answer becomes `SendDone`. The receiver does what the inbound and
//! presence drivers do: refuses stale updates, feeds `Heard`, answers delivered.
//! A silent partition cuts the two apart (no connection event says so: a NAT that
//! drops the mapping, a laptop lid closed), so only the missed heartbeats can tell.

use std::time::Duration;

use communitas_proto::Random;
use communitas_proto::presence::{
    self, Body, Event as Shown, Input, Machine, Output, Status, Update,
};
use communitas_proto::random::Seeded;
use communitas_types::{Address, Timestamp};

use super::fixtures::{address, node_of};
use super::seed::sweep;
use super::world::{Config, Cx, EPOCH, NetError, Node, NodeId, ReqId, World};

/// A node's provisioning: its contacts, its saved status and heartbeat.
#[derive(Debug)]
pub struct Disk {
    contacts: Vec<Address>,
    status: Status,
    heartbeat: Duration,
}

/// What the scenario sees.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An update from `from` reached the machine.
    Heard(Address),
    /// The machine showed this.
    Shown(Shown),
}

/// A presence node: the machine and its adapter.
pub struct PresenceNode {
    machine: Machine<NodeId, ()>,
    sends: std::collections::BTreeMap<ReqId, (Address, Update)>,
}

fn letter(kind: Update, from: Address, at: Timestamp, body: &[u8]) -> Vec<u8> {
    let tag = match kind {
        Update::Presence => 0,
        Update::Typing => 1,
    };
    [&[tag][..], &from.to_bytes(), &at.as_millis().to_be_bytes(), body].concat()
}

fn open(bytes: &[u8]) -> Option<(Update, Address, Timestamp, &[u8])> {
    let kind = match bytes.first()? {
        0 => Update::Presence,
        1 => Update::Typing,
        _ => return None,
    };
    let from = Address::from_bytes(bytes.get(1..7)?.try_into().ok()?);
    let at = Timestamp::from_millis(u64::from_be_bytes(bytes.get(7..15)?.try_into().ok()?));
    Some((kind, from, at, bytes.get(15..)?))
}

impl PresenceNode {
    fn handle(&mut self, input: Input<NodeId, ()>, cx: &mut Cx<'_, Self>) {
        let mut out = Vec::new();
        self.machine.handle(input, cx.now(), cx.rng(), &mut out);
        for output in out {
            match output {
                Output::Send { to, kind, body, devices: _ } => {
                    let bytes = letter(kind, address(cx.me()), cx.now(), &body);
                    let id = cx.request(node_of(to), bytes);
                    self.sends.insert(id, (to, kind));
                }
                Output::Event(shown) => cx.observe(Event::Shown(shown)),
                Output::WakeAt(at) => cx.set_timer(at, ()),
            }
        }
    }
}

impl Node for PresenceNode {
    type Msg = Vec<u8>;
    type Timer = ();
    type Write = ();
    type Disk = Disk;
    type Command = Status;
    type Event = Event;

    fn boot(disk: &Disk, cx: &mut Cx<'_, Self>) -> Self {
        let config = presence::Config { heartbeat: disk.heartbeat };
        let mut node =
            Self { machine: Machine::new(config, disk.status), sends: Default::default() };
        node.handle(Input::ContactsLoaded(disk.contacts.clone()), cx);
        node
    }

    fn commit(_: &mut Disk, (): &mut ()) {}

    fn on_command(&mut self, status: Status, cx: &mut Cx<'_, Self>) {
        self.handle(Input::SetStatus(status), cx);
    }

    fn on_request(&mut self, _from: NodeId, id: ReqId, msg: Vec<u8>, cx: &mut Cx<'_, Self>) {
        // The drivers' checks: a letter that opens, from a contact, not stale.
        let Some((kind, from, timestamp, body)) = open(&msg) else { return };
        if presence::is_stale(timestamp, cx.now()) {
            return;
        }
        let Ok(body) = Body::decode(kind, body) else { return };
        cx.respond(id, vec![1]);
        cx.observe(Event::Heard(from));
        self.handle(Input::Heard { from, timestamp, body }, cx);
    }

    fn on_response(
        &mut self,
        peer: NodeId,
        id: ReqId,
        result: Result<Vec<u8>, NetError>,
        cx: &mut Cx<'_, Self>,
    ) {
        let Some((to, kind)) = self.sends.remove(&id) else { return };
        let delivered = result.is_ok();
        let devices = delivered.then(|| vec![(peer, ())]);
        self.handle(Input::SendDone { to, kind, delivered, devices }, cx);
    }

    fn on_timer(&mut self, (): (), cx: &mut Cx<'_, Self>) {
        self.handle(Input::Tick, cx);
    }
}

const A: NodeId = NodeId(0);
const B: NodeId = NodeId(1);
const HEARTBEAT: Duration = Duration::from_secs(30);

/// When `at` last heard from `from` at or before `t`, and the first time after.
fn heard_around(
    world: &World<PresenceNode>,
    at: NodeId,
    from: NodeId,
    t: Timestamp,
) -> (Timestamp, Option<Timestamp>) {
    let heard: Vec<Timestamp> = world
        .log
        .iter()
        .filter(|r| {
            r.node == at && r.what == super::world::Happened::Event(Event::Heard(address(from)))
        })
        .map(|r| r.at)
        .collect();
    let before = heard.iter().copied().filter(|h| *h <= t).max().expect("heard before the cut");
    (before, heard.iter().copied().find(|h| *h > t))
}

/// When `at` showed `who` with `status`, after `t`, first.
fn shown_after(
    world: &World<PresenceNode>,
    at: NodeId,
    who: NodeId,
    status: Status,
    t: Timestamp,
) -> Option<Timestamp> {
    world.log.iter().find_map(|r| match &r.what {
        super::world::Happened::Event(Event::Shown(Shown::Presence { address: a, presence }))
            if r.node == at && r.at > t && *a == address(who) && presence.status == status =>
        {
            Some(r.at)
        }
        _ => None,
    })
}

#[test]
fn presence_goes_offline_after_three_missed_heartbeats_and_back_on_the_next() {
    sweep("presence_goes_offline_after_three_missed_heartbeats_and_back_on_the_next", |seed| {
        let disk = |contact| Disk {
            contacts: vec![address(contact)],
            status: Status::Online,
            heartbeat: HEARTBEAT,
        };
        let mut world: World<PresenceNode> =
            World::new(seed, Config::default(), vec![disk(B), disk(A)]);
        let mut plan = Seeded::new(seed ^ 0x9E5E_11CE);
        let cut = EPOCH.saturating_add(Duration::from_millis(120_000 + plan.below(60_000)));
        let heal = cut.saturating_add(Duration::from_millis(150_000 + plan.below(600_000)));
        world.net().partition(&[B], cut..heal);
        world.run_until(heal.saturating_add(Duration::from_secs(400)));

        for (at, other) in [(A, B), (B, A)] {
            assert!(shown_after(&world, at, other, Status::Online, EPOCH).is_some_and(|t| t < cut));
            // Offline once three announced intervals passed without an update, not before.
            let (last, next) = heard_around(&world, at, other, cut);
            let offline =
                shown_after(&world, at, other, Status::Offline, last).expect("shown offline");
            let window = last.saturating_add(HEARTBEAT * presence::MISSED);
            assert!(
                offline > window && offline <= window.saturating_add(Duration::from_millis(1)),
                "{at:?} shows {other:?} offline {} ms after its last heartbeat",
                offline.as_millis() - last.as_millis()
            );
            // Back on the first update that gets through after the heal, at once.
            let next = next.expect("heard again after the heal");
            assert!(next >= heal, "nothing crosses a partition");
            assert_eq!(shown_after(&world, at, other, Status::Online, offline), Some(next));
            // Within one backoff ceiling (5 min) of the heal, plus a round trip.
            let cap = communitas_proto::backoff::Backoff::PRESENCE.cap;
            assert!(
                next <= heal.saturating_add(cap + Duration::from_secs(1)),
                "back late: {next:?}"
            );
        }
    });
}

#[test]
fn a_restarted_contact_is_back_within_a_round_trip_of_its_start() {
    sweep("a_restarted_contact_is_back_within_a_round_trip_of_its_start", |seed| {
        let disk = |contact| Disk {
            contacts: vec![address(contact)],
            status: Status::Online,
            heartbeat: HEARTBEAT,
        };
        let mut world: World<PresenceNode> =
            World::new(seed, Config::default(), vec![disk(B), disk(A)]);
        let mut plan = Seeded::new(seed ^ 0x00B0_07ED);
        let crash = EPOCH.saturating_add(Duration::from_millis(120_000 + plan.below(60_000)));
        let down = Duration::from_millis(100_000 + plan.below(300_000));
        world.crash_at(crash, B, Some(down));
        world.run_until(crash.saturating_add(down + Duration::from_secs(60)));

        let (last, next) = heard_around(&world, A, B, crash);
        let offline = shown_after(&world, A, B, Status::Offline, last).expect("shown offline");
        assert!(offline > last.saturating_add(HEARTBEAT * presence::MISSED));
        // A booting node owes every contact its status at once.
        let restart = crash.saturating_add(down);
        let next = next.expect("heard again");
        assert!(
            next >= restart && next <= restart.saturating_add(Duration::from_millis(100)),
            "{next:?}"
        );
        assert_eq!(shown_after(&world, A, B, Status::Online, offline), Some(next));
    });
}
