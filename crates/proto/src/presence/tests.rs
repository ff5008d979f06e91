//! The presence machine on a virtual clock: every rule that takes time (a 90 s
//! window, a 6 s indicator, a 5-minute backoff, a week of heartbeats) runs in
//! milliseconds.

use std::time::Duration;

use communitas_types::{Address, Timestamp};

use super::wire::{self, PresenceBody};
use super::*;
use crate::backoff::Backoff;
use crate::random::Seeded;

type Out = Output<u8, ()>;

const HEARTBEAT: Duration = Duration::from_secs(30);
const START: u64 = 1_780_000_000_000;

fn addr(n: u8) -> Address {
    Address::from_bytes([n; 6])
}

fn ms(t: u64) -> Timestamp {
    Timestamp::from_millis(t)
}

fn later(t: Timestamp, d: Duration) -> Timestamp {
    t.saturating_add(d)
}

fn update(status: Status, interval: Duration) -> Body {
    Body::Presence(PresenceBody { status, interval })
}

fn presence_event(address: Address, status: Status) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Presence { address: a, presence } if *a == address && presence.status == status)
}

/// One machine, its clock, and what it asked for.
struct World {
    m: Machine<u8, ()>,
    now: Timestamp,
    rng: Seeded,
    wake: Option<Timestamp>,
}

impl World {
    fn new(own: Status) -> Self {
        Self {
            m: Machine::new(Config { heartbeat: HEARTBEAT }, own),
            now: ms(START),
            rng: Seeded::new(13),
            wake: None,
        }
    }

    /// Feeds one input now; returns its outputs without the wake-up, which it keeps.
    fn feed(&mut self, input: Input<u8, ()>) -> Vec<Out> {
        let mut out = Vec::new();
        self.m.handle(input, self.now, &mut self.rng, &mut out);
        let wakes = out.iter().filter(|o| matches!(o, Output::WakeAt(_))).count();
        assert!(wakes <= 1, "one wake-up per input: {out:?}");
        self.wake = None;
        out.retain(|o| match o {
            Output::WakeAt(t) => {
                self.wake = Some(*t);
                false
            }
            _ => true,
        });
        out
    }

    /// Moves the clock to `t`, ticking at every wake-up on the way.
    fn run_until(&mut self, t: Timestamp) -> Vec<(Timestamp, Out)> {
        let mut all = Vec::new();
        let mut ticks = 0;
        while let Some(w) = self.wake.filter(|w| *w <= t) {
            assert!(w >= self.now, "a wake-up in the past: {w:?} < {:?}", self.now);
            self.now = w;
            let now = self.now;
            all.extend(self.feed(Input::Tick).into_iter().map(|o| (now, o)));
            ticks += 1;
            assert!(ticks < 10_000, "the machine keeps waking itself");
        }
        self.now = t;
        all
    }

    fn advance(&mut self, d: Duration) -> Vec<(Timestamp, Out)> {
        self.run_until(later(self.now, d))
    }

    fn done(&mut self, to: Address, kind: Update, delivered: bool, devices: &[u8]) -> Vec<Out> {
        let devices = (!devices.is_empty()).then(|| devices.iter().map(|p| (*p, ())).collect());
        self.feed(Input::SendDone { to, kind, delivered, devices })
    }

    fn heard(&mut self, from: Address, body: Body) -> Vec<Out> {
        let timestamp = self.now;
        self.feed(Input::Heard { from, timestamp, body })
    }
}

fn events<'a>(out: impl IntoIterator<Item = &'a Out>) -> Vec<Event> {
    out.into_iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(*e),
            _ => None,
        })
        .collect()
}

fn sends<'a>(out: impl IntoIterator<Item = &'a Out>) -> Vec<(Address, Update)> {
    out.into_iter()
        .filter_map(|o| match o {
            Output::Send { to, kind, .. } => Some((*to, *kind)),
            _ => None,
        })
        .collect()
}

