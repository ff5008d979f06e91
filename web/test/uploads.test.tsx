// The app's upload queue: uploads outlive the conversation they were sent from,
// several files go one after another, each can be cancelled or retried, and the
// tab asks before closing while any is on its way.

import { uploadsText } from '../src/components/ContactList';
import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../src/App';
import type { Contact, NodeStatus } from '../src/api/types';
import { ALICE, BOB, CAROL, json, mockFetch, MockWebSocket, MockXhr, testFile , unlockedIdentity } from './helpers';

const STATUS: NodeStatus = { address: ALICE, peer_id: '12D3KooW', listen_addrs: [], connected_peers: 1, outbox: 0, version: '0.1.0', peers: [] };
const CONTACTS: Contact[] = [
  { address: BOB, name: 'Bob', fingerprint: 'ab12', verified: false, added_at: 1 },
  { address: CAROL, name: 'Carol', fingerprint: 'cd34', verified: false, added_at: 2 },
];

function start() {
  const mock = mockFetch({
    'GET /v1/identity': unlockedIdentity(),
    'GET /v1/status': json(200, STATUS),
    'GET /v1/contacts': json(200, CONTACTS),
    'GET /v1/outbox/dead': json(200, []),
    'POST /v1/lock': json(200, { state: 'locked', address: null, name: null }),
    [`GET /v1/conversations/${BOB}/messages`]: json(200, []),
    [`GET /v1/conversations/${CAROL}/messages`]: json(200, []),
  });
  const user = userEvent.setup();
  render(<App fetch={mock.fetch} />);
  return { ...mock, user };
}

async function open(user: ReturnType<typeof userEvent.setup>, name: 'Bob' | 'Carol') {
  await user.click(await screen.findByRole('button', { name: new RegExp(`^${name}`) }));
  return screen.findByRole('region', { name: `Messages with ${name}` });
}

/** Picks `files` in the open conversation and sends them with `caption`. */
async function send(user: ReturnType<typeof userEvent.setup>, files: File[], caption = '') {
  await user.upload(screen.getByTestId('file-picker'), files);
  await user.click(screen.getByRole('textbox', { name: /^Message to/ }));
  await user.keyboard(`${caption}{Enter}`);
}

/** The file name an upload request carries. */
const nameOf = (xhr: MockXhr) => new URL(xhr.url, 'http://node').searchParams.get('name');
const captionOf = (xhr: MockXhr) => new URL(xhr.url, 'http://node').searchParams.get('text');

let n = 0;
/** The node's answer to an upload: a fresh message and file id. */
function queued() {
  n += 1;
  return { id: n.toString(16).padStart(32, 'e'), file_id: n.toString(16).padStart(32, 'f'), status: 'queued' };
}

/** Whether closing the tab now would ask first. */
function closingAsks(): boolean {
  const event = new Event('beforeunload', { cancelable: true });
  window.dispatchEvent(event);
  return event.defaultPrevented;
}

beforeEach(() => {
  MockWebSocket.install();
  MockXhr.install();
});
afterEach(() => vi.unstubAllGlobals());

