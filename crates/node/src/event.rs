//! What the node tells its API and tests: live [`Event`]s, and the views of history and
//! status. Every state in them is an enum; serde writes the same strings as the API
//! always did (`"delivered"`, `"in"`, `"online"`).

use communitas_proto::presence::Status as PresenceStatus;
use communitas_store::{Direction, FileStatus, Status};
use communitas_types::{Address, FileId, MessageId, Timestamp};
use serde::{Serialize, Serializer};

/// Something that happened, for `/v1/events` and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A message arrived.
    MessageReceived {
        /// Its id.
        id: MessageId,
        /// The sender.
        from: Address,
        /// Its text.
        text: String,
        /// The sender's clock, unix ms.
        timestamp: Timestamp,
        /// The file it carries, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        attachment: Option<Attachment>,
        /// Where it sorts in the conversation (decision 0061).
        position: i64,
        /// The sender's count of its messages in the conversation, if it carried one.
        #[serde(skip_serializing_if = "Option::is_none")]
        n: Option<u64>,
    },
    /// A file transfer moved: bytes on disk (received) or fetched by the recipient.
    FileProgress {
        /// The file.
        file_id: communitas_types::FileId,
        /// The message that carries it.
        message_id: MessageId,
        /// The other side.
        peer: Address,
        /// `"in"` or `"out"`.
        #[serde(serialize_with = "direction_name")]
        direction: Direction,
        /// Bytes done.
        bytes: u64,
        /// The file's size.
        size: u64,
        /// The transfer's status (see [`Attachment::status`]).
        #[serde(serialize_with = "file_status_name")]
        status: FileStatus,
    },
    /// A file being sent is being read and hashed.
    FilePreparing {
        /// The path being read.
        path: String,
        /// Bytes read.
        bytes: u64,
        /// Its size.
        size: u64,
    },
    /// An outgoing message changed state.
    StatusChanged {
        /// The message.
        id: MessageId,
        /// To whom.
        to: Address,
        /// Its new state.
        #[serde(serialize_with = "status_name")]
        status: Status,
    },
    /// A contact's presence changed (issue 6).
    Presence {
        /// The contact.
        address: Address,
        /// `online`, `away`, `busy` or `offline`.
        status: PresenceStatus,
        /// When we last heard from it, unix ms.
        last_seen: Option<Timestamp>,
    },
    /// A contact started or stopped typing to us; a "typing" lasts 6 s unless renewed.
    Typing {
        /// The contact.
        from: Address,
        /// Typing now.
        typing: bool,
    },
    /// A stranger wrote: its message went to the message requests (issue 15), not to
    /// a conversation.
    Request {
        /// The stranger's address.
        from: Address,
        /// The message's id.
        id: MessageId,
        /// Its text (a file's caption).
        text: String,
        /// The sender's clock, unix ms.
        timestamp: Timestamp,
        /// It opened a new request.
        new: bool,
    },
    /// Keys other than a pinned contact's claimed its address and were refused:
    /// someone is imitating that address (issue 15).
    Impersonation {
        /// The address being imitated.
        address: Address,
    },
    /// A contact's device had lost our session (restored from an old copy,
    /// reinstalled): a new one was started and what it had not acknowledged is sealed
    /// again. Nothing is lost; the conversation may say so.
    SessionReset {
        /// The contact.
        peer: Address,
    },
    /// The node wrote a line of its own into a conversation (a [`crate::SystemLine`]),
    /// stored in its history as read.
    SystemLine {
        /// The line's id in history.
        id: MessageId,
        /// The conversation.
        peer: Address,
        /// What it says, as a code: `session_reset`.
        line: &'static str,
        /// When, unix ms.
        timestamp: Timestamp,
        /// Where it sorts in the conversation (decision 0061).
        position: i64,
    },
    /// A contact was added, renamed, verified or removed, here or through another
    /// client of this node (the CLI, a second browser): lists of contacts follow it
    /// (issue 23 items 3 and 5).
    Contact {
        /// The contact.
        address: Address,
        /// What happened.
        change: ContactChange,
    },
    /// Our own display name changed (issue 23 item 3).
    Profile {
        /// The name now, if any.
        name: Option<String>,
    },
    /// A conversation was read on this node (from any client): unread counts follow
    /// it (issue 23 item 5).
    Read {
        /// The other side.
        peer: Address,
        /// Messages newly read.
        count: usize,
    },
    /// A connection opened or closed.
    Connection {
        /// The peer (device) id.
        peer: String,
        /// Open now.
        open: bool,
        /// Peers connected in total.
        connected: usize,
    },
}

