// Message requests, blocking and impersonation warnings (issue 15).

import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../src/App';
import type { Block, Contact, MessageRequest, NodeStatus } from '../src/api/types';
import { ALICE, apiError, BOB, CAROL, json, mockFetch, MockWebSocket, unlockedIdentity } from './helpers';

const STATUS: NodeStatus = { address: ALICE, peer_id: '12D3KooW', listen_addrs: [], connected_peers: 1, outbox: 0, version: '0.1.0', peers: [] };
const BOB_CONTACT: Contact = { address: BOB, name: 'Bob', fingerprint: 'ab12', verified: false, added_at: 1 };
const SAFETY = '12345 67890 12345 67890 12345 67890 12345 67890 12345 67890 12345 67890';
const CAROL_REQUEST: MessageRequest = {
  address: CAROL,
  first_at: 1_700_000_000_000,
  last_at: 1_700_000_000_500,
  count: 2,
  dropped: 0,
  expires_at: 1_702_592_000_000,
  first_text: 'hi, we met at the conference',
  first_is_file: false,
  safety_number: SAFETY,
  name: 'Carol',
};

beforeEach(() => MockWebSocket.install());
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

function start(routes: Parameters<typeof mockFetch>[0] = {}) {
  const mock = mockFetch({
    'GET /v1/identity': unlockedIdentity(),
    'GET /v1/status': json(200, STATUS),
    'GET /v1/contacts': json(200, [BOB_CONTACT]),
    'GET /v1/outbox/dead': json(200, []),
    'GET /v1/settings': json(200, { read_receipts: true }),
    'GET /v1/requests': json(200, [CAROL_REQUEST]),
    ...routes,
  });
  const user = userEvent.setup();
  render(<App fetch={mock.fetch} />);
  return { ...mock, user };
}

const requests = () => screen.findByRole('region', { name: /message requests/i });

describe('message requests', () => {
  it('shows the first message and the safety number, and accepting makes a contact', async () => {
    const contacts: Contact[] = [BOB_CONTACT];
    const { calls, user } = start({
      'GET /v1/contacts': () => json(200, contacts),
      [`POST /v1/requests/${CAROL}/accept`]: () => {
        const carol = { address: CAROL, name: null, fingerprint: 'cd34', verified: false, added_at: 3 };
        contacts.push(carol);
        return json(200, carol);
      },
    });
    const section = await requests();
    const item = await within(section).findByRole('listitem', { name: `Request from ${CAROL}` });
    expect(within(item).getByText('hi, we met at the conference')).toBeInTheDocument();
    expect(within(item).getByRole('list', { name: `Safety number: ${SAFETY}` }).children).toHaveLength(12);
    expect(within(item).getByText(/and 1 more/)).toBeInTheDocument();
    // What she calls herself, marked as her own claim (issue 23 item 3).
    expect(within(item).getByText(/Calls themselves/)).toHaveTextContent('Calls themselves “Carol” (unverified)');
    await user.click(within(item).getByRole('button', { name: `Accept the request from ${CAROL}` }));
    await waitFor(() => expect(within(section).queryByRole('listitem')).not.toBeInTheDocument());
    expect(calls.some((c) => c.method === 'POST' && c.url === `/v1/requests/${CAROL}/accept`)).toBe(true);
    // The contacts are read again: carol is in the conversation list now.
    await screen.findByRole('button', { name: new RegExp(CAROL) });
  });

  it('deletes, or deletes and blocks; a failure says why and keeps the request', async () => {
    const blocks: Block[] = [];
    let list = [CAROL_REQUEST];
    const { calls, user } = start({
      'GET /v1/requests': () => json(200, list),
      [`POST /v1/requests/${CAROL}/decline`]: apiError(503, 'shutting_down', 'the node is shutting down'),
      [`POST /v1/requests/${CAROL}/decline?block=true`]: () => {
        blocks.push({ address: CAROL, blocked_at: 5 });
        list = [];
        return json(200, { address: CAROL, declined: true, blocked: true });
      },
      'GET /v1/blocks': () => json(200, blocks),
    });
    const section = await requests();
    const item = await within(section).findByRole('listitem', { name: `Request from ${CAROL}` });
    await user.click(within(item).getByRole('button', { name: `Delete the request from ${CAROL}` }));
    expect(await within(item).findByRole('alert')).toHaveTextContent('shutting down');
    await user.click(within(item).getByRole('button', { name: `Delete the request from ${CAROL} and block it` }));
    await waitFor(() => expect(within(section).queryByRole('listitem')).not.toBeInTheDocument());
    expect(calls.some((c) => c.url === `/v1/requests/${CAROL}/decline?block=true`)).toBe(true);
    // The blocked list in the settings shows her, with a way back.
    const blocked = await screen.findByRole('group', { name: 'Blocked' });
    await within(blocked).findByText(CAROL);
  });

  it('a new request event reads the list again; none shows an empty state', async () => {
    let list: MessageRequest[] = [];
    start({ 'GET /v1/requests': () => json(200, list) });
    const section = await requests();
    await within(section).findByText(/No message requests/);
    await waitFor(() => expect(MockWebSocket.instances.length).toBeGreaterThan(0));
    const ws = MockWebSocket.latest();
    act(() => ws.open());
    list = [CAROL_REQUEST];
    act(() =>
      ws.receive({ type: 'request', from: CAROL, id: '1'.repeat(32), text: 'hi', timestamp: 1, new: true }),
    );
    await within(section).findByRole('listitem', { name: `Request from ${CAROL}` });
  });
});

describe('blocking', () => {
  it('unblocks from the settings', async () => {
    const { user, calls } = start({
      'GET /v1/requests': json(200, []),
      'GET /v1/blocks': json(200, [{ address: CAROL, blocked_at: 5 }]),
      [`DELETE /v1/blocks/${CAROL}`]: json(200, { address: CAROL, unblocked: true }),
    });
    const blocked = await screen.findByRole('group', { name: 'Blocked' });
    await user.click(await within(blocked).findByRole('button', { name: `Unblock ${CAROL}` }));
    await within(blocked).findByText('Nobody is blocked.');
    expect(calls.some((c) => c.method === 'DELETE' && c.url === `/v1/blocks/${CAROL}`)).toBe(true);
  });

  it('warns when someone imitates a contact', async () => {
    start({ 'GET /v1/requests': json(200, []) });
    await requests();
    await waitFor(() => expect(MockWebSocket.instances.length).toBeGreaterThan(0));
    const ws = MockWebSocket.latest();
    act(() => ws.open());
    act(() => ws.receive({ type: 'impersonation', address: BOB }));
    const alert = await screen.findByText(/Someone is imitating Bob/);
    expect(alert).toHaveAttribute('role', 'alert');
  });
});
