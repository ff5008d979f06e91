// The screens before and around the messenger: loading, first run, unlock, lock,
// sign out (decision 0013).

import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../src/App';
import type { Contact, IdentityState, NodeStatus } from '../src/api/types';
import { ALICE, apiError, BOB, json, mockFetch, MockWebSocket, type Call } from './helpers';

const STATUS: NodeStatus = { address: ALICE, peer_id: '12D3KooW', listen_addrs: [], connected_peers: 1, outbox: 0, version: '0.1.0', peers: [] };
const BOB_CONTACT: Contact = { address: BOB, name: 'Bob', fingerprint: 'ab12', verified: false, added_at: 1 };
const PASSPHRASE = 'correct horse battery';

function identity(state: IdentityState, name: string | null = null) {
  return state === 'unlocked' ? { state, address: ALICE, name } : { state, address: null, name: null };
}

/** A reply the test settles by hand, to look at the app while a request is pending. */
function deferred() {
  let settle: (response: Response) => void = () => {};
  const reply = new Promise<Response>((resolve) => {
    settle = resolve;
  });
  return { reply: () => reply, settle };
}

/**
 * The app against a node whose identity is `state`. The identity routes follow
 * that state (create, unlock and lock change it); messenger routes answer 423
 * while it is not unlocked, as the node does.
 */
function start(state: IdentityState, routes: Parameters<typeof mockFetch>[0] = {}) {
  const node = { state };
  const unlockedOnly = (body: unknown) => () =>
    node.state === 'unlocked' ? json(200, body) : apiError(423, 'locked', 'the identity is locked');
  const mock = mockFetch({
    'GET /v1/identity': () => json(200, identity(node.state)),
    'POST /v1/identity': () => {
      node.state = 'unlocked';
      return json(201, identity('unlocked', 'Alice'));
    },
    'POST /v1/unlock': (call: Call) => {
      if ((call.body as { passphrase: string }).passphrase !== PASSPHRASE) {
        return apiError(403, 'wrong_passphrase', 'wrong passphrase');
      }
      node.state = 'unlocked';
      return json(200, identity('unlocked'));
    },
    'POST /v1/lock': () => {
      node.state = 'locked';
      return json(200, identity('locked'));
    },
    'POST /v1/logout': new Response(null, { status: 204 }),
    'GET /v1/status': unlockedOnly(STATUS),
    'GET /v1/contacts': unlockedOnly([BOB_CONTACT]),
    'GET /v1/outbox/dead': unlockedOnly([]),
    [`GET /v1/conversations/${BOB}/messages`]: unlockedOnly([]),
    ...routes,
  });
  const user = userEvent.setup();
  render(<App fetch={mock.fetch} />);
  const sent = (method: string, url: string) => mock.calls.filter((c) => c.method === method && c.url === url);
  return { ...mock, node, user, sent };
}

const messenger = () => screen.findByRole('navigation', { name: 'Conversations' });
const unlockScreen = () => screen.findByRole('heading', { name: 'Unlock Communitas' });

beforeEach(() => MockWebSocket.install());
afterEach(() => vi.unstubAllGlobals());