/// A world that tracks `alice`, has told her once and heard her `online`.
fn with_alice_online(alice: Address) -> World {
    let mut w = World::new(Status::Online);
    let out = w.feed(Input::ContactAdded(alice));
    assert_eq!(sends(&out), [(alice, Update::Presence)], "a new contact is due at once");
    w.done(alice, Update::Presence, true, &[7]);
    let out = w.heard(alice, update(Status::Online, HEARTBEAT));
    assert!(events(&out).iter().any(presence_event(alice, Status::Online)));
    // She was offline to us: our status is due to her again (she may have restarted).
    assert_eq!(sends(&out), [(alice, Update::Presence)]);
    w.done(alice, Update::Presence, true, &[7]);
    w
}

#[test]
fn offline_after_exactly_three_missed_heartbeats_and_back_on_the_next_update() {
    let alice = addr(1);
    let mut w = with_alice_online(alice);
    let heard_at = w.now;
    let window = HEARTBEAT * MISSED;

    // Our own heartbeats go on meanwhile; they do not keep her online.
    let mut out = Vec::new();
    while w.now < later(heard_at, window) {
        let step = w.run_until(later(heard_at, window).min(later(w.now, HEARTBEAT)));
        for (_, o) in &step {
            if let Output::Send { to, kind, .. } = o {
                w.done(*to, *kind, true, &[7]);
            }
        }
        out.extend(step);
    }
    assert!(events(out.iter().map(|(_, o)| o)).is_empty(), "{out:?}");
    assert_eq!(w.m.presence(&alice).status, Status::Online, "still online at 3 × 30 s");

    let out = w.advance(Duration::from_millis(1));
    let offline: Vec<_> = out
        .iter()
        .filter(|(_, o)| matches!(o, Output::Event(e) if presence_event(alice, Status::Offline)(e)))
        .collect();
    assert_eq!(offline.len(), 1, "{out:?}");
    assert_eq!(offline[0].0, later(heard_at, window + Duration::from_millis(1)));
    let seen = w.m.presence(&alice);
    assert_eq!((seen.status, seen.last_seen), (Status::Offline, Some(heard_at)));

    // The next update brings her back, and she is due our status at once.
    w.advance(Duration::from_secs(5));
    let out = w.heard(alice, update(Status::Away, HEARTBEAT));
    assert!(events(&out).iter().any(presence_event(alice, Status::Away)));
    assert_eq!(w.m.presence(&alice).last_seen, Some(w.now));
}

#[test]
fn the_window_is_three_of_the_intervals_the_contact_announced() {
    let alice = addr(1);
    let mut w = with_alice_online(alice);
    let interval = Duration::from_secs(1);
    w.advance(Duration::from_millis(10));
    w.heard(alice, update(Status::Busy, interval));
    let heard_at = w.now;
    assert!(events(w.run_until(later(heard_at, interval * 3)).iter().map(|(_, o)| o)).is_empty());
    let out = w.advance(Duration::from_millis(1));
    assert!(events(out.iter().map(|(_, o)| o)).iter().any(presence_event(alice, Status::Offline)));
}

#[test]
fn replayed_and_reordered_updates_are_ignored() {
    let alice = addr(1);
    let mut w = with_alice_online(alice);
    let first = w.now;
    w.advance(Duration::from_secs(1));
    w.heard(alice, update(Status::Busy, HEARTBEAT));
    // An older update (a replay, or overtaken on the way) changes nothing.
    let out = w.feed(Input::Heard {
        from: alice,
        timestamp: first,
        body: update(Status::Away, HEARTBEAT),
    });
    assert!(events(&out).is_empty());
    assert_eq!(w.m.presence(&alice).status, Status::Busy);
}

#[test]
fn a_closed_last_connection_is_offline_at_once() {
    let alice = addr(1);
    let mut w = World::new(Status::Online);
    w.feed(Input::ContactAdded(alice));
    w.done(alice, Update::Presence, true, &[7, 8]);
    w.heard(alice, update(Status::Online, HEARTBEAT));
    w.feed(Input::Connected(7));
    w.feed(Input::Connected(8));
    // A stranger's connection closing says nothing about her.
    assert!(events(&w.feed(Input::Disconnected(99))).is_empty());

    w.advance(Duration::from_secs(2));
    // One of her two devices left: she is still here.
    assert!(events(&w.feed(Input::Disconnected(7))).is_empty());
    assert_eq!(w.m.presence(&alice).status, Status::Online);
    // The last one: offline now, not when the window runs out.
    let out = w.feed(Input::Disconnected(8));
    assert_eq!(events(&out).len(), 1);
    assert!(events(&out).iter().any(presence_event(alice, Status::Offline)));
    assert_eq!(w.m.presence(&alice).status, Status::Offline);
    // ...and the window that would have run out later no longer fires.
    assert!(events(w.advance(HEARTBEAT * 4).iter().map(|(_, o)| o)).is_empty());
}

