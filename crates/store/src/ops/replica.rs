//! Server role, re-replication (decision 0020): the reads a mailbox holder needs to
//! offer its envelopes to the other holders, and to answer their offers.
//!
//! A holder lists the mailboxes it keeps ([`held_mailboxes`], paged by mailbox id),
//! offers each one's hashes ([`hashes`]) to the other closest servers, which answer
//! with the ones they lack ([`wanted`]: neither stored nor acknowledged here), and then
//! sends those ([`entries`]) with their own expiry, so a copy never outlives the
//! original.

use communitas_types::{MailboxId, Timestamp};
use rusqlite::{Connection, params};

use super::{array, ms, select, ts};
use crate::{Error, Store};

/// An envelope as another holder gets it: hash, envelope, the original's expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaEntry {
    /// BLAKE3 of the envelope.
    pub hash: [u8; 32],
    /// The sealed envelope.
    pub envelope: Vec<u8>,
    /// When it expires at the holder that sends it.
    pub expires_at: Timestamp,
}

impl Store {
    /// Server role: up to `limit` mailboxes holding unexpired envelopes, in id order,
    /// after `after` (to page through them all).
    pub async fn mailbox_held(
        &self,
        after: Option<MailboxId>,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<MailboxId>, Error> {
        self.read(move |conn, _| held_mailboxes(conn, after, now, limit)).await
    }

    /// Server role: the hashes of the unexpired envelopes in `mailbox`, oldest first.
    pub async fn mailbox_hashes(
        &self,
        mailbox: MailboxId,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<[u8; 32]>, Error> {
        self.read(move |conn, _| hashes(conn, &mailbox, now, limit)).await
    }

    /// Server role: of the `offered` hashes, those neither kept here nor acknowledged
    /// here by their owner (a re-replication offer's answer).
    pub async fn mailbox_wanted(&self, offered: Vec<[u8; 32]>) -> Result<Wanted, Error> {
        self.read(move |conn, _| wanted(conn, &offered)).await
    }

    /// Server role: the unexpired envelopes of `mailbox` among `hashes`, with expiry.
    pub async fn mailbox_entries(
        &self,
        mailbox: MailboxId,
        hashes: Vec<[u8; 32]>,
        now: Timestamp,
    ) -> Result<Vec<ReplicaEntry>, Error> {
        self.read(move |conn, _| entries(conn, &mailbox, &hashes, now)).await
    }
}

/// Whether the owner acknowledged `hash` here (and its tombstone has not expired).
pub(crate) fn tombstoned(conn: &Connection, hash: &[u8; 32]) -> Result<bool, Error> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM mailbox_tombstones WHERE hash = ?1)",
        [hash],
        |r| r.get(0),
    )?)
}

/// Up to `limit` mailboxes with unexpired envelopes, in id order, after `after`.
fn held_mailboxes(
    conn: &Connection,
    after: Option<MailboxId>,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<MailboxId>, Error> {
    let after = after.map(|m| m.as_bytes().to_vec()).unwrap_or_default();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    select(
        conn,
        "SELECT DISTINCT mailbox FROM mailbox WHERE mailbox > ?1 AND expires_at > ?2
         ORDER BY mailbox LIMIT ?3",
        &[&after, &ms(now), &limit],
        |r| Ok(MailboxId::from_bytes(array(r.get(0)?, "mailbox id")?)),
    )
}

/// The hashes of the unexpired envelopes in `mailbox`, oldest first, at most `limit`.
fn hashes(
    conn: &Connection,
    mailbox: &MailboxId,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<[u8; 32]>, Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    select(
        conn,
        "SELECT hash FROM mailbox WHERE mailbox = ?1 AND expires_at > ?2
         ORDER BY received_at, hash LIMIT ?3",
        &[&mailbox.as_bytes().as_slice(), &ms(now), &limit],
        |r| array(r.get(0)?, "mailbox hash"),
    )
}

/// The answer to an offer of hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The offered hashes this node neither keeps nor saw acknowledged.
    pub hashes: Vec<[u8; 32]>,
    /// How many of the offered hashes their owner already acknowledged here.
    pub acked: usize,
}

/// Sorts `offered` into what this node lacks and what its owner already acknowledged.
fn wanted(conn: &Connection, offered: &[[u8; 32]]) -> Result<Wanted, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM mailbox WHERE hash = ?1),
                EXISTS (SELECT 1 FROM mailbox_tombstones WHERE hash = ?1)",
    )?;
    let mut out = Wanted::default();
    for hash in offered {
        let (kept, acked): (bool, bool) = stmt.query_row([hash], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if acked {
            out.acked += 1;
        } else if !kept {
            out.hashes.push(*hash);
        }
    }
    Ok(out)
}

/// The unexpired envelopes of `mailbox` among `hashes`, with their expiry.
fn entries(
    conn: &Connection,
    mailbox: &MailboxId,
    hashes: &[[u8; 32]],
    now: Timestamp,
) -> Result<Vec<ReplicaEntry>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT envelope, expires_at FROM mailbox
         WHERE mailbox = ?1 AND hash = ?2 AND expires_at > ?3",
    )?;
    let mut out = Vec::new();
    for hash in hashes {
        let mut rows = stmt.query(params![mailbox.as_bytes(), hash, ms(now)])?;
        if let Some(r) = rows.next()? {
            out.push(ReplicaEntry { hash: *hash, envelope: r.get(0)?, expires_at: ts(r.get(1)?) });
        }
    }
    Ok(out)
}