/// What happened to a contact ([`Event::Contact`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContactChange {
    /// Added (by address, or a request accepted).
    Added,
    /// Its name changed.
    Renamed,
    /// Its safety number was marked verified.
    Verified,
    /// Removed: its conversation stays (decision 0060).
    Removed,
}

/// A message as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// Its id.
    pub id: MessageId,
    /// Sender.
    pub from: Address,
    /// Recipient.
    pub to: Address,
    /// `"in"` or `"out"`.
    #[serde(serialize_with = "direction_name")]
    pub direction: Direction,
    /// The text (empty for a system line).
    pub text: String,
    /// A line the node wrote itself rather than a message, as a code:
    /// `session_reset` (see [`crate::SystemLine`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<&'static str>,
    /// The sender's clock, unix ms.
    pub timestamp: Timestamp,
    /// `queued`, `sent`, `stored`, `delivered`, `read` or `failed`.
    #[serde(serialize_with = "status_name")]
    pub status: Status,
    /// The file it carries, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// Where it sorts in the conversation: history is listed by it (decision 0061).
    pub position: i64,
    /// The author's count of its messages in the conversation, if it carried one (a
    /// gap in an author's counts is a message still on its way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    /// Paging cursor: the entry's id, passed as `before`, finds it again.
    #[serde(skip)]
    pub cursor: communitas_store::Cursor,
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// Own address.
    pub address: Address,
    /// This device.
    pub peer_id: String,
    /// Where it listens.
    pub listen_addrs: Vec<String>,
    /// Peers with an open connection.
    pub connected_peers: usize,
    /// Messages waiting to be delivered.
    pub outbox: usize,
    /// This build's version.
    pub version: &'static str,
    /// Every connected peer: `{"peer_id","connection":"direct"|"relayed","connections"}`.
    pub peers: Vec<PeerStatus>,
}

/// One connected peer, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerStatus {
    /// Its device (PeerId).
    pub peer_id: String,
    /// `direct` if any connection to it is direct, else `relayed`.
    pub connection: &'static str,
    /// Open connections to it (more than one only briefly).
    pub connections: usize,
}

/// Serializes a message status as its API name.
pub(crate) fn status_name<S: Serializer>(status: &Status, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_str())
}

/// Serializes a file transfer's status as its API name.
pub(crate) fn file_status_name<S: Serializer>(
    status: &FileStatus,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_str())
}

/// Serializes a direction as `"in"` or `"out"`.
pub(crate) fn direction_name<S: Serializer>(d: &Direction, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match d {
        Direction::In => "in",
        Direction::Out => "out",
    })
}

/// What the API shows of an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// The file's id.
    pub file_id: FileId,
    /// Its name (as sent, lossy UTF-8; the saved name may differ, see `path`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the whole file, hex.
    pub blake3: String,
    /// Media type.
    pub media_type: String,
    /// Sent: `offered`, `uploading`, `stored` or `fetched` (the recipient has it);
    /// received: `pending`, `downloading`,
    /// `done`, `too_large` or `failed`.
    #[serde(serialize_with = "file_status_name")]
    pub status: FileStatus,
    /// Bytes on disk so far (received files; the size once done).
    pub progress: u64,
    /// Where the received file was saved, once done (lossy UTF-8 for display).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
