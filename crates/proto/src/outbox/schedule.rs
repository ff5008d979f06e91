//! The outbox machine: [`Outbox::handle`] and the rules behind it (see the
//! [module](super) header for the flow).
//!
//! Each entry is in one [`Phase`]. The due times live in a min-heap; rescheduling
//! pushes a new item instead of moving the old one, so an item is live only while
//! its entry is waiting and due exactly then. Stale items are skipped when they
//! surface, and the heap is rebuilt if they ever outnumber the live ones.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::Hash;
use std::time::Duration;

use communitas_types::{MessageId, Timestamp};

use super::devices::Cache;
use super::{Entry, Input, Metric, Outcome, Output, Status, Write};
use crate::Random;
use crate::backoff::Backoff;

/// Where an entry is in its life.
#[derive(Debug, Clone)]
enum Phase {
    /// Due at its `next_attempt_at`.
    Waiting,
    /// An attempt is running.
    InFlight,
    /// A write was asked and not answered yet.
    Writing(Write),
    /// A write failed; ask it again at `at`.
    Rewrite { write: Write, at: Timestamp },
}

#[derive(Debug, Clone)]
struct Slot {
    entry: Entry,
    phase: Phase,
    /// Failed writes in a row, for their backoff.
    write_failures: u32,
}

type Heap = BinaryHeap<Reverse<(Timestamp, MessageId)>>;

/// Stale heap items tolerated beyond the live ones before a rebuild.
pub(super) const HEAP_SLACK: usize = 64;

/// The outbox machine.
#[derive(Debug, Clone)]
pub struct Outbox<P, D> {
    slots: HashMap<MessageId, Slot>,
    /// When attempts are due.
    due: Heap,
    /// When failed writes are asked again (not held back by the attempt limit).
    rewrites: Heap,
    /// Attempts running. A forgotten entry's attempt counts until it reports.
    running: HashSet<MessageId>,
    max_running: usize,
    devices: Cache<P, D>,
}

impl<P: Copy + Eq + Hash, D: Clone> Outbox<P, D> {
    /// An empty outbox running at most `max_running` attempts at a time (at least 1).
    pub fn new(max_running: usize) -> Self {
        Self {
            slots: HashMap::new(),
            due: BinaryHeap::new(),
            rewrites: BinaryHeap::new(),
            running: HashSet::new(),
            max_running: max_running.max(1),
            devices: Cache::default(),
        }
    }

    /// The outbox a (re)started node has: exactly its persisted rows, each due at its
    /// recorded `next_attempt_at`. Feed any input (`Tick`) to start what is due.
    pub fn restore(max_running: usize, rows: impl IntoIterator<Item = Entry>) -> Self {
        let mut outbox = Self::new(max_running);
        for entry in rows {
            outbox.enqueue(entry);
        }
        outbox
    }

    /// Entries not yet delivered or given up.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// No entry left.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The entry of `id`, if it is still queued.
    pub fn entry(&self, id: &MessageId) -> Option<&Entry> {
        self.slots.get(id).map(|s| &s.entry)
    }

