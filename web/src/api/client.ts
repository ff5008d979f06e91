// A small typed client for the node's API under `/v1`.
//
// Same-origin only: the browser sends the HttpOnly session cookie itself
// (`credentials: 'same-origin'`); this module never sees it, and adds the page token
// (`./page`) that makes the cookie count.

import { PAGE_HEADER, forgetPageToken, pageToken, withPage } from './page';
import type {
  Address,
  Attachment,
  Block,
  Contact,
  ContactRemoved,
  ConversationSummary,
  DeadLetter,
  ErrorBody,
  FileId,
  FileQueued,
  HistoryEntry,
  Identity,
  MessageId,
  MessageRequest,
  NodeStatus,
  OutboxEntry,
  PassphraseChanged,
  PresenceList,
  PresenceStatus,
  Profile,
  Queued,
  ReadAnswer,
  SafetyNumber,
  Settings,
  TypingAnswer,
} from './types';

/** A request that failed: the API's stable `code` and its human-readable `message`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** The node answered 401: the browser has no valid session cookie. */
export class NotSignedInError extends ApiError {
  constructor(message: string) {
    super(401, 'unauthorized', message);
    this.name = 'NotSignedInError';
  }
}

/** Sent as `code` when the node could not be reached at all. */
export const NETWORK_UNREACHABLE = 'node_unreachable';
/** Sent as `code` when an upload was cut off before the node answered. */
export const UPLOAD_BROKEN = 'upload_broken';
/** Sent as `code` when the caller cancelled an upload. */
export const UPLOAD_CANCELLED = 'upload_cancelled';

export interface UploadOptions {
  /** The caption (may be empty). */
  text?: string;
  /** Bytes of the body sent so far, and its size; called as the upload moves. */
  onProgress?: (sent: number, total: number) => void;
  /** Aborting it cancels the upload (the promise rejects with `upload_cancelled`). */
  signal?: AbortSignal;
}

export interface HistoryPage {
  /** At most this many messages (the node clamps to 1..=500; default 50). */
  limit?: number;
  /** Only messages older than this one. */
  before?: MessageId;
}

export interface ApiClient {
  status(): Promise<NodeStatus>;
  send(to: Address, text: string): Promise<Queued>;
  messageStatus(id: MessageId): Promise<Queued>;
  history(peer: Address, page?: HistoryPage): Promise<HistoryEntry[]>;
  /** Every conversation with its unread count (the node's read state). */
  conversations(): Promise<ConversationSummary[]>;
  contacts(): Promise<Contact[]>;
  addContact(address: string, name?: string): Promise<Contact>;
  /** Renames a contact; `null` clears the name. 400 `invalid_name`, 404 `not_a_contact`. */
  renameContact(address: Address, name: string | null): Promise<Contact>;
  /** Removes a contact; its conversation stays (decision 0060). 404 `not_a_contact`. */
  removeContact(address: Address): Promise<ContactRemoved>;
  /** Changes our display name (`null`: none); published at once. 400 `invalid_name`. */
  setName(name: string | null): Promise<Profile>;
  safetyNumber(address: Address): Promise<SafetyNumber>;
  verify(address: Address): Promise<SafetyNumber>;
  outbox(): Promise<OutboxEntry[]>;
  deadLetters(): Promise<DeadLetter[]>;
  retry(id: MessageId): Promise<Queued>;
  /** Our presence and every contact's. */
  presence(): Promise<PresenceList>;
  /** Sets our presence (`offline`: invisible) and tells every contact. */
  setPresence(status: PresenceStatus): Promise<{ status: PresenceStatus }>;
  /** Sends `file` to `to`, streamed in the request body, with upload progress. */
  upload(to: Address, file: File, options?: UploadOptions): Promise<FileQueued>;
  /** An attachment's state. */
  file(id: FileId): Promise<Attachment>;
  /** Fetches a received file now (over the auto-download size, or after a failure). */
  fetchFile(id: FileId): Promise<Attachment>;
  /** Tells `peer` we are typing (or stopped); best effort, shown ~6 s on their side. */
  typing(peer: Address, typing: boolean): Promise<TypingAnswer>;
  /** Marks the conversation with `peer` read; the node sends a read receipt unless
   * they are turned off. Answers how many messages were newly read. */
  markRead(peer: Address): Promise<ReadAnswer>;
  /** Message requests: strangers who wrote and are not contacts yet. */
  requests(): Promise<MessageRequest[]>;
  /** Accepts a request: its sender becomes a contact, its messages the conversation. */
  acceptRequest(address: Address): Promise<Contact>;
  /** Deletes a request with its messages; with `block`, blocks its sender too. */
  declineRequest(address: Address, block: boolean): Promise<unknown>;
  /** Blocked addresses, newest first. */
  blocks(): Promise<Block[]>;
  /** Blocks an address: what it sends is dropped, it hears nothing more from us. */
  block(address: Address): Promise<unknown>;
  /** Unblocks an address. 404 `not_blocked` if it was not blocked. */
  unblock(address: Address): Promise<unknown>;
  settings(): Promise<Settings>;
  /** Changes the given settings; the others stay. */
  updateSettings(changes: Partial<Settings>): Promise<Settings>;

