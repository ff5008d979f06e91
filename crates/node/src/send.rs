//! Accepting a message from the user: validate, find keys, seal, persist, hand on.

use std::sync::Arc;

use communitas_crypto::payload::MAX_TEXT_LEN;
use communitas_crypto::{Kind, PublicIdentity, SealError, random};
use communitas_store::{Contact, Direction, NewMessage, Status};
use communitas_types::{Address, MessageId, Timestamp};

use crate::commands::outbox::fresh_entry;
use crate::{Event, Inner};

/// Why a message (or contact) was not accepted. Nothing was queued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The text is empty.
    #[error("the message is empty")]
    Empty,
    /// The text is over 64 KiB.
    #[error("the message is {len} bytes; the limit is {max} bytes")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Sending to oneself.
    #[error("{0} is your own address")]
    OwnAddress(Address),
    /// No identity record for the address in the DHT (a lookup on a joined node).
    #[error("no identity found for {0}: check the four words, or ask them to start their node")]
    UnknownAddress(Address),
    /// The node has not joined the network yet, so nothing could be looked up.
    #[error("not connected to the network yet (waited {waited:?}); try again shortly")]
    NotJoined {
        /// How long the lookup waited.
        waited: std::time::Duration,
    },
    /// Several identities claim the address: a forged collision.
    #[error(
        "{address} is claimed by {count} different identities; add the right one by comparing safety numbers"
    )]
    Ambiguous {
        /// The address.
        address: Address,
        /// How many identities.
        count: usize,
    },
    /// Not a contact.
    #[error("{0} is not a contact")]
    NotAContact(Address),
    /// No message request from this address.
    #[error("no message request from {0}")]
    NoSuchRequest(Address),
    /// The address is blocked: unblock it first.
    #[error("{0} is blocked; unblock it first")]
    Blocked(Address),
    /// The address is not blocked.
    #[error("{0} is not blocked")]
    NotBlocked(Address),
    /// The network lookup failed.
    #[error("lookup failed: {0}")]
    Network(#[from] communitas_net::Error),
    /// Storing failed.
    #[error("storage failed: {0}")]
    Store(#[from] communitas_store::Error),
    /// Sealing failed.
    #[error("cannot seal the message: {0}")]
    Seal(#[from] SealError),
    /// The node is stopping.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// A display name that cannot be used.
    #[error(transparent)]
    InvalidName(#[from] crate::NameError),
    /// The attachment cannot be sent.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
}

/// A message the outbox now owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    /// Its id.
    pub id: MessageId,
    /// Its status (`queued`).
    pub status: Status,
    /// Where it sorts in its conversation (decision 0061).
    pub position: i64,
}

pub(crate) async fn send_text(
    inner: &Arc<Inner>,
    to: Address,
    text: &str,
) -> Result<Queued, SendError> {
    if text.is_empty() {
        return Err(SendError::Empty);
    }
    if text.len() > MAX_TEXT_LEN {
        return Err(SendError::TooLong { len: text.len(), max: MAX_TEXT_LEN });
    }
    if to == inner.public.address {
        return Err(SendError::OwnAddress(to));
    }
    if inner.consent.is_blocked(&to) {
        return Err(SendError::Blocked(to));
    }
    let id = MessageId::from_bytes(random::bytes().map_err(SealError::from)?);
    queue(inner, to, id, Kind::Text, text.as_bytes().to_vec()).await
}

/// Seals `body` for `to` and stores it with its outbox row; from then on the outbox
/// owns it.
pub(crate) async fn queue(
    inner: &Arc<Inner>,
    to: Address,
    id: MessageId,
    kind: Kind,
    body: Vec<u8>,
) -> Result<Queued, SendError> {
    let recipient = recipient_keys(inner, to).await?;
    let now = Timestamp::now();
    // Its place in the conversation, inside the letter (issue 23 item 1).
    let (stamp, place) = inner.clocks.write(&inner.store, to, now).await?;
    let message = NewMessage {
        id,
        peer: to,
        direction: Direction::Out,
        kind: kind.to_u8(),
        body,
        timestamp: now,
        status: Status::Queued,
        place,
    };
    // A session state made from a write that failed (an earlier message's, when the
    // store itself failed: every path commits the states it hands out otherwise) is
    // refused by the store and the session goes back to its stored state: sealed once
    // more from there, the message is stored. Nothing was written by the refused
    // attempt.
    let mut conflicts = 0;
    let entry = loop {
        let parts = crate::seal::parts(id, now, kind, &message.body);
        let sealed = inner.sessions.seal(inner, to, &recipient, parts, Some(stamp)).await;
        let Some(sealed) = sealed else {
            let envelope = crate::seal::letter(inner, &recipient, id, now, kind, &message.body)?;
            let entry = fresh_entry(id, to, envelope, now);
            inner.store.insert_outgoing(message, entry.clone()).await?;
            break entry;
        };
        // The session's next state goes in the same transaction as the message.
        let entry = fresh_entry(id, to, sealed.envelope.clone(), now);
        let (row, copy) = (entry.clone(), message.clone());
        let committed = sealed
            .commit(inner, |update| inner.store.insert_outgoing_with_session(copy, row, update))
            .await;
        match committed {
            Ok(()) => break entry,
            Err(communitas_store::Error::SessionConflict) if conflicts < 2 => {
                conflicts += 1;
                tracing::debug!(message = %id.fmt_short(), "session moved under a send: sealed again");
            }
            Err(e) => return Err(e.into()),
        }
    };
    // Durable from here on: whatever happens next, the outbox has it.
    inner.metrics.outbox_depth.inc();
    inner.emit(Event::StatusChanged { id, to, status: Status::Queued });
    // Accepted either way: a node stopping now loads its outbox again at the next
    // start. Answering an error here would make the caller retry (a duplicate) or
    // throw away a file the queued message still offers.
    if inner.outbox.enqueue(entry).await.is_err() {
        tracing::info!(message = %id.fmt_short(), "queued while the node stops: sent after the next start");
    }
    Ok(Queued { id, status: Status::Queued, position: place.position })
}

/// The pinned keys of `to`, pinning them first if `to` is new.
async fn recipient_keys(inner: &Arc<Inner>, to: Address) -> Result<PublicIdentity, SendError> {
    match inner.pinned.keys(&inner.store, to).await? {
        Some(identity) => Ok(identity),
        None => Ok(add_contact(inner, to, None).await?.identity),
    }
}

/// Looks `address` up and pins its keys (or renames an existing contact).
pub(crate) async fn add_contact(
    inner: &Arc<Inner>,
    address: Address,
    name: Option<String>,
) -> Result<Contact, SendError> {
    if address == inner.public.address {
        return Err(SendError::OwnAddress(address));
    }
    if let Some(mut existing) = inner.store.contact(address).await? {
        if name.is_some() {
            existing.name = name;
            inner.store.add_contact(existing.clone()).await?;
        }
        return Ok(existing);
    }
    // Writing to (or adding) someone whose request waits accepts it, with the keys
    // its messages came with: no lookup, and no chance of pinning other keys.
    if let Some(request) = inner.store.request(address).await? {
        let name = match name.or(request.name) {
            Some(name) => Some(name),
            None => published_name(inner, address, &request.identity).await,
        };
        let contact = Contact {
            address,
            name,
            identity: request.identity,
            verified: false,
            added_at: Timestamp::now(),
        };
        inner.store.add_contact(contact.clone()).await?;
        crate::consent::accepted(inner, &contact).await;
        return Ok(contact);
    }
    // Right after start: wait (bounded) to join, so that "not found" means not found.
    let waited = crate::joined::JOIN_WAIT;
    if !crate::joined::wait(inner, waited).await? {
        return Err(SendError::NotJoined { waited });
    }
    let mut records = match inner.net.resolve(address).await {
        Ok(records) => records,
        Err(communitas_net::Error::NotFound) => return Err(SendError::UnknownAddress(address)),
        Err(e) => return Err(e.into()),
    };
    if records.len() > 1 {
        tracing::warn!(%address, count = records.len(), "several identities claim one address");
        return Err(SendError::Ambiguous { address, count: records.len() });
    }
    let record = records.pop().ok_or(SendError::UnknownAddress(address))?;
    let contact = Contact {
        address,
        name: name.or_else(|| record.display_name.clone()),
        identity: record.identity.clone(),
        verified: false,
        added_at: Timestamp::now(),
    };
    inner.store.add_contact(contact.clone()).await?;
    inner.pinned.remember(address, &contact.identity);
    inner.sessions.learn(address, &record);
    inner.sessions.claim_one_time(address, &record.identity);
    if inner.sessions.enabled() {
        // The first letter's proof of work, made now rather than when the user sends
        // (decision 0062): the first message then goes out at once.
        let (warm, recipient) = (inner.clone(), contact.identity.fingerprint());
        tokio::spawn(async move {
            warm.sessions.proof(&warm, recipient, Timestamp::now()).await;
        });
    }
    // Presence starts now, not at the next reload (issue 15 item 5: within a
    // second), so this waits for room in the actor's inbox rather than drop the hint.
    let _ = inner.presence.tell(crate::commands::presence::Command::ContactAdded(address)).await;
    // The outbox needs the devices next; spare it a second lookup.
    inner.outbox.hint_learned(address, record);
    Ok(contact)
}

/// Sends a file: one pass computes its manifest, then the manifest goes like a text.
pub(crate) async fn send_file(
    inner: &Arc<Inner>,
    to: Address,
    caption: &str,
    path: std::path::PathBuf,
) -> Result<(Queued, communitas_types::FileId), SendError> {
    use communitas_store::{FileRow, FileStatus};

    if caption.len() > communitas_proto::file::MAX_CAPTION_LEN {
        return Err(SendError::TooLong {
            len: caption.len(),
            max: communitas_proto::file::MAX_CAPTION_LEN,
        });
    }
    if to == inner.public.address {
        return Err(SendError::OwnAddress(to));
    }
    if inner.consent.is_blocked(&to) {
        return Err(SendError::Blocked(to));
    }
    // Keys first: an unknown address is refused before the file is read.
    recipient_keys(inner, to).await?;
    let max = inner.files_config.max_size;
    let source = inner.secrets.device.keypair().public().to_peer_id().to_bytes();
    let caption = caption.to_owned();
    let work = path.clone();
    let progress_inner = inner.clone();
    let prepared = inner
        .cpu
        .run(move || {
            let mut last = std::time::Instant::now();
            crate::files::prepare(&work, max, caption, source, |done, size| {
                if last.elapsed() >= std::time::Duration::from_millis(200) {
                    last = std::time::Instant::now();
                    progress_inner.emit(Event::FilePreparing {
                        path: work.display().to_string(),
                        bytes: done,
                        size,
                    });
                }
            })
        })
        .await
        .ok_or(SendError::ShuttingDown)??;
    let manifest = prepared.manifest;
    let file_id = manifest.file_id;
    let id = MessageId::from_bytes(random::bytes().map_err(SealError::from)?);
    let absolute = std::fs::canonicalize(&path).unwrap_or(path);
    // The row first: a manifest must never go out for a file we cannot serve.
    inner
        .store
        .put_file(FileRow {
            file_id,
            message_id: id,
            direction: Direction::Out,
            peer: to,
            size: manifest.size,
            path: Some(absolute),
            status: FileStatus::Offered,
            done: Vec::new(),
            fetched: 0,
            error: None,
            updated_at: Timestamp::now(),
        })
        .await?;
    Ok((queue(inner, to, id, Kind::File, manifest.to_bytes()).await?, file_id))
}

/// How long accepting a request waits for the stranger's identity record, for the
/// name it publishes: a lookup on a joined node takes well under a second
/// (docs/benchmarks.md); past this the contact is saved without one.
pub(crate) const NAME_LOOKUP: std::time::Duration = std::time::Duration::from_secs(3);

/// The display name `address` publishes with these keys, if any and usable (issue 23
/// item 3: a stranger's name was never shown, nor saved on accepting). Best effort:
/// a lookup that fails or takes over [`NAME_LOOKUP`] gives none.
pub(crate) async fn published_name(
    inner: &Inner,
    address: Address,
    identity: &communitas_crypto::PublicIdentity,
) -> Option<String> {
    let records = tokio::time::timeout(NAME_LOOKUP, inner.net.resolve(address)).await.ok()?.ok()?;
    records
        .into_iter()
        .find(|r| &r.identity == identity)?
        .display_name
        .filter(|name| crate::check_name(name).is_ok())
}