describe('uploads', () => {
  it('keep going while another conversation is open, and show their progress on return', async () => {
    const { user } = start();
    await open(user, 'Bob');
    await send(user, [testFile('notes.txt', 4096)], 'my notes');
    const xhr = MockXhr.latest();
    act(() => xhr.progress(1024, 4096));
    expect(screen.getByRole('progressbar', { name: 'Uploading notes.txt' })).toHaveAttribute('aria-valuenow', '25');

    const carol = await open(user, 'Carol');
    expect(xhr.aborted).toBe(false);
    // The contact list says a file is still on its way to Bob.
    expect(screen.getByRole('button', { name: /^Bob/ })).toHaveTextContent('Sending 1 file…');
    // Bob's upload is not shown in Carol's conversation.
    expect(within(carol).queryByText('notes.txt')).not.toBeInTheDocument();
    expect(screen.queryByRole('progressbar')).not.toBeInTheDocument();
    act(() => xhr.progress(3072, 4096));

    const bob = await open(user, 'Bob');
    expect(within(bob).getByRole('progressbar', { name: 'Uploading notes.txt' })).toHaveAttribute('aria-valuenow', '75');
    expect(within(bob).getByText('my notes')).toBeInTheDocument();

    act(() => xhr.respond(202, queued()));
    expect(await within(bob).findByRole('link', { name: 'Download notes.txt' })).toBeInTheDocument();
    expect(within(bob).queryByRole('progressbar')).not.toBeInTheDocument();
    expect(MockXhr.instances).toHaveLength(1);
    expect(screen.getByRole('button', { name: /^Bob/ })).not.toHaveTextContent('Sending');
  });

  it('sends several files one after another, the caption with the first only', async () => {
    const { user } = start();
    const log = await open(user, 'Bob');
    await send(user, [testFile('a.txt', 100), testFile('b.txt', 200), testFile('c.txt', 300)], 'three files');

    const pending = within(log).getByRole('list', { name: 'Files being sent' });
    expect(within(pending).getAllByRole('listitem')).toHaveLength(3);
    expect(within(pending).getAllByText('Waiting to upload')).toHaveLength(2);
    // One request at a time.
    expect(MockXhr.instances).toHaveLength(1);

    for (const [i, name] of ['a.txt', 'b.txt', 'c.txt'].entries()) {
      await waitFor(() => expect(MockXhr.instances).toHaveLength(i + 1));
      const xhr = MockXhr.latest();
      expect(nameOf(xhr)).toBe(name);
      expect(captionOf(xhr)).toBe(i === 0 ? 'three files' : null);
      act(() => xhr.respond(202, queued()));
      expect(await within(log).findByRole('link', { name: `Download ${name}` })).toBeInTheDocument();
    }
    expect(within(log).queryByRole('list', { name: 'Files being sent' })).not.toBeInTheDocument();
    expect(MockXhr.instances).toHaveLength(3);
  });

  it('cancels one upload without cancelling the others', async () => {
    const { user } = start();
    const log = await open(user, 'Bob');
    await send(user, [testFile('a.txt'), testFile('b.txt'), testFile('c.txt')]);
    const first = MockXhr.latest();

    // The running one: its request is aborted and the next starts.
    await user.click(within(log).getByRole('button', { name: 'Cancel uploading a.txt' }));
    expect(first.aborted).toBe(true);
    await waitFor(() => expect(MockXhr.instances).toHaveLength(2));
    const second = MockXhr.latest();
    expect(nameOf(second)).toBe('b.txt');
    expect(within(log).queryByText('a.txt')).not.toBeInTheDocument();

    // A waiting one: taken off the queue, never requested.
    await user.click(within(log).getByRole('button', { name: 'Cancel uploading c.txt' }));
    expect(within(log).queryByText('c.txt')).not.toBeInTheDocument();
    expect(second.aborted).toBe(false);

    act(() => second.respond(202, queued()));
    expect(await within(log).findByRole('link', { name: 'Download b.txt' })).toBeInTheDocument();
    expect(MockXhr.instances).toHaveLength(2);
  });

  it('says why an upload failed and retries it', async () => {
    const { user } = start();
    const log = await open(user, 'Bob');
    await send(user, [testFile('movie.mkv', 3 * 1024 * 1024), testFile('small.txt', 10)], 'our film');
    act(() =>
      MockXhr.latest().respond(413, { error: { code: 'file_too_large', message: 'the file is 3145728 bytes; the limit is 1048576 bytes' } }),
    );
    expect(await within(log).findByRole('alert')).toHaveTextContent(
      '“movie.mkv” (3 MiB) is too large to send; your node sends files up to 1 MiB.',
    );
    // The failure does not hold up the rest of the queue.
    await waitFor(() => expect(MockXhr.instances).toHaveLength(2));
    act(() => MockXhr.latest().respond(202, queued()));
    expect(await within(log).findByRole('link', { name: 'Download small.txt' })).toBeInTheDocument();

    await user.click(within(log).getByRole('button', { name: 'Retry uploading movie.mkv' }));
    await waitFor(() => expect(MockXhr.instances).toHaveLength(3));
    const again = MockXhr.latest();
    expect(nameOf(again)).toBe('movie.mkv');
    expect(captionOf(again)).toBe('our film');
    expect(within(log).queryByRole('alert')).not.toBeInTheDocument();
    act(() => again.respond(202, queued()));
    expect(await within(log).findByRole('link', { name: 'Download movie.mkv' })).toBeInTheDocument();
    expect(within(log).queryByRole('list', { name: 'Files being sent' })).not.toBeInTheDocument();
  });

  it('discards a failed upload', async () => {
    const { user } = start();
    const log = await open(user, 'Bob');
    await send(user, [testFile('broken.bin')]);
    act(() => MockXhr.latest().fail());
    expect(await within(log).findByRole('alert')).toHaveTextContent('The upload was cut off');
    await user.click(within(log).getByRole('button', { name: 'Discard broken.bin' }));
    expect(within(log).queryByText('broken.bin')).not.toBeInTheDocument();
    expect(MockXhr.instances).toHaveLength(1);
  });

  it('asks before the tab closes only while an upload is on its way', async () => {
    const { user } = start();
    await open(user, 'Bob');
    expect(closingAsks()).toBe(false);

    await send(user, [testFile('a.txt'), testFile('b.txt')]);
    expect(closingAsks()).toBe(true);
    act(() => MockXhr.latest().respond(202, queued()));
    await waitFor(() => expect(MockXhr.instances).toHaveLength(2));
    // One done, one still going.
    expect(closingAsks()).toBe(true);
    act(() => MockXhr.latest().fail());
    await screen.findByRole('alert');
    // Only a failed one left: nothing would be cut off.
    await waitFor(() => expect(closingAsks()).toBe(false));

    await user.click(screen.getByRole('button', { name: 'Retry uploading b.txt' }));
    expect(closingAsks()).toBe(true);
    act(() => MockXhr.latest().respond(202, queued()));
    await waitFor(() => expect(closingAsks()).toBe(false));
  });
});

describe('locking while files are being sent', () => {
  it('asks first, and a no keeps the node unlocked and the upload going', async () => {
    const { user, calls } = start();
    await open(user, 'Bob');
    await send(user, [testFile('notes.txt', 4096)]);
    const xhr = MockXhr.latest();
    const confirm = vi.fn(() => false);
    vi.stubGlobal('confirm', confirm);
    await user.click(screen.getByRole('button', { name: 'Lock' }));
    expect(confirm).toHaveBeenCalledWith('1 file is still being sent and will stop. Lock anyway?');
    expect(calls.some((c) => c.method === 'POST' && c.url === '/v1/lock')).toBe(false);
    expect(xhr.aborted).toBe(false);

    confirm.mockReturnValue(true);
    await user.click(screen.getByRole('button', { name: 'Lock' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'POST' && c.url === '/v1/lock')).toBe(true));
  });
});

describe('uploadsText', () => {
  it('says what is on its way, and failures first', () => {
    expect(uploadsText(undefined)).toBeNull();
    expect(uploadsText({ sending: 0, failed: 0 })).toBeNull();
    expect(uploadsText({ sending: 2, failed: 0 })).toBe('Sending 2 files…');
    expect(uploadsText({ sending: 3, failed: 1 })).toBe('1 file not sent');
  });
});
