//! A model of the store's mailbox tables (server role), the part of a server node's
//! disk the mailbox server machine works on: kept envelopes with their expiry and
//! sender, tombstones of acknowledged ones, and the quotas. It answers the machine's
//! [`Work`] as `communitas_store` does (same dedup, tombstone and quota order, same
//! fetch order and byte cut), so that the machine meets the store's behaviour, not a
//! friendlier one.

use std::collections::BTreeMap;

use communitas_proto::mbox::server::{Outcome, PutOutcome, Work};
use communitas_types::{MailboxId, Timestamp};

use super::world::NodeId;

type Hash = [u8; 32];

/// One kept envelope.
#[derive(Debug, Clone)]
pub struct Kept {
    /// Its recipient's mailbox.
    pub mailbox: MailboxId,
    /// The sealed envelope.
    pub envelope: Vec<u8>,
    /// Who put it (its quota).
    pub sender: NodeId,
    /// When it came (fetches answer oldest first).
    pub received_at: Timestamp,
    /// When it goes.
    pub expires_at: Timestamp,
}

/// Quotas, as `communitas_store::MailboxLimits`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Envelopes per mailbox.
    pub max_envelopes: usize,
    /// Bytes per mailbox.
    pub max_bytes: usize,
    /// Envelopes per sending peer.
    pub max_per_sender: usize,
    /// Bytes over all mailboxes.
    pub max_total_bytes: usize,
}

impl Default for Limits {
    /// The node's defaults (`communitas_node::mailbox::LIMITS`).
    fn default() -> Self {
        Self {
            max_envelopes: 10_000,
            max_bytes: 256 * 1024 * 1024,
            max_per_sender: 20_000,
            max_total_bytes: 16 << 30,
        }
    }
}

/// The mailbox tables.
#[derive(Debug, Clone, Default)]
pub struct MailboxStore {
    /// Kept envelopes by hash.
    pub kept: BTreeMap<Hash, Kept>,
    /// Acknowledged hashes, until the envelope would have expired.
    pub tombstones: BTreeMap<Hash, Timestamp>,
    /// The quotas.
    pub limits: Limits,
}

impl MailboxStore {
    /// Hashes kept for `mailbox` and unexpired at `now`.
    pub fn hashes(&self, mailbox: MailboxId, now: Timestamp) -> Vec<Hash> {
        self.live(mailbox, now).map(|(h, _)| *h).collect()
    }

    /// The mailboxes with something unexpired at `now`.
    pub fn mailboxes(&self, now: Timestamp) -> Vec<MailboxId> {
        let mut all: Vec<MailboxId> =
            self.kept.values().filter(|k| k.expires_at > now).map(|k| k.mailbox).collect();
        all.sort_by_key(|m| *m.as_bytes());
        all.dedup();
        all
    }

    /// The unexpired entries of `mailbox` among `hashes`: (envelope, expiry).
    pub fn entries(
        &self,
        mailbox: MailboxId,
        hashes: &[Hash],
        now: Timestamp,
    ) -> Vec<(Vec<u8>, Timestamp)> {
        hashes
            .iter()
            .filter_map(|h| self.kept.get(h))
            .filter(|k| k.mailbox == mailbox && k.expires_at > now)
            .map(|k| (k.envelope.clone(), k.expires_at))
            .collect()
    }

    fn live(&self, mailbox: MailboxId, now: Timestamp) -> impl Iterator<Item = (&Hash, &Kept)> {
        self.kept.iter().filter(move |(_, k)| k.mailbox == mailbox && k.expires_at > now)
    }

    /// Runs one piece of the server machine's work; `None` for the sweep, which
    /// answers nobody.
    pub fn run(&mut self, work: &Work<NodeId>) -> Option<Outcome> {
        Some(match work {
            Work::Put { hash, mailbox, envelope, sender, now, expires_at, .. } => Outcome::Put {
                mailbox: *mailbox,
                outcome: self.put(*hash, *mailbox, envelope, *sender, *now, *expires_at),
            },
            Work::Fetch { mailbox, now, max_bytes, .. } => {
                let mut list: Vec<(&Hash, &Kept)> = self.live(*mailbox, *now).collect();
                list.sort_by_key(|(h, k)| (k.received_at, **h));
                let mut out = Vec::new();
                let mut total = 0usize;
                for (h, k) in list {
                    total += k.envelope.len();
                    if total > *max_bytes && !out.is_empty() {
                        break;
                    }
                    out.push((*h, k.envelope.clone()));
                }
                Outcome::Fetched(out)
            }
            Work::Ack { mailbox, hashes, .. } => {
                let mut removed = 0;
                for h in hashes {
                    if self.kept.get(h).is_some_and(|k| k.mailbox == *mailbox) {
                        let k = self.kept.remove(h).expect("just seen");
                        self.tombstones.entry(*h).or_insert(k.expires_at);
                        removed += 1;
                    }
                }
                Outcome::Acked(removed)
            }
            Work::Wanted { hashes, .. } => {
                let mut wanted = Vec::new();
                let mut acked = 0;
                for h in hashes {
                    if self.tombstones.contains_key(h) {
                        acked += 1;
                    } else if !self.kept.contains_key(h) {
                        wanted.push(*h);
                    }
                }
                Outcome::Wanted { hashes: wanted, acked }
            }
            Work::Expire { now } => {
                self.kept.retain(|_, k| k.expires_at > *now);
                self.tombstones.retain(|_, at| *at > *now);
                return None;
            }
            _ => return None,
        })
    }

    fn put(
        &mut self,
        hash: Hash,
        mailbox: MailboxId,
        envelope: &[u8],
        sender: NodeId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> PutOutcome {
        if self.kept.contains_key(&hash) {
            return PutOutcome::AlreadyStored;
        }
        if self.tombstones.contains_key(&hash) {
            return PutOutcome::AlreadyAcked;
        }
        let (count, bytes) =
            self.live(mailbox, now).fold((0, 0), |(c, b), (_, k)| (c + 1, b + k.envelope.len()));
        if count >= self.limits.max_envelopes || bytes + envelope.len() > self.limits.max_bytes {
            return PutOutcome::MailboxFull;
        }
        let from_sender =
            self.kept.values().filter(|k| k.sender == sender && k.expires_at > now).count();
        if from_sender >= self.limits.max_per_sender {
            return PutOutcome::SenderOverQuota;
        }
        let total: usize = self.kept.values().map(|k| k.envelope.len()).sum();
        if total + envelope.len() > self.limits.max_total_bytes {
            return PutOutcome::ServerFull;
        }
        let kept =
            Kept { mailbox, envelope: envelope.to_vec(), sender, received_at: now, expires_at };
        self.kept.insert(hash, kept);
        PutOutcome::Stored
    }
}