describe('the gate', () => {
  it('shows a neutral loading state until the node says where the identity stands', async () => {
    const pending = deferred();
    start('unlocked', { 'GET /v1/identity': pending.reply });

    expect(screen.getByRole('status')).toHaveTextContent('Loading…');
    expect(screen.queryByRole('navigation', { name: 'Conversations' })).not.toBeInTheDocument();
    expect(screen.queryByRole('heading')).not.toBeInTheDocument();

    act(() => pending.settle(json(200, identity('unlocked'))));
    expect(await messenger()).toBeInTheDocument();
  });

  it('shows the first-run screen for a new node, and asks nothing of the messenger', async () => {
    const { calls } = start('new');
    const heading = await screen.findByRole('heading', { name: 'Set up Communitas' });
    // Focus moves in an effect after the screen renders: wait for it, not for a tick.
    await waitFor(() => expect(heading).toHaveFocus());
    expect(screen.getByText(/no account recovery/)).toBeInTheDocument();
    expect(calls.map((c) => c.url)).toEqual(['/v1/identity']);
    expect(MockWebSocket.instances).toHaveLength(0);
  });

  it('shows the unlock screen for a locked node, with the passphrase field focused', async () => {
    const { calls } = start('locked');
    await unlockScreen();
    const field = screen.getByLabelText('Passphrase');
    expect(field).toHaveFocus();
    expect(field).toHaveAttribute('type', 'password');
    expect(field).toHaveAttribute('autocomplete', 'current-password');
    expect(calls.map((c) => c.url)).toEqual(['/v1/identity']);
  });

  it('shows the messenger for an unlocked node', async () => {
    start('unlocked');
    expect(await messenger()).toBeInTheDocument();
    expect(await screen.findByRole('button', { name: /^Bob/ })).toBeInTheDocument();
  });

  it('shows "Not signed in" when the identity request answers 401', async () => {
    start('unlocked', { 'GET /v1/identity': apiError(401, 'unauthorized', 'no session') });
    expect(await screen.findByRole('heading', { name: 'Not signed in' })).toBeInTheDocument();
    expect(screen.getByText(/prints a fresh one/)).toHaveTextContent('communitas login-link');
  });

  it('says why when the node cannot be asked, and asks again on "Try again"', async () => {
    let attempts = 0;
    const { user } = start('unlocked', {
      'GET /v1/identity': () =>
        ++attempts === 1 ? apiError(500, 'internal', 'the keystore could not be read') : json(200, identity('locked')),
    });
    expect(await screen.findByRole('alert')).toHaveTextContent('the keystore could not be read');

    await user.click(screen.getByRole('button', { name: 'Try again' }));
    await unlockScreen();
    expect(attempts).toBe(2);
  });
});