    /// Every queued entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.slots.values().map(|s| &s.entry)
    }

    /// Attempts running now.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Takes one input at time `now`; returns what to do, in order.
    pub fn handle(
        &mut self,
        input: Input<P, D>,
        now: Timestamp,
        rng: &mut impl Random,
    ) -> Vec<Output<P, D>> {
        let mut out = Vec::new();
        match input {
            Input::Enqueue(entry) => self.enqueue(entry),
            Input::Delivered(id) | Input::Gone(id) => self.forget(id, &mut out),
            Input::PeerOnline(peer) => self.peer_online(&peer, now),
            Input::Learned { address, devices } => self.devices.remember(address, devices, now),
            Input::AttemptDone { id, outcome } => {
                self.attempt_done(id, outcome, now, rng, &mut out)
            }
            Input::Resealed { id, envelope } => {
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.entry.envelope = envelope;
                }
            }
            Input::Persisted(id) => self.persisted(id, &mut out),
            Input::PersistFailed(id) => self.persist_failed(id, now, rng),
            Input::Tick => {}
        }
        self.start_due(now, &mut out);
        self.wake(&mut out);
        out
    }

    fn enqueue(&mut self, entry: Entry) {
        let (id, at) = (entry.id, entry.next_attempt_at);
        let waiting = match self.slots.get_mut(&id) {
            // Known: new fields, same phase (an outcome already decided stands).
            Some(slot) => {
                slot.entry = entry;
                matches!(slot.phase, Phase::Waiting)
            }
            None => {
                // An attempt for this id still running reports for the new entry.
                let running = self.running.contains(&id);
                let phase = if running { Phase::InFlight } else { Phase::Waiting };
                self.slots.insert(id, Slot { entry, phase, write_failures: 0 });
                !running
            }
        };
        if waiting {
            self.due.push(Reverse((at, id)));
            self.compact();
        }
    }

    fn forget(&mut self, id: MessageId, out: &mut Vec<Output<P, D>>) {
        if self.slots.remove(&id).is_some() {
            out.push(Output::Metric(Metric::Left));
        }
    }

    /// A device of a recipient connected: its waiting messages are due now.
    fn peer_online(&mut self, peer: &P, now: Timestamp) {
        let Some(address) = self.devices.address_of(peer) else { return };
        for (id, slot) in &mut self.slots {
            let entry = &mut slot.entry;
            if entry.recipient == address
                && matches!(slot.phase, Phase::Waiting)
                && entry.next_attempt_at > now
            {
                entry.next_attempt_at = now;
                self.due.push(Reverse((now, *id)));
            }
        }
        self.compact();
    }

    fn attempt_done(
        &mut self,
        id: MessageId,
        outcome: Outcome<P, D>,
        now: Timestamp,
        rng: &mut impl Random,
        out: &mut Vec<Output<P, D>>,
    ) {
        self.running.remove(&id);
        // Gone: a receipt delivered it while the attempt ran.
        let Some(slot) = self.slots.get(&id) else { return };
        if !matches!(slot.phase, Phase::InFlight) {
            return;
        }
        let (to, control, queued) =
            (slot.entry.recipient, slot.entry.control, slot.entry.created_at);
        match outcome {
            Outcome::Delivered { looked_up } => {
                if let Some(devices) = looked_up {
                    self.devices.remember(to, devices, now);
                }
                // Announced before the commit: see the module header.
                if !control {
                    let ms = now.as_millis().saturating_sub(queued.as_millis());
                    let latency = Duration::from_millis(ms);
                    out.push(Output::Metric(Metric::Delivered { latency }));
                    out.push(Output::Status { id, to, status: Status::Delivered });
                }
                self.write(id, Write::Delivered(id), out);
            }
            Outcome::Stored { error, looked_up } => {
                self.devices.unreachable(to, looked_up, now);
                out.push(Output::Stored(id));
                self.failed(id, error, Status::Stored, now, rng, out);
            }
            Outcome::Retry { error, looked_up } => {
                self.devices.unreachable(to, looked_up, now);
                self.failed(id, error, Status::Queued, now, rng, out);
            }
            Outcome::Reject { reason } => self.write(id, Write::DeadLetter { id, reason }, out),
        }
    }

    /// An attempt did not deliver: try again after a backoff, or give up at the TTL.
    /// (`status`: whether it now waits in mailboxes.)
    fn failed(
        &mut self,
        id: MessageId,
        error: String,
        status: Status,
        now: Timestamp,
        rng: &mut impl Random,
        out: &mut Vec<Output<P, D>>,
    ) {
        let Some(slot) = self.slots.get_mut(&id) else { return };
        let entry = &mut slot.entry;
        let write = if now >= entry.expires_at {
            let reason = format!("not delivered within 30 days; last error: {error}");
            Write::DeadLetter { id, reason }
        } else {
            entry.attempts = entry.attempts.saturating_add(1);
            let wait = Backoff::DELIVERY.wait(entry.attempts, rng);
            // The last wait ends on the expiry, so the last attempt is made then.
            entry.next_attempt_at = now.saturating_add(wait).min(entry.expires_at);
            entry.last_error = Some(error.clone());
            let (attempts, next_attempt_at) = (entry.attempts, entry.next_attempt_at);
            Write::Attempt { id, attempts, next_attempt_at, error, status }
        };
        self.write(id, write, out);
    }

    fn write(&mut self, id: MessageId, write: Write, out: &mut Vec<Output<P, D>>) {
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.phase = Phase::Writing(write.clone());
            out.push(Output::Persist(write));
        }
    }

    fn persisted(&mut self, id: MessageId, out: &mut Vec<Output<P, D>>) {
        let Some(slot) = self.slots.get_mut(&id) else { return };
        let retry = match &slot.phase {
            Phase::Writing(Write::Attempt { status, .. }) => Some(*status),
            Phase::Writing(_) => None,
            // Not asked: a stray answer changes nothing.
            _ => return,
        };
        let dead = matches!(slot.phase, Phase::Writing(Write::DeadLetter { .. }));
        let (to, control, at) =
            (slot.entry.recipient, slot.entry.control, slot.entry.next_attempt_at);
        slot.write_failures = 0;
        match retry {
            Some(status) => {
                if !control {
                    out.push(Output::Status { id, to, status });
                }
                slot.phase = Phase::Waiting;
                self.due.push(Reverse((at, id)));
                self.compact();
            }
            None => {
                self.forget(id, out);
                if dead && !control {
                    out.push(Output::Metric(Metric::Failed));
                    out.push(Output::Status { id, to, status: Status::Failed });
                }
            }
        }
    }

    fn persist_failed(&mut self, id: MessageId, now: Timestamp, rng: &mut impl Random) {
        let Some(slot) = self.slots.get_mut(&id) else { return };
        match std::mem::replace(&mut slot.phase, Phase::InFlight) {
            Phase::Writing(write) => {
                slot.write_failures = slot.write_failures.saturating_add(1);
                let at = now.saturating_add(Backoff::DELIVERY.wait(slot.write_failures, rng));
                slot.phase = Phase::Rewrite { write, at };
                self.rewrites.push(Reverse((at, id)));
            }
            // Not asked: a stray answer changes nothing.
            other => slot.phase = other,
        }
    }

    /// Asks again the failed writes that are due, then starts the attempts that are
    /// due, as far as the limit allows.
    fn start_due(&mut self, now: Timestamp, out: &mut Vec<Output<P, D>>) {
        while let Some(&Reverse((at, id))) = self.rewrites.peek() {
            if at > now {
                break;
            }
            self.rewrites.pop();
            let Some(slot) = self.slots.get_mut(&id) else { continue };
            if let Phase::Rewrite { write, at: when } = &slot.phase
                && *when == at
            {
                let write = write.clone();
                slot.phase = Phase::Writing(write.clone());
                out.push(Output::Persist(write));
            }
        }
        while self.running.len() < self.max_running {
            let Some(&Reverse((at, id))) = self.due.peek() else { break };
            if at > now {
                break;
            }
            self.due.pop();
            let Some(slot) = self.slots.get_mut(&id) else { continue };
            if !matches!(slot.phase, Phase::Waiting) || slot.entry.next_attempt_at != at {
                continue; // stale: rescheduled, running, or written since
            }
            slot.phase = Phase::InFlight;
            self.running.insert(id);
            let devices = self.devices.trusted(slot.entry.recipient, now);
            out.push(Output::Attempt { entry: slot.entry.clone(), devices });
        }
    }

    /// The next time something is due, if anything is and nothing running will
    /// report first.
    fn wake(&mut self, out: &mut Vec<Output<P, D>>) {
        while let Some(&Reverse((at, id))) = self.due.peek() {
            match self.slots.get(&id) {
                Some(s) if matches!(s.phase, Phase::Waiting) && s.entry.next_attempt_at == at => {
                    break;
                }
                _ => self.due.pop(),
            };
        }
        while let Some(&Reverse((at, id))) = self.rewrites.peek() {
            match self.slots.get(&id) {
                Some(s) if matches!(s.phase, Phase::Rewrite { at: when, .. } if when == at) => {
                    break;
                }
                _ => self.rewrites.pop(),
            };
        }
        let attempt = (self.running.len() < self.max_running)
            .then(|| self.due.peek().map(|Reverse((at, _))| *at))
            .flatten();
        let rewrite = self.rewrites.peek().map(|Reverse((at, _))| *at);
        if let Some(at) = attempt.into_iter().chain(rewrite).min() {
            out.push(Output::WakeAt(at));
        }
    }

    /// Rebuilds the attempt heap once stale items outnumber the live ones.
    fn compact(&mut self) {
        if self.due.len() > 2 * self.slots.len() + HEAP_SLACK {
            self.due = self
                .slots
                .iter()
                .filter(|(_, s)| matches!(s.phase, Phase::Waiting))
                .map(|(id, s)| Reverse((s.entry.next_attempt_at, *id)))
                .collect();
        }
    }

    #[cfg(test)]
    pub(super) fn heap_len(&self) -> usize {
        self.due.len()
    }
}
