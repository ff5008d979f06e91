//! Inbound: envelopes from the network become history, then receipts.
//!
//! Each envelope is handled on its own task (at most `max_inbound` at once; beyond
//! that the sender is told `Busy` and retries). Order of checks: parse, open (mailbox,
//! decryption, signature, recipient), freshness, sender's address (from the contacts
//! table, or derived once and pinned), then one transaction that records the seen id
//! and the message together — so a replay is dropped and a crash never leaves one
//! without the other. The receipt goes back only after that commit.

use std::sync::Arc;
use std::time::Duration;

use communitas_crypto::{Envelope, Kind, OpenError, Opened, derive_address};
use communitas_net::{Receipt, Rejection, Responder};
use communitas_store::{Contact, Direction, Inserted, NewMessage, Status};
use communitas_types::{Address, Timestamp};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::limits::Kind as Bucket;
use crate::outbox::Command;
use crate::{Event, Inner, MAX_CLOCK_AHEAD, MESSAGE_TTL};

/// Address derivations for unknown senders running at once (each ~0.27 s of CPU).
static DERIVATIONS: Semaphore = Semaphore::const_new(2);

/// Where the dispatcher hands events it does not handle itself.
pub(crate) struct Channels {
    pub(crate) publish: mpsc::Sender<()>,
    pub(crate) mailbox: mpsc::Sender<crate::mailbox::Request>,
}

pub(crate) async fn run(
    inner: Arc<Inner>,
    mut events: mpsc::Receiver<communitas_net::Event>,
    channels: Channels,
    max_inbound: usize,
    shutdown: CancellationToken,
) {
    let mut tasks = JoinSet::new();
    let mut tidy = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = tidy.tick() => inner.limiters.forget_idle(),
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            event = events.recv() => match event {
                None => break,
                Some(communitas_net::Event::Message { peer, envelope, responder }) => {
                    if !inner.limiters.allow(&peer, Bucket::Message) {
                        inner.metrics.limited("msg");
                        let _ = responder.send(Receipt::RateLimited).await;
                        continue;
                    }
                    if tasks.len() >= max_inbound {
                        inner.metrics.shed.inc();
                        let _ = responder.send(Receipt::Busy).await;
                        continue;
                    }
                    tracing::trace!(%peer, len = envelope.len(), "envelope arrived");
                    tasks.spawn(handle(inner.clone(), envelope, responder));
                }
                Some(communitas_net::Event::AddressesChanged) => {
                    let _ = channels.publish.try_send(());
                }
                Some(communitas_net::Event::Mailbox { peer, request, responder }) => {
                    let kind = match request {
                        communitas_net::mbox::MboxRequest::Put { .. }
                        | communitas_net::mbox::MboxRequest::Offer { .. }
                        | communitas_net::mbox::MboxRequest::Replicate { .. } => Bucket::MailboxPut,
                        _ => Bucket::MailboxFetch,
                    };
                    if !inner.limiters.allow(&peer, kind) {
                        inner.metrics.limited("mbox");
                        let limited = communitas_net::mbox::MboxResponse::Refused(communitas_net::mbox::Refusal::RateLimited);
                        let _ = responder.send(limited).await;
                        continue;
                    }
                    let request = crate::mailbox::Request { peer, request, responder };
                    if let Err(mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r)) =
                        channels.mailbox.try_send(request)
                    {
                        inner.metrics.shed.inc();
                        let busy = communitas_net::mbox::MboxResponse::Refused(communitas_net::mbox::Refusal::Unavailable);
                        let _ = r.responder.send(busy).await;
                    }
                }
                Some(communitas_net::Event::Connection { peer, open, connected }) => {
                    inner.metrics.connected_peers.set(i64::try_from(connected).unwrap_or(i64::MAX));
                    if open {
                        let _ = inner.outbox.try_send(Command::PeerOnline(peer));
                        let _ = inner.files.try_send(crate::files::Command::PeerOnline);
                    }
                    crate::presence::connection(&inner, peer, open);
                    inner.emit(Event::Connection { peer: peer.to_string(), open, connected });
                }
                // Connection kinds and liveness (issue 6): metrics only.
                Some(communitas_net::Event::Link { kind, open, .. }) => {
                    inner.metrics.link(kind.as_str(), open);
                }
                Some(communitas_net::Event::HolePunch { ok, .. }) => inner.metrics.hole_punch(ok),
                Some(communitas_net::Event::PingFailed { .. }) => {
                    inner.metrics.ping_failures.inc();
                }
                Some(_) => {}
            }
        }
    }
    tasks.shutdown().await;
}

async fn handle(inner: Arc<Inner>, envelope: Vec<u8>, responder: Responder) {
    let receipt = match accept(&inner, &envelope).await {
        Ok(Accepted { inserted: Inserted::New, .. }) => Receipt::Delivered,
        Ok(Accepted { inserted: Inserted::Duplicate, .. }) => {
            inner.metrics.duplicates.inc();
            Receipt::Delivered
        }
        Err(refusal) => {
            tracing::debug!(reason = %refusal, "envelope refused");
            match refusal {
                Refusal::Busy(_) => Receipt::Busy,
                Refusal::Rejected(why, _) => {
                    inner.metrics.rejected.inc();
                    Receipt::Rejected(why)
                }
            }
        }
    };
    // If the sender has gone, it will resend and we deduplicate.
    let _ = responder.send(receipt).await;
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("{1}")]
    Rejected(Rejection, String),
    #[error("{0}")]
    Busy(String),
}

/// What `accept` did with an envelope.
pub(crate) struct Accepted {
    pub(crate) inserted: Inserted,
    /// For a new text message: who sent it, to send a receipt when it came from a
    /// mailbox.
    pub(crate) text_from:
        Option<(Address, communitas_crypto::PublicIdentity, communitas_types::MessageId)>,
}

