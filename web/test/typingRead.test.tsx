// Sending typing indicators, marking conversations read, and the read-receipts setting.

import { act, render, renderHook, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../src/App';
import { createClient } from '../src/api/client';
import type { Contact, HistoryEntry, NodeStatus } from '../src/api/types';
import { READ_DEBOUNCE_MS, unreadIncoming } from '../src/hooks/useMarkRead';
import { IDLE_MS, RENEW_MS, useTyping } from '../src/hooks/useTyping';
import { ALICE, apiError, BOB, CAROL, json, mockFetch, MockWebSocket, sessionWrapper, type Call, unlockedIdentity } from './helpers';

const STATUS: NodeStatus = { address: ALICE, peer_id: '12D3KooW', listen_addrs: [], connected_peers: 1, outbox: 0, version: '0.1.0', peers: [] };
const BOB_CONTACT: Contact = { address: BOB, name: 'Bob', fingerprint: 'ab12', verified: false, added_at: 1 };
const CAROL_CONTACT: Contact = { address: CAROL, name: 'Carol', fingerprint: 'cd34', verified: false, added_at: 2 };

const typingTo = (peer: string) => `/v1/conversations/${peer}/typing`;
const readOf = (peer: string) => `/v1/conversations/${peer}/read`;
const typingCalls = (calls: Call[], peer = BOB) => calls.filter((c) => c.method === 'POST' && c.url === typingTo(peer));
const readCalls = (calls: Call[], peer = BOB) => calls.filter((c) => c.method === 'POST' && c.url === readOf(peer));

function msg(n: number, direction: 'in' | 'out', status: HistoryEntry['status'] = 'delivered'): HistoryEntry {
  return {
    id: n.toString(16).padStart(32, '0'),
    from: direction === 'in' ? BOB : ALICE,
    to: direction === 'in' ? ALICE : BOB,
    direction,
    text: `text ${n}`,
    timestamp: 1_700_000_000_000 + n,
    status,
    position: n * 2,
  };
}

const received = (n: number, from = BOB) => ({
  type: 'message_received',
  id: n.toString(16).padStart(32, '0'),
  from,
  text: `live ${n}`,
  timestamp: 1_700_000_000_000 + n,
  position: 1e15 + n,
});

// The window the user looks at: visible and focused unless a test says otherwise.
let visibility: DocumentVisibilityState = 'visible';
let focused = true;
function setWindow(state: { visible?: boolean; focused?: boolean }) {
  if (state.visible !== undefined) visibility = state.visible ? 'visible' : 'hidden';
  if (state.focused !== undefined) focused = state.focused;
  act(() => {
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new Event(focused ? 'focus' : 'blur'));
  });
}