#[test]
fn a_connection_closing_before_we_saw_it_open_is_offline_at_once() {
    // Connections opened before we knew her devices were not seen as hers.
    let alice = addr(1);
    let mut w = World::new(Status::Online);
    w.feed(Input::ContactAdded(alice));
    w.done(alice, Update::Presence, true, &[7]);
    w.heard(alice, update(Status::Online, HEARTBEAT));
    let out = w.feed(Input::Disconnected(7));
    assert!(events(&out).iter().any(presence_event(alice, Status::Offline)));
}

#[test]
fn typing_runs_out_after_six_seconds_unless_renewed() {
    let alice = addr(1);
    let mut w = with_alice_online(alice);
    let typing = |from, typing| Event::Typing { from, typing };

    assert_eq!(events(&w.heard(alice, Body::Typing(true))), [typing(alice, true)]);
    let started = w.now;
    assert!(events(w.run_until(later(started, TYPING_SHOWN)).iter().map(|(_, o)| o)).is_empty());
    let out = w.advance(Duration::from_millis(1));
    assert_eq!(events(out.iter().map(|(_, o)| o)), [typing(alice, false)]);

    // Renewed at 4 s: still shown at 6 s, gone 6 s after the renewal.
    w.advance(Duration::from_secs(1));
    w.heard(alice, Body::Typing(true));
    let started = w.now;
    w.advance(Duration::from_secs(4));
    assert_eq!(events(&w.heard(alice, Body::Typing(true))), [typing(alice, true)]);
    let renewed = w.now;
    let shown = later(started, TYPING_SHOWN + Duration::from_millis(1));
    assert!(events(w.run_until(shown).iter().map(|(_, o)| o)).is_empty());
    let out = w.run_until(later(renewed, TYPING_SHOWN + Duration::from_millis(1)));
    assert_eq!(events(out.iter().map(|(_, o)| o)), [typing(alice, false)]);

    // Stopped by the sender: hidden at once, and nothing runs out later.
    w.heard(alice, Body::Typing(true));
    assert_eq!(events(&w.heard(alice, Body::Typing(false))), [typing(alice, false)]);
    assert!(events(w.advance(TYPING_SHOWN * 2).iter().map(|(_, o)| o)).is_empty());
    // A "stopped" for an indicator not shown is not shown again.
    assert!(events(&w.heard(alice, Body::Typing(false))).is_empty());
}

#[test]
fn our_typing_is_sent_at_most_every_three_seconds_and_stopping_always() {
    let alice = addr(1);
    let mut w = with_alice_online(alice);
    let typing = |w: &mut World, on: bool| sends(&w.feed(Input::Typing { to: alice, typing: on }));

    assert_eq!(typing(&mut w, true), [(alice, Update::Typing)]);
    w.advance(Duration::from_secs(1));
    assert!(typing(&mut w, true).is_empty(), "a repeat within 3 s is not sent");
    w.advance(Duration::from_secs(2));
    assert_eq!(typing(&mut w, true), [(alice, Update::Typing)], "renewed before it runs out");
    assert_eq!(typing(&mut w, false), [(alice, Update::Typing)]);
    assert_eq!(typing(&mut w, true), [(alice, Update::Typing)], "after a stop, at once");
    let bodies: Vec<_> = w
        .feed(Input::Typing { to: alice, typing: false })
        .into_iter()
        .filter_map(|o| match o {
            Output::Send { body, .. } => Some(body),
            _ => None,
        })
        .collect();
    assert_eq!(bodies, [wire::encode_typing(false)]);
}

