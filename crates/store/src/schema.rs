//! The schema and its forward-only migrations.
//!
//! `PRAGMA user_version` holds the schema version. Each migration runs once, in its
//! own transaction together with the version bump; a database newer than this build
//! is refused rather than guessed at.

use rusqlite::Connection;

use crate::Error;

/// Migrations in order; index + 1 is the version each one leads to. Append only.
const MIGRATIONS: &[&str] = &[
    // 1: the foundation tables (ARCHITECTURE §9).
    "
    CREATE TABLE identity (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        address     TEXT NOT NULL,
        fingerprint BLOB NOT NULL,
        name        TEXT,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE contacts (
        address         TEXT PRIMARY KEY,
        name            TEXT,
        public_identity BLOB NOT NULL,
        fingerprint     BLOB NOT NULL UNIQUE,
        verified        INTEGER NOT NULL DEFAULT 0,
        added_at        INTEGER NOT NULL
    );
    CREATE TABLE messages (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        id          BLOB NOT NULL,
        peer        TEXT NOT NULL,
        direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        kind        INTEGER NOT NULL,
        body        BLOB NOT NULL,          -- sealed under the storage key
        timestamp   INTEGER NOT NULL,       -- the sender's clock, unix ms
        stored_at   INTEGER NOT NULL,       -- our clock, unix ms
        status      TEXT NOT NULL,
        UNIQUE (peer, direction, id)
    );
    CREATE INDEX messages_by_peer ON messages (peer, seq);
    CREATE TABLE outbox (
        message_id      BLOB PRIMARY KEY,
        recipient       TEXT NOT NULL,
        envelope        BLOB NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL,
        last_error      TEXT
    );
    CREATE INDEX outbox_due ON outbox (next_attempt_at);
    CREATE TABLE dead_letters (
        message_id BLOB PRIMARY KEY,
        recipient  TEXT NOT NULL,
        envelope   BLOB NOT NULL,
        attempts   INTEGER NOT NULL,
        reason     TEXT NOT NULL,
        failed_at  INTEGER NOT NULL
    );
    CREATE TABLE seen_ids (
        sender     BLOB NOT NULL,
        message_id BLOB NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (sender, message_id)
    ) WITHOUT ROWID;
    CREATE INDEX seen_ids_expiry ON seen_ids (expires_at);
    ",
    // 2: status updates and receipts look messages up by id alone; without this
    // index each was a table scan (found by `bench latency` under perf).
    "
    CREATE INDEX messages_by_id ON messages (id);
    ",
    // 3: the mailbox a server node keeps for offline recipients (ARCHITECTURE §6).
    "
    CREATE TABLE mailbox (
        hash        BLOB PRIMARY KEY,       -- BLAKE3 of the envelope: a re-put is a no-op
        mailbox     BLOB NOT NULL,
        envelope    BLOB NOT NULL,
        sender_peer TEXT NOT NULL,          -- the authenticated PeerId that put it
        received_at INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    );
    CREATE INDEX mailbox_by_box ON mailbox (mailbox, received_at);
    CREATE INDEX mailbox_by_sender ON mailbox (sender_peer);
    CREATE INDEX mailbox_expiry ON mailbox (expires_at);
    ",
    // 4: file transfers (ARCHITECTURE §7).
    crate::ops::files::SCHEMA,
    // 5: file shards a server node keeps for offline recipients.
    crate::ops::shards::SCHEMA,
    // 6: per-user settings (read receipts on/off, own presence; issue 6).
    "
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    ",
    // 7 (issue 4): hashes of mailbox envelopes their owner acknowledged, kept until the
    // envelope would have expired, so that a re-put or another holder's re-replication
    // cannot bring an acknowledged envelope back (decision 0020).
    "
    CREATE TABLE mailbox_tombstones (
        hash       BLOB PRIMARY KEY,        -- BLAKE3 of the acknowledged envelope
        expires_at INTEGER NOT NULL         -- the envelope's own expiry, unix ms
    ) WITHOUT ROWID;
    CREATE INDEX mailbox_tombstones_expiry ON mailbox_tombstones (expires_at);
    ",
    // 8: envelope bytes over all mailboxes, kept by triggers, so a put checks the
    // server-wide cap without a scan.
    "
    CREATE TABLE mailbox_usage (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        bytes INTEGER NOT NULL
    );
    INSERT INTO mailbox_usage (id, bytes)
        VALUES (1, (SELECT COALESCE(SUM(LENGTH(envelope)), 0) FROM mailbox));
    CREATE TRIGGER mailbox_usage_put AFTER INSERT ON mailbox BEGIN
        UPDATE mailbox_usage SET bytes = bytes + LENGTH(NEW.envelope) WHERE id = 1;
    END;
    CREATE TRIGGER mailbox_usage_drop AFTER DELETE ON mailbox BEGIN
        UPDATE mailbox_usage SET bytes = bytes - LENGTH(OLD.envelope) WHERE id = 1;
    END;
    ",
    // 9 (issue 15): message requests from strangers (decision 0052).
    crate::ops::requests::SCHEMA,
    // 10 (issue 15): blocked addresses (decision 0052).
    crate::ops::blocks::SCHEMA,
    // 11 (issue 15 item 7): a holder's copies (`Replicate`) have quotas of their own,
    // and a sender's share is counted per mailbox (decision 0044).
    "
    ALTER TABLE mailbox ADD COLUMN replica INTEGER NOT NULL DEFAULT 0;
    DROP INDEX mailbox_by_sender;
    CREATE INDEX mailbox_by_sender ON mailbox (sender_peer, replica, mailbox);
    ",
    // 12 (issue 14): this device's prekey secrets and its sessions, sealed at rest
    // (decision 0053).
    crate::ops::sessions::SCHEMA,
    // 13 (issue 23 item 3): where a request's messages start, so that declining the
    // request of a removed contact who wrote again keeps the older conversation
    // (decision 0060). 0 for requests already open: all of the address's messages.
    "
    ALTER TABLE requests ADD COLUMN first_seq INTEGER NOT NULL DEFAULT 0;
    ",
    // 14 (issue 14): each session row counts its commits, so a state is written only
    // over the one it was made from (decision 0053, "Commits without waiting").
    crate::ops::sessions::GENERATION,
    // 15 (issue 23 item 1): each message's place in its conversation (decision 0061).
    // Messages from before keep the order they were shown in: by arrival, their
    // clock the time they were stored.
    "
    ALTER TABLE messages ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN clock INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN author_n INTEGER;
    UPDATE messages SET clock = stored_at, position = stored_at * 2;
    CREATE INDEX messages_by_position ON messages (peer, position, seq);
    ",
    // 16 (issue 23 item 3): the name a stranger's signed record gives, shown with its
    // request (unverified).
    "
    ALTER TABLE requests ADD COLUMN name TEXT;
    ",
    // 17 (issue 14 item 1): server role, the one-time prekeys owners leave for their
    // devices (decision 0064).
    crate::ops::held_prekeys::SCHEMA,
];

/// The schema version this build writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`VERSION`].
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let found: u32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > VERSION {
        return Err(Error::SchemaTooNew { found, supported: VERSION });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}
