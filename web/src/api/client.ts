// A small typed client for the node's API under `/v1`.
//
// Same-origin only: the browser sends the HttpOnly session cookie itself
// (`credentials: 'same-origin'`); this module never sees or stores a token.

import type {
  Address,
  Contact,
  DeadLetter,
  ErrorBody,
  HistoryEntry,
  MessageId,
  NodeStatus,
  OutboxEntry,
  PresenceList,
  Queued,
  SafetyNumber,
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
  contacts(): Promise<Contact[]>;
  addContact(address: string, name?: string): Promise<Contact>;
  safetyNumber(address: Address): Promise<SafetyNumber>;
  verify(address: Address): Promise<SafetyNumber>;
  outbox(): Promise<OutboxEntry[]>;
  deadLetters(): Promise<DeadLetter[]>;
  retry(id: MessageId): Promise<Queued>;
  /** Our presence and every contact's. */
  presence(): Promise<PresenceList>;
}

export interface ClientOptions {
  /** Called once per 401 answer, before the promise rejects. */
  onUnauthorized?: () => void;
  /** Defaults to the global `fetch`, looked up at call time. */
  fetch?: typeof fetch;
}

const seg = encodeURIComponent;

export function createClient(options: ClientOptions = {}): ApiClient {
  async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
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
    if (response.ok) {
      return (await response.json()) as T;
    }
    const error = await errorFrom(response);
    if (response.status === 401) {
      options.onUnauthorized?.();
      throw new NotSignedInError(error.message);
    }
    throw error;
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
    contacts: () => request('GET', '/v1/contacts'),
    addContact: (address, name) =>
      request('POST', '/v1/contacts', name ? { address, name } : { address }),
    safetyNumber: (address) => request('GET', `/v1/contacts/${seg(address)}/safety-number`),
    verify: (address) => request('POST', `/v1/contacts/${seg(address)}/verify`),
    outbox: () => request('GET', '/v1/outbox'),
    deadLetters: () => request('GET', '/v1/outbox/dead'),
    retry: (id) => request('POST', `/v1/outbox/${seg(id)}/retry`),
    presence: () => request('GET', '/v1/presence'),
  };
}

/** Reads `{"error":{"code","message"}}`, or describes a body that is not one. */
async function errorFrom(response: Response): Promise<ApiError> {
  const fallback = `The node answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''}.`;
  try {
    const body = (await response.json()) as Partial<ErrorBody> | null;
    const error = body?.error;
    if (error && typeof error.code === 'string' && typeof error.message === 'string') {
      return new ApiError(response.status, error.code, error.message);
    }
  } catch {
    // Not JSON (a proxy's HTML page, an empty body): fall through.
  }
  return new ApiError(response.status, 'http_error', fallback);
}

/** The text to show for any thrown value. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return 'Something went wrong.';
}
