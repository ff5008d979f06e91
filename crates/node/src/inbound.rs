//! Inbound: the driver of [`communitas_proto::inbound`] — envelopes from the network
//! (a `/communitas/msg/1` request, or a mailbox fetch) become history, receipts or
//! presence, and their senders hear back only from the commit.
//!
//! The rules are the proto module's: opening (mailbox, decryption, signature,
//! recipient), the freshness window, routing by kind, what a committed letter is
//! answered. This driver does the I/O between them, in this order:
//!
//! ```text
//! bytes ─ open ─ decide(now) ─┬─ Record  ─ sender's address ─ (file row) ─ seen id + message
//!                             │            in ONE transaction ─ committed(inserted) ─ Reply
//!                             ├─ Receipt ─ sender's address ─ seen id ─ committed(inserted)
//!                             │            ─ Reply ─ apply (receipts) ─ answer
//!                             ├─ Presence ─ a contact? ─ heard(now) ─ presence actor
//!                             └─ Ignore  ─ answered, nothing stored
//! ```
//!
//! The sender's address comes from the contacts if its keys are pinned, else it is
//! derived (once, ~0.27 s of Argon2 CPU, at most two at a time) and pinned as a new,
//! unverified contact. A replay finds its seen id and is answered without being shown
//! again; a crash never leaves the seen id without the message or the other way round.
//!
//! Each direct envelope is answered from its own task, which `dispatch` spawns (at
//! most `max_inbound` at once); the mailbox client calls [`accept`] for fetched ones.

use std::time::Duration;

use communitas_crypto::Opened;
use communitas_crypto::derive_address;
use communitas_net::{Receipt, Rejection, Responder};
use communitas_proto::inbound::{
    self as rules, Answer, Busy, Plan, ReceiptPlan, Record, Rejected, Reply,
};
use communitas_store::{Contact, Direction, FileStatus, Inserted, NewMessage, Status};
use communitas_types::{Address, MessageId, Timestamp};
use tokio::sync::Semaphore;

use crate::{Event, Inner};

/// Address derivations for unknown senders running at once (each ~0.27 s of CPU).
static DERIVATIONS: Semaphore = Semaphore::const_new(2);

/// Why an envelope was not accepted: for good (the wire's reason, and ours for the
/// logs), or for now.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("{1}")]
    Rejected(Rejection, Rejected),
    #[error("{0}")]
    Busy(Busy),
}

impl Refusal {
    /// What the sender hears (the rules' [`rules::Refusal::answer`]).
    fn answer(&self) -> Answer {
        match self {
            Refusal::Rejected(_, why) => Answer::Rejected(why.rejection()),
            Refusal::Busy(_) => Answer::Busy,
        }
    }
}

impl From<Rejected> for Refusal {
    fn from(why: Rejected) -> Self {
        Refusal::Rejected(wire(why.rejection()), why)
    }
}

impl From<Busy> for Refusal {
    fn from(busy: Busy) -> Self {
        Refusal::Busy(busy)
    }
}

/// What `accept` did with an envelope.
pub(crate) struct Accepted {
    pub(crate) inserted: Inserted,
    /// For a new or replayed text or file: who sent it, to send a delivery receipt
    /// when it came from a mailbox ([`Reply::acknowledge`]).
    pub(crate) text_from: Option<(Address, communitas_crypto::PublicIdentity, MessageId)>,
}

/// Accepts one envelope and answers its sender on `responder`, only once what it
/// asked is committed.
pub(crate) async fn answer(inner: &Inner, envelope: Vec<u8>, responder: Responder) {
    let receipt = match judge(inner, &envelope).await {
        Ok((accepted, answer)) => {
            if accepted.inserted == Inserted::Duplicate {
                inner.metrics.duplicates.inc();
            }
            receipt_of(answer)
        }
        Err(refusal) => {
            tracing::debug!(reason = %refusal, "envelope refused");
            if let Refusal::Rejected(..) = refusal {
                inner.metrics.rejected.inc();
            }
            receipt_of(refusal.answer())
        }
    };
    // If the sender has gone, it will resend and we deduplicate.
    let _ = responder.send(receipt).await;
}

