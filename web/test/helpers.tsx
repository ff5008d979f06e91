// Test doubles: a routed `fetch` and a controllable `WebSocket`.

import { render, type RenderOptions } from '@testing-library/react';
import type { ReactElement, ReactNode } from 'react';
import { vi } from 'vitest';
import { SessionProvider } from '../src/api/session';
import type { HistoryEntry, MessageId } from '../src/api/types';
import { MessageList } from '../src/components/MessageList';

export interface Call {
  method: string;
  url: string;
  body: unknown;
  init: RequestInit | undefined;
}

/** A fixed answer, or one made per request. */
type Reply = Response | ((call: Call) => Response | Promise<Response>);

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

export function apiError(status: number, code: string, message: string): Response {
  return json(status, { error: { code, message } });
}

/** Lists every messenger reads at start that most tests do not care about: empty
 * unless a test routes them (message requests and blocks, issue 15). */
const QUIET_LISTS = ['GET /v1/requests', 'GET /v1/blocks'];

/**
 * A `fetch` answering from `routes`, keyed `"METHOD /path"` (the path without its
 * query) or `"METHOD /path?query"` for an exact match. Unrouted requests get 404,
 * but for the `QUIET_LISTS`, which answer `[]`.
 */
export function mockFetch(routes: Record<string, Reply>) {
  const calls: Call[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const method = init?.method ?? 'GET';
    const body = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
    const call = { method, url, body, init };
    calls.push(call);
    const key = `${method} ${url.split('?')[0]}`;
    const reply = routes[`${method} ${url}`] ?? routes[key];
    if (reply === undefined && QUIET_LISTS.includes(key)) return json(200, []);
    if (reply === undefined) return apiError(404, 'not_found', `no route for ${method} ${url}`);
    const response = typeof reply === 'function' ? await reply(call) : reply;
    // A Response body can be read once; hand out a copy so routes can be reused.
    return response.clone();
  });
  return { fetch: fn as unknown as typeof fetch, calls };
}

/** A WebSocket the test drives: `open()`, `receive(event)`, `drop()`. */
export class MockWebSocket {
  static instances: MockWebSocket[] = [];
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;

  readonly url: string;
  readyState = MockWebSocket.CONNECTING;
  onopen: ((e: Event) => void) | null = null;
  onmessage: ((e: MessageEvent) => void) | null = null;
  onclose: ((e: CloseEvent) => void) | null = null;
  onerror: ((e: Event) => void) | null = null;
  closedByClient = false;

  constructor(url: string) {
    this.url = url;
    MockWebSocket.instances.push(this);
  }

  static latest(): MockWebSocket {
    const ws = MockWebSocket.instances[MockWebSocket.instances.length - 1];
    if (!ws) throw new Error('no WebSocket was opened');
    return ws;
  }

  static install() {
    MockWebSocket.instances = [];
    vi.stubGlobal('WebSocket', MockWebSocket);
  }

  open() {
    this.readyState = MockWebSocket.OPEN;
    this.onopen?.(new Event('open'));
  }

  receive(data: unknown) {
    const text = typeof data === 'string' ? data : JSON.stringify(data);
    this.onmessage?.(new MessageEvent('message', { data: text }));
  }

  /** The server or network closed the socket. */
  drop() {
    this.readyState = MockWebSocket.CLOSED;
    this.onclose?.(new CloseEvent('close', { code: 1006 }));
  }

  close() {
    this.closedByClient = true;
    this.readyState = MockWebSocket.CLOSED;
  }

  send() {}
}

export function renderWithSession(ui: ReactElement, fetch: typeof globalThis.fetch, options?: RenderOptions) {
  const wrapper = ({ children }: { children: ReactNode }) => <SessionProvider fetch={fetch}>{children}</SessionProvider>;
  return render(ui, { wrapper, ...options });
}

export function sessionWrapper(fetch: typeof globalThis.fetch) {
  return ({ children }: { children: ReactNode }) => <SessionProvider fetch={fetch}>{children}</SessionProvider>;
}

export const ALICE = 'abacus-lemon-tiger-wafer';

/** `GET /v1/identity` of an unlocked node whose address is `address`: the app
 * asks it first and shows the messenger only then. */
export function unlockedIdentity(address: string = ALICE, name: string | null = null) {
  return json(200, { state: 'unlocked', address, name });
}
export const BOB = 'engine-mosaic-zone-zoom';
export const CAROL = 'zodiac-zombie-lemon-engine';

let counter = 0;
/** A fresh 32-hex message id. */
export function mid(): string {
  counter += 1;
  return counter.toString(16).padStart(32, '0');
}

/** An XMLHttpRequest the test drives: `progress(sent)`, `respond(status, body)`, `fail()`. */
export class MockXhr {
  static instances: MockXhr[] = [];

  method = '';
  url = '';
  headers: Record<string, string> = {};
  body: unknown = undefined;
  status = 0;
  statusText = '';
  responseText = '';
  aborted = false;
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  readonly upload: { onprogress: ((e: ProgressEvent) => void) | null } = { onprogress: null };

  constructor() {
    MockXhr.instances.push(this);
  }

  static latest(): MockXhr {
    const xhr = MockXhr.instances[MockXhr.instances.length - 1];
    if (!xhr) throw new Error('no XMLHttpRequest was made');
    return xhr;
  }

  static install() {
    MockXhr.instances = [];
    vi.stubGlobal('XMLHttpRequest', MockXhr);
  }

  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }

  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }

  send(body: unknown) {
    this.body = body;
  }

  abort() {
    this.aborted = true;
    this.onabort?.();
  }

  /** The browser has sent `loaded` bytes of `total`. */
  progress(loaded: number, total: number) {
    this.upload.onprogress?.(new ProgressEvent('progress', { loaded, total, lengthComputable: true }));
  }

  respond(status: number, body: unknown) {
    this.status = status;
    this.responseText = typeof body === 'string' ? body : JSON.stringify(body);
    this.onload?.();
  }

  /** The connection broke before an answer. */
  fail() {
    this.onerror?.();
  }
}

/** A file of `size` bytes named `name`. */
export function testFile(name = 'notes.txt', size = 2048, type = 'text/plain'): File {
  return new File([new Uint8Array(size)], name, { type });
}

/** History entry `n`: from Bob to Alice, sorted by `n`, unless `over` says otherwise. */
export function historyEntry(n: number, over: Partial<HistoryEntry> = {}): HistoryEntry {
  return {
    id: n.toString(16).padStart(32, '0'),
    from: BOB,
    to: ALICE,
    direction: 'in',
    text: `text ${n}`,
    timestamp: 1_700_000_000_000 + n,
    status: 'delivered',
    position: n,
    ...over,
  };
}

/** A conversation with Bob showing `messages`, nothing loading, no transfers. */
export function messageList(messages: HistoryEntry[], fresh?: ReadonlySet<MessageId>) {
  return (
    <MessageList
      peerName="Bob"
      messages={messages}
      {...(fresh ? { fresh } : {})}
      loading={false}
      loadingOlder={false}
      hasMore={false}
      onLoadOlder={() => {}}
      onRetry={async () => {}}
      transfers={{}}
      onFetchFile={async () => {}}
    />
  );
}
