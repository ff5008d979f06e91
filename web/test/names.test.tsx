// Issue 23 item 3: contacts renamed and removed, our own name changed, and contact
// changes made elsewhere (the CLI, a second browser) shown at once.

import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../src/App';
import type { Contact, NodeStatus } from '../src/api/types';
import { nameProblem } from '../src/components/NameDialog';
import { ALICE, apiError, BOB, CAROL, json, mockFetch, MockWebSocket, unlockedIdentity } from './helpers';

const STATUS: NodeStatus = { address: ALICE, peer_id: '12D3KooW', listen_addrs: [], connected_peers: 1, outbox: 0, version: '0.1.0', peers: [] };
const BOB_CONTACT: Contact = { address: BOB, name: 'Bob', fingerprint: 'ab12', verified: false, added_at: 1 };

function start(routes: Parameters<typeof mockFetch>[0] = {}) {
  const mock = mockFetch({
    'GET /v1/identity': unlockedIdentity(ALICE, 'Alice'),
    'GET /v1/status': json(200, STATUS),
    'GET /v1/contacts': json(200, [BOB_CONTACT]),
    'GET /v1/outbox/dead': json(200, []),
    [`GET /v1/conversations/${BOB}/messages`]: json(200, []),
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

beforeEach(() => MockWebSocket.install());
afterEach(() => vi.unstubAllGlobals());

describe('names', () => {
  it('checks a name as the node does', () => {
    expect(nameProblem('Ada')).toBeNull();
    expect(nameProblem('')).toBeNull(); // clears it
    expect(nameProblem('two\nlines')).toMatch(/line breaks/);
    expect(nameProblem('é'.repeat(65))).toMatch(/128 bytes/);
    expect(nameProblem('a'.repeat(128))).toBeNull();
  });

  it('renames a contact from its conversation and shows the node’s refusal', async () => {
    let name: string | null = 'Bob';
    const { user, calls } = start({
      [`PUT /v1/contacts/${BOB}`]: (call) => {
        const wanted = (call.body as { name: string | null }).name;
        if (wanted === 'Nope') return apiError(400, 'invalid_name', 'the name is refused');
        name = wanted;
        return json(200, { ...BOB_CONTACT, name });
      },
    });
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    await user.click(await screen.findByRole('button', { name: 'Rename Bob' }));
    const dialog = await screen.findByRole('dialog', { name: 'Rename Bob' });
    const field = within(dialog).getByLabelText('Name');
    await user.clear(field);
    await user.type(field, 'Nope');
    await user.click(within(dialog).getByRole('button', { name: 'Save' }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('the name is refused');
    await user.clear(field);
    await user.type(field, 'Robert');
    await user.click(within(dialog).getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    expect(screen.getByRole('heading', { name: 'Robert' })).toBeInTheDocument();
    expect(calls.filter((c) => c.method === 'PUT').map((c) => c.body)).toEqual([{ name: 'Nope' }, { name: 'Robert' }]);
    expect(name).toBe('Robert');
  });

  it('removes a contact after asking, keeping the conversation', async () => {
    const confirm = vi.fn(() => true);
    vi.stubGlobal('confirm', confirm);
    let contacts = [BOB_CONTACT];
    const { user, calls } = start({
      'GET /v1/contacts': () => json(200, contacts),
      [`DELETE /v1/contacts/${BOB}`]: () => {
        contacts = [];
        return json(200, { address: BOB, removed: true });
      },
    });
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    await user.click(await screen.findByRole('button', { name: 'Remove Bob from contacts' }));
    expect(confirm).toHaveBeenCalledWith(expect.stringMatching(/conversation is kept/));
    await waitFor(() => expect(calls.some((c) => c.method === 'DELETE')).toBe(true));
    // Still open, now with the address and an "Add contact" button.
    const pane = await screen.findByRole('region', { name: BOB });
    expect(within(pane).getByRole('button', { name: 'Add contact' })).toBeInTheDocument();
  });

  it('does not remove when the user says no', async () => {
    vi.stubGlobal('confirm', vi.fn(() => false));
    const { user, calls } = start();
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    await user.click(await screen.findByRole('button', { name: 'Remove Bob from contacts' }));
    expect(calls.some((c) => c.method === 'DELETE')).toBe(false);
  });

  it('reads the contacts again when a contact changes elsewhere', async () => {
    let contacts = [BOB_CONTACT];
    start({ 'GET /v1/contacts': () => json(200, contacts) });
    await screen.findByRole('button', { name: /^Bob/ });
    const ws = await openSocket();
    contacts = [BOB_CONTACT, { ...BOB_CONTACT, address: CAROL, name: 'Carol' }];
    act(() => ws.receive({ type: 'contact', address: CAROL, change: 'added' }));
    expect(await screen.findByRole('button', { name: /^Carol/ })).toBeInTheDocument();
  });

  it('changes our own name, and follows a change made elsewhere', async () => {
    const { user, calls } = start({ 'PUT /v1/profile': (call) => json(200, { address: ALICE, ...(call.body as object) }) });
    expect(await screen.findByText('Alice')).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Change name' }));
    const dialog = await screen.findByRole('dialog', { name: 'Your display name' });
    const field = within(dialog).getByLabelText('Display name');
    await user.clear(field);
    await user.type(field, 'Alice L.');
    await user.click(within(dialog).getByRole('button', { name: 'Save' }));
    expect(await screen.findByText('Alice L.')).toBeInTheDocument();
    expect(calls.find((c) => c.method === 'PUT')?.body).toEqual({ name: 'Alice L.' });
    const ws = await openSocket();
    act(() => ws.receive({ type: 'profile', name: 'Ally' }));
    expect(await screen.findByText('Ally')).toBeInTheDocument();
  });
});

describe('adding a contact', () => {
  it('clears the node’s suggestion once the address is edited', async () => {
    const { user } = start({
      'POST /v1/contacts': apiError(400, 'invalid_address', '"amul" (word 1) is not an address word; did you mean "amulet"?'),
    });
    await user.click(await screen.findByRole('button', { name: 'Add contact' }));
    const dialog = await screen.findByRole('dialog', { name: 'Add a contact' });
    const field = within(dialog).getByRole('combobox');
    await user.type(field, 'amul-lemon-tiger-wafer');
    await user.click(within(dialog).getByRole('button', { name: 'Add contact' }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('did you mean "amulet"');
    await user.type(field, 'x');
    expect(within(dialog).queryByRole('alert')).not.toBeInTheDocument();
  });
});
