//! The DHT: identity records we publish and look up, the records other nodes put here,
//! and closest-peer queries.
//!
//! A lookup is a Kademlia query plus the validator: every record found is checked
//! (signature inline, address derivation on a blocking thread) and the lookup answers
//! once the query is over and no record is still waiting. A put from another node is
//! rate-limited per peer ([`PUTS_PER_PEER_PER_MINUTE`], a `governor` bucket like the
//! node's other limits), validated the same way, and merged into what we hold under
//! that address's key only if its keys derive that address.
//!
//! Puts never stand in the way of our own lookups (issue 16): they wait in their own
//! queue (a [`FairQueue`]: at most [`PUTS_QUEUED`] records, [`PUTS_QUEUED_PER_PEER`] from
//! one peer, served round robin), and only [`PUTS_VALIDATING`] of them is handed to the
//! validator at a time. A lookup's record therefore waits behind at most one put's
//! derivation, and strangers' puts get at most that share of the CPU. What is turned
//! away is counted in `communitas_refused_total{what="record_put_…"}`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use communitas_crypto::IdentityRecord;
use communitas_crypto::record::{RecordSet, dht_key};
use communitas_proto::fair::{FairQueue, Refused};
use communitas_types::Address;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use libp2p::kad::{self, GetRecordOk, QueryId, QueryResult, Quorum, Record, RecordKey};
use libp2p::{PeerId, identify};
use tokio::sync::oneshot;

use super::EventLoop;
use crate::Error;
use crate::records::{Checked, Validator, Waiter};

/// Record puts accepted from one peer per minute; more are dropped (ARCHITECTURE §3:
/// validation is costly on purpose, so it is rationed). A peer may spend them at once,
/// and gets one back every two seconds.
const PUTS_PER_PEER_PER_MINUTE: NonZeroU32 = match NonZeroU32::new(30) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// Inbound put records waiting for the validator, from all peers together.
const PUTS_QUEUED: usize = 64;
/// Inbound put records one peer may have waiting (its fair share of [`PUTS_QUEUED`]).
const PUTS_QUEUED_PER_PEER: usize = 8;
/// Inbound put records handed to the validator at once: the CPU strangers' puts may
/// take (one derivation of the validator's two), whatever our lookups need.
const PUTS_VALIDATING: usize = 1;

/// Refusal labels (`communitas_refused_total{what}`), one per reason a put is dropped.
mod refused {
    /// Over the peer's rate ([`super::PUTS_PER_PEER_PER_MINUTE`]); counted per put.
    pub(super) const RATE: &str = "record_put_rate";
    /// Not a record set with valid signatures; counted per put.
    pub(super) const INVALID: &str = "record_put_invalid";
    /// The peer already has its share queued; counted per record.
    pub(super) const PEER_SHARE: &str = "record_put_peer_share";
    /// The put queue is full; counted per record.
    pub(super) const QUEUE_FULL: &str = "record_put_queue_full";
    /// The validator had no room (our lookups filled it); counted per record.
    pub(super) const OVERLOADED: &str = "record_put_overloaded";
    /// Its keys do not derive the address it was put under; counted per record.
    pub(super) const WRONG_KEY: &str = "record_put_wrong_key";
}

/// Inbound put records waiting for the validator: bounded in total and per source peer,
/// taken round robin over the peers so one peer's backlog does not delay another's.
type PutQueue = FairQueue<PeerId, (IdentityRecord, Waiter)>;

/// How often the buckets of peers that are full again are forgotten (bounds memory:
/// a bucket a peer has not touched for a minute is back at its burst anyway).
pub(super) const FORGET_PUTS: Duration = Duration::from_secs(60);

/// A lookup in progress.
struct Lookup {
    address: Address,
    reply: oneshot::Sender<Result<Vec<IdentityRecord>, Error>>,
    /// Records waiting for the validator.
    pending: usize,
    /// The DHT query is over.
    finished: bool,
    /// Valid records so far, by identity.
    found: Vec<IdentityRecord>,
}

