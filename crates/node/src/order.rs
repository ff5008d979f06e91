//! Each conversation's clock (issue 23 item 1, decision 0061): stamps for what we
//! write, places for what we store, kept in memory and resumed from the store.
//!
//! The rules are `communitas_proto::order`'s; this keeps one
//! [`Clock`](communitas_proto::order::Clock) per conversation. A clock not in memory
//! is resumed from the messages the store holds (their largest clock and our largest
//! `n`), so the map can be dropped at any time: it is a cache, bounded by
//! [`MAX_CLOCKS`], not state.

use std::collections::HashMap;

use communitas_proto::order::{self, Clock, Stamp};
use communitas_store::{Place, Store};
use communitas_types::{Address, Timestamp};

/// Conversations whose clock is kept in memory; past this the cache starts over
/// (strangers writing from fresh addresses must not grow it).
pub(crate) const MAX_CLOCKS: usize = 4_096;

/// One conversation's clock, once resumed; its lock is held across the store read that
/// resumes it, so two first messages cannot both start at 0.
type Slot = std::sync::Arc<tokio::sync::Mutex<Option<Clock>>>;

pub(crate) struct Clocks {
    own: Address,
    /// Held only to find or add a conversation's slot, never across an `.await`: a
    /// conversation resumed from the store holds up no other.
    clocks: std::sync::Mutex<HashMap<Address, Slot>>,
}

impl Clocks {
    pub(crate) fn new(own: Address) -> Self {
        Self { own, clocks: std::sync::Mutex::new(HashMap::new()) }
    }

    /// The stamp and place of a message we write to `peer` now.
    pub(crate) async fn write(
        &self,
        store: &Store,
        peer: Address,
        now: Timestamp,
    ) -> Result<(Stamp, Place), communitas_store::Error> {
        let stamp = self.with(store, peer, |clock| clock.write(now)).await?;
        let place = Place {
            position: order::position(stamp.clock, first(self.own, peer)),
            clock: stamp.clock,
            n: Some(stamp.n),
        };
        Ok((stamp, place))
    }

    /// The place of a message from `peer` read now, with its stamp if it had one.
    pub(crate) async fn read(
        &self,
        store: &Store,
        peer: Address,
        stamp: Option<Stamp>,
        now: Timestamp,
    ) -> Result<Place, communitas_store::Error> {
        let clock = self.with(store, peer, |clock| clock.read(stamp, now)).await?;
        Ok(Place {
            position: order::position(clock, first(peer, self.own)),
            clock,
            n: stamp.map(|s| s.n),
        })
    }

    async fn with<T>(
        &self,
        store: &Store,
        peer: Address,
        f: impl FnOnce(&mut Clock) -> T,
    ) -> Result<T, communitas_store::Error> {
        let slot = {
            let mut clocks = self.clocks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if clocks.len() >= MAX_CLOCKS && !clocks.contains_key(&peer) {
                // A cache of what the store holds (as before: a message being stored
                // as this happens may share its clock with the next; history breaks
                // such ties by arrival).
                clocks.clear();
            }
            clocks.entry(peer).or_default().clone()
        };
        let mut clock = slot.lock().await;
        if clock.is_none() {
            let (resumed, written) = store.conversation_clock(peer).await?;
            *clock = Some(Clock::resume(resumed, written));
        }
        Ok(f(clock.get_or_insert_with(Clock::default)))
    }
}

/// Whether `author` sorts first of the two (ties in clock go to the smaller address).
fn first(author: Address, other: Address) -> bool {
    author.to_bytes() < other.to_bytes()
}
