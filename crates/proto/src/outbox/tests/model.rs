//! A property: whatever happens, and in whatever order — attempts ending every way,
//! writes failing or answered late, receipts, devices connecting, crashes — every
//! queued message ends exactly once, delivered or a dead letter, or is still queued.
//!
//! The model is a store with the real one's rules: the outbox rows, the delivered
//! and the dead. A write on a row that is gone answers [`Input::Gone`]; a crash
//! loses the attempts in flight and the writes not answered, and restores the
//! machine from the rows.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;

use super::{Out, addr, entry};
use crate::outbox::{Entry, Input, Outbox, Outcome, Output, Write};
use crate::random::Seeded;
use communitas_types::{MessageId, Timestamp};

const MAX_RUNNING: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Enqueue { to: u8, control: bool },
    Advance(Duration),
    Finish { pick: usize, how: u8 },
    Answer { pick: usize, ok: bool },
    Receipt { pick: usize },
    Online(u8),
    Learn(u8),
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3u8, any::<bool>()).prop_map(|(to, control)| Op::Enqueue { to, control }),
        3 => (0..600_000u64).prop_map(|ms| Op::Advance(Duration::from_millis(ms))),
        1 => (1..10u64).prop_map(|days| Op::Advance(Duration::from_secs(days * 86_400))),
        5 => (any::<usize>(), 0..4u8).prop_map(|(pick, how)| Op::Finish { pick, how }),
        5 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(pick, ok)| Op::Answer { pick, ok }),
        1 => any::<usize>().prop_map(|pick| Op::Receipt { pick }),
        1 => (0..3u8).prop_map(Op::Online),
        1 => (0..3u8).prop_map(Op::Learn),
        1 => Just(Op::Crash),
    ]
}

struct World {
    m: Outbox<u8, ()>,
    now: Timestamp,
    rng: Seeded,
    rows: HashMap<MessageId, Entry>,
    delivered: HashSet<MessageId>,
    dead: HashSet<MessageId>,
    queued: Vec<MessageId>,
    control: HashSet<MessageId>,
    running: Vec<MessageId>,
    unanswered: Vec<Write>,
}

impl World {
    fn new(seed: u64) -> Self {
        Self {
            m: Outbox::new(MAX_RUNNING),
            now: Timestamp::from_millis(1_700_000_000_000),
            rng: Seeded::new(seed),
            rows: HashMap::new(),
            delivered: HashSet::new(),
            dead: HashSet::new(),
            queued: Vec::new(),
            control: HashSet::new(),
            running: Vec::new(),
            unanswered: Vec::new(),
        }
    }

    fn feed(&mut self, input: Input<u8, ()>) {
        let out = self.m.handle(input, self.now, &mut self.rng);
        for o in out {
            self.take(o);
        }
        self.check();
    }

    fn take(&mut self, o: Out) {
        match o {
            Output::Attempt { entry, .. } => {
                assert!(!self.running.contains(&entry.id), "two attempts of one message");
                self.running.push(entry.id);
            }
            Output::Persist(write) => {
                if let Write::Attempt { next_attempt_at, id, .. } = &write {
                    let expires = self.rows.get(id).map(|r| r.expires_at);
                    assert!(expires.is_none_or(|e| *next_attempt_at <= e), "past the TTL");
                }
                assert!(
                    self.unanswered.iter().all(|w| w.id() != write.id()),
                    "two writes of one message at once"
                );
                self.unanswered.push(write);
            }
            Output::Status { id, .. } => {
                assert!(!self.control.contains(&id), "a status for a control message");
            }
            _ => {}
        }
    }

    /// The store answers a write, with the real store's rules.
    fn answer(&mut self, write: Write) -> Input<u8, ()> {
        let id = write.id();
        match write {
            Write::Delivered(_) => {
                self.rows.remove(&id);
                self.delivered.insert(id);
            }
            Write::Attempt { attempts, next_attempt_at, error, .. } => {
                let Some(row) = self.rows.get_mut(&id) else { return Input::Gone(id) };
                row.attempts = attempts;
                row.next_attempt_at = next_attempt_at;
                row.last_error = Some(error);
            }
            Write::DeadLetter { .. } => {
                if self.rows.remove(&id).is_none() {
                    return Input::Gone(id);
                }
                self.dead.insert(id);
            }
        }
        Input::Persisted(id)
    }