/// Accepts one envelope (direct or from a mailbox): checks, commits, applies.
pub(crate) async fn accept(inner: &Inner, bytes: &[u8]) -> Result<Accepted, Refusal> {
    judge(inner, bytes).await.map(|(accepted, _)| accepted)
}

/// [`accept`], with the answer the rules give once it is committed.
async fn judge(inner: &Inner, bytes: &[u8]) -> Result<(Accepted, Answer), Refusal> {
    let opened = rules::open(bytes, &inner.secrets.identity)?;
    match rules::decide(&opened, Timestamp::now())? {
        Plan::Record(record) => self::record(inner, opened, record).await,
        Plan::Receipt(plan) => receipt(inner, opened, plan).await,
        Plan::Presence => presence(inner, opened).await,
        // A kind this build stores nothing for: answered so that its sender stops.
        _ => Ok((Accepted { inserted: Inserted::Duplicate, text_from: None }, Answer::Delivered)),
    }
}

/// A text or a file: into history, then the reply.
async fn record(
    inner: &Inner,
    opened: Opened,
    record: Record,
) -> Result<(Accepted, Answer), Refusal> {
    let from = sender_address(inner, &opened).await?;
    let mut fetch = None;
    if let Some(manifest) = record.file() {
        // The transfer is recorded before the message (the rules' order); a replay
        // leaves a known transfer as it is.
        let limit = inner.files_config.auto_download.min(inner.files_config.max_size);
        let row = crate::files::incoming_row(manifest, opened.message_id, from, limit);
        let pending = row.status == FileStatus::Pending;
        inner.store.add_file(row).await.map_err(store_busy)?;
        fetch = pending.then_some(manifest.file_id);
    }
    let text = record.text(&opened.body);
    let attachment = record.file().map(|m| crate::Attachment::new(m, None));
    let (id, timestamp, sender) = (opened.message_id, opened.timestamp, opened.sender);
    let message = NewMessage {
        id,
        peer: from,
        direction: Direction::In,
        kind: opened.kind.to_u8(),
        body: opened.body,
        timestamp,
        status: Status::Delivered,
    };
    let inserted = inner
        .store
        .insert_incoming(message, sender.fingerprint(), record.seen_until())
        .await
        .map_err(store_busy)?;
    let Reply { show, answer, acknowledge, .. } = record.committed(rules_inserted(inserted));
    if show {
        inner.metrics.received.inc();
        inner.emit(Event::MessageReceived { id, from, text, timestamp, attachment });
    }
    if let Some(file_id) = fetch {
        // Fetching starts now; a full queue only delays it to the actor's next look.
        inner.files.offer_fetch(file_id);
    }
    let text_from = acknowledge.then_some((from, sender, id));
    Ok((Accepted { inserted, text_from }, answer))
}

/// A receipt: its seen id, then (if new) its steps, then the answer.
async fn receipt(
    inner: &Inner,
    opened: Opened,
    plan: ReceiptPlan,
) -> Result<(Accepted, Answer), Refusal> {
    let from = sender_address(inner, &opened).await?;
    let fingerprint = opened.sender.fingerprint();
    let inserted = inner
        .store
        .mark_seen(fingerprint, opened.message_id, plan.seen_until())
        .await
        .map_err(store_busy)?;
    let reply = plan.committed(rules_inserted(inserted));
    if let Some(receipt) = &reply.apply {
        crate::receipts::received(inner, from, receipt).await.map_err(|e| match e {
            crate::receipts::ApplyError::Store(e) => store_busy(e),
            crate::receipts::ApplyError::ShuttingDown => Refusal::Busy(Busy::ShuttingDown),
        })?;
    }
    Ok((Accepted { inserted, text_from: None }, reply.answer))
}

/// Presence or typing: contacts only, never stored; the actor gets it without waiting.
async fn presence(inner: &Inner, opened: Opened) -> Result<(Accepted, Answer), Refusal> {
    let from = inner
        .pinned
        .address(&inner.store, &opened.sender)
        .await
        .map_err(store_busy)?
        .ok_or(Rejected::NotAContact)?;
    let body = rules::heard(&opened, Timestamp::now())?;
    if !inner.presence.offer_heard(from, opened.timestamp, body) {
        return Err(Busy::Presence.into());
    }
    Ok((Accepted { inserted: Inserted::New, text_from: None }, Answer::Delivered))
}

