//! A fair queue: work from many sources, bounded in total and per source, served
//! round robin over the sources, so that one source's backlog never delays another's
//! by more than one item each.
//!
//! The one copy of that rule (issue 15 item 4, issue 16 item 3): the DHT's inbound
//! record puts wait in one before the validator, and envelopes from peers that are not
//! known contact devices wait in one before they are opened (`communitas-node`'s
//! strangers' lane). Each item carries the time it was queued so that a driver can
//! answer those that waited too long instead of serving them late.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use communitas_types::Timestamp;

/// Why [`FairQueue::push`] refused an item (it is handed back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This source already has its share waiting.
    SourceShare,
    /// The queue is full.
    Full,
}

/// Items waiting, by source: at most `total` of them, at most `per_source` from one.
#[derive(Debug)]
pub struct FairQueue<K, T> {
    by_source: HashMap<K, VecDeque<(Timestamp, T)>>,
    /// Sources with items waiting, in the order they are served.
    turns: VecDeque<K>,
    len: usize,
    total: usize,
    per_source: usize,
}

impl<K: Hash + Eq + Clone, T> FairQueue<K, T> {
    /// An empty queue holding at most `total` items, `per_source` from one source.
    pub fn new(total: usize, per_source: usize) -> Self {
        Self { by_source: HashMap::new(), turns: VecDeque::new(), len: 0, total, per_source }
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `item` from `source` at `now`, or hands it back with the reason.
    ///
    /// A full queue still takes an item from a source with fewer waiting than the
    /// source with most (by at least two): that source's newest item makes room and
    /// is handed back in `Ok(Some(..))`, to be answered as if refused. So a newcomer —
    /// a genuine first contact — finds a place whenever one source holds more than its
    /// fair share, however full the queue is.
    pub fn push(&mut self, source: K, item: T, now: Timestamp) -> Result<Option<T>, (Refused, T)> {
        let waiting = self.by_source.get(&source).map_or(0, VecDeque::len);
        if waiting >= self.per_source {
            return Err((Refused::SourceShare, item));
        }
        let mut evicted = None;
        if self.len >= self.total {
            let largest = self
                .by_source
                .iter()
                .max_by_key(|(_, queue)| queue.len())
                .filter(|(_, queue)| queue.len() > waiting + 1)
                .map(|(s, _)| s.clone());
            let Some(largest) = largest else { return Err((Refused::Full, item)) };
            // It keeps at least one item, so its turn stays where it is.
            evicted =
                self.by_source.get_mut(&largest).and_then(VecDeque::pop_back).map(|(_, item)| item);
            self.len -= usize::from(evicted.is_some());
        }
        if waiting == 0 {
            self.turns.push_back(source.clone());
        }
        self.by_source.entry(source).or_default().push_back((now, item));
        self.len += 1;
        Ok(evicted)
    }

    /// The next item, from the source whose turn it is, with the time it was queued.
    pub fn pop(&mut self) -> Option<(K, Timestamp, T)> {
        while let Some(source) = self.turns.pop_front() {
            let Some(queue) = self.by_source.get_mut(&source) else { continue };
            let Some((queued, item)) = queue.pop_front() else {
                self.by_source.remove(&source);
                continue;
            };
            if queue.is_empty() {
                self.by_source.remove(&source);
            } else {
                self.turns.push_back(source.clone());
            }
            self.len -= 1;
            return Some((source, queued, item));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn sources_are_served_in_turn_whatever_their_backlog() {
        let mut q = FairQueue::new(10, 4);
        for i in 0..4 {
            assert_eq!(q.push("flood", i, at(i)), Ok(None));
        }
        assert_eq!(q.push("carol", 100, at(10)), Ok(None));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(s, _, i)| (s, i)).collect();
        assert_eq!(order, [("flood", 0), ("carol", 100), ("flood", 1), ("flood", 2), ("flood", 3)]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_source_gets_its_share_and_the_queue_its_total() {
        let mut q = FairQueue::new(3, 2);
        assert_eq!(q.push(1, "a", at(0)), Ok(None));
        assert_eq!(q.push(2, "b", at(0)), Ok(None));
        assert_eq!(q.push(2, "c", at(0)), Ok(None));
        assert_eq!(q.push(2, "d", at(0)), Err((Refused::SourceShare, "d")));
        // Full, and source 2 holds two to source 1's one: no one holds more than
        // its share over a source with one, so the newcomer from 1 is refused.
        assert_eq!(q.push(1, "e", at(0)), Err((Refused::Full, "e")));
        assert_eq!(q.len(), 3);
        // Room again once one is served; the share counts what still waits.
        assert_eq!(q.pop(), Some((1, at(0), "a")));
        assert_eq!(q.push(1, "e", at(5)), Ok(None));
        assert_eq!(q.pop().map(|(s, _, i)| (s, i)), Some((2, "b")));
        assert_eq!(q.pop(), Some((1, at(5), "e")));
        assert_eq!(q.pop().map(|(s, _, i)| (s, i)), Some((2, "c")));
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn a_newcomer_to_a_full_queue_takes_the_place_of_the_loudest_source_s_newest() {
        let mut q = FairQueue::new(4, 3);
        for i in 0..3 {
            assert_eq!(q.push("flood", i, at(i)), Ok(None));
        }
        assert_eq!(q.push("other", 10, at(3)), Ok(None));
        // Full: flood holds 3, carol none.
        assert_eq!(q.push("carol", 100, at(4)), Ok(Some(2)), "flood's newest makes room");
        assert_eq!(q.len(), 4);
        // Flood holds 2 now, another newcomer holds 0: room again, at flood's cost.
        assert_eq!(q.push("dave", 200, at(5)), Ok(Some(1)));
        // Every source holds one: nobody is over its fair share, so refused.
        assert_eq!(q.push("erin", 300, at(6)), Err((Refused::Full, 300)));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(s, _, i)| (s, i)).collect();
        assert_eq!(order, [("flood", 0), ("other", 10), ("carol", 100), ("dave", 200)]);
    }
}
