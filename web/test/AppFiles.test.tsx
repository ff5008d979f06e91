// Files through the whole app: sending by picker and by drop, and a received file
// moving live from the event stream to a download link.

import { act, createEvent, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../src/App';
import type { Attachment, Contact, NodeStatus } from '../src/api/types';
import { ALICE, BOB, json, mockFetch, MockWebSocket, MockXhr, testFile, unlockedIdentity } from './helpers';

const STATUS: NodeStatus = { address: ALICE, peer_id: '12D3KooW', listen_addrs: [], connected_peers: 1, outbox: 0, version: '0.1.0', peers: [] };
const BOB_CONTACT: Contact = { address: BOB, name: 'Bob', fingerprint: 'ab12', verified: false, added_at: 1 };
const FILE_ID = 'c'.repeat(32);
const SIZE = 200 * 1024;

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

async function openBob(user: ReturnType<typeof userEvent.setup>) {
  await user.click(await screen.findByRole('button', { name: /^Bob/ }));
  await waitFor(() => expect(MockWebSocket.instances.length).toBeGreaterThan(0));
  const ws = MockWebSocket.latest();
  act(() => ws.open());
  return { ws, log: await screen.findByRole('region', { name: 'Messages with Bob' }) };
}

function received(status: Attachment['status'] = 'pending'): Attachment {
  return { file_id: FILE_ID, name: 'photo.jpg', size: SIZE, blake3: 'ab'.repeat(32), media_type: 'image/jpeg', status, progress: 0 };
}

beforeEach(() => {
  MockWebSocket.install();
  MockXhr.install();
});
afterEach(() => vi.unstubAllGlobals());

describe('files in a conversation', () => {
  it('shows a received file moving live and links it once done', async () => {
    const { user } = start();
    const { ws, log } = await openBob(user);

    act(() =>
      ws.receive({ type: 'message_received', id: 'd'.repeat(32), from: BOB, text: 'from the trip', timestamp: Date.now(), position: 1e15, attachment: received() }),
    );
    expect(within(log).getByText('photo.jpg')).toBeInTheDocument();
    expect(within(log).getByText('from the trip')).toBeInTheDocument();
    expect(screen.getByText('Bob sent a file, photo.jpg: from the trip')).toBeInTheDocument();
    expect(within(log).queryByRole('link')).not.toBeInTheDocument();

    const event = { type: 'file_progress', file_id: FILE_ID, message_id: 'd'.repeat(32), peer: BOB, direction: 'in', size: SIZE };
    act(() => ws.receive({ ...event, bytes: SIZE / 2, status: 'downloading' }));
    expect(within(log).getByRole('progressbar', { name: 'Downloading photo.jpg' })).toHaveAttribute('aria-valuenow', '50');
    expect(within(log).getByText(/Downloading… 50%/)).toBeInTheDocument();

    act(() => ws.receive({ ...event, bytes: SIZE, status: 'done' }));
    expect(within(log).queryByRole('progressbar')).not.toBeInTheDocument();
    expect(within(log).getByRole('link', { name: 'Save again: photo.jpg' })).toHaveAttribute('href', `/v1/files/${FILE_ID}/content`);
  });

  it('fetches a too-large file on request and follows its progress', async () => {
    const { user, calls } = start({
      [`GET /v1/conversations/${BOB}/messages`]: json(200, [
        { id: 'd'.repeat(32), from: BOB, to: ALICE, direction: 'in', text: '', timestamp: Date.now(), status: 'delivered', attachment: received('too_large') },
      ]),
      [`POST /v1/files/${FILE_ID}/fetch`]: json(202, { ...received('downloading'), progress: 0 }),
    });
    const { log } = await openBob(user);
    await user.click(await within(log).findByRole('button', { name: 'Fetch photo.jpg' }));
    expect(calls.some((c) => c.method === 'POST' && c.url === `/v1/files/${FILE_ID}/fetch`)).toBe(true);
    expect(await within(log).findByRole('progressbar', { name: 'Downloading photo.jpg' })).toHaveAttribute('aria-valuenow', '0');
    expect(within(log).queryByRole('button', { name: /Fetch/ })).not.toBeInTheDocument();
  });

  it('uploads a picked file with its caption, then shows it in the conversation', async () => {
    const { user } = start();
    const { ws, log } = await openBob(user);
    const file = testFile('notes.txt', 4096);
    await user.upload(screen.getByTestId('file-picker'), file);
    const box = screen.getByRole('textbox', { name: 'Message to Bob' });
    await user.type(box, 'my notes{Enter}');

    const xhr = MockXhr.latest();
    expect(new URL(xhr.url, 'http://x').searchParams.get('to')).toBe(BOB);
    act(() => xhr.progress(1024, 4096));
    expect(screen.getByRole('progressbar', { name: 'Uploading notes.txt' })).toHaveAttribute('aria-valuenow', '25');
    act(() => xhr.respond(202, { id: 'e'.repeat(32), file_id: FILE_ID, status: 'queued' }));

    const link = await within(log).findByRole('link', { name: 'Download notes.txt' });
    expect(link).toHaveAttribute('href', `/v1/files/${FILE_ID}/content`);
    expect(within(log).getByText('my notes')).toBeInTheDocument();
    expect(within(log).getByText(/Offered to Bob/)).toBeInTheDocument();
    expect(box).toHaveValue('');
    expect(screen.queryByRole('group', { name: 'Attached file' })).not.toBeInTheDocument();

    // Bob fetches it: the sender sees how far.
    act(() =>
      ws.receive({ type: 'file_progress', file_id: FILE_ID, message_id: 'e'.repeat(32), peer: BOB, direction: 'out', bytes: 2048, size: 4096, status: 'offered' }),
    );
    expect(within(log).getByRole('progressbar', { name: 'Bob downloading notes.txt' })).toHaveAttribute('aria-valuenow', '50');
  });

  it('attaches files dropped on the conversation', async () => {
    const { user } = start();
    await openBob(user);
    const conversation = screen.getByRole('region', { name: 'Bob' });
    const files = [testFile('dropped.pdf', 100, 'application/pdf'), testFile('second.png', 50, 'image/png')];
    const dataTransfer = { types: ['Files'], files, dropEffect: 'none' };

    fireEvent.dragEnter(conversation, { dataTransfer });
    expect(screen.getByText('Drop files to send them to Bob')).toBeInTheDocument();
    const drop = createEvent.drop(conversation, { dataTransfer });
    fireEvent(conversation, drop);
    expect(drop.defaultPrevented).toBe(true);

    expect(screen.queryByText('Drop files to send them to Bob')).not.toBeInTheDocument();
    const attached = screen.getByRole('group', { name: '2 attached files' });
    expect(attached).toHaveTextContent('dropped.pdf');
    expect(attached).toHaveTextContent('second.png');
  });

  it('keeps the browser from leaving the app for a file dropped beside the conversation', async () => {
    const { user } = start();
    await openBob(user);
    const sidebar = screen.getByRole('navigation', { name: 'Conversations' });
    const drop = createEvent.drop(sidebar, { dataTransfer: { types: ['Files'], files: [testFile()], dropEffect: 'copy' } });
    fireEvent(sidebar, drop);
    expect(drop.defaultPrevented).toBe(true);
    expect(screen.queryByRole('group', { name: 'Attached file' })).not.toBeInTheDocument();
  });

  it('ignores text dragged over the conversation', async () => {
    const { user } = start();
    await openBob(user);
    const conversation = screen.getByRole('region', { name: 'Bob' });
    fireEvent.dragEnter(conversation, { dataTransfer: { types: ['text/plain'], files: [] } });
    expect(screen.queryByText(/Drop a file/)).not.toBeInTheDocument();
  });
});
