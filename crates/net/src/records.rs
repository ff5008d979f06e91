//! Validating identity records: for puts from other nodes (server role) and for our
//! own lookups.
//!
//! A record is valid when it decodes, its signature matches its keys, and its keys
//! derive the address whose DHT key it is stored under. The first two are cheap and
//! run inline; the derivation is an Argon2id hash (~0.27 s), so it runs on blocking
//! threads, at most [`MAX_RUNNING`] at once, with results cached per fingerprint.
//! Work beyond [`MAX_QUEUED`] identities is refused, so a flood of bogus records
//! costs a server a bounded amount of CPU and memory (ARCHITECTURE §3).

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use communitas_crypto::{IdentityRecord, PublicIdentity, derive_address};
use communitas_types::{Address, Fingerprint};
use libp2p::PeerId;
use libp2p::kad::RecordKey;
use tokio::task::JoinSet;

/// Derivations running at once (one per core here).
const MAX_RUNNING: usize = 2;
/// Identities waiting for a derivation; more are refused.
const MAX_QUEUED: usize = 64;
/// Cached derivations (fingerprint → address), oldest evicted first.
const CACHE_SIZE: usize = 10_000;

/// Who is waiting for a record's check.
#[derive(Debug, Clone)]
pub(crate) enum Waiter {
    /// A put from another node: store it under `key` if it belongs there.
    Put { key: RecordKey, expires: Option<Instant>, publisher: Option<PeerId> },
    /// Our lookup number `token`, for `address`.
    Resolve { token: u64 },
}

/// A record whose keys have been hashed, with the address they derive.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) address: Address,
    pub(crate) record: IdentityRecord,
    pub(crate) waiter: Waiter,
}

/// The validator's refusal: too much work queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overloaded;

#[derive(Default)]
pub(crate) struct Validator {
    cache: HashMap<Fingerprint, Address>,
    cache_order: VecDeque<Fingerprint>,
    running: JoinSet<(Fingerprint, Address)>,
    queue: VecDeque<PublicIdentity>,
    waiters: HashMap<Fingerprint, Vec<(IdentityRecord, Waiter)>>,
}

impl Validator {
    /// Checks `record` for `waiter`: at once if its keys were hashed before,
    /// otherwise later through [`Self::next`].
    pub(crate) fn check(
        &mut self,
        record: IdentityRecord,
        waiter: Waiter,
    ) -> Result<Option<Checked>, Overloaded> {
        let fingerprint = record.identity.fingerprint();
        if let Some(address) = self.cache.get(&fingerprint) {
            return Ok(Some(Checked { address: *address, record, waiter }));
        }
        if let Some(waiting) = self.waiters.get_mut(&fingerprint) {
            waiting.push((record, waiter));
            return Ok(None);
        }
        if self.waiters.len() >= MAX_QUEUED {
            return Err(Overloaded);
        }
        self.queue.push_back(record.identity.clone());
        self.waiters.insert(fingerprint, vec![(record, waiter)]);
        self.start();
        Ok(None)
    }

    fn start(&mut self) {
        while self.running.len() < MAX_RUNNING {
            let Some(identity) = self.queue.pop_front() else { break };
            self.running
                .spawn_blocking(move || (identity.fingerprint(), derive_address(&identity)));
        }
    }

    /// Whether any derivation is running (the event loop polls [`Self::next`] only then).
    pub(crate) fn is_busy(&self) -> bool {
        !self.running.is_empty()
    }

    /// Waits for the next derivation and returns every record that waited for it.
    pub(crate) async fn next(&mut self) -> Vec<Checked> {
        let Some(joined) = self.running.join_next().await else { return Vec::new() };
        self.start();
        let Ok((fingerprint, address)) = joined else {
            tracing::error!("address derivation task failed");
            return Vec::new();
        };
        self.remember(fingerprint, address);
        self.waiters
            .remove(&fingerprint)
            .unwrap_or_default()
            .into_iter()
            .map(|(record, waiter)| Checked { address, record, waiter })
            .collect()
    }

    fn remember(&mut self, fingerprint: Fingerprint, address: Address) {
        if self.cache.insert(fingerprint, address).is_none() {
            self.cache_order.push_back(fingerprint);
            if self.cache_order.len() > CACHE_SIZE
                && let Some(old) = self.cache_order.pop_front()
            {
                self.cache.remove(&old);
            }
        }
    }
}