/// The sender's address: from contacts if its keys are pinned, else derived (once,
/// then pinned as a new, unverified contact).
async fn sender_address(inner: &Inner, opened: &Opened) -> Result<Address, Refusal> {
    let pinned = || async { inner.pinned.address(&inner.store, &opened.sender).await };
    if let Some(address) = pinned().await.map_err(store_busy)? {
        return Ok(address);
    }
    let permit = tokio::time::timeout(Duration::from_secs(5), DERIVATIONS.acquire())
        .await
        .map_err(|_| Busy::NewSenders)?
        .map_err(|_| Busy::ShuttingDown)?;
    // Envelopes from one new sender come in bunches (a mailbox fetch accepts many at
    // once): whoever held the permit before us may have derived and pinned it already.
    // Looking again saves a derivation per envelope (each ~0.27 s of CPU).
    if let Some(address) = pinned().await.map_err(store_busy)? {
        return Ok(address);
    }
    let identity = opened.sender.clone();
    let address = tokio::task::spawn_blocking(move || derive_address(&identity))
        .await
        .map_err(|_| Busy::ShuttingDown)?;
    // The permit is held until the address is pinned, so the next holder finds it.
    let contact = Contact {
        address,
        name: None,
        identity: opened.sender.clone(),
        verified: false,
        added_at: Timestamp::now(),
    };
    let pinned = match inner.store.add_contact(contact).await {
        Ok(()) => {
            inner.pinned.remember(address, &opened.sender);
            Ok(address)
        }
        Err(communitas_store::Error::KeyChanged { .. }) => Ok(address),
        Err(e) => Err(store_busy(e)),
    };
    drop(permit);
    pinned
}

/// A store failure: logged here, and the sender is told to come back.
fn store_busy(e: communitas_store::Error) -> Refusal {
    tracing::warn!(error = %e, "cannot store an envelope now");
    Refusal::Busy(Busy::Store)
}

fn rules_inserted(inserted: Inserted) -> rules::Inserted {
    match inserted {
        Inserted::New => rules::Inserted::New,
        Inserted::Duplicate => rules::Inserted::Duplicate,
    }
}

/// The `/communitas/msg/1` response for an answer.
fn receipt_of(answer: Answer) -> Receipt {
    match answer {
        Answer::Delivered => Receipt::Delivered,
        Answer::Rejected(why) => Receipt::Rejected(wire(why)),
        _ => Receipt::Busy,
    }
}

/// The wire's code for a reason of the rules.
fn wire(why: rules::Rejection) -> Rejection {
    match why {
        rules::Rejection::WrongRecipient => Rejection::WrongRecipient,
        rules::Rejection::Stale => Rejection::Stale,
        _ => Rejection::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the sender hears of a refusal: the rules' answer, in the wire's codes.
    #[test]
    fn refusals_reach_the_wire_as_the_rules_answer_them() {
        let cases = [
            (Refusal::from(Rejected::Stale), Receipt::Rejected(Rejection::Stale)),
            (Refusal::from(Rejected::OldPresence), Receipt::Rejected(Rejection::Stale)),
            (Refusal::from(Rejected::NotAContact), Receipt::Rejected(Rejection::Invalid)),
            (
                Refusal::from(Rejected::Unopened(communitas_crypto::OpenError::WrongRecipient)),
                Receipt::Rejected(Rejection::WrongRecipient),
            ),
            (Refusal::from(Busy::Store), Receipt::Busy),
            (Refusal::from(Busy::NewSenders), Receipt::Busy),
        ];
        for (refusal, wire) in cases {
            assert_eq!(receipt_of(refusal.answer()), wire, "{refusal}");
            // The wire reason carried for the mailbox client is the same one.
            if let (Refusal::Rejected(carried, _), Receipt::Rejected(sent)) = (&refusal, wire) {
                assert_eq!(*carried, sent);
            }
        }
        assert_eq!(receipt_of(Answer::Delivered), Receipt::Delivered);
    }
}