#[test]
fn unreachable_contacts_back_off_with_jitter_up_to_five_minutes_and_are_due_on_connect() {
    let alice = addr(1);
    let mut w = World::new(Status::Online);
    w.feed(Input::ContactAdded(alice));
    // Reached once: we know her device.
    w.done(alice, Update::Presence, true, &[7]);
    let mut last = w.now;
    let mut gaps = Vec::new();
    let mut failures = 0u32;
    let mut pending = false;
    // Let her heartbeat come due, then fail 30 times in a row.
    while gaps.len() < 30 {
        let step = w.advance(Duration::from_secs(1));
        for (at, o) in step {
            if let Output::Send { to, kind: Update::Presence, devices, .. } = o {
                assert_eq!(to, alice);
                if pending {
                    gaps.push((failures - 1, at.as_millis() - last.as_millis()));
                }
                // After a failure she must be looked up again.
                assert_eq!(devices.is_none(), pending, "fresh devices until a failure");
                last = at;
                w.now = at;
                w.done(alice, Update::Presence, false, &[]);
                failures += 1;
                pending = true;
            }
        }
    }
    let floor = u64::try_from(Backoff::PRESENCE.floor.as_millis()).unwrap();
    for (n, gap) in &gaps {
        let ceiling = u64::try_from(Backoff::PRESENCE.ceiling(*n).as_millis()).unwrap();
        // Ticks come each second in this loop; the machine asked for no later.
        assert!(*gap >= floor && *gap <= ceiling + 1000, "wait {gap} ms after {n} failures");
        assert!(*gap <= 301_000, "capped at 5 min: {gap}");
    }
    let late: Vec<u64> = gaps.iter().filter(|(n, _)| *n >= 9).map(|(_, g)| *g).collect();
    assert!(late.iter().any(|g| *g > 60_000), "the waits grow to minutes: {late:?}");
    let distinct: std::collections::BTreeSet<_> = late.iter().collect();
    assert!(distinct.len() > late.len() / 2, "jittered, not fixed: {late:?}");

    // She connects: due at once, whatever the backoff said.
    w.advance(Duration::from_millis(10));
    let out = w.feed(Input::Connected(7));
    assert_eq!(sends(&out), [(alice, Update::Presence)]);
    // Delivered: back to the plain heartbeat, the backoff forgotten.
    w.done(alice, Update::Presence, true, &[7]);
    assert_eq!(w.wake, Some(later(w.now, HEARTBEAT)));
}

#[test]
fn an_update_from_a_contact_we_could_not_reach_makes_our_heartbeat_due_now() {
    // Restart recovery: she went away, our heartbeats failed and backed off; her
    // first update after her restart gets our status back at once.
    let alice = addr(1);
    let mut w = with_alice_online(alice);
    w.feed(Input::Disconnected(7));
    for _ in 0..12 {
        let step = w.advance(Duration::from_secs(400));
        for (at, o) in step {
            if let Output::Send { to, kind, .. } = o {
                w.now = at;
                w.done(to, kind, false, &[]);
            }
        }
    }
    let wake = w.wake.unwrap();
    assert!(wake > later(w.now, Duration::from_secs(1)), "backing off: {wake:?}");
    let out = w.heard(alice, update(Status::Online, HEARTBEAT));
    assert_eq!(sends(&out), [(alice, Update::Presence)]);

    // While ours is in flight, another reason to tell her makes it due once it is done.
    w.advance(Duration::from_secs(1));
    assert!(sends(&w.feed(Input::Connected(7))).is_empty(), "one heartbeat in flight at a time");
    let out = w.done(alice, Update::Presence, false, &[]);
    assert_eq!(sends(&out), [(alice, Update::Presence)], "due again right after");
}

#[test]
fn an_update_from_an_online_contact_we_could_not_reach_makes_our_heartbeat_due_now() {
    // She reaches us, we failed to reach her (a stale address): she is online all
    // along, and her next update proves her reachable, so we do not wait out the backoff.
    let alice = addr(1);
    let mut w = with_alice_online(alice);
    let heard_at = w.now;
    let mut failed = 0;
    while w.now < later(heard_at, Duration::from_secs(60)) {
        for (at, o) in w.advance(Duration::from_millis(100)) {
            if let Output::Send { to, kind, .. } = o {
                w.now = w.now.max(at);
                w.done(to, kind, false, &[]);
                failed += 1;
            }
        }
    }
    assert!(failed >= 3, "{failed}");
    assert_eq!(w.m.presence(&alice).status, Status::Online);
    assert!(w.wake.is_some_and(|t| t > w.now), "backing off");
    let out = w.heard(alice, update(Status::Online, HEARTBEAT));
    assert_eq!(sends(&out), [(alice, Update::Presence)]);
}

