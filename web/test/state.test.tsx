// Issue 23 item 5: the open conversation is in the URL (a reload returns to it),
// drafts are kept per conversation across switching, and unread counts follow
// reads made in another browser on the same node.

import { act, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App, conversationInUrl } from '../src/App';
import type { Contact, NodeStatus } from '../src/api/types';
import { ALICE, BOB, CAROL, json, mockFetch, MockWebSocket, unlockedIdentity } from './helpers';

const STATUS: NodeStatus = { address: ALICE, peer_id: '12D3KooW', listen_addrs: [], connected_peers: 1, outbox: 0, version: '0.1.0', peers: [] };
const CONTACTS: Contact[] = [
  { address: BOB, name: 'Bob', fingerprint: 'ab12', verified: false, added_at: 1 },
  { address: CAROL, name: 'Carol', fingerprint: 'cd34', verified: false, added_at: 2 },
];

function start(routes: Parameters<typeof mockFetch>[0] = {}) {
  const mock = mockFetch({
    'GET /v1/identity': unlockedIdentity(ALICE),
    'GET /v1/status': json(200, STATUS),
    'GET /v1/contacts': json(200, CONTACTS),
    'GET /v1/outbox/dead': json(200, []),
    [`GET /v1/conversations/${BOB}/messages`]: json(200, []),
    [`GET /v1/conversations/${CAROL}/messages`]: json(200, []),
    ...routes,
  });
  const user = userEvent.setup();
  const view = render(<App fetch={mock.fetch} />);
  return { ...mock, user, view };
}

beforeEach(() => MockWebSocket.install());
afterEach(() => vi.unstubAllGlobals());

describe('state that survives', () => {
  it('names the open conversation in the URL and opens it again after a reload', async () => {
    const first = start();
    await first.user.click(await screen.findByRole('button', { name: /^Bob/ }));
    expect(window.location.hash).toBe(`#/c/${BOB}`);
    expect(conversationInUrl()).toBe(BOB);
    // A reload: a new page with the same address.
    first.view.unmount();
    window.history.replaceState(null, '', `/#/c/${BOB}`);
    start();
    expect(await screen.findByRole('heading', { name: 'Bob' })).toBeInTheDocument();
  });

  it('refuses a URL that does not name an address', () => {
    expect(conversationInUrl('#/c/not an address')).toBeNull();
    expect(conversationInUrl('#page=00')).toBeNull();
    expect(conversationInUrl(`#/c/${CAROL}`)).toBe(CAROL);
  });

  it('keeps each conversation’s draft while switching', async () => {
    const { user } = start();
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    await user.type(await screen.findByRole('textbox', { name: 'Message to Bob' }), 'for bob');
    await user.click(screen.getByRole('button', { name: /^Carol/ }));
    expect(await screen.findByRole('textbox', { name: 'Message to Carol' })).toHaveValue('');
    await user.click(screen.getByRole('button', { name: /^Bob/ }));
    expect(await screen.findByRole('textbox', { name: 'Message to Bob' })).toHaveValue('for bob');
  });

  it('clears an unread count when the conversation is read in another browser', async () => {
    start({ 'GET /v1/conversations': json(200, [{ peer: BOB, unread: 2, last_at: Date.now() }]) });
    await waitFor(() => expect(screen.getByRole('button', { name: /^Bob/ })).toHaveAccessibleName(/2 unread messages/));
    await waitFor(() => expect(MockWebSocket.instances.length).toBeGreaterThan(0));
    const ws = MockWebSocket.latest();
    act(() => ws.open());
    act(() => ws.receive({ type: 'read', peer: BOB, count: 2 }));
    await waitFor(() => expect(screen.getByRole('button', { name: /^Bob/ })).not.toHaveAccessibleName(/unread/));
  });
});

describe('the conversation list', () => {
  it('shows each conversation’s newest message and its time, and who is typing', async () => {
    const at = new Date(2026, 11, 3, 9, 5).getTime();
    start({
      'GET /v1/conversations': json(200, [
        { peer: BOB, unread: 0, last_at: at, last_text: 'see you at noon', last_direction: 'out' },
        { peer: CAROL, unread: 1, last_at: at - 1, last_text: 'hi there', last_direction: 'in' },
      ]),
      'GET /v1/presence': json(200, { status: 'online', contacts: [] }),
    });
    const bob = await screen.findByRole('button', { name: /^Bob/ });
    await waitFor(() => expect(bob).toHaveTextContent('You: see you at noon'));
    expect(screen.getByRole('button', { name: /^Carol/ })).toHaveTextContent('hi there');
    expect(bob.querySelector('time')).toHaveAttribute('dateTime', new Date(at).toISOString());
    await waitFor(() => expect(MockWebSocket.instances.length).toBeGreaterThan(0));
    const ws = MockWebSocket.latest();
    act(() => ws.open());
    act(() => ws.receive({ type: 'message_received', id: 'e'.repeat(32), from: CAROL, text: 'are you there?', timestamp: at + 5, position: 1e15 }));
    expect(screen.getByRole('button', { name: /^Carol/ })).toHaveTextContent('are you there?');
    act(() => ws.receive({ type: 'typing', from: CAROL, typing: true }));
    expect(screen.getByRole('button', { name: /^Carol/ })).toHaveTextContent('typing…');
  });
});
