//! Server role: the `mailbox`, `mailbox_tombstones` and `mailbox_usage` tables, the
//! envelopes a server node keeps for offline recipients (decision 0010), within
//! per-mailbox, per-sender and server-wide quotas, and a tombstone of each envelope
//! its owner acknowledged, until it would have expired (decision 0020).

use communitas_types::{MailboxId, Timestamp};
use rusqlite::{Connection, params};

use super::{array, int, ms, replica, seen};
use crate::{Error, Store};

/// How much a server node keeps for one mailbox and from one sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxLimits {
    /// Envelopes per mailbox.
    pub max_envelopes: u32,
    /// Bytes per mailbox.
    pub max_bytes: u64,
    /// Envelopes stored from one sending peer, over all mailboxes (its own puts, not
    /// the copies it hands over as a holder).
    pub max_per_sender: u32,
    /// Envelopes one sending peer may have in any one mailbox: a share, so that one
    /// sender cannot fill a user's mailbox.
    pub max_per_sender_in_mailbox: u32,
    /// Copies one peer may hand over as a holder (`Replicate`), over all mailboxes: a
    /// quota of its own, so that re-replication after churn is not cut short by the
    /// sender quota, and a sender's quota is not spent by the copies of others' mail.
    pub max_replicas_per_peer: u32,
    /// Copies one peer may have handed over into any one mailbox. Anyone can claim to
    /// be a holder, so this too is a share: less than the mailbox.
    pub max_replicas_per_peer_in_mailbox: u32,
    /// Envelope bytes kept in all mailboxes together: a server's disk is finite, and
    /// new PeerIds (new senders) are free to make.
    pub max_total_bytes: u64,
}

/// Server role: an envelope to keep for a mailbox's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxPut {
    /// BLAKE3 of the envelope (the caller computed it; a re-put is a no-op).
    pub hash: [u8; 32],
    /// Whose mailbox.
    pub mailbox: MailboxId,
    /// The sealed envelope.
    pub envelope: Vec<u8>,
    /// The authenticated peer that put it (quotas are per sending peer).
    pub sender: String,
    /// A holder's copy (`Replicate`): charged to the peer's replica quotas.
    pub replica: bool,
    /// The server's clock: envelopes expired by then do not count against a quota.
    pub now: Timestamp,
    /// When the envelope is dropped.
    pub expires_at: Timestamp,
}

/// An envelope waiting in a mailbox, with its BLAKE3 hash.
pub type MailboxEntry = ([u8; 32], Vec<u8>);

/// What a mailbox put came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutOutcome {
    /// Stored now.
    Stored,
    /// The same envelope was already there.
    AlreadyStored,
    /// The mailbox is at its quota.
    MailboxFull,
    /// The sending peer is at its quota.
    SenderOverQuota,
    /// Its owner already acknowledged this envelope here: it is not taken back.
    AlreadyAcked,
    /// The server keeps as many envelope bytes as it may, over all mailboxes.
    ServerFull,
}

impl Store {
    /// Server role: keeps an envelope for its mailbox, within `limits`.
    pub async fn mailbox_put(
        &self,
        put: MailboxPut,
        limits: MailboxLimits,
    ) -> Result<PutOutcome, Error> {
        self.write(move |conn, _| keep(conn, &put, limits)).await
    }

    /// Server role: the envelopes waiting in `mailbox`, oldest first, up to about
    /// `max_bytes` (at least one).
    pub async fn mailbox_fetch(
        &self,
        mailbox: MailboxId,
        now: Timestamp,
        max_bytes: usize,
    ) -> Result<Vec<MailboxEntry>, Error> {
        self.read(move |conn, _| fetch(conn, &mailbox, now, max_bytes)).await
    }

    /// Server role: deletes acknowledged envelopes, keeping a tombstone of each until
    /// its expiry so it cannot be put back; returns how many were there.
    pub async fn mailbox_ack(
        &self,
        mailbox: MailboxId,
        hashes: Vec<[u8; 32]>,
    ) -> Result<usize, Error> {
        self.write(move |conn, _| ack(conn, &mailbox, &hashes)).await
    }