#[test]
fn an_update_from_a_contact_we_reach_does_not_answer_it_early() {
    // Otherwise two nodes would answer each other's heartbeats forever.
    let alice = addr(1);
    let mut w = with_alice_online(alice);
    w.advance(Duration::from_secs(10));
    assert!(sends(&w.heard(alice, update(Status::Online, HEARTBEAT))).is_empty());
    w.advance(Duration::from_secs(10));
    assert!(sends(&w.heard(alice, update(Status::Away, HEARTBEAT))).is_empty());
}

#[test]
fn a_status_change_is_due_to_everyone_and_appearing_offline_stops_heartbeats() {
    let (alice, bob) = (addr(1), addr(2));
    let mut w = World::new(Status::Online);
    w.feed(Input::ContactsLoaded(vec![alice, bob]));
    w.done(alice, Update::Presence, true, &[7]);
    w.done(bob, Update::Presence, true, &[8]);
    w.advance(Duration::from_secs(5));
    assert!(sends(&w.feed(Input::SetStatus(Status::Online))).is_empty(), "no change");
    let out = w.feed(Input::SetStatus(Status::Offline));
    let mut to: Vec<_> = sends(&out).into_iter().map(|(a, _)| a).collect();
    to.sort();
    assert_eq!(to, [alice, bob]);
    for o in &out {
        if let Output::Send { body, .. } = o {
            let said = wire::decode_presence(body).unwrap();
            assert_eq!((said.status, said.interval), (Status::Offline, HEARTBEAT));
        }
    }
    w.done(alice, Update::Presence, true, &[7]);
    w.done(bob, Update::Presence, true, &[8]);
    // Told once; a day of silence follows.
    assert!(sends(w.advance(Duration::from_secs(23 * 3600)).iter().map(|(_, o)| o)).is_empty());
    assert_eq!(w.m.own(), Status::Offline);
}

#[test]
fn sends_in_flight_are_bounded() {
    let mut w = World::new(Status::Online);
    let many: Vec<_> = (0..100u8).map(addr).collect();
    let out = w.feed(Input::ContactsLoaded(many.clone()));
    assert_eq!(sends(&out).len(), MAX_SENDS);
    // Typing beyond the bound is dropped, not queued.
    assert!(sends(&w.feed(Input::Typing { to: many[0], typing: true })).is_empty());
    // Each finished send frees a slot for the next one due.
    let (to, kind) = sends(&out)[0];
    let next = w.done(to, kind, true, &[]);
    assert_eq!(sends(&next).len(), 1);
    assert_eq!(w.m.all().len(), 100);
}

#[test]
fn devices_are_reused_while_fresh_and_looked_up_again_after_ten_minutes() {
    let alice = addr(1);
    let mut w = with_alice_online(alice);
    let mut seen = Vec::new();
    for _ in 0..25 {
        for (at, o) in w.advance(HEARTBEAT) {
            if let Output::Send { to, kind, devices, .. } = o {
                seen.push((at, devices.is_some()));
                w.now = at;
                // The driver hands back what it used, or what it looked up.
                w.done(to, kind, true, &[7]);
            }
        }
    }
    let first_lookup = seen.iter().position(|(_, fresh)| !fresh).unwrap();
    assert!(seen[..first_lookup].iter().all(|(_, fresh)| *fresh));
    let since = seen[first_lookup].0.as_millis() - START;
    assert!((600_000..631_000).contains(&since), "looked up after {since} ms");
}

/// Two machines on a virtual network with 20 ms of latency.
struct Sim {
    nodes: [SimNode; 2],
    /// Messages on their way: (arrival, order sent, what).
    wire: Vec<(Timestamp, u64, Msg)>,
    seq: u64,
    now: Timestamp,
}

