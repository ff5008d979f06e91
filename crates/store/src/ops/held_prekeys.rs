//! Server role: the `held_prekeys` table, the one-time prekeys mailbox owners left on
//! this server for their devices (issue 14 item 1, decision 0064). Each is handed out
//! once, oldest first, and dropped unclaimed at its expiry; what one mailbox and the
//! whole server may hold is bounded ([`HeldLimits`]).

use communitas_types::{MailboxId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::ms;
use crate::{Error, Store};

/// The migration that creates the table.
pub(crate) const SCHEMA: &str = "
    CREATE TABLE held_prekeys (
        mailbox    BLOB NOT NULL,
        device     BLOB NOT NULL,      -- the device's Ed25519 key, which signed the prekey
        kind       INTEGER NOT NULL,   -- 1 X25519, 2 ML-KEM-768
        id         INTEGER NOT NULL,   -- unique per device and kind
        prekey     BLOB NOT NULL,      -- the signed one-time prekey, as deposited
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (mailbox, device, kind, id)
    ) WITHOUT ROWID;
    CREATE INDEX held_prekeys_by_expiry ON held_prekeys (expires_at);
";

/// What a server holds of one-time prekeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLimits {
    /// Of one kind, for one device: a deposit beyond it keeps the first ones.
    pub per_kind: u32,
    /// Devices with prekeys here, per mailbox: a new one beyond is refused.
    pub devices_per_mailbox: u32,
    /// Prekey bytes over all mailboxes: anyone can make a mailbox, so the disk it may
    /// take is bounded (beyond, deposits are refused and claimers fall back to the
    /// signed prekeys).
    pub max_total_bytes: u64,
}

/// A deposit, its prekeys checked by the server's machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrekeyDeposit {
    /// The owner's mailbox.
    pub mailbox: MailboxId,
    /// The device.
    pub device: [u8; 32],
    /// `(kind, id, signed bytes)`.
    pub prekeys: Vec<(u8, u32, Vec<u8>)>,
    /// The server's clock.
    pub now: Timestamp,
    /// When unclaimed ones are dropped.
    pub expires_at: Timestamp,
}

/// What a deposit came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deposited {
    /// Held for the device now, by kind (X25519, ML-KEM-768), the new ones included.
    Held(u32, u32),
    /// The server or the mailbox holds all it may: nothing was taken.
    Full,
}

impl Store {
    /// Server role: holds a device's one-time prekeys within `limits` (a prekey whose
    /// id is held already is not taken twice).
    pub async fn deposit_prekeys(
        &self,
        deposit: PrekeyDeposit,
        limits: HeldLimits,
    ) -> Result<Deposited, Error> {
        self.write(move |conn, _| hold(conn, &deposit, limits)).await
    }

    /// Server role: hands out (deletes and returns) the oldest unexpired prekey of
    /// each kind held for a device: none, one, or one of each.
    pub async fn claim_prekeys(
        &self,
        mailbox: MailboxId,
        device: [u8; 32],
        now: Timestamp,
    ) -> Result<Vec<Vec<u8>>, Error> {
        self.write(move |conn, _| {
            let mut claimed = Vec::with_capacity(2);
            for kind in [1u8, 2] {
                let oldest: Option<(i64, Vec<u8>)> = conn
                    .query_row(
                        "SELECT id, prekey FROM held_prekeys
                         WHERE mailbox = ?1 AND device = ?2 AND kind = ?3 AND expires_at > ?4
                         ORDER BY expires_at, id LIMIT 1",
                        params![mailbox.as_bytes(), &device[..], kind, ms(now)],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                if let Some((id, prekey)) = oldest {
                    conn.execute(
                        "DELETE FROM held_prekeys
                         WHERE mailbox = ?1 AND device = ?2 AND kind = ?3 AND id = ?4",
                        params![mailbox.as_bytes(), &device[..], kind, id],
                    )?;
                    claimed.push(prekey);
                }
            }
            Ok(claimed)
        })
        .await
    }
}

fn hold(
    conn: &Connection,
    deposit: &PrekeyDeposit,
    limits: HeldLimits,
) -> Result<Deposited, Error> {
    let PrekeyDeposit { mailbox, device, prekeys, now, expires_at } = deposit;
    let (mailbox, device, now) = (mailbox.as_bytes(), &device[..], ms(*now));
    let known: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM held_prekeys
                        WHERE mailbox = ?1 AND device = ?2 AND expires_at > ?3)",
        params![mailbox, device, now],
        |r| r.get(0),
    )?;
    if !known && !prekeys.is_empty() {
        let devices: u32 = conn.query_row(
            "SELECT COUNT(DISTINCT device) FROM held_prekeys
             WHERE mailbox = ?1 AND expires_at > ?2",
            params![mailbox, now],
            |r| r.get(0),
        )?;
        if devices >= limits.devices_per_mailbox {
            return Ok(Deposited::Full);
        }
    }
    let adding: u64 = prekeys.iter().map(|(_, _, b)| b.len() as u64).sum();
    if adding > 0 {
        let total: i64 = conn.query_row(
            "SELECT COALESCE(SUM(LENGTH(prekey)), 0) FROM held_prekeys WHERE expires_at > ?1",
            [now],
            |r| r.get(0),
        )?;
        if u64::try_from(total).unwrap_or(u64::MAX).saturating_add(adding) > limits.max_total_bytes
        {
            return Ok(Deposited::Full);
        }
    }
    let count = |kind: u8| -> Result<u32, Error> {
        Ok(conn.query_row(
            "SELECT COUNT(*) FROM held_prekeys
             WHERE mailbox = ?1 AND device = ?2 AND kind = ?3 AND expires_at > ?4",
            params![mailbox, device, kind, now],
            |r| r.get(0),
        )?)
    };
    let mut held = [count(1)?, count(2)?];
    for (kind, id, bytes) in prekeys {
        let Some(slot) = kind.checked_sub(1).and_then(|k| held.get_mut(usize::from(k))) else {
            continue;
        };
        if *slot >= limits.per_kind {
            continue;
        }
        let added = conn.execute(
            "INSERT OR IGNORE INTO held_prekeys (mailbox, device, kind, id, prekey, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![mailbox, device, kind, id, bytes, ms(*expires_at)],
        )?;
        *slot += u32::try_from(added).unwrap_or(0);
    }
    Ok(Deposited::Held(held[0], held[1]))
}
