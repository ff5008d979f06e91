// Desktop notifications: off until turned on (which asks the browser), shown only
// while the user is not looking, naming the sender and never the text; a click opens
// the conversation.

import { act, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../src/App';
import type { Contact, NodeStatus } from '../src/api/types';
import { ALICE, BOB, json, mid, mockFetch, MockWebSocket, unlockedIdentity } from './helpers';

const STATUS: NodeStatus = { address: ALICE, peer_id: '12D3KooW', listen_addrs: [], connected_peers: 1, outbox: 0, version: '0.1.0', peers: [] };
const CONTACTS: Contact[] = [{ address: BOB, name: 'Bob', fingerprint: 'ab12', verified: false, added_at: 1 }];

class FakeNotification {
  static permission: NotificationPermission = 'default';
  static answer: NotificationPermission = 'granted';
  static shown: FakeNotification[] = [];
  static requestPermission = vi.fn(async () => {
    FakeNotification.permission = FakeNotification.answer;
    return FakeNotification.answer;
  });
  onclick: (() => void) | null = null;
  closed = false;
  constructor(
    readonly title: string,
    readonly options?: NotificationOptions,
  ) {
    FakeNotification.shown.push(this);
  }
  close() {
    this.closed = true;
  }
}

function start() {
  const { fetch } = mockFetch({
    'GET /v1/identity': unlockedIdentity(),
    'GET /v1/status': json(200, STATUS),
    'GET /v1/contacts': json(200, CONTACTS),
    'GET /v1/outbox/dead': json(200, []),
    'GET /v1/settings': json(200, { read_receipts: true }),
    'GET /v1/conversations': json(200, []),
    [`GET /v1/conversations/${BOB}/messages`]: json(200, []),
  });
  render(<App fetch={fetch} />);
  return userEvent.setup();
}

function message(text: string) {
  act(() => MockWebSocket.latest().receive({ type: 'message_received', id: mid(), from: BOB, text, timestamp: Date.now(), position: 1e15 }));
}

/** The user looks elsewhere: the window loses the focus. */
function lookAway() {
  vi.spyOn(document, 'hasFocus').mockReturnValue(false);
  act(() => window.dispatchEvent(new Event('blur')));
}

beforeEach(() => {
  MockWebSocket.install();
  FakeNotification.permission = 'default';
  FakeNotification.answer = 'granted';
  FakeNotification.shown = [];
  FakeNotification.requestPermission.mockClear();
  vi.stubGlobal('Notification', FakeNotification);
  localStorage.clear();
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

describe('desktop notifications', () => {
  it('are off until turned on, then name the sender only while the user looks away', async () => {
    const user = start();
    const toggle = await screen.findByRole('switch', { name: 'Desktop notifications' });
    // The events socket opens in an effect that may come after the first paint.
    const ws = await waitFor(() => MockWebSocket.latest());
    act(() => ws.open());
    lookAway();
    message('the secret plan');
    expect(FakeNotification.shown).toHaveLength(0);

    await user.click(toggle);
    expect(FakeNotification.requestPermission).toHaveBeenCalledOnce();
    await waitFor(() => expect(toggle).toBeChecked());
    expect(localStorage.getItem('communitas.notifications')).toBe('on');

    lookAway();
    message('the secret plan');
    expect(FakeNotification.shown).toHaveLength(1);
    const shown = FakeNotification.shown[0]!;
    expect(shown.title).toBe('New message from Bob');
    expect(JSON.stringify(shown.options ?? {})).not.toContain('secret');

    // A click opens Bob's conversation.
    act(() => shown.onclick?.());
    expect(await screen.findByRole('region', { name: 'Messages with Bob' })).toBeInTheDocument();
    expect(shown.closed).toBe(true);
  });

  it('says so when the browser blocks them, and stays off', async () => {
    FakeNotification.answer = 'denied';
    const user = start();
    const toggle = await screen.findByRole('switch', { name: 'Desktop notifications' });
    await user.click(toggle);
    expect(await screen.findByText(/Blocked by your browser/)).toBeInTheDocument();
    expect(toggle).not.toBeChecked();
    expect(localStorage.getItem('communitas.notifications')).toBe('off');
  });
});