struct SimNode {
    m: Machine<u8, ()>,
    me: Address,
    device: u8,
    wake: Option<Timestamp>,
    rng: Seeded,
    events: Vec<(Timestamp, Event)>,
    /// When each update from the other node arrived.
    arrivals: Vec<Timestamp>,
    heartbeats: usize,
    frozen: bool,
}

enum Msg {
    Heard { to: usize, from: Address, timestamp: Timestamp, body: Body },
    Done { to: usize, contact: Address, kind: Update, delivered: bool, device: u8 },
}

impl Sim {
    const LATENCY: Duration = Duration::from_millis(20);
    /// How long a send to a frozen node takes to fail.
    const TIMEOUT: Duration = Duration::from_secs(1);

    fn new() -> Self {
        let node = |i: u8| SimNode {
            m: Machine::new(Config { heartbeat: HEARTBEAT }, Status::Online),
            me: addr(i + 1),
            device: i + 100,
            wake: None,
            rng: Seeded::new(u64::from(i)),
            events: Vec::new(),
            arrivals: Vec::new(),
            heartbeats: 0,
            frozen: false,
        };
        Self { nodes: [node(0), node(1)], wire: Vec::new(), seq: 0, now: ms(START) }
    }

    fn send(&mut self, at: Timestamp, msg: Msg) {
        self.seq += 1;
        self.wire.push((at, self.seq, msg));
    }

    fn feed(&mut self, i: usize, input: Input<u8, ()>) {
        let (now, j) = (self.now, 1 - i);
        let mut out = Vec::new();
        let n = &mut self.nodes[i];
        n.m.handle(input, now, &mut n.rng, &mut out);
        n.wake = None;
        for o in out {
            match o {
                Output::Send { to, kind, body, .. } => {
                    assert_eq!(to, self.nodes[j].me);
                    self.nodes[i].heartbeats += usize::from(kind == Update::Presence);
                    let (from, device, there) =
                        (self.nodes[i].me, self.nodes[j].device, !self.nodes[j].frozen);
                    if there {
                        let body = Body::decode(kind, &body).unwrap();
                        let msg = Msg::Heard { to: j, from, timestamp: now, body };
                        self.send(later(now, Self::LATENCY), msg);
                    }
                    // Delivered after a round trip, or given up on.
                    let done = if there { Self::LATENCY * 2 } else { Self::TIMEOUT };
                    let msg = Msg::Done { to: i, contact: to, kind, delivered: there, device };
                    self.send(later(now, done), msg);
                }
                Output::Event(e) => self.nodes[i].events.push((now, e)),
                Output::WakeAt(t) => self.nodes[i].wake = Some(t),
            }
        }
    }

    /// Runs the next thing to happen, if it happens by `until`: a message arriving or
    /// a machine waking up. False if nothing does.
    fn step(&mut self, until: Timestamp) -> bool {
        let msg = self.wire.iter().enumerate().min_by_key(|(_, (t, s, _))| (*t, *s));
        let msg = msg.map(|(k, (t, _, _))| (*t, k));
        let wake = (0..2)
            .filter(|i| !self.nodes[*i].frozen)
            .filter_map(|i| self.nodes[i].wake.map(|t| (t, i)))
            .min();
        let next = [msg.map(|(t, _)| t), wake.map(|(t, _)| t)].into_iter().flatten().min();
        if next.is_none_or(|t| t > until) {
            return false;
        }
        match (msg, wake) {
            (Some((t, k)), w) if w.is_none_or(|(wt, _)| t <= wt) => {
                self.now = self.now.max(t);
                let (_, _, msg) = self.wire.swap_remove(k);
                match msg {
                    Msg::Heard { to, .. } if self.nodes[to].frozen => {} // lost
                    Msg::Heard { to, from, timestamp, body } => {
                        if matches!(body, Body::Presence(_)) {
                            self.nodes[to].arrivals.push(self.now);
                        }
                        self.feed(to, Input::Heard { from, timestamp, body });
                    }
                    Msg::Done { to, contact, kind, delivered, device } => {
                        let devices = delivered.then(|| vec![(device, ())]);
                        self.feed(to, Input::SendDone { to: contact, kind, delivered, devices });
                    }
                }
            }
            (_, Some((t, i))) => {
                self.now = self.now.max(t);
                self.feed(i, Input::Tick);
            }
            _ => return false,
        }
        true
    }