  /** Whether the node has an identity and whether it is unlocked. Answers even
   * while locked (these six routes never answer 423). */
  identity(): Promise<Identity>;
  /** Makes the keys on this device and starts the node (a few seconds: memory-hard
   * hashing). `name` is published with the address. 409 `identity_exists`,
   * 400 `invalid_request`. */
  createIdentity(passphrase: string, name?: string): Promise<Identity>;
  /** Unlocks the keystore and starts the node (about a second). 403
   * `wrong_passphrase`; 409 `no_identity` or `already_unlocked`. */
  unlock(passphrase: string): Promise<Identity>;
  /** Stops the node and drops its keys; the API (and this session) stays. */
  lock(): Promise<Identity>;
  /** Re-encrypts the keystore under `next` (a second or two: memory-hard hashing);
   * locked or unlocked, the node stays as it is. 403 `wrong_passphrase` (after a
   * second) when `current` does not open it; 400 `invalid_request`; 409 `no_identity`. */
  changePassphrase(current: string, next: string): Promise<PassphraseChanged>;
  /** Ends this browser's session; every request after it answers 401. */
  logout(): Promise<void>;
}

/** Where a file's bytes are served (a received file once done, or one we sent). */
export function fileContentUrl(id: FileId): string {
  return withPage(`/v1/files/${encodeURIComponent(id)}/content`);
}

export interface ClientOptions {
  /** Called once per 401 answer, before the promise rejects. */
  onUnauthorized?: () => void;
  /** Called once per 423 answer (the identity is locked), before the promise rejects. */
  onLocked?: () => void;
  /** Defaults to the global `fetch`, looked up at call time. */
  fetch?: typeof fetch;
}

const seg = encodeURIComponent;

/** HTTP 423 Locked: every route but the identity ones, while the keys are locked. */
const LOCKED = 423;