    /// Drops expired mailbox envelopes, tombstones, seen ids and held one-time
    /// prekeys; returns how many
    /// envelopes went. (Expired shards go with [`Store::expire_shards`].)
    pub async fn expire(&self, now: Timestamp) -> Result<usize, Error> {
        self.write(move |conn, _| {
            let removed = conn.execute("DELETE FROM mailbox WHERE expires_at <= ?1", [ms(now)])?;
            seen::expire(conn, now)?;
            conn.execute("DELETE FROM mailbox_tombstones WHERE expires_at <= ?1", [ms(now)])?;
            conn.execute("DELETE FROM held_prekeys WHERE expires_at <= ?1", [ms(now)])?;
            Ok(removed)
        })
        .await
    }
}

fn keep(conn: &Connection, put: &MailboxPut, limits: MailboxLimits) -> Result<PutOutcome, Error> {
    let MailboxPut { hash, mailbox, envelope, sender, replica, now, expires_at } = put;
    let exists: bool =
        conn.query_row("SELECT EXISTS (SELECT 1 FROM mailbox WHERE hash = ?1)", [hash], |r| {
            r.get(0)
        })?;
    if exists {
        return Ok(PutOutcome::AlreadyStored);
    }
    if replica::tombstoned(conn, hash)? {
        return Ok(PutOutcome::AlreadyAcked);
    }
    let (count, bytes): (u32, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0)
         FROM mailbox WHERE mailbox = ?1 AND expires_at > ?2",
        params![mailbox.as_bytes(), ms(*now)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let size = i64::try_from(envelope.len()).unwrap_or(i64::MAX);
    if count >= limits.max_envelopes || bytes.saturating_add(size) > int(limits.max_bytes) {
        return Ok(PutOutcome::MailboxFull);
    }
    let (here, everywhere): (u32, u32) = conn.query_row(
        "SELECT COALESCE(SUM(mailbox = ?2), 0), COUNT(*) FROM mailbox
         WHERE sender_peer = ?1 AND replica = ?3 AND expires_at > ?4",
        params![sender, mailbox.as_bytes(), replica, ms(*now)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (share, quota) = if *replica {
        (limits.max_replicas_per_peer_in_mailbox, limits.max_replicas_per_peer)
    } else {
        (limits.max_per_sender_in_mailbox, limits.max_per_sender)
    };
    if here >= share || everywhere >= quota {
        return Ok(PutOutcome::SenderOverQuota);
    }
    // Kept by triggers on `mailbox` (migration 8): one row, no scan.
    let total: i64 =
        conn.query_row("SELECT bytes FROM mailbox_usage WHERE id = 1", [], |r| r.get(0))?;
    if total.saturating_add(size) > int(limits.max_total_bytes) {
        return Ok(PutOutcome::ServerFull);
    }
    conn.execute(
        "INSERT INTO mailbox (hash, mailbox, envelope, sender_peer, replica, received_at,
                              expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![hash, mailbox.as_bytes(), envelope, sender, replica, ms(*now), ms(*expires_at)],
    )?;
    Ok(PutOutcome::Stored)
}

fn fetch(
    conn: &Connection,
    mailbox: &MailboxId,
    now: Timestamp,
    max_bytes: usize,
) -> Result<Vec<MailboxEntry>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT hash, envelope FROM mailbox WHERE mailbox = ?1 AND expires_at > ?2
         ORDER BY received_at, hash",
    )?;
    let mut rows = stmt.query(params![mailbox.as_bytes(), ms(now)])?;
    let mut out = Vec::new();
    let mut total = 0usize;
    while let Some(r) = rows.next()? {
        let envelope: Vec<u8> = r.get(1)?;
        total += envelope.len();
        if total > max_bytes && !out.is_empty() {
            break;
        }
        out.push((array(r.get(0)?, "mailbox hash")?, envelope));
    }
    Ok(out)
}

fn ack(conn: &Connection, mailbox: &MailboxId, hashes: &[[u8; 32]]) -> Result<usize, Error> {
    // The tombstone keeps the envelope's own expiry: past it, nobody re-puts it anyway.
    let mut bury = conn.prepare_cached(
        "INSERT OR IGNORE INTO mailbox_tombstones (hash, expires_at)
         SELECT hash, expires_at FROM mailbox WHERE mailbox = ?1 AND hash = ?2",
    )?;
    let mut stmt = conn.prepare_cached("DELETE FROM mailbox WHERE mailbox = ?1 AND hash = ?2")?;
    let mut removed = 0;
    for hash in hashes {
        bury.execute(params![mailbox.as_bytes(), hash])?;
        removed += stmt.execute(params![mailbox.as_bytes(), hash])?;
    }
    Ok(removed)
}