    fn run_until(&mut self, t: Timestamp) {
        while self.step(t) {}
        self.now = self.now.max(t);
    }
}

/// A week of heartbeats between two nodes, then bob freezes for two minutes (a
/// SIGSTOP: nothing he is sent arrives, nothing he would send leaves) and thaws.
#[test]
fn a_week_of_heartbeats_in_milliseconds() {
    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
    let mut sim = Sim::new();
    let (alice, bob) = (sim.nodes[0].me, sim.nodes[1].me);
    sim.feed(0, Input::ContactsLoaded(vec![bob]));
    sim.feed(1, Input::ContactsLoaded(vec![alice]));
    let frozen_at = later(sim.now, WEEK);
    sim.run_until(frozen_at);

    // A week: bob online once, never offline, one heartbeat each way per 30 s.
    let week = &sim.nodes[0].events;
    assert_eq!(week.len(), 1, "{week:?}");
    assert!(presence_event(bob, Status::Online)(&week[0].1));
    let expected = usize::try_from(WEEK.as_secs() / HEARTBEAT.as_secs()).unwrap();
    for n in &sim.nodes {
        // Each interval runs from a delivery: a round trip (40 ms) longer than 30 s.
        assert!(n.heartbeats <= expected + 1 && n.heartbeats + 30 >= expected, "{}", n.heartbeats);
    }

    sim.nodes[1].frozen = true;
    let last_arrival = *sim.nodes[0].arrivals.last().unwrap();
    let thawed_at = later(frozen_at, Duration::from_secs(120));
    sim.run_until(thawed_at);
    let offline: Vec<_> = sim.nodes[0]
        .events
        .iter()
        .filter(|(_, e)| presence_event(bob, Status::Offline)(e))
        .collect();
    assert_eq!(offline.len(), 1);
    assert_eq!(offline[0].0, later(last_arrival, HEARTBEAT * 3 + Duration::from_millis(1)));

    // Thawed: his overdue heartbeat goes at once, alice sees him back when it
    // arrives, and answers at once (she was backing off): he sees her back too.
    sim.nodes[1].frozen = false;
    sim.feed(1, Input::Tick);
    sim.run_until(later(thawed_at, Duration::from_secs(5)));
    let back = |n: &SimNode, who| {
        n.events
            .iter()
            .find(|(t, e)| *t >= thawed_at && presence_event(who, Status::Online)(e))
            .map(|(t, _)| t.as_millis() - thawed_at.as_millis())
    };
    assert_eq!(back(&sim.nodes[0], bob), Some(20), "one way's latency");
    let alice_back = back(&sim.nodes[1], alice).unwrap();
    // At most: her send in flight to the frozen bob times out first.
    assert!(alice_back <= 1000 + 60, "{alice_back} ms");
    assert_eq!(sim.nodes[0].m.presence(&bob).status, Status::Online);
    assert_eq!(sim.nodes[1].m.presence(&alice).status, Status::Online);
}

#[test]
fn a_removed_contact_gets_no_more_heartbeats_and_its_devices_are_forgotten() {
    // Issue 15: blocking a contact stops our presence to it at once.
    let (alice, bob) = (addr(1), addr(2));
    let mut w = with_alice_online(alice);
    w.feed(Input::ContactAdded(bob));
    w.done(bob, Update::Presence, true, &[8]);
    w.feed(Input::ContactRemoved(alice));
    assert!(w.m.all().iter().all(|(a, _)| *a != alice));
    let later: Vec<_> = w.advance(Duration::from_secs(3600)).into_iter().map(|(_, o)| o).collect();
    let to: Vec<_> = sends(&later).into_iter().map(|(a, _)| a).collect();
    assert!(!to.is_empty() && to.iter().all(|a| *a == bob), "only bob hears from us: {to:?}");
    // Her device's connection no longer means anything.
    assert!(events(&w.feed(Input::Connected(7))).is_empty());
    assert!(sends(&w.feed(Input::Connected(7))).is_empty());
}
