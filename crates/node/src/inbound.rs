//! Inbound: the driver of [`communitas_proto::inbound`] — envelopes from the network
//! (a `/communitas/msg/1` request, or a mailbox fetch) become history, receipts or
//! presence, and their senders hear back only from the commit.
//!
//! The rules are the proto module's: opening (mailbox, decryption, signature,
//! recipient), the freshness window, routing by kind, what a committed letter is
//! answered. This driver does the I/O between them, in this order:
//!
//! ```text
//! bytes ─ open ─ blocked keys? ─ drop (answered delivered, counted)
//!              └ decide(now) ─┬─ Record  ─ sender ─┬ contact  ─ (file row) ─ seen id + message in ONE
//!                             │                    │            transaction ─ committed ─ Reply
//!                             │                    ├ stranger ─ request: seen id + message (+ file
//!                             │                    │            row, not fetched) in ONE transaction
//!                             │                    ├ blocked  ─ drop
//!                             │                    └ impostor ─ refused, counted, Event::Impersonation
//!                             ├─ Receipt ─ a contact? ─ seen id ─ committed ─ Reply ─ apply ─ answer
//!                             ├─ Presence ─ a contact? ─ heard(now) ─ presence actor
//!                             └─ Ignore  ─ answered, nothing stored
//! ```
//!
//! The sender is found by its keys among the contacts, then among the message
//! requests; keys never seen cost one derivation of their address (`sender`). A
//! stranger is never pinned as a contact: its messages wait in its request until the
//! user accepts (issue 15, decision 0052). A replay finds its seen id and is answered
//! without being shown again; a crash never leaves the seen id without the message or
//! the other way round.
//!
//! Each direct envelope is answered from its own task, which `dispatch` spawns (at
//! most `max_inbound` at once); the mailbox client calls [`accept`] for fetched ones.

use communitas_crypto::Opened;
use communitas_net::libp2p::PeerId;
use communitas_net::{Receipt, Rejection, Responder};
use communitas_proto::inbound::{
    self as rules, Answer, Busy, Plan, ReceiptPlan, Record, Rejected, Reply,
};
use communitas_proto::session::letter;
use communitas_store::{Direction, FileStatus, Inserted, NewMessage, RequestMessage, Status};
use communitas_types::{Address, MessageId, Timestamp};

use crate::sessions::{OpenFailure, Opening};
use crate::{Event, Inner};

mod sender;
pub(crate) use sender::Unpaid;

use sender::Sender;

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
    /// A contact's new letter (not a replay): the peer that brought it directly is
    /// one of the contact's devices (the strangers' lane, `lanes`).
    pub(crate) from_contact: bool,
}

