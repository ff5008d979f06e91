//! The outbox's rules on a virtual clock: every time below is a `Timestamp` fed in,
//! every draw comes from a seeded source.

use std::time::Duration;

use communitas_types::{Address, MessageId, Timestamp};

use super::*;
use crate::backoff::Backoff;
use crate::random::Seeded;

mod model;

pub(super) type Out = Output<u8, ()>;

const T0: u64 = 1_700_000_000_000;
pub(super) const TTL: Duration = Duration::from_secs(30 * 24 * 3600);
const UNREACHABLE: &str = "unreachable";

pub(super) fn addr(n: u8) -> Address {
    Address::from_bytes([0, 0, 0, 0, 1, n])
}

pub(super) fn id(n: u16) -> MessageId {
    let mut b = [0u8; 16];
    b[..2].copy_from_slice(&n.to_be_bytes());
    MessageId::from_bytes(b)
}

pub(super) fn entry(n: u16, to: u8, now: Timestamp, control: bool) -> Entry {
    Entry {
        id: id(n),
        recipient: addr(to),
        envelope: vec![0xee; 8],
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
        expires_at: now.saturating_add(TTL),
        last_error: None,
        control,
    }
}

fn retry() -> Outcome<u8, ()> {
    Outcome::Retry { error: UNREACHABLE.into(), looked_up: None }
}

fn delivered() -> Outcome<u8, ()> {
    Outcome::Delivered { looked_up: None }
}

/// One machine, its clock and its randomness, and the last wake it asked for.
struct Sim {
    m: Outbox<u8, ()>,
    now: Timestamp,
    rng: Seeded,
    wake: Option<Timestamp>,
}

impl Sim {
    fn new(max_running: usize) -> Self {
        Self::seeded(max_running, 1)
    }

    fn seeded(max_running: usize, seed: u64) -> Self {
        let now = Timestamp::from_millis(T0);
        Self { m: Outbox::new(max_running), now, rng: Seeded::new(seed), wake: None }
    }

    fn feed(&mut self, input: Input<u8, ()>) -> Vec<Out> {
        let out = self.m.handle(input, self.now, &mut self.rng);
        let wakes: Vec<_> = out.iter().filter(|o| matches!(o, Output::WakeAt(_))).collect();
        assert!(wakes.len() <= 1, "one wake per handle: {out:?}");
        self.wake = out.iter().find_map(|o| match o {
            Output::WakeAt(at) => Some(*at),
            _ => None,
        });
        if let Some(at) = self.wake {
            assert!(at > self.now, "a wake in the future: {at:?} at {:?}", self.now);
        }
        out
    }

    fn done(&mut self, n: u16, outcome: Outcome<u8, ()>) -> Vec<Out> {
        self.feed(Input::AttemptDone { id: id(n), outcome })
    }

    /// Moves the clock to the wake asked for and ticks.
    fn wake_up(&mut self) -> Vec<Out> {
        self.now = self.wake.expect("the machine asked to be woken");
        self.feed(Input::Tick)
    }

    fn advance(&mut self, by: Duration) -> Vec<Out> {
        self.now = self.now.saturating_add(by);
        self.feed(Input::Tick)
    }
}

fn attempts(out: &[Out]) -> Vec<MessageId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Attempt { entry, .. } => Some(entry.id),
            _ => None,
        })
        .collect()
}

