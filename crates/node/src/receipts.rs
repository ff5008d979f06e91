//! End-to-end receipts: the driver of [`communitas_proto::receipts`], which owns the
//! body's wire format, the cut of long id lists into letters and what a received
//! receipt asks for ([`Receipt::steps`], [`may_mark`]).
//!
//! A message delivered directly is acknowledged by the `/communitas/msg/1` response.
//! One fetched from a mailbox has no open request to answer, so the recipient sends
//! the sender a sealed `Receipt` letter instead, through the same outbox (so it, too,
//! survives crashes and falls back to the sender's mailbox). Read receipts (issue 6,
//! `reading`) and "fetched" receipts (the recipient has a whole file, `files`) are the
//! same letter with another type.
//!
//! Sending: [`Receipt::chunks`] → seal → outbox row and control entry → the outbox
//! actor. Receiving (inside inbound acceptance, once the seen id is committed): each
//! [`Step`] in order against the store — a mark only for a message of ours to the
//! receipt's sender; a release is handed to the files actor.
//!
//! This module calls no other driver: it asks the outbox and the files actor through
//! their commands (`crate::commands`).

use communitas_crypto::{Kind as LetterKind, PublicIdentity};
use communitas_proto::receipts::{Kind, Mark, Receipt, Step, may_mark};
use communitas_store::{Direction, Status};
use communitas_types::{Address, MessageId, Timestamp};

use crate::commands::outbox::fresh_entry;
use crate::{Event, Inner};

/// Why a receipt could not be queued. The ids stay unacknowledged: the sender keeps
/// trying (delivery) or shows them unread.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No randomness for its id, or sealing failed.
    #[error("cannot seal a receipt: {0}")]
    Seal(#[from] communitas_crypto::SealError),
    /// The store did not take its outbox row.
    #[error("cannot store a receipt: {0}")]
    Store(#[from] communitas_store::Error),
    /// The outbox has stopped.
    #[error("shutting down")]
    ShuttingDown,
}

/// Queues a delivery receipt for `ids` to their sender.
pub(crate) async fn send(
    inner: &Inner,
    to: Address,
    keys: &PublicIdentity,
    ids: &[MessageId],
) -> Result<(), SendError> {
    send_kind(inner, to, keys, Kind::Delivered, ids).await
}

/// Queues receipts of type `kind` for `ids` to their sender, as many letters as
/// [`Receipt::chunks`] cuts them into.
pub(crate) async fn send_kind(
    inner: &Inner,
    to: Address,
    keys: &PublicIdentity,
    kind: Kind,
    ids: &[MessageId],
) -> Result<(), SendError> {
    for receipt in Receipt::chunks(kind, ids) {
        let id = crate::seal::fresh_id()?;
        let now = Timestamp::now();
        let body = receipt.to_bytes();
        let sealed = inner
            .sessions
            .seal(inner, to, keys, crate::seal::parts(id, now, LetterKind::Receipt, &body), None)
            .await;
        let entry = match sealed {
            Some(sealed) => {
                let entry = fresh_entry(id, to, sealed.envelope.clone(), now);
                let row = entry.clone();
                sealed
                    .commit(inner, |update| inner.store.enqueue_with_session(row, update))
                    .await?;
                entry
            }
            None => {
                let envelope =
                    crate::seal::letter(inner, keys, id, now, LetterKind::Receipt, &body)?;
                let entry = fresh_entry(id, to, envelope, now);
                inner.store.insert_control(entry.clone()).await?;
                entry
            }
        };
        inner.metrics.outbox_depth.inc();
        inner.outbox.enqueue_control(entry).await.map_err(|_| SendError::ShuttingDown)?;
    }
    Ok(())
}

/// The file a message from `to` carried is saved: tell its sender, so it can
/// release what it stored on server nodes. Best effort: a sender never told keeps
/// its shards until they expire.
pub(crate) async fn file_fetched(inner: &Inner, to: Address, message_id: MessageId) {
    let keys = match inner.store.contact(to).await {
        Ok(Some(contact)) => contact.identity,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look up a file's sender");
            return;
        }
    };
    if let Err(e) = send_kind(inner, to, &keys, Kind::Fetched, &[message_id]).await {
        tracing::warn!(error = %e, "cannot queue a fetched receipt");
    }
}

/// Why a received receipt was not carried out to the end.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] communitas_store::Error),
    /// The node is stopping.
    #[error("shutting down")]
    ShuttingDown,
}

/// A receipt arrived from `from`: carries out its [`Step`]s in order.
pub(crate) async fn received(
    inner: &Inner,
    from: Address,
    receipt: &Receipt,
) -> Result<(), ApplyError> {
    for step in receipt.steps() {
        match step {
            Step::Release(message) => {
                // The files actor checks the message is ours to `from` and owns the
                // release; waiting for room in its inbox keeps the order of steps.
                inner.files.fetched(from, message).await.map_err(|_| ApplyError::ShuttingDown)?;
            }
            Step::Mark(id, mark) => mark_one(inner, from, id, mark).await?,
        }
    }
    Ok(())
}

/// Marks our message `id` to `from` as `mark`, if [`may_mark`] allows it; when the row
/// changes, the UI hears the new status and the outbox stops trying.
async fn mark_one(
    inner: &Inner,
    from: Address,
    id: MessageId,
    mark: Mark,
) -> Result<(), ApplyError> {
    let changed = match mark {
        // The store's `mark_read` only touches a message of ours to `from`.
        Mark::Read => inner.store.mark_read(from, id).await?,
        Mark::Delivered => {
            let Some(row) = inner.store.message(id).await? else { return Ok(()) };
            let outgoing = row.message.direction == Direction::Out;
            if !may_mark(from, row.message.peer, outgoing)
                || !inner.store.mark_delivered(id).await?
            {
                return Ok(());
            }
            inner.metrics.delivered.inc();
            let ms = Timestamp::now().as_millis().saturating_sub(row.message.timestamp.as_millis());
            inner.metrics.delivery_latency.observe(ms as f64 / 1000.0);
            true
        }
    };
    if changed {
        let status = match mark {
            Mark::Read => Status::Read,
            Mark::Delivered => Status::Delivered,
        };
        inner.emit(Event::StatusChanged { id, to: from, status });
        // The outbox may be stopping; the row is marked either way.
        let _ = inner.outbox.delivered(id).await;
    }
    Ok(())
}