export function createClient(options: ClientOptions = {}): ApiClient {
  async function request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const page = pageToken();
    if (page) headers[PAGE_HEADER] = page;
    const init: RequestInit = { method, credentials: 'same-origin', headers };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response: Response;
    try {
      // Called on globalThis: a detached `window.fetch` throws "Illegal invocation".
      response = await (options.fetch ? options.fetch(path, init) : globalThis.fetch(path, init));
    } catch {
      throw new ApiError(
        0,
        NETWORK_UNREACHABLE,
        'Cannot reach your node. Is `communitas run` still running?',
      );
    }
    if (response.status === 204) {
      return undefined as T; // No body (logout).
    }
    if (response.ok) {
      return (await response.json()) as T;
    }
    const error = await errorFrom(response);
    if (response.status === 401) {
      options.onUnauthorized?.();
      throw new NotSignedInError(error.message);
    }
    if (response.status === LOCKED) options.onLocked?.();
    throw error;
  }

  // `fetch` reports no upload progress, so uploads go through XMLHttpRequest.
  function upload(to: Address, file: File, { text, onProgress, signal }: UploadOptions = {}): Promise<FileQueued> {
    const query = new URLSearchParams({ to, name: file.name });
    if (text) query.set('text', text);
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new ApiError(0, UPLOAD_CANCELLED, 'The upload was cancelled.'));
        return;
      }
      const xhr = new XMLHttpRequest();
      const onAbort = () => xhr.abort();
      const settle = () => signal?.removeEventListener('abort', onAbort);
      xhr.open('POST', `/v1/files/upload?${query.toString()}`);
      xhr.setRequestHeader('Accept', 'application/json');
      const page = pageToken();
      if (page) xhr.setRequestHeader(PAGE_HEADER, page);
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      xhr.upload.onprogress = (e: ProgressEvent) => onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
      xhr.onload = () => {
        settle();
        if (xhr.status >= 200 && xhr.status < 300) {
          try {
            resolve(JSON.parse(xhr.responseText) as FileQueued);
          } catch {
            reject(new ApiError(xhr.status, 'http_error', 'The node answered the upload with something unreadable.'));
          }
          return;
        }
        const error = errorFromText(xhr.status, xhr.statusText, xhr.responseText);
        if (xhr.status === 401) {
          options.onUnauthorized?.();
          reject(new NotSignedInError(error.message));
        } else {
          if (xhr.status === LOCKED) options.onLocked?.();
          reject(error);
        }
      };
      // The node may answer early (a file over its limit) and close the connection
      // while the browser still sends; the browser then reports only an error.
      xhr.onerror = () => {
        settle();
        reject(
          new ApiError(
            0,
            UPLOAD_BROKEN,
            'The upload was cut off. The file may be larger than your node accepts, or the node stopped.',
          ),
        );
      };
      xhr.onabort = () => {
        settle();
        reject(new ApiError(0, UPLOAD_CANCELLED, 'The upload was cancelled.'));
      };
      signal?.addEventListener('abort', onAbort);
      xhr.send(file);
    });
  }

  return {
    status: () => request('GET', '/v1/status'),
    send: (to, text) => request('POST', '/v1/messages', { to, text }),
    messageStatus: (id) => request('GET', `/v1/messages/${seg(id)}`),
    history: (peer, page = {}) => {
      const query = new URLSearchParams();
      if (page.limit !== undefined) query.set('limit', String(page.limit));
      if (page.before !== undefined) query.set('before', page.before);
      const qs = query.toString();
      return request('GET', `/v1/conversations/${seg(peer)}/messages${qs ? `?${qs}` : ''}`);
    },
    conversations: () => request('GET', '/v1/conversations'),
    contacts: () => request('GET', '/v1/contacts'),
    addContact: (address, name) =>
      request('POST', '/v1/contacts', name ? { address, name } : { address }),
    renameContact: (address, name) => request('PUT', `/v1/contacts/${seg(address)}`, { name }),
    removeContact: (address) => request('DELETE', `/v1/contacts/${seg(address)}`),
    setName: (name) => request('PUT', '/v1/profile', { name }),
    safetyNumber: (address) => request('GET', `/v1/contacts/${seg(address)}/safety-number`),
    verify: (address) => request('POST', `/v1/contacts/${seg(address)}/verify`),
    outbox: () => request('GET', '/v1/outbox'),
    deadLetters: () => request('GET', '/v1/outbox/dead'),
    retry: (id) => request('POST', `/v1/outbox/${seg(id)}/retry`),
    presence: () => request('GET', '/v1/presence'),
    setPresence: (status) => request('PUT', '/v1/presence', { status }),
    upload,
    file: (id) => request('GET', `/v1/files/${seg(id)}`),
    fetchFile: (id) => request('POST', `/v1/files/${seg(id)}/fetch`),
    typing: (peer, typing) => request('POST', `/v1/conversations/${seg(peer)}/typing`, { typing }),
    markRead: (peer) => request('POST', `/v1/conversations/${seg(peer)}/read`),
    requests: () => request('GET', '/v1/requests'),
    acceptRequest: (address) => request('POST', `/v1/requests/${seg(address)}/accept`),
    declineRequest: (address, block) =>
      request('POST', `/v1/requests/${seg(address)}/decline${block ? '?block=true' : ''}`),
    blocks: () => request('GET', '/v1/blocks'),
    block: (address) => request('POST', '/v1/blocks', { address }),
    unblock: (address) => request('DELETE', `/v1/blocks/${seg(address)}`),
    settings: () => request('GET', '/v1/settings'),
    updateSettings: (changes) => request('PUT', '/v1/settings', changes),
    identity: () => request('GET', '/v1/identity'),
    createIdentity: (passphrase, name) =>
      request('POST', '/v1/identity', name ? { passphrase, name } : { passphrase }),
    unlock: (passphrase) => request('POST', '/v1/unlock', { passphrase }),
    lock: () => request('POST', '/v1/lock'),
    changePassphrase: (current, next) => request('POST', '/v1/passphrase', { old: current, new: next }),
    logout: async () => {
      await request<void>('POST', '/v1/logout');
      forgetPageToken();
    },
  };
}

/** Reads `{"error":{"code","message"}}`, or describes a body that is not one. */
async function errorFrom(response: Response): Promise<ApiError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // An unreadable body: described by its status alone.
  }
  return errorFromText(response.status, response.statusText, text);
}

function errorFromText(status: number, statusText: string, text: string): ApiError {
  const fallback = `The node answered ${status}${statusText ? ` ${statusText}` : ''}.`;
  try {
    const body = JSON.parse(text) as Partial<ErrorBody> | null;
    const error = body?.error;
    if (error && typeof error.code === 'string' && typeof error.message === 'string') {
      return new ApiError(status, error.code, error.message);
    }
  } catch {
    // Not JSON (a proxy's HTML page, an empty body): fall through.
  }
  return new ApiError(status, 'http_error', fallback);
}

/** The text to show for any thrown value. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return 'Something went wrong.';
}
