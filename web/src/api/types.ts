// The JSON shapes of the node's API (crates/api/openapi.json). Kept by hand until
// the types are generated from the Rust DTOs.

/** A four-word address in canonical form, e.g. `tiger-mosaic-vivid-orbit`. */
export type Address = string;
/** 32 lowercase hex characters. */
export type MessageId = string;
/** Unix milliseconds. */
export type Timestamp = number;

export const MESSAGE_STATUSES = ['queued', 'sent', 'stored', 'delivered', 'read', 'failed'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

export interface NodeStatus {
  address: Address;
  peer_id: string;
  listen_addrs: string[];
  connected_peers: number;
  outbox: number;
  version: string;
}

export interface Queued {
  id: MessageId;
  status: MessageStatus;
}

export interface HistoryEntry {
  id: MessageId;
  from: Address;
  to: Address;
  direction: 'in' | 'out';
  text: string;
  timestamp: Timestamp;
  status: MessageStatus;
  /** The file the message carries; `text` is then its caption (may be empty). */
  attachment?: Attachment;
}

/** 32 lowercase hex characters. */
export type FileId = string;

/** Sent files: `offered` (the recipient may fetch it), `uploading` / `stored` (its
 * shards going to / kept by mailbox nodes). Received: `pending`, `downloading`,
 * `done`, `too_large` (over the auto-download size: fetch by hand) or `failed`. */
export const FILE_STATUSES = ['offered', 'uploading', 'stored', 'pending', 'downloading', 'done', 'too_large', 'failed'] as const;
export type FileStatus = (typeof FILE_STATUSES)[number];

/** A file carried by a message (`GET /v1/files/{id}`, history entries, events). */
export interface Attachment {
  file_id: FileId;
  name: string;
  /** Bytes. */
  size: number;
  /** BLAKE3 of the whole file, hex. */
  blake3: string;
  media_type: string;
  status: FileStatus;
  /** Bytes on disk so far (received files; the size once done). */
  progress: number;
  /** Where a received file was saved, once done. */
  path?: string;
  /** Why it failed. */
  error?: string;
}

/** `POST /v1/files/upload`: the message that carries the file, and the file. */
export interface FileQueued {
  id: MessageId;
  file_id: FileId;
  status: MessageStatus;
}

/** `GET /v1/conversations`: one per peer with any history. */
export interface ConversationSummary {
  peer: Address;
  /** Incoming messages not yet marked read on the node (`POST …/read`). */
  unread: number;
  /** When the newest message was sent or received. */
  last_at: Timestamp | null;
}

export interface Contact {
  address: Address;
  name?: string | null;
  fingerprint: string;
  verified: boolean;
  added_at: Timestamp;
}

export interface SafetyNumber {
  /** Twelve groups of five digits, separated by spaces. */
  safety_number: string;
  verified?: boolean;
}

export interface OutboxEntry {
  id: MessageId;
  to: Address;
  attempts: number;
  next_attempt_at: Timestamp;
  created_at: Timestamp;
  expires_at: Timestamp;
  last_error: string | null;
}

export interface DeadLetter {
  id: MessageId;
  to: Address;
  attempts: number;
  reason: string;
  failed_at: Timestamp;
}

/** `GET/PUT /v1/settings`: the user's settings. */
export interface Settings {
  /** Send read receipts (on by default). */
  read_receipts: boolean;
}

/** Whether this node has an identity yet, and whether its keys are unlocked. */
export const IDENTITY_STATES = ['new', 'locked', 'unlocked'] as const;
export type IdentityState = (typeof IDENTITY_STATES)[number];

/** `GET /v1/identity` (and the answer to create, unlock and lock): address and
 * name are set only while unlocked. */
export interface Identity {
  state: IdentityState;
  address: Address | null;
  /** The display name published with the address, if one was given. */
  name: string | null;
}

/** The error body of every failed request. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** A contact's presence as the node reports it (`GET /v1/presence`, events). */
export const PRESENCE_STATUSES = ['online', 'away', 'busy', 'offline'] as const;
export type PresenceStatus = (typeof PRESENCE_STATUSES)[number];

/** `GET /v1/presence`: our own status and every contact's. */
export interface PresenceList {
  status: PresenceStatus;
  contacts: { address: Address; status: PresenceStatus; last_seen: Timestamp | null }[];
}

/** A frame of the `/v1/events` WebSocket. */
export type ServerEvent =
  | { type: 'message_received'; id: MessageId; from: Address; text: string; timestamp: Timestamp; attachment?: Attachment }
  | { type: 'status_changed'; id: MessageId; to: Address; status: MessageStatus }
  | { type: 'connection'; peer: string; open: boolean; connected: number }
  | { type: 'presence'; address: Address; status: PresenceStatus; last_seen: Timestamp | null }
  | { type: 'typing'; from: Address; typing: boolean }
  | { type: 'lagged'; missed: number }
  /** The identity was locked; the node closes the socket after this frame. */
  | { type: 'locked' }
  | FileProgress
  | { type: 'file_preparing'; path: string; bytes: number; size: number };

/** A transfer moved. Received files (`direction: 'in'`): bytes on disk and the
 * file's status. Sent files (`'out'`): bytes the recipient has fetched so far. */
export interface FileProgress {
  type: 'file_progress';
  file_id: FileId;
  message_id: MessageId;
  peer: Address;
  direction: 'in' | 'out';
  bytes: number;
  size: number;
  status: FileStatus;
}