fn writes(out: &[Out]) -> Vec<Write> {
    out.iter()
        .filter_map(|o| match o {
            Output::Persist(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

fn statuses(out: &[Out]) -> Vec<Status> {
    out.iter()
        .filter_map(|o| match o {
            Output::Status { status, .. } => Some(*status),
            _ => None,
        })
        .collect()
}

fn position(out: &[Out], pred: impl Fn(&Out) -> bool) -> usize {
    out.iter().position(pred).unwrap_or_else(|| panic!("not in {out:?}"))
}

#[test]
fn an_unreachable_message_is_a_dead_letter_exactly_at_its_ttl() {
    let mut sim = Sim::new(4);
    let queued = sim.now;
    let mut out = sim.feed(Input::Enqueue(entry(1, 9, queued, false)));
    let mut tries = 0u32;
    loop {
        assert_eq!(attempts(&out), vec![id(1)], "one attempt when due");
        tries += 1;
        out = sim.done(1, retry());
        match writes(&out).as_slice() {
            [Write::Attempt { attempts, next_attempt_at, status: Status::Queued, .. }] => {
                assert_eq!(*attempts, tries);
                assert!(*next_attempt_at <= queued.saturating_add(TTL));
                assert_eq!(statuses(&out), [], "status after the commit");
                out = sim.feed(Input::Persisted(id(1)));
                assert_eq!(statuses(&out), [Status::Queued]);
                assert_eq!(sim.wake, Some(*next_attempt_at));
                out = sim.wake_up();
            }
            [Write::DeadLetter { reason, .. }] => {
                assert_eq!(sim.now, queued.saturating_add(TTL), "exactly the TTL");
                assert_eq!(reason, "not delivered within 30 days; last error: unreachable");
                assert_eq!(sim.m.len(), 1, "kept until the dead letter is on disk");
                let out = sim.feed(Input::Persisted(id(1)));
                assert_eq!(statuses(&out), [Status::Failed]);
                assert!(out.contains(&Output::Metric(Metric::Failed)));
                assert!(out.contains(&Output::Metric(Metric::Left)));
                break;
            }
            other => panic!("unexpected writes {other:?}"),
        }
    }
    assert!(sim.m.is_empty());
    assert_eq!(sim.wake, None);
    // 30 days at waits averaging about 150 s once capped.
    assert!(tries > 10_000, "{tries} attempts");
}

#[test]
fn waits_are_jittered_and_capped_at_five_minutes() {
    let schedule = |seed| {
        let mut sim = Sim::seeded(1, seed);
        sim.feed(Input::Enqueue(entry(1, 9, sim.now, false)));
        let mut waits = Vec::new();
        for attempt in 1..=200u32 {
            let out = sim.done(1, retry());
            let asked = writes(&out);
            let [Write::Attempt { next_attempt_at, .. }] = asked.as_slice() else {
                panic!("{out:?}")
            };
            let wait = Duration::from_millis(next_attempt_at.as_millis() - sim.now.as_millis());
            let ceiling = Backoff::DELIVERY.ceiling(attempt);
            assert!(
                wait >= Duration::from_millis(100) && wait <= ceiling,
                "{wait:?} > {ceiling:?}"
            );
            assert!(wait <= Duration::from_secs(300));
            waits.push(wait);
            sim.feed(Input::Persisted(id(1)));
            assert_eq!(attempts(&sim.wake_up()), vec![id(1)]);
        }
        waits
    };
    let waits = schedule(7);
    let capped = &waits[20..];
    let distinct: std::collections::HashSet<_> = capped.iter().collect();
    assert!(distinct.len() > capped.len() * 9 / 10, "full jitter: {}", distinct.len());
    assert!(capped.iter().any(|w| *w < Duration::from_secs(100)));
    assert!(capped.iter().any(|w| *w > Duration::from_secs(200)));
    assert_eq!(waits, schedule(7), "replays from its seed");
    assert_ne!(waits, schedule(8));
}

#[test]
fn a_peer_online_makes_its_recipients_waiting_messages_due_at_once() {
    let mut sim = Sim::new(4);
    sim.feed(Input::Learned { address: addr(9), devices: vec![(7, ())] });
    sim.feed(Input::Enqueue(entry(1, 9, sim.now, false)));
    sim.feed(Input::Enqueue(entry(2, 9, sim.now, false)));
    sim.feed(Input::Enqueue(entry(3, 8, sim.now, false)));
    // 1 and 3 fail and wait; 2 stays in flight.
    for n in [1, 3] {
        sim.done(n, retry());
        sim.feed(Input::Persisted(id(n)));
    }
    sim.now = sim.now.saturating_add(Duration::from_millis(1));
    assert_eq!(attempts(&sim.feed(Input::PeerOnline(99))), [], "a stranger's device");
    let out = sim.feed(Input::PeerOnline(7));
    assert_eq!(attempts(&out), vec![id(1)], "not 2 (in flight), not 3 (someone else)");
    // Another connection while 1 runs starts nothing twice.
    assert_eq!(attempts(&sim.feed(Input::PeerOnline(7))), []);
    assert_eq!(sim.m.running(), 2);
}

#[test]
fn no_more_attempts_run_than_the_limit() {
    let mut sim = Sim::new(2);
    let mut started = Vec::new();
    for n in 1..=5 {
        let out = sim.feed(Input::Enqueue(entry(n, 9, sim.now, false)));
        started.extend(attempts(&out));
        assert!(sim.m.running() <= 2);
    }
    assert_eq!(started.len(), 2);
    assert_eq!(sim.wake, None, "at the limit, the next report wakes it");
    let out = sim.done(1, delivered());
    assert_eq!(attempts(&out).len(), 1, "one slot freed, one started");
    let persist = position(&out, |o| matches!(o, Output::Persist(_)));
    let attempt = position(&out, |o| matches!(o, Output::Attempt { .. }));
    assert!(persist < attempt, "the commit is asked first");
    assert_eq!(sim.m.running(), 2);
}

#[test]
fn a_delivered_receipt_stops_the_retries() {
    // Waiting.
    let mut sim = Sim::new(4);
    sim.feed(Input::Enqueue(entry(1, 9, sim.now, false)));
    sim.done(1, retry());
    sim.feed(Input::Persisted(id(1)));
    assert!(sim.wake.is_some());
    assert_eq!(sim.feed(Input::Delivered(id(1))), [Output::Metric(Metric::Left)]);
    assert_eq!(sim.wake, None);
    assert_eq!(attempts(&sim.advance(Duration::from_secs(3600))), []);
    // In flight: the attempt's report changes nothing.
    sim.feed(Input::Enqueue(entry(2, 9, sim.now, false)));
    assert_eq!(sim.feed(Input::Delivered(id(2))), [Output::Metric(Metric::Left)]);
    assert_eq!(sim.m.running(), 1);
    assert_eq!(sim.done(2, retry()), []);
    assert_eq!(sim.m.running(), 0);
    // While its attempt is being recorded: no status afterwards.
    sim.feed(Input::Enqueue(entry(3, 9, sim.now, false)));
    sim.done(3, retry());
    sim.feed(Input::Delivered(id(3)));
    assert_eq!(sim.feed(Input::Persisted(id(3))), []);
    assert!(sim.m.is_empty());
}

#[test]
fn control_messages_move_no_status_and_no_counter() {
    for control in [false, true] {
        let mut sim = Sim::new(4);
        let mut out = Vec::new();
        sim.feed(Input::Enqueue(entry(1, 9, sim.now, control)));
        out.extend(sim.done(1, delivered()));
        out.extend(sim.feed(Input::Persisted(id(1))));
        sim.feed(Input::Enqueue(entry(2, 9, sim.now, control)));
        out.extend(sim.done(2, Outcome::Stored { error: "offline".into(), looked_up: None }));
        out.extend(sim.feed(Input::Persisted(id(2))));
        sim.feed(Input::Enqueue(entry(3, 9, sim.now, control)));
        out.extend(sim.done(3, Outcome::Reject { reason: "invalid".into() }));
        out.extend(sim.feed(Input::Persisted(id(3))));
        let lefts = out.iter().filter(|o| **o == Output::Metric(Metric::Left)).count();
        assert_eq!(lefts, 2, "the depth moves either way");
        assert!(out.contains(&Output::Stored(id(2))), "files hear of it either way");
        let counted = out.iter().any(|o| {
            matches!(o, Output::Metric(Metric::Delivered { .. }) | Output::Metric(Metric::Failed))
        });
        if control {
            assert_eq!(statuses(&out), []);
            assert!(!counted);
        } else {
            assert_eq!(statuses(&out), [Status::Delivered, Status::Stored, Status::Failed]);
            assert!(counted);
        }
    }
}

#[test]
fn a_failed_write_is_asked_again_and_nothing_is_lost() {
    let mut sim = Sim::new(1);
    sim.feed(Input::Enqueue(entry(1, 9, sim.now, false)));
    let out = sim.done(1, delivered());
    let status = position(&out, |o| matches!(o, Output::Status { .. }));
    let persist = position(&out, |o| matches!(o, Output::Persist(Write::Delivered(_))));
    assert!(status < persist, "delivered is announced before the commit");
    // Two failures, then it holds; never sent again meanwhile.
    for _ in 0..2 {
        assert_eq!(sim.feed(Input::PersistFailed(id(1))).len(), 1, "only a wake");
        assert_eq!(sim.m.len(), 1);
        let out = sim.wake_up();
        assert_eq!(writes(&out), [Write::Delivered(id(1))]);
        assert_eq!(attempts(&out), []);
    }
    assert_eq!(sim.feed(Input::Persisted(id(1))), [Output::Metric(Metric::Left)]);

    // A failed record of an attempt: no status and no attempt until it is on disk,
    // even while another message holds the only attempt slot.
    sim.feed(Input::Enqueue(entry(2, 9, sim.now, false)));
    let out = sim.done(2, retry());
    let asked = writes(&out);
    sim.feed(Input::Enqueue(entry(3, 9, sim.now, false)));
    assert_eq!(sim.m.running(), 1);
    sim.feed(Input::PersistFailed(id(2)));
    let out = sim.wake_up();
    assert_eq!(writes(&out), asked, "the same write again");
    assert_eq!(statuses(&out), []);
    assert_eq!(statuses(&sim.feed(Input::Persisted(id(2)))), [Status::Queued]);

    // A failed dead letter: asked again with its reason, then the message fails.
    sim.done(3, Outcome::Reject { reason: "invalid".into() });
    sim.feed(Input::PersistFailed(id(3)));
    let out = sim.wake_up();
    assert_eq!(writes(&out), [Write::DeadLetter { id: id(3), reason: "invalid".into() }]);
    assert_eq!(statuses(&sim.feed(Input::Persisted(id(3)))), [Status::Failed]);
    assert_eq!(sim.m.len(), 1, "only 2 is left, waiting");
}

#[test]
fn stale_schedule_items_are_skipped() {
    let mut sim = Sim::new(4);
    sim.feed(Input::Learned { address: addr(9), devices: vec![(7, ())] });
    let out = sim.feed(Input::Enqueue(entry(1, 9, sim.now, false)));
    assert_eq!(attempts(&out), vec![id(1)]);
    // Queued again while in flight: still one attempt.
    assert_eq!(attempts(&sim.feed(Input::Enqueue(entry(1, 9, sim.now, false)))), []);
    for _ in 0..500 {
        sim.done(1, retry());
        sim.feed(Input::Persisted(id(1)));
        let due = sim.m.entry(&id(1)).map(|e| e.next_attempt_at);
        assert_eq!(sim.wake, due, "woken for the live item, not a stale one");
        // A kick leaves the old item stale; the attempt it starts is the only one.
        sim.now = sim.now.saturating_add(Duration::from_millis(10));
        assert_eq!(attempts(&sim.feed(Input::PeerOnline(7))), vec![id(1)]);
        assert_eq!(attempts(&sim.feed(Input::Tick)), []);
        assert!(sim.m.heap_len() <= 2 * sim.m.len() + schedule::HEAP_SLACK + 1);
    }
}

#[test]
fn attempts_get_the_devices_the_cache_trusts() {
    let devices_of = |out: &[Out]| {
        out.iter()
            .find_map(|o| match o {
                Output::Attempt { devices, .. } => Some(devices.clone()),
                _ => None,
            })
            .expect("an attempt")
    };
    let mut sim = Sim::new(4);
    sim.feed(Input::Learned { address: addr(9), devices: vec![(7, ())] });
    let out = sim.feed(Input::Enqueue(entry(1, 9, sim.now, false)));
    assert_eq!(devices_of(&out), Some(vec![(7, ())]));
    // Failed: the next attempt looks up again.
    sim.done(1, Outcome::Stored { error: "offline".into(), looked_up: None });
    sim.feed(Input::Persisted(id(1)));
    assert_eq!(devices_of(&sim.wake_up()), None);
    // Delivered after a lookup: trusted for 600 s.
    let looked_up = Some(vec![(8, ())]);
    sim.done(1, Outcome::Delivered { looked_up });
    sim.feed(Input::Persisted(id(1)));
    let out = sim.feed(Input::Enqueue(entry(2, 9, sim.now, false)));
    assert_eq!(devices_of(&out), Some(vec![(8, ())]));
    sim.done(2, delivered());
    sim.feed(Input::Persisted(id(2)));
    sim.now = sim.now.saturating_add(DEVICE_TTL);
    assert_eq!(devices_of(&sim.feed(Input::Enqueue(entry(3, 9, sim.now, false)))), None);
}

#[test]
fn a_restored_outbox_is_exactly_its_rows() {
    let now = Timestamp::from_millis(T0);
    let later = now.saturating_add(Duration::from_secs(60));
    let mut rows = vec![entry(1, 9, now, false), entry(2, 9, now, true), entry(3, 8, now, false)];
    rows[2].next_attempt_at = later;
    rows[2].attempts = 4;
    let mut m: Outbox<u8, ()> = Outbox::restore(1, rows.clone());
    assert_eq!(m.len(), 3);
    assert_eq!(m.entry(&id(3)), rows.get(2));
    let mut rng = Seeded::new(3);
    let out = m.handle(Input::Tick, now, &mut rng);
    assert_eq!(attempts(&out).len(), 1, "the limit holds after a restart too");
    let copy = m.clone();
    let out =
        m.handle(Input::AttemptDone { id: attempts(&out)[0], outcome: delivered() }, now, &mut rng);
    assert_eq!(attempts(&out).len(), 1);
    assert_eq!(copy.running(), 1, "a clone is independent");
}

/// A message sealed again (its recipient lost the session) goes out as its new
/// envelope from its next attempt on; an unknown id changes nothing.
#[test]
fn a_resealed_entry_is_sent_as_its_new_envelope() {
    let mut sim = Sim::new(4);
    let now = sim.now;
    let out = sim.feed(Input::Enqueue(entry(1, 1, now, false)));
    assert_eq!(attempts(&out), [id(1)]);
    sim.feed(Input::Resealed { id: id(1), envelope: b"new".to_vec() });
    sim.feed(Input::Resealed { id: id(9), envelope: b"other".to_vec() });
    sim.done(1, retry());
    sim.feed(Input::Persisted(id(1)));
    let again = sim.wake_up();
    let sent: Vec<_> = again
        .iter()
        .filter_map(|o| match o {
            Output::Attempt { entry, .. } => Some(entry.envelope.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(sent, [b"new".to_vec()]);
}