    fn check(&self) {
        assert!(self.m.running() <= MAX_RUNNING);
        let held: HashSet<_> = self.m.entries().map(|e| e.id).collect();
        let rows: HashSet<_> = self.rows.keys().copied().collect();
        assert_eq!(held, rows, "the machine holds exactly the outbox rows");
        assert!(self.delivered.is_disjoint(&self.dead), "delivered and dead");
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Enqueue { to, control } => {
                let n = u16::try_from(self.queued.len()).expect("few messages");
                let e = entry(n, to, self.now, control);
                self.queued.push(e.id);
                if control {
                    self.control.insert(e.id);
                }
                self.rows.insert(e.id, e.clone());
                self.feed(Input::Enqueue(e));
            }
            Op::Advance(by) => {
                self.now = self.now.saturating_add(by);
                self.feed(Input::Tick);
            }
            Op::Finish { pick, how } => {
                if self.running.is_empty() {
                    return;
                }
                let id = self.running.remove(pick % self.running.len());
                let looked_up = (how % 2 == 0).then(|| vec![(how, ())]);
                let error = "unreachable".to_owned();
                let outcome = match how {
                    0 => Outcome::Delivered { looked_up },
                    1 => Outcome::Stored { error, looked_up },
                    2 => Outcome::Retry { error, looked_up },
                    _ => Outcome::Reject { reason: "invalid".into() },
                };
                self.feed(Input::AttemptDone { id, outcome });
            }
            Op::Answer { pick, ok } => {
                if self.unanswered.is_empty() {
                    return;
                }
                let write = self.unanswered.remove(pick % self.unanswered.len());
                let input = if ok { self.answer(write) } else { Input::PersistFailed(write.id()) };
                self.feed(input);
            }
            Op::Receipt { pick } => {
                // The receipts path: only a user's message still in the outbox.
                let mut ids: Vec<_> =
                    self.rows.values().filter(|r| !r.control).map(|r| r.id).collect();
                ids.sort();
                if ids.is_empty() {
                    return;
                }
                let id = ids[pick % ids.len()];
                self.rows.remove(&id);
                self.delivered.insert(id);
                self.feed(Input::Delivered(id));
            }
            Op::Online(peer) => self.feed(Input::PeerOnline(peer)),
            Op::Learn(to) => {
                self.feed(Input::Learned { address: addr(to), devices: vec![(to, ())] })
            }
            Op::Crash => {
                self.running.clear();
                self.unanswered.clear();
                self.m = Outbox::restore(MAX_RUNNING, self.rows.values().cloned());
                self.feed(Input::Tick);
            }
        }
    }

    /// Everything succeeds from now on until the outbox is empty.
    fn drain(&mut self) {
        for _ in 0..10_000 {
            if self.m.is_empty() && self.running.is_empty() && self.unanswered.is_empty() {
                return;
            }
            if let Some(id) = self.running.pop() {
                self.feed(Input::AttemptDone {
                    id,
                    outcome: Outcome::Delivered { looked_up: None },
                });
            } else if let Some(write) = self.unanswered.pop() {
                let input = self.answer(write);
                self.feed(input);
            } else {
                self.now = self.now.saturating_add(Duration::from_secs(301));
                self.feed(Input::Tick);
            }
        }
        panic!("the outbox did not drain: {} left", self.m.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_message_ends_once_delivered_or_dead(
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut world = World::new(seed);
        for op in ops {
            world.apply(op);
        }
        world.drain();
        for id in &world.queued {
            let ends = usize::from(world.delivered.contains(id)) + usize::from(world.dead.contains(id));
            prop_assert_eq!(ends, 1, "{:?} ended {} times", id, ends);
        }
        prop_assert!(world.rows.is_empty());
    }
}