/// Accepts one envelope and answers its sender on `responder`, only once what it
/// asked is committed.
pub(crate) async fn answer(inner: &Inner, peer: PeerId, envelope: Vec<u8>, responder: Responder) {
    let receipt = match judge(inner, &envelope, Some(peer)).await {
        Ok((accepted, answer)) => {
            if accepted.inserted == Inserted::Duplicate {
                inner.metrics.duplicates.inc();
            }
            if accepted.from_contact {
                inner.familiar.learn(peer);
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
    judge(inner, bytes, None).await.map(|(accepted, _)| accepted)
}

/// [`accept`], with the answer the rules give once it is committed.
async fn judge(
    inner: &Inner,
    bytes: &[u8],
    from: Option<PeerId>,
) -> Result<(Accepted, Answer), Refusal> {
    let (opened, session) = if bytes.first() == Some(&letter::ENVELOPE_VERSION) {
        match inner.sessions.open(inner, bytes, from, Timestamp::now()).await {
            Ok((opened, opening)) => (opened, Some(opening)),
            // Its keys are spent: it was read (and committed) before.
            Err(OpenFailure::Duplicate) => return Ok((nothing_new(), Answer::Delivered)),
            Err(OpenFailure::Rejected(why)) => return Err(why.into()),
            Err(OpenFailure::Busy(e)) => return Err(store_busy(e)),
        }
    } else {
        (rules::open(bytes, &inner.secrets.identity)?, None)
    };
    // A blocked sender's envelope goes no further than opening it (which finds its
    // keys): no freshness check, no database, no derivation (decision 0052).
    let fingerprint = opened.sender.fingerprint();
    if inner.consent.blocks_keys(&fingerprint) {
        return Ok(dropped_blocked(inner, &opened));
    }
    if inner.consent.is_impostor(&fingerprint) {
        inner.metrics.impersonations.inc();
        return Err(Rejected::Impersonating.into());
    }
    match rules::decide(&opened, Timestamp::now())? {
        Plan::Record(record) => self::record(inner, opened, record, session).await,
        Plan::Receipt(plan) => receipt(inner, opened, plan, session).await,
        Plan::Presence => presence(inner, opened, session).await,
        // A kind this build stores nothing for: answered so that its sender stops.
        _ => {
            if let Some(address) =
                inner.pinned.address(&inner.store, &opened.sender).await.map_err(store_busy)?
            {
                save_alone(inner, session, address).await?;
            }
            Ok((nothing_new(), Answer::Delivered))
        }
    }
}

/// Nothing stored, nothing to acknowledge.
fn nothing_new() -> Accepted {
    Accepted { inserted: Inserted::Duplicate, text_from: None, from_contact: false }
}

/// Commits a session's state when nothing else is stored with it (presence, typing,
/// a receipt already seen, a request's message stored just before).
async fn save_alone(
    inner: &Inner,
    session: Option<Opening<'_>>,
    address: Address,
) -> Result<(), Refusal> {
    let Some(session) = session else { return Ok(()) };
    session
        .commit(inner, address, |update| inner.store.submit_session(update))
        .await
        .map_err(store_busy)
}

/// A blocked sender's envelope: counted and dropped, and answered as delivered so
/// that the sender cannot tell a block from an unanswered request (decision 0052).
/// Nothing goes back to it beyond that answer: no receipt from a mailbox fetch.
fn dropped_blocked(inner: &Inner, opened: &Opened) -> (Accepted, Answer) {
    let kind = match opened.kind {
        communitas_crypto::Kind::Presence | communitas_crypto::Kind::Typing => "presence",
        communitas_crypto::Kind::Receipt => "receipt",
        _ => "message",
    };
    inner.metrics.blocked(kind);
    (
        Accepted { inserted: Inserted::Duplicate, text_from: None, from_contact: false },
        Answer::Delivered,
    )
}

/// A text or a file: into the conversation of a contact, or into a stranger's request.
async fn record(
    inner: &Inner,
    opened: Opened,
    record: Record,
    session: Option<Opening<'_>>,
) -> Result<(Accepted, Answer), Refusal> {
    let work = session.as_ref().and_then(|s| s.work);
    let from = match sender::of(inner, &opened, work).await? {
        Sender::Contact(address) => address,
        Sender::Stranger(address) => {
            return self::request(inner, opened, record, address, session).await;
        }
        Sender::Blocked => return Ok(dropped_blocked(inner, &opened)),
    };
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
    let stamp = session.as_ref().and_then(|s| s.stamp);
    let place = inner.clocks.read(&inner.store, from, stamp, Timestamp::now()).await;
    let place = place.map_err(store_busy)?;
    let message = NewMessage {
        id,
        peer: from,
        direction: Direction::In,
        kind: opened.kind.to_u8(),
        body: opened.body,
        timestamp,
        status: Status::Delivered,
        place,
    };
    let inserted = match session {
        // The session's next state in the same transaction as the message.
        Some(session) => {
            let (fingerprint, until) = (sender.fingerprint(), record.seen_until());
            session
                .commit(inner, from, |update| {
                    inner.store.insert_incoming_with_session(message, fingerprint, until, update)
                })
                .await
                .map_err(store_busy)?
        }
        None => inner
            .store
            .insert_incoming(message, sender.fingerprint(), record.seen_until())
            .await
            .map_err(store_busy)?,
    };
    let Reply { show, answer, acknowledge, .. } = record.committed(rules_inserted(inserted));
    if show {
        inner.metrics.received.inc();
        let (position, n) = (place.position, place.n);
        inner.emit(Event::MessageReceived { id, from, text, timestamp, attachment, position, n });
    }
    if let Some(file_id) = fetch {
        // Fetching starts now; a full queue only delays it to the actor's next look.
        inner.files.offer_fetch(file_id);
    }
    let text_from = acknowledge.then_some((from, sender, id));
    Ok((Accepted { inserted, text_from, from_contact: inserted == Inserted::New }, answer))
}

/// A text or a file from a stranger: into its request (opened if new), its file not
/// fetched (issue 15 item 1). Other keys under a request's address are an impostor.
async fn request(
    inner: &Inner,
    opened: Opened,
    record: Record,
    from: Address,
    session: Option<Opening<'_>>,
) -> Result<(Accepted, Answer), Refusal> {
    let file = record.file().map(|manifest| {
        let limit = inner.files_config.auto_download.min(inner.files_config.max_size);
        crate::files::incoming_row(manifest, opened.message_id, from, limit)
    });
    let text = record.text(&opened.body);
    let (id, timestamp, sender) = (opened.message_id, opened.timestamp, opened.sender);
    let stamp = session.as_ref().and_then(|s| s.stamp);
    let place = inner.clocks.read(&inner.store, from, stamp, Timestamp::now()).await;
    let name = session.as_ref().and_then(|s| s.published_name.clone());
    let entry = RequestMessage {
        identity: sender.clone(),
        name,
        message: NewMessage {
            id,
            peer: from,
            direction: Direction::In,
            kind: opened.kind.to_u8(),
            body: opened.body,
            timestamp,
            status: Status::Delivered,
            place: place.map_err(store_busy)?,
        },
        file,
        seen_until: record.seen_until(),
        now: Timestamp::now(),
    };
    let added = match inner.store.add_request_message(entry, inner.request_limits).await {
        Ok(added) => added,
        Err(communitas_store::Error::KeyChanged { address }) => {
            return Err(sender::impersonation(inner, address, &sender));
        }
        Err(e) => return Err(store_busy(e)),
    };
    // The message first, then the state: a crash between them leaves the old state,
    // which opens the sender's retry, and its seen id makes that a duplicate.
    save_alone(inner, session, from).await?;
    inner.metrics.request_dropped("evicted", u64::from(added.evicted));
    inner.metrics.request_dropped("over_bound", u64::from(added.over_bound));
    if added.new_request {
        inner.metrics.requests_opened.inc();
    }
    let Reply { show, answer, acknowledge, .. } = record.committed(rules_inserted(added.inserted));
    if show && !added.over_bound {
        // Received and committed, like a contact's (`messages_received_total`).
        inner.metrics.received.inc();
        inner.emit(Event::Request { from, id, text, timestamp, new: added.new_request });
    }
    // Its delivery is acknowledged like a contact's: a request is not a block.
    let text_from = acknowledge.then_some((from, sender, id));
    Ok((Accepted { inserted: added.inserted, text_from, from_contact: false }, answer))
}

/// A receipt: from a contact only (a stranger has no message of ours to acknowledge);
/// its seen id, then (if new) its steps, then the answer.
async fn receipt(
    inner: &Inner,
    opened: Opened,
    plan: ReceiptPlan,
    session: Option<Opening<'_>>,
) -> Result<(Accepted, Answer), Refusal> {
    let Some(from) =
        inner.pinned.address(&inner.store, &opened.sender).await.map_err(store_busy)?
    else {
        // Answered so that it stops; nothing derived, nothing stored.
        return Ok((
            Accepted { inserted: Inserted::Duplicate, text_from: None, from_contact: false },
            Answer::Delivered,
        ));
    };
    let fingerprint = opened.sender.fingerprint();
    let inserted = inner
        .store
        .mark_seen(fingerprint, opened.message_id, plan.seen_until())
        .await
        .map_err(store_busy)?;
    save_alone(inner, session, from).await?;
    let reply = plan.committed(rules_inserted(inserted));
    if let Some(receipt) = &reply.apply {
        crate::receipts::received(inner, from, receipt).await.map_err(|e| match e {
            crate::receipts::ApplyError::Store(e) => store_busy(e),
            crate::receipts::ApplyError::ShuttingDown => Refusal::Busy(Busy::ShuttingDown),
        })?;
    }
    let from_contact = inserted == Inserted::New;
    Ok((Accepted { inserted, text_from: None, from_contact }, reply.answer))
}

/// Presence or typing: contacts only, never stored; the actor gets it without waiting.
async fn presence(
    inner: &Inner,
    opened: Opened,
    session: Option<Opening<'_>>,
) -> Result<(Accepted, Answer), Refusal> {
    let from = inner
        .pinned
        .address(&inner.store, &opened.sender)
        .await
        .map_err(store_busy)?
        .ok_or(Rejected::NotAContact)?;
    let body = rules::heard(&opened, Timestamp::now())?;
    save_alone(inner, session, from).await?;
    if !inner.presence.offer_heard(from, opened.timestamp, body) {
        return Err(Busy::Presence.into());
    }
    // Fresh (the rules' window), so a replay of an old one does not get here.
    Ok((
        Accepted { inserted: Inserted::New, text_from: None, from_contact: true },
        Answer::Delivered,
    ))
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
        rules::Rejection::NoSession => Rejection::NoSession,
        rules::Rejection::NoWork => Rejection::NoWork,
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
