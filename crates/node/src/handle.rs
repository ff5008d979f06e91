//! [`Handle`]: the cloneable interface to a running node, what the API, the CLI and the
//! tests call.

mod consent;
mod contacts;
mod presence;

pub use consent::MessageRequest;

use std::sync::Arc;

use communitas_net::libp2p::Multiaddr;
use communitas_store::{DeadLetter, Direction, OutboxEntry, Status};
use communitas_types::{Address, MessageId, Timestamp};
use tokio::sync::broadcast;

use crate::{
    Attachment, Event, FileError, HistoryEntry, Inner, MESSAGE_TTL, Metrics, NodeStatus,
    PeerStatus, SendError, files, send,
};

/// The cloneable interface to a running node.
#[derive(Clone)]
pub struct Handle {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("address", &self.inner.public.address)
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// Own address.
    pub fn address(&self) -> Address {
        self.inner.public.address
    }

    /// Our display name now, if any: the one chosen when the identity was made, or
    /// the one it was changed to ([`Handle::set_name`]).
    pub fn name(&self) -> Option<String> {
        self.inner.name.borrow().clone()
    }

    /// Own public identity (what a sender seals to).
    pub fn identity(&self) -> &communitas_crypto::PublicIdentity {
        &self.inner.public.identity
    }

