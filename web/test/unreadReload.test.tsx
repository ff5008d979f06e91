// Unread counts come from the node (`GET /v1/conversations`), so they survive a
// reload of the page, follow live messages without counting one twice, and are
// cleared on the node by opening the conversation.

import { act, cleanup, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../src/App';
import type { Contact, ConversationSummary, HistoryEntry, NodeStatus } from '../src/api/types';
import { ALICE, BOB, CAROL, json, mockFetch, MockWebSocket , unlockedIdentity } from './helpers';

const STATUS: NodeStatus = { address: ALICE, peer_id: '12D3KooW', listen_addrs: [], connected_peers: 1, outbox: 0, version: '0.1.0', peers: [] };
const BOB_CONTACT: Contact = { address: BOB, name: 'Bob', fingerprint: 'ab12', verified: false, added_at: 1 };

function incoming(n: number): HistoryEntry {
  return {
    id: n.toString(16).padStart(32, '0'),
    from: BOB,
    to: ALICE,
    direction: 'in',
    text: `hello ${n}`,
    timestamp: Date.now() - 60_000 + n,
    status: 'delivered',
    position: n * 2,
  };
}

/** A node with Bob's two unread messages and one from Carol (not a contact); it
 * keeps its read state across page loads, as the real one does. */
function fakeNode() {
  const unread: Record<string, number> = { [BOB]: 2, [CAROL]: 1 };
  const { fetch, calls } = mockFetch({
    'GET /v1/identity': unlockedIdentity(),
    'GET /v1/status': json(200, STATUS),
    'GET /v1/contacts': json(200, [BOB_CONTACT]),
    'GET /v1/outbox/dead': json(200, []),
    'GET /v1/conversations': () =>
      json(
        200,
        Object.entries(unread).map(([peer, n]): ConversationSummary => ({ peer, unread: n, last_at: Date.now(), last_text: null, last_direction: null })),
      ),
    [`GET /v1/conversations/${BOB}/messages`]: json(200, [incoming(1), incoming(2)]),
    [`POST /v1/conversations/${BOB}/read`]: () => {
      const read = unread[BOB] ?? 0;
      unread[BOB] = 0;
      return json(200, { read });
    },
  });
  return { fetch, calls, unread };
}

/** Loads the page (again): a fresh app against the same node. */
async function load(node: ReturnType<typeof fakeNode>) {
  cleanup();
  MockWebSocket.instances = [];
  render(<App fetch={node.fetch} />);
  await waitFor(() => expect(MockWebSocket.instances.length).toBeGreaterThan(0));
  const ws = MockWebSocket.latest();
  act(() => ws.open());
  return ws;
}

const bobButton = () => screen.getByRole('button', { name: /^Bob/ });
const carolButton = () => screen.getByRole('button', { name: new RegExp(`^${CAROL}`) });

beforeEach(() => MockWebSocket.install());
afterEach(() => vi.unstubAllGlobals());

describe('unread counts across reloads', () => {
  it('shows the node’s counts after a reload, adds live ones once, and clears on opening', async () => {
    const node = fakeNode();
    let ws = await load(node);
    await waitFor(() => expect(bobButton()).toHaveAccessibleName(/2 unread messages/));
    expect(carolButton()).toHaveAccessibleName(/Not in your contacts.*1 unread message/);
    expect(document.title).toBe('(3) Communitas');

    // The node kept them: a reload shows the same.
    ws = await load(node);
    await waitFor(() => expect(bobButton()).toHaveAccessibleName(/2 unread messages/));

    // A live message adds one; the resync after the socket opened re-read the node
    // first, so it is not counted twice.
    node.unread[BOB] = 3;
    act(() => ws.receive({ type: 'message_received', id: 'f'.repeat(32), from: BOB, text: 'still there?', timestamp: Date.now(), position: 1e15 }));
    expect(bobButton()).toHaveAccessibleName(/3 unread messages/);
    await act(async () => {});
    expect(bobButton()).toHaveAccessibleName(/3 unread messages/);

    // Events were missed (`lagged`): the resync reads the node's counts again.
    node.unread[CAROL] = 4;
    act(() => ws.receive({ type: 'lagged', missed: 3 }));
    await waitFor(() => expect(carolButton()).toHaveAccessibleName(/4 unread messages/));
    expect(bobButton()).toHaveAccessibleName(/3 unread messages/);

    // Opening Bob's conversation clears it here and, once seen, on the node.
    const user = userEvent.setup();
    await user.click(bobButton());
    expect(bobButton()).not.toHaveAccessibleName(/unread/);
    await within(await screen.findByRole('region', { name: 'Messages with Bob' })).findByText('hello 2');
    await waitFor(() => expect(node.calls.some((c) => c.method === 'POST' && c.url === `/v1/conversations/${BOB}/read`)).toBe(true));

    // So after a reload Bob has none, and Carol still has hers.
    await load(node);
    await waitFor(() => expect(carolButton()).toHaveAccessibleName(/4 unread messages/));
    expect(bobButton()).not.toHaveAccessibleName(/unread/);
    expect(document.title).toBe('(4) Communitas');
  });

  it('shows a loaded count of the open conversation as read', async () => {
    const node = fakeNode();
    await load(node);
    const user = userEvent.setup();
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    // The node still says 2 (not marked read yet) when the resync reads it.
    node.unread[BOB] = 2;
    act(() => MockWebSocket.latest().receive({ type: 'lagged', missed: 1 }));
    await waitFor(() => expect(carolButton()).toHaveAccessibleName(/1 unread message/));
    expect(bobButton()).not.toHaveAccessibleName(/unread/);
  });
});
