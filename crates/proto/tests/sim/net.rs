//! The network model: per-pair links (latency, jitter, loss), partitions (a set of
//! nodes cut off from the rest for an interval) and offline intervals (one node cut
//! off from everybody, and knowing it).
//!
//! A frame's fate is decided when it is sent ([`Network::fate`]) and checked again
//! when it arrives ([`Network::reachable`]): a cut that starts while a frame is in
//! flight loses it. Requests to a peer that is down or offline fail as unreachable
//! (a failed dial); frames lost to loss or a partition just never arrive, so the
//! caller learns of it by its request timing out.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use communitas_proto::Random;
use communitas_proto::random::Seeded;
use communitas_types::Timestamp;

use super::world::NodeId;

/// One direction of travel between two nodes (set both ways at once).
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// The one-way delay.
    pub latency: Duration,
    /// Added to the delay: uniform in `0..=jitter` (so frames can overtake each other).
    pub jitter: Duration,
    /// The chance a frame is lost, in `0.0..=1.0`.
    pub loss: f64,
}

impl Default for Link {
    /// A good connection: 20 ms ± 5 ms, nothing lost.
    fn default() -> Self {
        Self { latency: Duration::from_millis(20), jitter: Duration::from_millis(5), loss: 0.0 }
    }
}

/// What happens to a frame sent now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It arrives this much later (if nothing cuts the way meanwhile).
    Arrives(Duration),
    /// It is lost on the way.
    Lost,
    /// The peer is down or offline, or the sender is offline: the dial fails.
    Unreachable,
}

#[derive(Clone, Debug)]
struct Cut {
    side: Vec<NodeId>,
    during: Range<Timestamp>,
}

/// Links, partitions and offline intervals.
#[derive(Clone, Debug)]
pub struct Network {
    default: Link,
    links: BTreeMap<(NodeId, NodeId), Link>,
    cuts: Vec<Cut>,
    offline: Vec<(NodeId, Range<Timestamp>)>,
}

impl Network {
    pub(super) fn new(default: Link) -> Self {
        Self { default, links: BTreeMap::new(), cuts: Vec::new(), offline: Vec::new() }
    }

    /// Sets the link between `a` and `b`, both ways.
    pub fn set_link(&mut self, a: NodeId, b: NodeId, link: Link) {
        self.links.insert(key(a, b), link);
    }

    /// Cuts `side` off from every other node during `during` (frames across the cut
    /// are lost; within each side they pass).
    pub fn partition(&mut self, side: &[NodeId], during: Range<Timestamp>) {
        self.cuts.push(Cut { side: side.to_vec(), during });
    }

    /// Takes `node` off the network during `during` (it keeps running: a laptop with
    /// its Wi-Fi off). Its dials, and dials to it, fail.
    pub fn offline(&mut self, node: NodeId, during: Range<Timestamp>) {
        self.offline.push((node, during));
    }

    /// Whether `node` is off the network at `at`.
    pub fn is_offline(&self, node: NodeId, at: Timestamp) -> bool {
        self.offline.iter().any(|(n, during)| *n == node && during.contains(&at))
    }

    /// Whether a frame from `a` to `b` passes at `at` (no cut, neither offline).
    pub fn reachable(&self, a: NodeId, b: NodeId, at: Timestamp) -> bool {
        !self.is_offline(a, at) && !self.is_offline(b, at) && !self.cut(a, b, at)
    }

    fn cut(&self, a: NodeId, b: NodeId, at: Timestamp) -> bool {
        self.cuts
            .iter()
            .any(|c| c.during.contains(&at) && (c.side.contains(&a) != c.side.contains(&b)))
    }

    /// The fate of a frame from `from` to `to` sent at `at`, `to_up` saying whether the
    /// peer's process is running.
    pub fn fate(
        &self,
        from: NodeId,
        to: NodeId,
        to_up: bool,
        at: Timestamp,
        rng: &mut Seeded,
    ) -> Fate {
        if !to_up || self.is_offline(from, at) || self.is_offline(to, at) {
            return Fate::Unreachable;
        }
        if self.cut(from, to, at) {
            return Fate::Lost;
        }
        let link = self.links.get(&key(from, to)).copied().unwrap_or(self.default);
        if link.loss > 0.0 && unit(rng) < link.loss {
            return Fate::Lost;
        }
        let jitter_ms = u64::try_from(link.jitter.as_millis()).unwrap_or(u64::MAX);
        Fate::Arrives(link.latency + Duration::from_millis(rng.below(jitter_ms.saturating_add(1))))
    }
}

fn key(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    if a <= b { (a, b) } else { (b, a) }
}

/// A uniform draw in `[0, 1)`.
fn unit(rng: &mut Seeded) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}
