// The contact list puts the most recent conversation first, from the node's
// `last_at` and from live messages, and holds still while keyboard focus is in it.

import { act, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../src/App';
import type { Contact, NodeStatus } from '../src/api/types';
import { ALICE, BOB, CAROL, json, mid, mockFetch, MockWebSocket, unlockedIdentity } from './helpers';

const DAVE = 'harbor-mosaic-lemon-zone';
const STATUS: NodeStatus = { address: ALICE, peer_id: '12D3KooW', listen_addrs: [], connected_peers: 1, outbox: 0, version: '0.1.0', peers: [] };
const contact = (address: string, name: string, added_at: number): Contact => ({
  address,
  name,
  fingerprint: 'ab12',
  verified: false,
  added_at,
});

function start() {
  const { fetch } = mockFetch({
    'GET /v1/identity': unlockedIdentity(),
    'GET /v1/status': json(200, STATUS),
    'GET /v1/contacts': json(200, [contact(BOB, 'Bob', 1), contact(CAROL, 'Carol', 2), contact(DAVE, 'Dave', 3)]),
    'GET /v1/outbox/dead': json(200, []),
    'GET /v1/conversations': json(200, [
      { peer: CAROL, unread: 0, last_at: 3_000 },
      { peer: BOB, unread: 0, last_at: 1_000 },
    ]),
  });
  render(<App fetch={fetch} />);
}

/** The names in the contact list, top to bottom. */
function order(): string[] {
  const nav = screen.getByRole('navigation', { name: 'Conversations' });
  return within(nav)
    .getAllByRole('button')
    .map((b) => b.querySelector('.contact-name')?.textContent ?? '');
}

function message(from: string, timestamp: number) {
  act(() => MockWebSocket.latest().receive({ type: 'message_received', id: mid(), from, text: 'hi', timestamp, position: 1e15 }));
}

beforeEach(() => MockWebSocket.install());
afterEach(() => vi.unstubAllGlobals());

describe('the contact list order', () => {
  it('puts the newest conversation first, and holds still while focus is in the list', async () => {
    start();
    await waitFor(() => expect(order()).toEqual(['Carol', 'Bob', 'Dave']));
    // The events socket opens in an effect that may come after the first paint.
    const ws = await waitFor(() => MockWebSocket.latest());
    act(() => ws.open());

    message(DAVE, 5_000);
    expect(order()).toEqual(['Dave', 'Carol', 'Bob']);

    // Keyboard focus on Carol: a message from Bob does not move the buttons.
    const carol = screen.getByRole('button', { name: /^Carol/ });
    act(() => carol.focus());
    message(BOB, 6_000);
    expect(order()).toEqual(['Dave', 'Carol', 'Bob']);
    expect(document.activeElement).toBe(carol);

    // Focus leaves the list: the order catches up.
    act(() => screen.getByRole('button', { name: 'Add contact' }).focus());
    expect(order()).toEqual(['Bob', 'Dave', 'Carol']);
  });
});
