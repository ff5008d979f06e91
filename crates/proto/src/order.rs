//! The order of a conversation (issue 23 item 1, decision 0061): both ends show the
//! same messages in the same order, whatever order the wire, the mailboxes and the
//! retries delivered them in.
//!
//! Each conversation keeps a [`Clock`]. A message its author writes gets a
//! [`Stamp`], carried inside the session letter (so only the two ends see it):
//! - `n`, the author's count of messages in the conversation (1, 2, 3, …), so that
//!   the reader can tell that an earlier message is still on its way;
//! - `clock`, a hybrid logical clock: the larger of the author's wall clock (unix ms)
//!   and one past every clock the author had seen in the conversation, its own and
//!   the other side's. Each author's clocks increase, and a message written after
//!   reading another has a larger clock than the one it answers.
//!
//! The conversation is sorted by [`position`]: the clock, then the author (the
//! smaller address first when two clocks are equal). Both ends compute the same
//! position from the same stamp, so they show the same order: each side's messages in
//! the order they were written, a reply after what it answers, and messages written
//! at the same time by both sides interleaved by their authors' clocks.
//!
//! Two cases keep positions that differ between the ends, both documented in the
//! decision: a clock more than [`MAX_AHEAD`] ahead of the reader's wall clock is held
//! back to that bound (a peer cannot push a conversation's clock to the end of time),
//! and a message without a stamp (a version-1 envelope) is placed where it arrives.

use std::time::Duration;

use communitas_types::Timestamp;

/// How far ahead of the reader's wall clock a stamp's clock may be; later clocks are
/// taken as this bound.
pub const MAX_AHEAD: Duration = Duration::from_secs(24 * 60 * 60);

/// What a message's author put in its letter about its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// The author's count of its messages in the conversation, from 1.
    pub n: u64,
    /// The author's conversation clock when it wrote the message (unix ms, hybrid).
    pub clock: u64,
}

/// One conversation's clock, on one end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    /// The largest clock seen in the conversation, written or read.
    clock: u64,
    /// Messages written so far (the last `n` given out).
    written: u64,
}

impl Clock {
    /// A clock resumed from what the conversation holds: its largest clock and the
    /// largest `n` of our own messages in it (0 and 0 for a new conversation).
    pub fn resume(clock: u64, written: u64) -> Self {
        Self { clock, written }
    }

    /// The stamp of a message we write now.
    pub fn write(&mut self, now: Timestamp) -> Stamp {
        self.clock = now.as_millis().max(self.clock.saturating_add(1));
        self.written = self.written.saturating_add(1);
        Stamp { n: self.written, clock: self.clock }
    }

    /// A message read now with the author's `stamp` (`None`: it has none): returns
    /// the clock it is sorted by, and moves our clock past it so that what we write
    /// next comes after it.
    pub fn read(&mut self, stamp: Option<Stamp>, now: Timestamp) -> u64 {
        let clock = match stamp {
            Some(stamp) => stamp.clock.min(now.saturating_add(MAX_AHEAD).as_millis()),
            // No stamp: where it arrives, as our own next message would be.
            None => now.as_millis().max(self.clock.saturating_add(1)),
        };
        self.clock = self.clock.max(clock);
        clock
    }

    /// The largest clock seen.
    pub fn clock(&self) -> u64 {
        self.clock
    }
}

/// Where a message sorts in its conversation: by `clock`, then by author (the one
/// whose address sorts first goes first). `author_first` is whether the message's
/// author has the smaller of the two addresses.
pub fn position(clock: u64, author_first: bool) -> i64 {
    // Clocks are unix ms (2^41 today) held to MAX_AHEAD past the wall clock; the
    // clamp keeps a corrupt value from wrapping into a negative position.
    let clock = i64::try_from(clock).unwrap_or(i64::MAX / 2).min(i64::MAX / 2 - 1);
    clock * 2 + i64::from(!author_first)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_millis(1_780_000_000_000);

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(T0.as_millis() + ms)
    }

    #[test]
    fn a_burst_in_one_millisecond_keeps_its_order() {
        let mut clock = Clock::default();
        let stamps: Vec<Stamp> = (0..120).map(|_| clock.write(T0)).collect();
        for pair in stamps.windows(2) {
            assert!(pair[0].clock < pair[1].clock);
            assert_eq!(pair[0].n + 1, pair[1].n);
        }
        assert_eq!(stamps[0].n, 1);
    }

    #[test]
    fn a_reply_sorts_after_what_it_answers_even_with_a_slow_wall_clock() {
        let (mut alice, mut bob) = (Clock::default(), Clock::default());
        // Alice's wall clock is ten minutes ahead of Bob's.
        let question = alice.write(at(600_000));
        let read = bob.read(Some(question), at(0));
        let answer = bob.write(at(1));
        assert!(answer.clock > read);
        assert_eq!(read, question.clock);
        // Alice places both where Bob does.
        let read_back = alice.read(Some(answer), at(600_002));
        assert_eq!(read_back, answer.clock);
        assert!(position(question.clock, true) < position(answer.clock, false));
    }

    #[test]
    fn the_same_stamps_give_the_same_order_at_both_ends() {
        // Both write three messages at once, each before seeing the other's.
        let (mut alice, mut bob) = (Clock::default(), Clock::default());
        let a: Vec<Stamp> = (0..3).map(|i| alice.write(at(i * 10))).collect();
        let b: Vec<Stamp> = (0..3).map(|i| bob.write(at(i * 10 + 5))).collect();
        // Alice's address sorts first. Each end sorts its own and the other's.
        let mut at_alice: Vec<(i64, char, u64)> = a
            .iter()
            .map(|s| (position(s.clock, true), 'a', s.n))
            .chain(b.iter().map(|s| (position(alice.read(Some(*s), at(100)), false), 'b', s.n)))
            .collect();
        let mut at_bob: Vec<(i64, char, u64)> = b
            .iter()
            .map(|s| (position(s.clock, false), 'b', s.n))
            .chain(a.iter().rev().map(|s| (position(bob.read(Some(*s), at(100)), true), 'a', s.n)))
            .collect();
        at_alice.sort();
        at_bob.sort();
        assert_eq!(at_alice, at_bob);
        let who: String = at_alice.iter().map(|(_, c, _)| *c).collect();
        assert_eq!(who, "ababab");
    }

    #[test]
    fn equal_clocks_go_by_author() {
        assert!(position(5, true) < position(5, false));
        assert!(position(5, false) < position(6, true));
    }

    #[test]
    fn a_clock_far_ahead_is_held_back_and_does_not_drag_ours_beyond_the_bound() {
        let mut ours = Clock::default();
        let far = Stamp { n: 1, clock: u64::MAX };
        let read = ours.read(Some(far), T0);
        assert_eq!(read, T0.saturating_add(MAX_AHEAD).as_millis());
        let next = ours.write(T0);
        assert_eq!(next.clock, read + 1);
        // Positions never wrap negative, even from a corrupt clock.
        assert!(position(u64::MAX, false) > position(read, true));
    }

    #[test]
    fn an_unstamped_message_goes_where_it_arrives() {
        let mut ours = Clock::resume(T0.as_millis() + 50, 7);
        let read = ours.read(None, T0);
        assert_eq!(read, T0.as_millis() + 51);
        let next = ours.write(T0);
        assert_eq!(next, Stamp { n: 8, clock: T0.as_millis() + 52 });
    }
}