/// The DHT's state in the event loop.
pub(super) struct Records {
    validator: Validator,
    closest: HashMap<QueryId, oneshot::Sender<Vec<PeerId>>>,
    publishes: HashMap<QueryId, oneshot::Sender<Result<(), Error>>>,
    lookups: HashMap<u64, Lookup>,
    lookup_queries: HashMap<QueryId, u64>,
    next_token: u64,
    /// Inbound record puts, per peer.
    puts: DefaultKeyedRateLimiter<PeerId>,
    /// Inbound put records waiting for the validator.
    put_queue: PutQueue,
    /// Inbound put records with the validator now (at most [`PUTS_VALIDATING`]).
    puts_validating: usize,
}

impl Default for Records {
    fn default() -> Self {
        Self {
            validator: Validator::default(),
            closest: HashMap::new(),
            publishes: HashMap::new(),
            lookups: HashMap::new(),
            lookup_queries: HashMap::new(),
            next_token: 0,
            puts: RateLimiter::keyed(Quota::per_minute(PUTS_PER_PEER_PER_MINUTE)),
            put_queue: PutQueue::new(PUTS_QUEUED, PUTS_QUEUED_PER_PEER),
            puts_validating: 0,
        }
    }
}

impl Records {
    /// Whether a derivation is running (the loop waits for [`Self::validated`] only then).
    pub(super) fn validating(&self) -> bool {
        self.validator.is_busy()
    }

    /// The records whose derivation just finished.
    pub(super) async fn validated(&mut self) -> Vec<Checked> {
        self.validator.next().await
    }

    pub(super) fn forget_idle_putters(&self) {
        self.puts.retain_recent();
    }
}

impl EventLoop {
    pub(super) fn publish(
        &mut self,
        address: Address,
        record_set: Vec<u8>,
        reply: oneshot::Sender<Result<(), Error>>,
    ) {
        let record = Record::new(RecordKey::new(&dht_key(&address)), record_set);
        match self.swarm.behaviour_mut().kad.put_record(record, Quorum::One) {
            Ok(query) => {
                self.records.publishes.insert(query, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(Error::Publish(e.into())));
            }
        }
    }

    pub(super) fn resolve(
        &mut self,
        address: Address,
        reply: oneshot::Sender<Result<Vec<IdentityRecord>, Error>>,
    ) {
        let records = &mut self.records;
        let token = records.next_token;
        records.next_token += 1;
        let query = self.swarm.behaviour_mut().kad.get_record(RecordKey::new(&dht_key(&address)));
        records.lookup_queries.insert(query, token);
        records.lookups.insert(
            token,
            Lookup { address, reply, pending: 0, finished: false, found: Vec::new() },
        );
    }

    pub(super) fn closest_peers(&mut self, key: Vec<u8>, reply: oneshot::Sender<Vec<PeerId>>) {
        let query = self.swarm.behaviour_mut().kad.get_closest_peers(key);
        self.records.closest.insert(query, reply);
    }

    pub(super) fn closest_known_peers(
        &mut self,
        key: Vec<u8>,
        reply: oneshot::Sender<Vec<PeerId>>,
    ) {
        let target = kad::KBucketKey::from(key);
        let kad = &mut self.swarm.behaviour_mut().kad;
        let peers = kad.get_closest_local_peers(&target).take(kad::K_VALUE.get());
        let _ = reply.send(peers.map(|k| *k.preimage()).collect());
    }

    /// A DHT server tells us where it listens: Kademlia may route through it.
    pub(super) fn handle_identify(&mut self, event: identify::Event) {
        if let identify::Event::Received { peer_id, info, .. } = event
            && info.protocols.contains(&crate::KAD_PROTOCOL)
        {
            for addr in info.listen_addrs {
                if self.dial_policy.check(&addr).is_err() {
                    continue;
                }
                self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
            }
        }
    }