describe('first run', () => {
  async function fill(user: ReturnType<typeof userEvent.setup>, passphrase: string, confirm: string, name = '') {
    await screen.findByRole('heading', { name: 'Set up Communitas' });
    if (name) await user.type(screen.getByLabelText(/Display name/), name);
    await user.type(screen.getByLabelText('Passphrase'), passphrase);
    await user.type(screen.getByLabelText('Confirm passphrase'), confirm);
    await user.click(screen.getByRole('button', { name: 'Create identity' }));
  }

  it('says the name is public, and asks for at least 8 characters without sending anything', async () => {
    const { user, sent } = start('new');
    await screen.findByRole('heading', { name: 'Set up Communitas' });
    expect(screen.getByLabelText(/Display name/)).toHaveAccessibleDescription(/anyone who looks your address up can see it/);

    await fill(user, 'short', 'short');

    const field = screen.getByLabelText('Passphrase');
    expect(field).toHaveFocus();
    expect(field).toHaveAttribute('aria-invalid', 'true');
    expect(field).toHaveAccessibleDescription(/The passphrase is too short: use at least 8 characters\./);
    expect(sent('POST', '/v1/identity')).toHaveLength(0);
  });

  it('refuses passphrases that do not match', async () => {
    const { user, sent } = start('new');
    await fill(user, PASSPHRASE, `${PASSPHRASE}!`);

    const confirm = screen.getByLabelText('Confirm passphrase');
    expect(confirm).toHaveFocus();
    expect(confirm).toHaveAccessibleDescription('The passphrases do not match.');
    expect(screen.getByLabelText('Passphrase')).not.toHaveAttribute('aria-invalid', 'true');
    expect(sent('POST', '/v1/identity')).toHaveLength(0);
  });

  it('refuses a display name over 64 bytes', async () => {
    const { user, sent } = start('new');
    // 33 two-byte letters: 33 characters, 66 bytes.
    await fill(user, PASSPHRASE, PASSPHRASE, 'é'.repeat(33));
    expect(screen.getByLabelText(/Display name/)).toHaveFocus();
    expect(screen.getByText(/The name is too long/)).toBeInTheDocument();
    expect(sent('POST', '/v1/identity')).toHaveLength(0);
  });

  it('shows and hides the passphrases', async () => {
    const { user } = start('new');
    await screen.findByRole('heading', { name: 'Set up Communitas' });
    await user.click(screen.getByRole('checkbox', { name: 'Show passphrase' }));
    expect(screen.getByLabelText('Passphrase')).toHaveAttribute('type', 'text');
    expect(screen.getByLabelText('Confirm passphrase')).toHaveAttribute('type', 'text');
    await user.click(screen.getByRole('checkbox', { name: 'Show passphrase' }));
    expect(screen.getByLabelText('Passphrase')).toHaveAttribute('type', 'password');
  });

  it('creates the identity, saying so while the keys are made, then shows the messenger', async () => {
    const pending = deferred();
    const { user, sent } = start('new', { 'POST /v1/identity': pending.reply });
    await fill(user, PASSPHRASE, PASSPHRASE, '  Alice ');

    const busy = screen.getByRole('button', { name: 'Creating your keys…' });
    expect(busy).toBeDisabled();
    expect(busy).toHaveAttribute('aria-busy', 'true');
    expect(sent('POST', '/v1/identity')[0]?.body).toEqual({ passphrase: PASSPHRASE, name: 'Alice' });

    act(() => pending.settle(json(201, identity('unlocked', 'Alice'))));
    expect(await messenger()).toBeInTheDocument();
    expect(screen.getByText(/Your display name/).closest('p')).toHaveTextContent('Your display name: Alice');
  });

  it('shows the node refusing inline and keeps what was typed', async () => {
    const { user } = start('new', {
      'POST /v1/identity': apiError(400, 'invalid_request', 'the name has a control character'),
    });
    await fill(user, PASSPHRASE, PASSPHRASE, 'Alice');

    expect(await screen.findByRole('alert')).toHaveTextContent('the name has a control character');
    expect(screen.getByLabelText(/Display name/)).toHaveValue('Alice');
    expect(screen.getByLabelText('Passphrase')).toHaveValue(PASSPHRASE);
    expect(screen.getByLabelText('Confirm passphrase')).toHaveValue(PASSPHRASE);
    expect(screen.getByRole('button', { name: 'Create identity' })).toBeEnabled();
  });
});

describe('unlock', () => {
  it('says a wrong passphrase, clears the field and focuses it; the right one opens the messenger', async () => {
    const { user, sent } = start('locked');
    await unlockScreen();
    const field = screen.getByLabelText('Passphrase');

    await user.type(field, 'not it');
    await user.click(screen.getByRole('button', { name: 'Unlock' }));

    expect(await screen.findByRole('alert')).toHaveTextContent('Wrong passphrase');
    expect(field).toHaveValue('');
    expect(field).toHaveFocus();
    expect(field).toHaveAccessibleDescription('Wrong passphrase');

    await user.type(field, `${PASSPHRASE}{Enter}`);
    expect(await messenger()).toBeInTheDocument();
    expect(sent('POST', '/v1/unlock').map((c) => c.body)).toEqual([{ passphrase: 'not it' }, { passphrase: PASSPHRASE }]);
  });

  it('is busy while the node checks the passphrase', async () => {
    const pending = deferred();
    const { user } = start('locked', { 'POST /v1/unlock': pending.reply });
    await unlockScreen();
    await user.type(screen.getByLabelText('Passphrase'), `${PASSPHRASE}{Enter}`);

    const busy = screen.getByRole('button', { name: 'Unlocking…' });
    expect(busy).toBeDisabled();
    expect(busy).toHaveAttribute('aria-busy', 'true');
    act(() => pending.settle(apiError(503, 'busy', 'another unlock is in progress')));
    expect(await screen.findByRole('alert')).toHaveTextContent('another unlock is in progress');
    expect(screen.getByLabelText('Passphrase')).toHaveValue(PASSPHRASE);
  });

  it('asks again when the node was unlocked elsewhere meanwhile', async () => {
    const { user, node } = start('locked', {
      'POST /v1/unlock': () => {
        node.state = 'unlocked';
        return apiError(409, 'already_unlocked', 'already unlocked');
      },
    });
    await unlockScreen();
    await user.type(screen.getByLabelText('Passphrase'), `${PASSPHRASE}{Enter}`);
    expect(await messenger()).toBeInTheDocument();
  });
});

