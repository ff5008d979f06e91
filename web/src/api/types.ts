// The JSON shapes of the node's API, named for the UI. They come from
// `schema.gen.ts`, which is generated from `crates/api/openapi.json`
// (`npm run gen:api`; a test fails when it is stale). Where the UI keeps its own
// definition (the status lists below, which are also runtime values), a
// compile-time check at the end of this file ties it to the document, so a change
// there breaks `npm run typecheck` rather than the app.

import type { components, paths } from './schema.gen';

type Schemas = components['schemas'];

/** A four-word address in canonical form, e.g. `tiger-mosaic-vivid-orbit`. */
export type Address = Schemas['Address'];
/** 32 lowercase hex characters. */
export type MessageId = Schemas['MessageId'];
/** 32 lowercase hex characters. */
export type FileId = Schemas['FileId'];
/** Unix milliseconds. */
export type Timestamp = Schemas['Timestamp'];

/** Every message status, in order (`parseEvent` checks against it). */
export const MESSAGE_STATUSES = ['queued', 'sent', 'stored', 'delivered', 'read', 'failed'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/** Sent files: `offered` (the recipient may fetch it), `uploading` / `stored` (its
 * shards going to / kept by mailbox nodes). Received: `pending`, `downloading`,
 * `done`, `too_large` (over the auto-download size: fetch by hand) or `failed`. */
export const FILE_STATUSES = ['offered', 'uploading', 'stored', 'fetched', 'pending', 'downloading', 'done', 'too_large', 'failed'] as const;
export type FileStatus = (typeof FILE_STATUSES)[number];

/** A contact's presence as the node reports it (`GET /v1/presence`, events). */
export const PRESENCE_STATUSES = ['online', 'away', 'busy', 'offline'] as const;
export type PresenceStatus = (typeof PRESENCE_STATUSES)[number];

/** Whether this node has an identity yet, and whether its keys are unlocked. */
export const IDENTITY_STATES = ['new', 'locked', 'unlocked'] as const;
export type IdentityState = (typeof IDENTITY_STATES)[number];

/** `GET /v1/status`. */
export type NodeStatus = Schemas['Status'];
/** `POST /v1/messages`, `GET /v1/messages/{id}`, `POST /v1/outbox/{id}/retry`. */
export type Queued = Schemas['Queued'];
/** A message of a conversation; with an `attachment`, `text` is its caption (may be empty). */
export type HistoryEntry = Schemas['HistoryEntry'];
/** A file carried by a message (`GET /v1/files/{id}`, history entries, events). */
export type Attachment = Schemas['Attachment'];
/** `POST /v1/files/upload`: the message that carries the file, and the file. */
export type FileQueued = Schemas['FileQueued'];
/** `GET /v1/conversations`: one per peer with any history. */
export type ConversationSummary = Schemas['Conversation'];
export type Contact = Schemas['Contact'];
/** `DELETE /v1/contacts/{address}`. */
export type ContactRemoved = Schemas['ContactRemoved'];
/** `GET/PUT /v1/profile`: our address and display name. */
export type Profile = Schemas['Profile'];
/** `safety_number`: twelve groups of five digits, separated by spaces. */
export type SafetyNumber = Schemas['SafetyNumber'];
export type OutboxEntry = Schemas['OutboxEntry'];
export type DeadLetter = Schemas['DeadLetter'];
/** `GET /v1/requests`: a stranger who wrote, not yet accepted (issue 15). */
export type MessageRequest = Schemas['MessageRequest'];
/** `GET /v1/blocks`: a blocked address. */
export type Block = Schemas['Block'];
/** `GET/PUT /v1/settings`: the user's settings. */
export type Settings = Schemas['Settings'];
/** `GET /v1/identity` (and the answer to create, unlock and lock): address and
 * name are set only while unlocked. */
export type Identity = Schemas['Identity'];
/** `POST /v1/passphrase`: the keystore now opens with the new passphrase only. */
export type PassphraseChanged = Schemas['PassphraseChanged'];
/** `GET /v1/presence`: our own status and every contact's. */
export type PresenceList = Schemas['PresenceList'];
/** The error body of every failed request. */
export type ErrorBody = Schemas['Error'];
/** `POST /v1/conversations/{address}/typing`. */
export type TypingAnswer = JsonAnswer<paths['/v1/conversations/{address}/typing']['post'], 202>;
/** `POST /v1/conversations/{address}/read`: how many messages were newly read. */
export type ReadAnswer = JsonAnswer<paths['/v1/conversations/{address}/read']['post'], 200>;

/** A frame of the `/v1/events` WebSocket, told apart by `type`. After `locked`
 * the node closes the socket. */
export type ServerEvent = Schemas['Event'];

/** A transfer moved. Received files (`direction: 'in'`): bytes on disk and the
 * file's status. Sent files (`'out'`): bytes the recipient has fetched so far. */
export type FileProgress = Extract<ServerEvent, { type: 'file_progress' }>;

/** The JSON body an operation answers with `code`. */
type JsonAnswer<Operation, Code extends number> = Operation extends {
  responses: { [C in Code]: { content: { 'application/json': infer Body } } };
}
  ? Body
  : never;

// Compile-time checks. `Equals<A, B>` is `true` only when A and B are the same type.
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;

/** Each status list names exactly the values the document allows: a value added to
 * or removed from an enum in `openapi.json` fails here until the list follows. */
export type SchemaChecks = [
  Assert<Equals<MessageStatus, Schemas['MessageStatus']>>,
  Assert<Equals<FileStatus, Schemas['FileStatus']>>,
  Assert<Equals<PresenceStatus, Schemas['PresenceStatus']>>,
  Assert<Equals<IdentityState, Identity['state']>>,
  // The two answers above must exist (`never` would mean the path or code moved).
  Assert<Equals<TypingAnswer, { typing: boolean }>>,
  Assert<Equals<ReadAnswer, { read: number }>>,
];
