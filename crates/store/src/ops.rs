//! The queries, one file per table (decision 0041). Each file holds both halves of
//! its queries: the [`Store`](crate::Store) method a caller awaits, and the plain
//! function over a connection (or savepoint) that runs the SQL. The method hands that
//! function to the writer or the reader thread as a closure (`Store::write`,
//! `Store::read`), so adding a query touches one file: the threads know no query, and
//! the writer decides about transactions while these functions decide only about rows.
//!
//! A query that spans tables (a message and its outbox row, a receipt that marks a
//! message read and drops its outbox row) lives with the table it is about and calls
//! the other table's functions, inside the same savepoint.

pub(crate) mod blocks;
pub(crate) mod contacts;
pub(crate) mod files;
pub(crate) mod held_prekeys;
pub(crate) mod identity;
pub(crate) mod mailbox;
pub(crate) mod messages;
pub(crate) mod outbox;
pub(crate) mod replica;
pub(crate) mod requests;
pub(crate) mod seen;
pub(crate) mod sessions;
pub(crate) mod settings;
pub(crate) mod shards;

use communitas_types::{Address, Timestamp};
use rusqlite::{Connection, Row, ToSql};

use crate::Error;

/// Unix ms as SQLite's signed integer; far-future values saturate.
pub(crate) fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

/// SQLite's unix ms back to a timestamp; a negative one (never written) reads as 0.
pub(crate) fn ts(v: i64) -> Timestamp {
    Timestamp::from_millis(u64::try_from(v).unwrap_or(0))
}

/// A byte count or size as SQLite's signed integer; saturates.
pub(crate) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn parse_address(text: &str) -> Result<Address, Error> {
    text.parse().map_err(|_| Error::Corrupt { field: "address" })
}

pub(crate) fn array<const N: usize>(bytes: Vec<u8>, field: &'static str) -> Result<[u8; N], Error> {
    bytes.try_into().map_err(|_| Error::Corrupt { field })
}

/// Runs `sql` with `params` bound to `?1`, `?2`... and maps every row it returns.
pub(crate) fn select<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    map: impl Fn(&Row<'_>) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}