pub(crate) async fn accept(inner: &Inner, bytes: &[u8]) -> Result<Accepted, Refusal> {
    let opened = open(inner, bytes)?;
    let now = Timestamp::now();
    if opened.timestamp > now.saturating_add(MAX_CLOCK_AHEAD)
        || opened.timestamp < now.saturating_sub(MESSAGE_TTL)
    {
        return Err(Refusal::Rejected(
            Rejection::Stale,
            "timestamp outside the accepted window".into(),
        ));
    }
    // Presence and typing (issue 6): contacts only, never stored.
    if matches!(opened.kind, Kind::Presence | Kind::Typing) {
        return crate::presence::accept(inner, opened).await;
    }
    let from = sender_address(inner, &opened).await?;
    let seen_until = opened.timestamp.saturating_add(MESSAGE_TTL);
    let busy = |e: communitas_store::Error| Refusal::Busy(format!("cannot store: {e}"));
    let mut file = None;
    match opened.kind {
        Kind::Text => {}
        Kind::File => {
            let manifest = crate::files::manifest_of(&opened.body).ok_or_else(|| {
                Refusal::Rejected(Rejection::Invalid, "malformed file manifest".into())
            })?;
            // The transfer is recorded before the message: a crash in between leaves a
            // transfer without a message (harmless), never a message whose file is
            // never fetched. A replay leaves a known transfer as it is.
            let limit = inner.files_config.auto_download.min(inner.files_config.max_size);
            let row = crate::files::incoming_row(&manifest, opened.message_id, from, limit);
            let pending = row.status == communitas_store::FileStatus::Pending;
            inner.store.add_file(row).await.map_err(busy)?;
            file = Some((manifest, pending));
        }
        Kind::Receipt => {
            let (receipt_kind, ids) = crate::receipts::decode(&opened.body)
                .map_err(|e| Refusal::Rejected(Rejection::Invalid, format!("bad receipt: {e}")))?;
            let inserted = inner
                .store
                .mark_seen(opened.sender.fingerprint(), opened.message_id, seen_until)
                .await
                .map_err(busy)?;
            if inserted == Inserted::New {
                crate::receipts::received(inner, from, receipt_kind, ids).await.map_err(busy)?;
            }
            return Ok(Accepted { inserted, text_from: None });
        }
        // Kinds a later version uses; this build stores nothing for them.
        _ => return Ok(Accepted { inserted: Inserted::Duplicate, text_from: None }),
    }
    let text = match &file {
        Some((manifest, _)) => manifest.caption.clone(),
        None => String::from_utf8_lossy(&opened.body).into_owned(),
    };
    let message = NewMessage {
        id: opened.message_id,
        peer: from,
        direction: Direction::In,
        kind: opened.kind.to_u8(),
        body: opened.body,
        timestamp: opened.timestamp,
        status: Status::Delivered,
    };
    let inserted = inner
        .store
        .insert_incoming(message, opened.sender.fingerprint(), seen_until)
        .await
        .map_err(busy)?;
    if inserted == Inserted::New {
        inner.metrics.received.inc();
        let attachment = file.as_ref().map(|(m, _)| crate::files::Attachment::new(m, None));
        inner.emit(Event::MessageReceived {
            id: opened.message_id,
            from,
            text,
            timestamp: opened.timestamp,
            attachment,
        });
    }
    if let Some((manifest, true)) = &file {
        // Fetching starts now; a full queue only delays it to the actor's next look.
        let _ = inner.files.try_send(crate::files::Command::Fetch(manifest.file_id));
    }
    Ok(Accepted { inserted, text_from: Some((from, opened.sender, opened.message_id)) })
}

fn open(inner: &Inner, bytes: &[u8]) -> Result<Opened, Refusal> {
    let envelope = Envelope::from_bytes(bytes)
        .map_err(|e| Refusal::Rejected(Rejection::Invalid, format!("malformed envelope: {e}")))?;
    envelope.open(&inner.secrets.identity).map_err(|e| {
        let why = match e {
            OpenError::WrongMailbox | OpenError::WrongRecipient => Rejection::WrongRecipient,
            _ => Rejection::Invalid,
        };
        Refusal::Rejected(why, e.to_string())
    })
}

/// The sender's address: from contacts if its keys are pinned, else derived (once,
/// then pinned as a new, unverified contact).
async fn sender_address(inner: &Inner, opened: &Opened) -> Result<Address, Refusal> {
    let pinned = || async {
        inner
            .pinned
            .address(&inner.store, &opened.sender)
            .await
            .map_err(|e| Refusal::Busy(e.to_string()))
    };
    if let Some(address) = pinned().await? {
        return Ok(address);
    }
    let permit = tokio::time::timeout(Duration::from_secs(5), DERIVATIONS.acquire())
        .await
        .map_err(|_| Refusal::Busy("too many new senders at once".into()))?
        .map_err(|_| Refusal::Busy("shutting down".into()))?;
    // Envelopes from one new sender come in bunches (a mailbox fetch accepts many at
    // once): whoever held the permit before us may have derived and pinned it already.
    // Looking again saves a derivation per envelope (each ~0.27 s of CPU).
    if let Some(address) = pinned().await? {
        return Ok(address);
    }
    let identity = opened.sender.clone();
    let address = tokio::task::spawn_blocking(move || derive_address(&identity))
        .await
        .map_err(|_| Refusal::Busy("address derivation failed".into()))?;
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
        Err(e) => Err(Refusal::Busy(e.to_string())),
    };
    drop(permit);
    pinned
}
