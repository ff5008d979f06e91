import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../src/App';
import type { Contact, DeadLetter, HistoryEntry, NodeStatus } from '../src/api/types';
import { ALICE, apiError, BOB, CAROL, json, mockFetch, MockWebSocket, unlockedIdentity } from './helpers';

const STATUS: NodeStatus = { address: ALICE, peer_id: '12D3KooW', listen_addrs: [], connected_peers: 1, outbox: 0, version: '0.1.0', peers: [] };
const BOB_CONTACT: Contact = { address: BOB, name: 'Bob', fingerprint: 'ab12', verified: false, added_at: 1 };
const SAFETY = '12345 67890 11111 22222 33333 44444 55555 66666 77777 88888 99999 00000';

function msg(n: number, direction: 'in' | 'out', status: HistoryEntry['status'] = 'delivered'): HistoryEntry {
  return {
    id: n.toString(16).padStart(32, '0'),
    from: direction === 'in' ? BOB : ALICE,
    to: direction === 'in' ? ALICE : BOB,
    direction,
    text: `text ${n}`,
    timestamp: Date.now() - 60_000 + n,
    status,
    position: n * 2,
  };
}

function start(routes: Parameters<typeof mockFetch>[0] = {}) {
  const mock = mockFetch({
    'GET /v1/identity': unlockedIdentity(),
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

const bobButton = () => screen.getByRole('button', { name: /^Bob/ });

beforeEach(() => MockWebSocket.install());
afterEach(() => vi.unstubAllGlobals());

describe('App', () => {
  it('shows a full-screen "Not signed in" view on 401 and closes the event stream', async () => {
    start({ 'GET /v1/status': apiError(401, 'unauthorized', 'a valid bearer token is required') });

    expect(await screen.findByRole('heading', { name: 'Not signed in' })).toBeInTheDocument();
    expect(screen.getByText(/communitas run/)).toBeInTheDocument();
    expect(screen.queryByRole('navigation', { name: 'Conversations' })).not.toBeInTheDocument();
    // The stream closes in an effect after the view shows: wait for it, not for a tick.
    await waitFor(() => expect(MockWebSocket.latest().closedByClient).toBe(true));
  });

  it('shows the own address with a QR code and copies it', async () => {
    const { user } = start();
    const welcome = await screen.findByRole('region', { name: 'Welcome to Communitas' });
    await within(welcome).findByText(ALICE);
    expect(within(welcome).getByRole('img', { name: `QR code of your address, ${ALICE}` })).toBeInTheDocument();

    await user.click(within(welcome).getByRole('button', { name: 'Copy address' }));
    await expect(navigator.clipboard.readText()).resolves.toBe(ALICE);
    expect(within(welcome).getByRole('button', { name: 'Copied' })).toBeInTheDocument();
  });

  it('counts live messages as unread until the conversation is opened', async () => {
    const { user } = start({ [`GET /v1/conversations/${BOB}/messages`]: json(200, [msg(1, 'in')]) });
    await screen.findByRole('button', { name: /^Bob/ });
    const ws = await openSocket();

    act(() => ws.receive({ type: 'message_received', id: 'f'.repeat(32), from: BOB, text: 'are you there?', timestamp: Date.now(), position: 1e15 }));
    expect(bobButton()).toHaveAccessibleName(/1 unread message/);
    expect(document.title).toBe('(1) Communitas');
    expect(screen.getByText('New message from Bob')).toHaveAttribute('aria-live', 'polite');

    act(() => ws.receive({ type: 'message_received', id: 'e'.repeat(32), from: CAROL, text: 'hi', timestamp: Date.now(), position: 1e15 }));
    // A sender who is not a contact still shows up.
    expect(screen.getByRole('button', { name: new RegExp(`^${CAROL}.*Not in your contacts.*1 unread`) })).toBeInTheDocument();

    await user.click(bobButton());
    expect(bobButton()).not.toHaveAccessibleName(/unread/);
    expect(bobButton()).toHaveAttribute('aria-current', 'true');
    const log = await screen.findByRole('region', { name: 'Messages with Bob' });
    await within(log).findByText('text 1');

    // While open, new messages appear in place and are not counted.
    act(() => ws.receive({ type: 'message_received', id: 'd'.repeat(32), from: BOB, text: 'live now', timestamp: Date.now(), position: 1e15 }));
    expect(within(log).getByText('live now')).toBeInTheDocument();
    expect(bobButton()).not.toHaveAccessibleName(/unread/);
    expect(screen.getByText('Bob: live now')).toBeInTheDocument();
  });

  it('updates delivery marks from status_changed and retries failed messages', async () => {
    const sent = msg(1, 'out', 'sent');
    const failed = msg(2, 'out', 'failed');
    const { user, calls } = start({
      [`GET /v1/conversations/${BOB}/messages`]: json(200, [sent, failed]),
      [`POST /v1/outbox/${failed.id}/retry`]: json(202, { id: failed.id, status: 'queued' }),
    });
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    const ws = await openSocket();
    const log = await screen.findByRole('region', { name: 'Messages with Bob' });
    await within(log).findByRole('img', { name: 'Sent' });

    act(() => ws.receive({ type: 'status_changed', id: sent.id, to: BOB, status: 'read' }));
    expect(within(log).queryByRole('img', { name: 'Sent' })).not.toBeInTheDocument();
    expect(within(log).getByRole('img', { name: 'Read' })).toBeInTheDocument();

    expect(within(log).getByRole('img', { name: 'Not delivered' })).toBeInTheDocument();
    await user.click(within(log).getByRole('button', { name: 'Retry sending “text 2”' }));
    expect(calls.some((c) => c.method === 'POST' && c.url === `/v1/outbox/${failed.id}/retry`)).toBe(true);
    expect(await within(log).findByRole('img', { name: 'Queued, not sent yet' })).toBeInTheDocument();
    expect(within(log).queryByRole('button', { name: /Retry/ })).not.toBeInTheDocument();
  });

  it('sends from the composer with Enter and shows the message queued', async () => {
    const id = '9'.repeat(32);
    const { user, calls } = start({ 'POST /v1/messages': json(202, { id, status: 'queued' }) });
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    const box = await screen.findByRole('textbox', { name: 'Message to Bob' });
    await waitFor(() => expect(box).toHaveFocus());

    await user.keyboard('first line{Shift>}{Enter}{/Shift}second{Enter}');

    const post = calls.find((c) => c.method === 'POST' && c.url === '/v1/messages');
    expect(post?.body).toEqual({ to: BOB, text: 'first line\nsecond' });
    const log = screen.getByRole('region', { name: 'Messages with Bob' });
    expect(await within(log).findByRole('img', { name: 'Queued, not sent yet' })).toBeInTheDocument();
    expect(box).toHaveValue('');
  });

  it('loads older messages when scrolled to the top', async () => {
    const page = Array.from({ length: 50 }, (_, i) => msg(i + 100, 'in'));
    const older = [msg(1, 'in')];
    const { user, calls } = start({
      [`GET /v1/conversations/${BOB}/messages?limit=50`]: json(200, page),
      [`GET /v1/conversations/${BOB}/messages?limit=50&before=${page[0]!.id}`]: json(200, older),
    });
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    const log = await screen.findByRole('region', { name: 'Messages with Bob' });
    await within(log).findByText('text 100');

    log.scrollTop = 0;
    fireEvent.scroll(log);

    await within(log).findByText('text 1');
    expect(calls.filter((c) => c.url.includes('before='))).toHaveLength(1);
    expect(within(log).getByText(/start of your conversation/)).toBeInTheDocument();
  });

  it('adds a contact by four words, shows API errors, then compares the safety number', async () => {
    const carol: Contact = { address: CAROL, name: 'Carol', fingerprint: 'cd34', verified: false, added_at: 2 };
    let attempt = 0;
    const { user, calls } = start({
      'POST /v1/contacts': () =>
        ++attempt === 1
          ? apiError(404, 'unknown_address', `no identity record found for ${CAROL}`)
          : json(201, carol),
      [`GET /v1/contacts/${CAROL}/safety-number`]: json(200, { safety_number: SAFETY }),
      [`POST /v1/contacts/${CAROL}/verify`]: json(200, { safety_number: SAFETY, verified: true }),
    });
    const opener = (await screen.findAllByRole('button', { name: 'Add contact' }))[0]!;
    await user.click(opener);
    const dialog = screen.getByRole('dialog', { name: 'Add a contact' });
    const input = within(dialog).getByRole('combobox', { name: 'Their four-word address' });
    expect(input).toHaveFocus();

    await user.type(input, 'zodi');
    await user.keyboard('{Enter}');
    await user.type(input, 'zombie lemon engine');
    await user.type(within(dialog).getByRole('textbox', { name: /Name/ }), 'Carol');
    await user.click(within(dialog).getByRole('button', { name: 'Add contact' }));

    expect(await within(dialog).findByRole('alert')).toHaveTextContent(`no identity record found for ${CAROL}`);
    expect(calls.find((c) => c.method === 'POST' && c.url === '/v1/contacts')?.body).toEqual({
      address: 'zodiac-zombie lemon engine',
      name: 'Carol',
    });

    await user.click(within(dialog).getByRole('button', { name: 'Add contact' }));
    const verify = await screen.findByRole('dialog', { name: 'Carol added' });
    const number = await within(verify).findByRole('list', { name: `Safety number: ${SAFETY}` });
    expect(within(number).getAllByRole('listitem')).toHaveLength(12);
    expect(screen.getByRole('button', { name: /^Carol/ })).toBeInTheDocument();

    await user.click(within(verify).getByRole('button', { name: 'Mark verified' }));
    expect(await within(verify).findByText(/Carol is verified/)).toHaveFocus();
    expect(calls.some((c) => c.method === 'POST' && c.url === `/v1/contacts/${CAROL}/verify`)).toBe(true);

    await user.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(opener).toHaveFocus();
  });

  it('lists dead letters with their reason and retries them', async () => {
    const letter: DeadLetter = { id: '7'.repeat(32), to: BOB, attempts: 5, reason: 'recipient unreachable', failed_at: Date.now(), preview: 'text 7' };
    const { user, calls } = start({
      'GET /v1/outbox/dead': json(200, [letter]),
      [`POST /v1/outbox/${letter.id}/retry`]: json(202, { id: letter.id, status: 'queued' }),
    });
    await user.click(await screen.findByRole('button', { name: /Dead letters/ }));
    const view = screen.getByRole('region', { name: 'Dead letters' });
    expect(await within(view).findByText('recipient unreachable')).toBeInTheDocument();
    expect(within(view).getByText(/after 5 attempts/)).toBeInTheDocument();

    await user.click(within(view).getByRole('button', { name: 'Retry the message to Bob' }));

    expect(calls.some((c) => c.method === 'POST' && c.url === `/v1/outbox/${letter.id}/retry`)).toBe(true);
    await waitFor(() => expect(within(view).queryByText('recipient unreachable')).not.toBeInTheDocument());
  });

  it('refetches after the event stream lagged', async () => {
    const { calls } = start();
    const ws = await openSocket();
    const before = calls.filter((c) => c.url === '/v1/contacts').length;
    act(() => ws.receive({ type: 'lagged', missed: 3 }));
    await waitFor(() => expect(calls.filter((c) => c.url === '/v1/contacts').length).toBe(before + 1));
  });

  it('shows one pane at a time with a way back, for narrow screens', async () => {
    const { user } = start();
    await screen.findByRole('button', { name: /^Bob/ }); // The messenger shows once the identity is known.
    const app = document.querySelector('.app');
    expect(app).toHaveAttribute('data-pane', 'list');
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    expect(app).toHaveAttribute('data-pane', 'main');

    await user.click(screen.getByRole('button', { name: 'Back to contacts' }));
    expect(app).toHaveAttribute('data-pane', 'list');
    expect(bobButton()).toHaveFocus();
  });
});

describe('Add contact dialog keys', () => {
  beforeEach(() => MockWebSocket.install());

  it('closes the suggestion list on the first Escape and the dialog on the second', async () => {
    const { user } = start();
    await user.click((await screen.findAllByRole('button', { name: 'Add contact' }))[0]!);
    const input = screen.getByRole('combobox', { name: 'Their four-word address' });
    await user.type(input, 'zo');
    expect(screen.getAllByRole('option')).toHaveLength(5);

    await user.keyboard('{Escape}');
    expect(screen.queryAllByRole('option')).toHaveLength(0);
    expect(screen.getByRole('dialog', { name: 'Add a contact' })).toBeInTheDocument();

    await user.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
  });

  it('keeps Tab inside the dialog', async () => {
    const { user } = start();
    await user.click((await screen.findAllByRole('button', { name: 'Add contact' }))[0]!);
    const dialog = screen.getByRole('dialog', { name: 'Add a contact' });
    for (let i = 0; i < 8; i += 1) {
      await user.tab();
      expect(dialog).toContainElement(document.activeElement as HTMLElement);
    }
    await user.tab({ shift: true });
    expect(dialog).toContainElement(document.activeElement as HTMLElement);
  });
});