describe('locking', () => {
  it('shows the unlock screen when a messenger request answers 423', async () => {
    const { node, sent } = start('unlocked', {
      'GET /v1/outbox/dead': () => {
        node.state = 'locked'; // Locked from the command line just now.
        return apiError(423, 'locked', 'the identity is locked');
      },
    });
    await unlockScreen();
    expect(screen.queryByRole('navigation', { name: 'Conversations' })).not.toBeInTheDocument();
    // Asked at start, and again to be sure.
    expect(sent('GET', '/v1/identity').length).toBeGreaterThanOrEqual(2);
  });

  it('shows the unlock screen on the locked event, and a fresh messenger after unlocking', async () => {
    const { user, node, sent } = start('unlocked');
    await user.click(await screen.findByRole('button', { name: /^Bob/ }));
    await screen.findByRole('region', { name: 'Messages with Bob' });
    await waitFor(() => expect(MockWebSocket.instances.length).toBeGreaterThan(0));
    const ws = MockWebSocket.latest();
    act(() => ws.open());
    const statusFetches = sent('GET', '/v1/status').length;

    node.state = 'locked';
    act(() => ws.receive({ type: 'locked' }));

    await unlockScreen();
    expect(screen.queryByRole('region', { name: 'Messages with Bob' })).not.toBeInTheDocument();
    expect(ws.closedByClient).toBe(true);

    await user.type(screen.getByLabelText('Passphrase'), `${PASSPHRASE}{Enter}`);
    // A new messenger: it fetches again and starts on the welcome pane, not in Bob's conversation.
    expect(await screen.findByRole('region', { name: 'Welcome to Communitas' })).toBeInTheDocument();
    expect(screen.queryByRole('region', { name: 'Messages with Bob' })).not.toBeInTheDocument();
    await waitFor(() => expect(sent('GET', '/v1/status').length).toBeGreaterThan(statusFetches));
  });

  it('locks from the sidebar', async () => {
    const { user, sent } = start('unlocked');
    const sidebar = await screen.findByRole('complementary', { name: 'Contacts and your address' });

    await user.click(within(sidebar).getByRole('button', { name: 'Lock' }));

    await unlockScreen();
    expect(sent('POST', '/v1/lock')).toHaveLength(1);
    expect(screen.getByLabelText('Passphrase')).toHaveFocus();
  });

  it('says why the lock failed and stays', async () => {
    const { user } = start('unlocked', { 'POST /v1/lock': apiError(500, 'internal', 'the node did not stop') });
    const sidebar = await screen.findByRole('complementary', { name: 'Contacts and your address' });
    await user.click(within(sidebar).getByRole('button', { name: 'Lock' }));
    expect(await within(sidebar).findByText('the node did not stop')).toHaveAttribute('role', 'alert');
    expect(within(sidebar).getByRole('button', { name: 'Lock' })).toBeEnabled();
  });

  it('signs out from the sidebar, then tells how to get a new login link', async () => {
    const { user, sent } = start('unlocked');
    const sidebar = await screen.findByRole('complementary', { name: 'Contacts and your address' });

    await user.click(within(sidebar).getByRole('button', { name: 'Sign out' }));

    const heading = await screen.findByRole('heading', { name: 'Signed out' });
    expect(heading).toHaveFocus();
    expect(sent('POST', '/v1/logout')).toHaveLength(1);
    expect(screen.getByText(/To sign in again/)).toHaveTextContent('run communitas login-link');
    expect(screen.queryByRole('navigation', { name: 'Conversations' })).not.toBeInTheDocument();
  });
});