    pub(super) fn handle_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest {
                request: kad::InboundRequest::PutRecord { source, record: Some(record), .. },
            } => self.handle_inbound_put(source, record),
            kad::Event::OutboundQueryProgressed { id, result, step, .. } => match result {
                QueryResult::GetRecord(Ok(GetRecordOk::FoundRecord(found))) => {
                    self.handle_found(id, &found.record.value);
                    if step.last {
                        self.finish_query(id);
                    }
                }
                QueryResult::GetRecord(_) => self.finish_query(id),
                QueryResult::GetClosestPeers(result) => self.handle_closest(id, result),
                QueryResult::PutRecord(result) => {
                    if let Some(reply) = self.records.publishes.remove(&id) {
                        let _ =
                            reply.send(result.map(|_| ()).map_err(|e| Error::Publish(e.into())));
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn handle_closest(&mut self, query: QueryId, result: kad::GetClosestPeersResult) {
        let Some(reply) = self.records.closest.remove(&query) else { return };
        let peers = match result {
            Ok(ok) => ok.peers,
            Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
        };
        let mut ids = Vec::with_capacity(peers.len());
        for info in peers {
            for addr in info.addrs {
                self.swarm.add_peer_address(info.peer_id, addr);
            }
            ids.push(info.peer_id);
        }
        let _ = reply.send(ids);
    }

    fn handle_inbound_put(&mut self, source: PeerId, record: Record) {
        if self.records.puts.check_key(&source).is_err() {
            tracing::debug!(peer = %source, "record put over the rate limit: dropped");
            self.metrics.refuse(refused::RATE);
            return;
        }
        let set = match RecordSet::from_bytes(&record.value) {
            Ok(set) => set,
            Err(e) => {
                tracing::debug!(peer = %source, error = %e, "invalid record put: dropped");
                self.metrics.refuse(refused::INVALID);
                return;
            }
        };
        for identity_record in set.records {
            let waiter = Waiter::Put {
                key: record.key.clone(),
                expires: record.expires,
                publisher: record.publisher,
            };
            // The queue's times are not read here: a put waits as long as it must.
            let queued = self.records.put_queue.push(
                source,
                (identity_record, waiter),
                communitas_types::Timestamp::from_millis(0),
            );
            match queued.map_err(|(why, _)| why) {
                Ok(None) => {}
                Ok(Some(_)) => {
                    tracing::debug!(peer = %source, "record put queue full: another's put dropped");
                    self.metrics.refuse(refused::QUEUE_FULL);
                }
                Err(Refused::SourceShare) => {
                    tracing::debug!(peer = %source, "peer's record puts over its share: dropped");
                    self.metrics.refuse(refused::PEER_SHARE);
                }
                Err(Refused::Full) => {
                    tracing::debug!(peer = %source, "record put queue full: dropped");
                    self.metrics.refuse(refused::QUEUE_FULL);
                }
            }
        }
        self.validate_puts();
    }

    /// Hands queued puts to the validator while fewer than [`PUTS_VALIDATING`] are there.
    fn validate_puts(&mut self) {
        while self.records.puts_validating < PUTS_VALIDATING {
            let Some((_, _, (record, waiter))) = self.records.put_queue.pop() else { break };
            match self.records.validator.check(record, waiter) {
                Ok(Some(checked)) => self.handle_checked(checked, false),
                Ok(None) => self.records.puts_validating += 1,
                Err(_) => {
                    tracing::debug!("record validator overloaded: put dropped");
                    self.metrics.refuse(refused::OVERLOADED);
                }
            }
        }
    }

    fn handle_found(&mut self, query: QueryId, value: &[u8]) {
        let Some(&token) = self.records.lookup_queries.get(&query) else { return };
        let Ok(set) = RecordSet::from_bytes(value) else { return };
        for record in set.records {
            match self.records.validator.check(record, Waiter::Resolve { token }) {
                Ok(Some(checked)) => self.handle_checked(checked, false),
                Ok(None) => {
                    if let Some(lookup) = self.records.lookups.get_mut(&token) {
                        lookup.pending += 1;
                    }
                }
                Err(_) => tracing::debug!("record validator overloaded: lookup record skipped"),
            }
        }
    }

    fn finish_query(&mut self, query: QueryId) {
        if let Some(token) = self.records.lookup_queries.remove(&query) {
            if let Some(lookup) = self.records.lookups.get_mut(&token) {
                lookup.finished = true;
            }
            self.records.maybe_answer(token);
        }
    }

    /// A record whose keys were hashed; `queued` if it waited for the validator.
    pub(super) fn handle_checked(&mut self, checked: Checked, queued: bool) {
        let Checked { address, record, waiter } = checked;
        match waiter {
            Waiter::Put { key, expires, publisher } => {
                if queued {
                    self.records.puts_validating = self.records.puts_validating.saturating_sub(1);
                    self.validate_puts();
                }
                if key.as_ref() != dht_key(&address) {
                    tracing::debug!("record put under another address's key: dropped");
                    self.metrics.refuse(refused::WRONG_KEY);
                    return;
                }
                let store = self.swarm.behaviour_mut().kad.store_mut();
                let mut set = kad::store::RecordStore::get(store, &key)
                    .and_then(|r| RecordSet::from_bytes(&r.value).ok())
                    .unwrap_or_default();
                if set.merge(record) {
                    let value = set.to_bytes();
                    let stored = Record { key, value, publisher, expires };
                    if let Err(e) = kad::store::RecordStore::put(store, stored) {
                        tracing::warn!(error = %e, "record store full");
                    }
                }
            }
            Waiter::Resolve { token } => {
                if let Some(lookup) = self.records.lookups.get_mut(&token) {
                    if queued {
                        lookup.pending = lookup.pending.saturating_sub(1);
                    }
                    if address == lookup.address {
                        keep_highest(&mut lookup.found, record);
                    }
                }
                self.records.maybe_answer(token);
            }
        }
    }
}

impl Records {
    fn maybe_answer(&mut self, token: u64) {
        let done = self.lookups.get(&token).is_some_and(|l| l.finished && l.pending == 0);
        if done && let Some(lookup) = self.lookups.remove(&token) {
            let result =
                if lookup.found.is_empty() { Err(Error::NotFound) } else { Ok(lookup.found) };
            let _ = lookup.reply.send(result);
        }
    }
}

/// Keeps one record per identity, the one with the highest `seq`.
fn keep_highest(found: &mut Vec<IdentityRecord>, record: IdentityRecord) {
    match found.iter_mut().find(|r| r.identity == record.identity) {
        Some(present) if record.seq > present.seq => *present = record,
        Some(_) => {}
        None => found.push(record),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_may_put_its_ration_and_no_more() {
        let records = Records::default();
        let (peer, other) = (PeerId::random(), PeerId::random());
        for _ in 0..PUTS_PER_PEER_PER_MINUTE.get() {
            assert!(records.puts.check_key(&peer).is_ok());
        }
        assert!(records.puts.check_key(&peer).is_err(), "the 31st put in a minute is dropped");
        assert!(records.puts.check_key(&other).is_ok(), "each peer has its own bucket");
    }

    fn record() -> (IdentityRecord, Waiter) {
        let identity = communitas_crypto::Identity::generate().unwrap();
        let device = communitas_crypto::Device {
            peer_id: PeerId::random(),
            addrs: Vec::new(),
            prekeys: None,
        };
        let created = communitas_types::Timestamp::from_millis(1);
        let record = IdentityRecord::sign(&identity, 1, created, None, vec![device]).unwrap();
        let waiter =
            Waiter::Put { key: RecordKey::new(&[0u8; 32]), expires: None, publisher: None };
        (record, waiter)
    }

    // The queue's rule (round robin, the two bounds) is tested in communitas-proto's
    // `fair`; these check the bounds the DHT gives it.
    fn push(queue: &mut PutQueue, peer: PeerId) -> Result<(), Refused> {
        let at = communitas_types::Timestamp::from_millis(0);
        queue.push(peer, record(), at).map(|_| ()).map_err(|(why, _)| why)
    }

    #[test]
    fn a_peer_may_queue_its_share_and_no_more() {
        let mut queue = Records::default().put_queue;
        let (flooder, other) = (PeerId::random(), PeerId::random());
        for _ in 0..PUTS_QUEUED_PER_PEER {
            assert_eq!(push(&mut queue, flooder), Ok(()));
        }
        assert_eq!(push(&mut queue, flooder), Err(Refused::SourceShare));
        assert_eq!(push(&mut queue, other), Ok(()), "another peer still has its share");
    }

    #[test]
    fn the_queue_is_bounded_over_all_peers() {
        let mut queue = Records::default().put_queue;
        for _ in 0..PUTS_QUEUED {
            assert_eq!(push(&mut queue, PeerId::random()), Ok(()));
        }
        assert_eq!(push(&mut queue, PeerId::random()), Err(Refused::Full));
        assert!(queue.pop().is_some());
        assert_eq!(push(&mut queue, PeerId::random()), Ok(()), "room again after one left");
    }
}