beforeEach(() => {
  visibility = 'visible';
  focused = true;
  vi.spyOn(document, 'visibilityState', 'get').mockImplementation(() => visibility);
  vi.spyOn(document, 'hasFocus').mockImplementation(() => focused);
  MockWebSocket.install();
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

describe('API client: typing, read, settings', () => {
  it('uses the routes and bodies of openapi.json', async () => {
    const { fetch, calls } = mockFetch({
      [`POST ${typingTo(BOB)}`]: json(202, { typing: true }),
      [`POST ${readOf(BOB)}`]: json(200, { read: 2 }),
      'GET /v1/settings': json(200, { read_receipts: true }),
      'PUT /v1/settings': json(200, { read_receipts: false }),
    });
    const api = createClient({ fetch });

    await expect(api.typing(BOB, true)).resolves.toEqual({ typing: true });
    await expect(api.markRead(BOB)).resolves.toEqual({ read: 2 });
    await expect(api.settings()).resolves.toEqual({ read_receipts: true });
    await expect(api.updateSettings({ read_receipts: false })).resolves.toEqual({ read_receipts: false });

    expect(calls.map((c) => [c.method, c.url, c.body])).toEqual([
      ['POST', typingTo(BOB), { typing: true }],
      ['POST', readOf(BOB), undefined],
      ['GET', '/v1/settings', undefined],
      ['PUT', '/v1/settings', { read_receipts: false }],
    ]);
    expect(calls.every((c) => c.init?.credentials === 'same-origin')).toBe(true);
  });
});

describe('useTyping', () => {
  function setup() {
    const mock = mockFetch({ [`POST ${typingTo(BOB)}`]: json(202, { typing: true }) });
    vi.useFakeTimers();
    const hook = renderHook(({ peer }) => useTyping(peer), {
      wrapper: sessionWrapper(mock.fetch),
      initialProps: { peer: BOB as string | null },
    });
    const bodies = () => typingCalls(mock.calls).map((c) => (c.body as { typing: boolean }).typing);
    return { ...hook, ...mock, bodies };
  }

  it('sends typing: true once per 3 s however fast the keys come, then false after 5 s idle', () => {
    const { result, bodies } = setup();
    let text = '';
    const key = (c: string) => act(() => result.current.update((text += c)));

    // 20 keys, 100 ms apart (2 s): one request.
    for (let i = 0; i < 20; i++) {
      key('a');
      act(() => vi.advanceTimersByTime(100));
    }
    expect(bodies()).toEqual([true]);

    // Still typing past RENEW_MS since the first: renewed once.
    for (let i = 0; i < 15; i++) {
      key('b');
      act(() => vi.advanceTimersByTime(100));
    }
    expect(bodies()).toEqual([true, true]);

    // The same text again (a re-render) is not typing.
    act(() => result.current.update(text));
    act(() => vi.advanceTimersByTime(IDLE_MS - 101));
    expect(bodies()).toEqual([true, true]);
    act(() => vi.advanceTimersByTime(1));
    expect(bodies()).toEqual([true, true, false]);

    // Nothing more while idle.
    act(() => vi.advanceTimersByTime(60_000));
    expect(bodies()).toEqual([true, true, false]);

    // Typing again starts a new indicator at once.
    key('c');
    expect(bodies()).toEqual([true, true, false, true]);
  });

  it('sends typing: false at once when the box is emptied (cleared or sent), and only once', () => {
    const { result, bodies } = setup();
    act(() => result.current.update('hello'));
    act(() => vi.advanceTimersByTime(RENEW_MS - 1));
    act(() => result.current.update('hello!'));
    expect(bodies()).toEqual([true]);

    act(() => result.current.update(''));
    expect(bodies()).toEqual([true, false]);
    act(() => vi.advanceTimersByTime(60_000));
    expect(bodies()).toEqual([true, false]);

    // Whitespace alone is not a message being typed.
    act(() => result.current.update('   '));
    expect(bodies()).toEqual([true, false]);
  });

  it('stops when the conversation closes, and says nothing if it never started', () => {
    const { result, bodies, unmount, rerender, calls } = setup();
    rerender({ peer: CAROL });
    expect(calls).toHaveLength(0);
    rerender({ peer: BOB });

    act(() => result.current.update('hi'));
    unmount();
    expect(bodies()).toEqual([true, false]);
    act(() => vi.advanceTimersByTime(60_000));
    expect(bodies()).toEqual([true, false]);
  });

  it('ignores a node that refuses the indicator', async () => {
    const { fetch, calls } = mockFetch({ [`POST ${typingTo(BOB)}`]: apiError(404, 'not_a_contact', 'not a contact') });
    const { result } = renderHook(() => useTyping(BOB), { wrapper: sessionWrapper(fetch) });
    act(() => result.current.update('x'));
    await act(async () => {});
    expect(typingCalls(calls)).toHaveLength(1);
  });
});

describe('unreadIncoming', () => {
  it('lists incoming messages that are not read', () => {
    const list = [msg(1, 'in', 'read'), msg(2, 'in'), msg(3, 'out', 'sent'), msg(4, 'in')];
    expect(unreadIncoming(list)).toEqual([msg(2, 'in').id, msg(4, 'in').id]);
  });
});

function start(routes: Parameters<typeof mockFetch>[0] = {}) {
  const mock = mockFetch({
    'GET /v1/identity': unlockedIdentity(),
    'GET /v1/status': json(200, STATUS),
    'GET /v1/contacts': json(200, [BOB_CONTACT, CAROL_CONTACT]),
    'GET /v1/outbox/dead': json(200, []),
    'GET /v1/settings': json(200, { read_receipts: true }),
    [`GET /v1/conversations/${BOB}/messages`]: json(200, []),
    [`GET /v1/conversations/${CAROL}/messages`]: json(200, []),
    [`POST ${readOf(BOB)}`]: json(200, { read: 1 }),
    [`POST ${readOf(CAROL)}`]: json(200, { read: 1 }),
    [`POST ${typingTo(BOB)}`]: json(202, { typing: true }),
    'POST /v1/messages': json(202, { id: '9'.repeat(32), status: 'queued' }),
    ...routes,
  });
  const user = userEvent.setup();
  render(<App fetch={mock.fetch} />);
  return { ...mock, user };
}

async function openSocket() {
  await waitFor(() => expect(MockWebSocket.instances.length).toBeGreaterThan(0));
  const ws = MockWebSocket.latest();
  act(() => ws.open());
  return ws;
}

/** Longer than the read debounce: a request that was going to be made has been. */
const settle = () => act(() => new Promise((r) => setTimeout(r, READ_DEBOUNCE_MS + 150)));

describe('App: typing', () => {
  it('sends one typing: true for a burst of keys, and typing: false once the message is sent', async () => {
    const { user, calls } = start();
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    const box = await screen.findByRole('textbox', { name: 'Message to Bob' });
    await waitFor(() => expect(box).toHaveFocus());

    await user.keyboard('hello there');
    expect(typingCalls(calls).map((c) => c.body)).toEqual([{ typing: true }]);

    await user.keyboard('{Enter}');
    await waitFor(() => expect(box).toHaveValue(''));
    expect(typingCalls(calls).map((c) => c.body)).toEqual([{ typing: true }, { typing: false }]);
    // The message went out after the indicator started, not instead of it.
    expect(calls.findIndex((c) => c.url === '/v1/messages')).toBeGreaterThan(calls.indexOf(typingCalls(calls)[0]!));
  });
});

describe('App: marking read', () => {
  it('marks the open conversation read on opening and as messages arrive, once per batch', async () => {
    const { user, calls } = start({
      [`GET /v1/conversations/${BOB}/messages`]: json(200, [msg(1, 'in', 'read'), msg(2, 'out', 'sent'), msg(3, 'in')]),
    });
    await screen.findByRole('button', { name: /^Bob/ });
    const ws = await openSocket();
    await settle();
    expect(readCalls(calls)).toHaveLength(0); // Nothing open yet.

    await user.click(screen.getByRole('button', { name: /^Bob/ }));
    await waitFor(() => expect(readCalls(calls)).toHaveLength(1));
    await settle();
    expect(readCalls(calls)).toHaveLength(1);

    // Three messages in a burst: one request.
    act(() => {
      ws.receive(received(10));
      ws.receive(received(11));
      ws.receive(received(12));
    });
    await waitFor(() => expect(readCalls(calls)).toHaveLength(2));
    await settle();
    expect(readCalls(calls)).toHaveLength(2);
    expect(screen.getByRole('button', { name: /^Bob/ })).not.toHaveAccessibleName(/unread/);

    // Our own messages' status changes are not something to read.
    act(() => ws.receive({ type: 'status_changed', id: msg(2, 'out').id, to: BOB, status: 'delivered' }));
    await settle();
    expect(readCalls(calls)).toHaveLength(2);
  });

  it('does not mark read a conversation that is not open', async () => {
    const fromCarol: HistoryEntry = { ...msg(20, 'in'), from: CAROL, text: 'live 20' };
    const { user, calls } = start({ [`GET /v1/conversations/${CAROL}/messages`]: json(200, [fromCarol]) });
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    await screen.findByRole('region', { name: 'Messages with Bob' });
    const ws = await openSocket();

    act(() => ws.receive(received(20, CAROL)));
    await settle();
    expect(readCalls(calls, CAROL)).toHaveLength(0);
    expect(readCalls(calls, BOB)).toHaveLength(0);
    expect(screen.getByRole('button', { name: /^Carol/ })).toHaveAccessibleName(/1 unread message/);

    // Opening Carol's reads it.
    await user.click(screen.getByRole('button', { name: /^Carol/ }));
    await waitFor(() => expect(readCalls(calls, CAROL)).toHaveLength(1));
    expect(screen.getByRole('button', { name: /^Carol/ })).not.toHaveAccessibleName(/unread/);
    expect(readCalls(calls, BOB)).toHaveLength(0);
  });

  it('waits while the window is hidden or unfocused, counting the messages unread, then marks them read', async () => {
    const { user, calls } = start();
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    const log = await screen.findByRole('region', { name: 'Messages with Bob' });
    const ws = await openSocket();

    setWindow({ visible: false });
    act(() => ws.receive(received(30)));
    expect(within(log).getByText('live 30')).toBeInTheDocument();
    await settle();
    expect(readCalls(calls)).toHaveLength(0);
    expect(screen.getByRole('button', { name: /^Bob/ })).toHaveAccessibleName(/1 unread message/);
    expect(document.title).toBe('(1) Communitas');

    // Visible again but another window has the focus: still not read.
    setWindow({ visible: true, focused: false });
    act(() => ws.receive(received(31)));
    await settle();
    expect(readCalls(calls)).toHaveLength(0);
    expect(screen.getByRole('button', { name: /^Bob/ })).toHaveAccessibleName(/2 unread messages/);

    setWindow({ focused: true });
    await waitFor(() => expect(readCalls(calls)).toHaveLength(1));
    expect(screen.getByRole('button', { name: /^Bob/ })).not.toHaveAccessibleName(/unread/);
    expect(document.title).toBe('Communitas');
    await settle();
    expect(readCalls(calls)).toHaveLength(1);
  });

  it('does not retry a refused read in a loop', async () => {
    const { user, calls } = start({
      [`GET /v1/conversations/${BOB}/messages`]: json(200, [msg(1, 'in')]),
      [`POST ${readOf(BOB)}`]: apiError(503, 'unavailable', 'busy'),
    });
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    await waitFor(() => expect(readCalls(calls)).toHaveLength(1));
    await settle();
    await settle();
    expect(readCalls(calls)).toHaveLength(1);
    // No error in the way of the conversation: it is best effort.
    expect(screen.queryByText('busy')).not.toBeInTheDocument();
  });
});

describe('App: read-receipts setting', () => {
  it('shows the setting and PUTs a change', async () => {
    const { user, calls } = start({
      'PUT /v1/settings': (call) => json(200, call.body),
    });
    const settings = await screen.findByRole('region', { name: 'Settings' });
    const toggle = within(settings).getByRole('switch', { name: 'Send read receipts' });
    await waitFor(() => expect(toggle).toBeChecked());
    expect(toggle).toBeEnabled();

    await user.click(toggle);
    await waitFor(() => expect(toggle).not.toBeChecked());
    expect(calls.filter((c) => c.method === 'PUT').map((c) => [c.url, c.body])).toEqual([
      ['/v1/settings', { read_receipts: false }],
    ]);

    await user.click(toggle);
    await waitFor(() => expect(toggle).toBeChecked());
    expect(calls.filter((c) => c.method === 'PUT').at(-1)?.body).toEqual({ read_receipts: true });
  });

  it('keeps the old value and says why when the change fails', async () => {
    let answer = () => apiError(500, 'internal', 'the store is read-only');
    const { user } = start({
      'GET /v1/settings': json(200, { read_receipts: false }),
      'PUT /v1/settings': () => answer(),
    });
    const toggle = await screen.findByRole('switch', { name: 'Send read receipts' });
    await waitFor(() => expect(toggle).toBeEnabled());
    expect(toggle).not.toBeChecked();

    await user.click(toggle);
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('the store is read-only');
    expect(toggle).not.toBeChecked();
    expect(toggle).toHaveAccessibleDescription(/the store is read-only/);

    answer = () => json(200, { read_receipts: true });
    await user.click(toggle);
    await waitFor(() => expect(toggle).toBeChecked());
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });

  it('is disabled while the setting cannot be read', async () => {
    start({ 'GET /v1/settings': apiError(500, 'internal', 'cannot read settings') });
    const toggle = await screen.findByRole('switch', { name: 'Send read receipts' });
    expect(await screen.findByText('cannot read settings')).toBeInTheDocument();
    expect(toggle).toBeDisabled();
  });
});
