//! End-to-end delivery receipts, for messages that came through a mailbox.
//!
//! A message delivered directly is acknowledged by the `/communitas/msg/1` response.
//! One fetched from a mailbox has no open request to answer, so the recipient sends
//! the sender a sealed `Receipt` message instead, through the same outbox (so it, too,
//! survives crashes and falls back to the sender's mailbox).
//!
//! Read receipts (issue 6, `reading`) are the same message with type 2: the
//! recipient read those messages. Type 3 says the recipient has the whole file those
//! messages carried (the sender then releases the shards it stored on servers).
//!
//! Body, version 1: `version (1) ‖ type (1 = delivered, 2 = read, 3 = fetched) ‖ count
//! (u16, ≤ 1024) ‖ message ids (16 bytes each)`.

use std::sync::Arc;

use communitas_crypto::{Kind, PublicIdentity};
use communitas_store::Status;
use communitas_types::codec::{Reader, Writer};
use communitas_types::{Address, DecodeError, MessageId, Timestamp};

use crate::outbox::Command;
use crate::{Event, Inner};

const VERSION: u8 = 1;
pub(crate) const DELIVERED: u8 = 1;
pub(crate) const READ: u8 = 2;
pub(crate) const FETCHED: u8 = 3;
/// Most ids in one receipt.
pub(crate) const MAX_IDS: usize = 1024;

fn encode_kind(kind: u8, ids: &[MessageId]) -> Vec<u8> {
    let ids = ids.get(..ids.len().min(MAX_IDS)).unwrap_or_default();
    let mut w = Writer::with_capacity(4 + 16 * ids.len());
    // At most MAX_IDS (1024) ids: the count fits in u16.
    w.u8(VERSION).u8(kind).raw(&(ids.len() as u16).to_be_bytes());
    for id in ids {
        w.raw(id.as_bytes());
    }
    w.into_vec()
}

/// The receipt's type (`DELIVERED` or `READ`) and the ids it covers.
pub(crate) fn decode(body: &[u8]) -> Result<(u8, Vec<MessageId>), DecodeError> {
    let mut r = Reader::new(body, 4 + 16 * MAX_IDS)?;
    if r.u8("receipt version")? != VERSION {
        return Err(DecodeError::InvalidValue { field: "receipt version" });
    }
    let kind = r.u8("receipt type")?;
    if !matches!(kind, DELIVERED | READ | FETCHED) {
        return Err(DecodeError::InvalidValue { field: "receipt type" });
    }
    let count = usize::from(u16::from_be_bytes(r.array("count")?));
    if count > MAX_IDS {
        return Err(DecodeError::TooLong { field: "receipt", len: count, max: MAX_IDS });
    }
    let ids =
        (0..count).map(|_| r.array("id").map(MessageId::from_bytes)).collect::<Result<_, _>>()?;
    r.finish()?;
    Ok((kind, ids))
}

/// Queues a receipt for `ids` to their sender.
pub(crate) async fn send(
    inner: &Arc<Inner>,
    to: Address,
    keys: &PublicIdentity,
    ids: &[MessageId],
) -> Result<(), String> {
    send_kind(inner, to, keys, DELIVERED, ids).await
}

/// Queues a receipt of type `kind` for `ids` to their sender.
pub(crate) async fn send_kind(
    inner: &Inner,
    to: Address,
    keys: &PublicIdentity,
    kind: u8,
    ids: &[MessageId],
) -> Result<(), String> {
    for chunk in ids.chunks(MAX_IDS) {
        let id = crate::seal::fresh_id().map_err(|e| e.to_string())?;
        let now = Timestamp::now();
        let body = encode_kind(kind, chunk);
        let envelope = crate::seal::letter(inner, keys, id, now, Kind::Receipt, &body)
            .map_err(|e| e.to_string())?;
        let entry = crate::outbox::fresh_entry(id, to, envelope, now);
        inner.store.insert_control(entry.clone()).await.map_err(|e| e.to_string())?;
        inner.metrics.outbox_depth.inc();
        inner
            .outbox
            .send(Command::EnqueueControl(Box::new(entry)))
            .await
            .map_err(|_| "shutting down".to_owned())?;
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
    if let Err(e) = send_kind(inner, to, &keys, FETCHED, &[message_id]).await {
        tracing::warn!(error = %e, "cannot queue a fetched receipt");
    }
}

/// A receipt arrived from `from`: mark those of our messages to `from` delivered
/// (or read; or, for files, fetched).
pub(crate) async fn received(
    inner: &Inner,
    from: Address,
    kind: u8,
    ids: Vec<MessageId>,
) -> Result<(), communitas_store::Error> {
    if kind == READ {
        for id in ids {
            if inner.store.mark_read(from, id).await? {
                inner.emit(Event::StatusChanged { id, to: from, status: Status::Read });
                let _ = inner.outbox.send(Command::Delivered(id)).await;
            }
        }
        return Ok(());
    }
    if kind == FETCHED {
        for id in &ids {
            crate::files::fetched(inner, from, *id).await?;
        }
    }
    // Delivered, and fetched too: a file fetched was a message received.
    for id in ids {
        let Some(row) = inner.store.message(id).await? else { continue };
        // Only the recipient of a message can acknowledge it.
        if row.message.peer != from || row.message.direction != communitas_store::Direction::Out {
            continue;
        }
        if inner.store.mark_delivered(id).await? {
            inner.metrics.delivered.inc();
            let ms = Timestamp::now().as_millis().saturating_sub(row.message.timestamp.as_millis());
            inner.metrics.delivery_latency.observe(ms as f64 / 1000.0);
            inner.emit(Event::StatusChanged { id, to: from, status: Status::Delivered });
            let _ = inner.outbox.send(Command::Delivered(id)).await;
        }
    }
    Ok(())
}