    /// This device's PeerId.
    pub fn peer_id(&self) -> communitas_net::libp2p::PeerId {
        self.inner.public.peer_id
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Live events. A slow subscriber loses the oldest events (and is told so by
    /// `RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Sends a text. Returns once the message is durably queued.
    pub async fn send_text(
        &self,
        to: Address,
        text: &str,
    ) -> Result<(MessageId, Status), SendError> {
        self.queue_text(to, text).await.map(|q| (q.id, q.status))
    }

    /// [`Self::send_text`], answering where the message sorts in its conversation too.
    pub async fn queue_text(&self, to: Address, text: &str) -> Result<send::Queued, SendError> {
        send::send_text(&self.inner, to, text).await
    }

    /// The status of an outgoing message.
    pub async fn message_status(
        &self,
        id: MessageId,
    ) -> Result<Option<Status>, communitas_store::Error> {
        Ok(self
            .inner
            .store
            .message(id)
            .await?
            .filter(|m| m.message.direction == Direction::Out)
            .map(|m| m.message.status))
    }

    /// The paging cursor of a stored message (for `history`'s `before`).
    pub async fn stored_message(
        &self,
        id: MessageId,
    ) -> Result<Option<communitas_store::Cursor>, communitas_store::Error> {
        Ok(self.inner.store.message(id).await?.map(|m| m.cursor()))
    }

    /// Every conversation with its unread count, newest first.
    pub async fn conversations(
        &self,
    ) -> Result<Vec<communitas_store::Conversation>, communitas_store::Error> {
        self.inner.store.conversations().await
    }

    /// A conversation in its order (decision 0061): at most `limit` messages before
    /// cursor `before`.
    pub async fn history(
        &self,
        peer: Address,
        limit: u32,
        before: Option<communitas_store::Cursor>,
    ) -> Result<Vec<HistoryEntry>, communitas_store::Error> {
        let me = self.inner.public.address;
        let rows = self.inner.store.history(peer, limit, before).await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let cursor = row.cursor();
            let m = row.message;
            let (from, to, direction) = match m.direction {
                Direction::In => (m.peer, me, Direction::In),
                Direction::Out => (me, m.peer, Direction::Out),
            };
            let system = (m.kind == communitas_crypto::Kind::System.to_u8())
                .then(|| crate::SystemLine::from_code(&m.body).map(crate::SystemLine::code))
                .flatten();
            let manifest = (m.kind == communitas_crypto::Kind::File.to_u8())
                .then(|| files::manifest_of(&m.body))
                .flatten();
            let (text, attachment) = match manifest {
                _ if system.is_some() => (String::new(), None),
                Some(manifest) => {
                    let file = self.inner.store.file(manifest.file_id).await?;
                    (manifest.caption.clone(), Some(Attachment::new(&manifest, file.as_ref())))
                }
                None => (String::from_utf8_lossy(&m.body).into_owned(), None),
            };
            entries.push(HistoryEntry {
                id: m.id,
                from,
                to,
                direction,
                text,
                system,
                timestamp: m.timestamp,
                status: m.status,
                attachment,
                position: m.place.position,
                n: m.place.n,
                cursor,
            });
        }
        Ok(entries)
    }

    /// Sends a file with an optional caption. Returns once the manifest is computed
    /// and the message durably queued; the recipient then pulls the file.
    pub async fn send_file(
        &self,
        to: Address,
        caption: &str,
        path: std::path::PathBuf,
    ) -> Result<(MessageId, communitas_types::FileId, Status), SendError> {
        let (queued, file_id) = self.queue_file(to, caption, path).await?;
        Ok((queued.id, file_id, queued.status))
    }

    /// [`Self::send_file`], answering where the message sorts in its conversation too.
    pub async fn queue_file(
        &self,
        to: Address,
        caption: &str,
        path: std::path::PathBuf,
    ) -> Result<(send::Queued, communitas_types::FileId), SendError> {
        send::send_file(&self.inner, to, caption, path).await
    }

    /// The largest file this node sends or accepts.
    pub fn max_file_size(&self) -> u64 {
        self.inner.files_config.max_size
    }

    /// A fresh path in the uploads folder for a file named `name` (sanitised).
    pub async fn upload_path(&self, name: &str) -> Result<std::path::PathBuf, FileError> {
        let dir = self.inner.files_config.uploads.join(
            communitas_types::FileId::from_bytes(communitas_crypto::random::bytes().map_err(
                |_| FileError::Unwritable {
                    path: "uploads".into(),
                    reason: "no randomness".into(),
                },
            )?)
            .to_string(),
        );
        tokio::fs::create_dir_all(&dir).await.map_err(|e| FileError::Unwritable {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(dir.join(files::sanitise(name.as_bytes())))
    }

    /// An attachment's state.
    pub async fn file(&self, file_id: communitas_types::FileId) -> Result<Attachment, FileError> {
        let (row, manifest) = self.file_parts(file_id).await?;
        Ok(Attachment::new(&manifest, Some(&row)))
    }

    async fn file_parts(
        &self,
        file_id: communitas_types::FileId,
    ) -> Result<(communitas_store::FileRow, communitas_proto::file::Manifest), FileError> {
        let row = self.inner.store.file(file_id).await?.ok_or(FileError::NoSuchFile(file_id))?;
        let message = self.inner.store.message(row.message_id).await?;
        let manifest = message
            .and_then(|m| files::manifest_of(&m.message.body))
            .ok_or(FileError::NoSuchFile(file_id))?;
        Ok((row, manifest))
    }

    /// Fetches a received file now, even above the auto-download size (or after a
    /// failure). Progress arrives as [`Event::FileProgress`].
    pub async fn fetch_file(
        &self,
        file_id: communitas_types::FileId,
    ) -> Result<Attachment, FileError> {
        let (mut row, manifest) = self.file_parts(file_id).await?;
        if row.direction == Direction::In && self.inner.store.request(row.peer).await?.is_some() {
            return Err(FileError::FromRequest(file_id));
        }
        if row.direction == Direction::In
            && matches!(
                row.status,
                communitas_store::FileStatus::TooLarge | communitas_store::FileStatus::Failed
            )
        {
            row.status = communitas_store::FileStatus::Pending;
            row.error = None;
            row.updated_at = Timestamp::now();
            self.inner.store.put_file(row.clone()).await?;
        }
        if row.direction == Direction::In && row.status != communitas_store::FileStatus::Done {
            let _ = self.inner.files.fetch(file_id).await;
        }
        Ok(Attachment::new(&manifest, Some(&row)))
    }

    /// Where a file's bytes are on this machine: the saved copy of a received file
    /// (once done), or the original of a sent one.
    pub async fn file_path(
        &self,
        file_id: communitas_types::FileId,
    ) -> Result<std::path::PathBuf, FileError> {
        let (row, _) = self.file_parts(file_id).await?;
        match (row.direction, row.status, row.path) {
            (Direction::In, communitas_store::FileStatus::Done, Some(path)) => Ok(path),
            (Direction::Out, _, Some(path)) => Ok(path),
            _ => Err(FileError::NotReady(file_id)),
        }
    }

    /// The start of a message's text for lists (the outbox, the conversation list):
    /// at most [`PREVIEW_CHARS`] characters on one line; a file's name and caption.
    /// `None` for what the user did not write (receipts) or no such message.
    pub async fn message_preview(
        &self,
        id: MessageId,
    ) -> Result<Option<String>, communitas_store::Error> {
        let Some(row) = self.inner.store.message(id).await? else { return Ok(None) };
        Ok(preview_of(&row.message))
    }

    /// Every conversation with its unread count and its newest message, newest first
    /// (issue 23 item 8: the list shows the last message and its time).
    pub async fn conversation_list(
        &self,
    ) -> Result<Vec<ConversationView>, communitas_store::Error> {
        let mut out = Vec::new();
        for c in self.inner.store.conversations().await? {
            let last = self.inner.store.history(c.peer, 1, None).await?.pop();
            let (last_text, last_direction) = match &last {
                Some(row) => (preview_of(&row.message), Some(row.message.direction)),
                None => (None, None),
            };
            out.push(ConversationView {
                peer: c.peer,
                unread: c.unread,
                last_at: c.last_at,
                last_text,
                last_direction,
            });
        }
        Ok(out)
    }

    /// Messages waiting to be delivered.
    pub async fn outbox(&self) -> Result<Vec<OutboxEntry>, communitas_store::Error> {
        self.inner.store.outbox().await
    }

    /// Messages given up on.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, communitas_store::Error> {
        self.inner.store.dead_letters().await
    }

    /// Puts a dead letter back in the outbox.
    pub async fn retry(&self, id: MessageId) -> Result<(), SendError> {
        let now = Timestamp::now();
        let entry =
            self.inner.store.retry_dead_letter(id, now, now.saturating_add(MESSAGE_TTL)).await?;
        // Back in the outbox: its depth counts it again (it drops when the row leaves).
        self.inner.metrics.outbox_depth.inc();
        // A file it offers from the uploads folder lives as long again.
        if let Ok(Some(row)) = self.inner.store.file_by_message(id).await
            && let Some(folder) = row.path.as_deref().and_then(std::path::Path::parent)
            && folder.starts_with(&self.inner.files_config.uploads)
        {
            files::sweep::renew(folder);
        }
        self.inner.outbox.enqueue(entry).await.map_err(|_| SendError::ShuttingDown)
    }

    /// The node's state now.
    pub async fn status(&self) -> Result<NodeStatus, communitas_net::Error> {
        let net = self.inner.net.status().await?;
        let outbox = usize::try_from(self.inner.metrics.outbox_depth.get()).unwrap_or(0);
        Ok(NodeStatus {
            address: self.inner.public.address,
            peer_id: net.peer_id.to_string(),
            listen_addrs: net.listen_addrs.iter().map(Multiaddr::to_string).collect(),
            connected_peers: net.connected_peers,
            outbox,
            version: env!("CARGO_PKG_VERSION"),
            peers: net
                .peers
                .iter()
                .map(|p| PeerStatus {
                    peer_id: p.peer.to_string(),
                    connection: p.kind.as_str(),
                    connections: p.connections,
                })
                .collect(),
        })
    }

    /// The multiaddrs others can dial this node on, each ending in `/p2p/<peer id>`.
    pub async fn dial_addrs(&self) -> Result<Vec<Multiaddr>, communitas_net::Error> {
        let net = self.inner.net.status().await?;
        Ok(net
            .listen_addrs
            .into_iter()
            .map(|a| a.with(communitas_net::libp2p::multiaddr::Protocol::P2p(net.peer_id)))
            .collect())
    }
}

/// Characters of a message a list shows ([`Handle::message_preview`]).
pub const PREVIEW_CHARS: usize = 80;

/// A conversation as the list shows it ([`Handle::conversation_list`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConversationView {
    /// The other side.
    pub peer: Address,
    /// Incoming messages not yet read.
    pub unread: u64,
    /// When its newest message was written or arrived, unix ms.
    pub last_at: Timestamp,
    /// The start of its newest message ([`PREVIEW_CHARS`]).
    pub last_text: Option<String>,
    /// Which way the newest message went.
    #[serde(serialize_with = "direction_opt")]
    pub last_direction: Option<Direction>,
}

fn direction_opt<S: serde::Serializer>(d: &Option<Direction>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => crate::event::direction_name(d, s),
        None => s.serialize_none(),
    }
}

/// The preview of a text or file message; `None` for other kinds.
fn preview_of(m: &communitas_store::NewMessage) -> Option<String> {
    let text = if m.kind == communitas_crypto::Kind::Text.to_u8() {
        String::from_utf8_lossy(&m.body).into_owned()
    } else if m.kind == communitas_crypto::Kind::File.to_u8() {
        let manifest = files::manifest_of(&m.body)?;
        let name = manifest.display_name();
        if manifest.caption.is_empty() { name } else { format!("{name}: {}", manifest.caption) }
    } else {
        return None;
    };
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = one_line.chars();
    let mut out: String = chars.by_ref().take(PREVIEW_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    Some(out)
}
