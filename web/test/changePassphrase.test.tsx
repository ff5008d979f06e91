// "Change passphrase" in the sidebar's account area (decision 0014).

import { act, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AccountActions } from '../src/components/AccountActions';
import { changePassphraseProblem } from '../src/components/ChangePassphraseDialog';
import { apiError, json, mockFetch, renderWithSession, type Call } from './helpers';

const CURRENT = 'correct horse battery';
const NEXT = 'tangerine walrus lantern';

/** A reply the test settles by hand, to look at the dialog while a request is pending. */
function deferred() {
  let settle: (response: Response) => void = () => {};
  const reply = new Promise<Response>((resolve) => {
    settle = resolve;
  });
  return { reply: () => reply, settle };
}

/** The account area against a node whose passphrase is `CURRENT`. */
function start(routes: Parameters<typeof mockFetch>[0] = {}) {
  const mock = mockFetch({
    'POST /v1/passphrase': (call: Call) =>
      (call.body as { old: string }).old === CURRENT
        ? json(200, { changed: true })
        : apiError(403, 'wrong_passphrase', 'wrong passphrase'),
    ...routes,
  });
  const user = userEvent.setup();
  renderWithSession(<AccountActions />, mock.fetch);
  const sent = () => mock.calls.filter((c) => c.method === 'POST' && c.url === '/v1/passphrase');
  return { ...mock, user, sent };
}

async function open(user: ReturnType<typeof userEvent.setup>) {
  await user.click(screen.getByRole('button', { name: 'Change passphrase' }));
  return screen.getByRole('dialog', { name: 'Change passphrase' });
}

/** The dialog's submit button (the opener has the same name, outside the dialog). */
const submit = () => within(screen.getByRole('dialog')).getByRole('button', { name: /^Change passphrase$|^Changing…$/ });

afterEach(() => vi.unstubAllGlobals());

describe('the change passphrase dialog', () => {
  it('opens from the account area with the current passphrase focused, and closes on Escape', async () => {
    const { user, sent } = start();
    const opener = screen.getByRole('button', { name: 'Change passphrase' });
    const dialog = await open(user);

    const current = within(dialog).getByLabelText('Current passphrase');
    expect(current).toHaveFocus();
    expect(current).toHaveAttribute('type', 'password');
    expect(current).toHaveAttribute('autocomplete', 'current-password');
    expect(within(dialog).getByLabelText('New passphrase')).toHaveAttribute('autocomplete', 'new-password');
    expect(within(dialog).getByLabelText('New passphrase')).toHaveAccessibleDescription(/At least 8 characters/);

    await user.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(opener).toHaveFocus();
    expect(sent()).toHaveLength(0);
  });

  it('asks for at least 8 characters and matching passphrases without sending anything', async () => {
    const { user, sent } = start();
    await open(user);
    await user.type(screen.getByLabelText('Current passphrase'), CURRENT);
    await user.type(screen.getByLabelText('New passphrase'), 'short');
    await user.type(screen.getByLabelText('Confirm new passphrase'), 'short');
    await user.click(submit());

    const next = screen.getByLabelText('New passphrase');
    expect(next).toHaveFocus();
    expect(next).toHaveAttribute('aria-invalid', 'true');
    expect(next).toHaveAccessibleDescription(/The passphrase is too short: use at least 8 characters\./);

    await user.clear(next);
    await user.type(next, NEXT);
    await user.clear(screen.getByLabelText('Confirm new passphrase'));
    await user.type(screen.getByLabelText('Confirm new passphrase'), `${NEXT}!`);
    await user.click(submit());

    const confirm = screen.getByLabelText('Confirm new passphrase');
    expect(confirm).toHaveFocus();
    expect(confirm).toHaveAccessibleDescription('The passphrases do not match.');
    expect(next).not.toHaveAttribute('aria-invalid', 'true');
    expect(sent()).toHaveLength(0);
  });

  it('shows and hides the passphrases', async () => {
    const { user } = start();
    await open(user);
    await user.click(screen.getByRole('checkbox', { name: 'Show passphrases' }));
    for (const label of ['Current passphrase', 'New passphrase', 'Confirm new passphrase']) {
      expect(screen.getByLabelText(label)).toHaveAttribute('type', 'text');
    }
    await user.click(screen.getByRole('checkbox', { name: 'Show passphrases' }));
    expect(screen.getByLabelText('New passphrase')).toHaveAttribute('type', 'password');
  });

  it('says a wrong current passphrase inline, clears it and focuses it; the right one changes it', async () => {
    const { user, sent } = start();
    await open(user);
    await user.type(screen.getByLabelText('Current passphrase'), 'not it');
    await user.type(screen.getByLabelText('New passphrase'), NEXT);
    await user.type(screen.getByLabelText('Confirm new passphrase'), NEXT);
    await user.click(submit());

    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('The current passphrase is wrong. Nothing was changed.');
    const current = screen.getByLabelText('Current passphrase');
    expect(current).toHaveValue('');
    expect(current).toHaveFocus();
    expect(current).toHaveAttribute('aria-invalid', 'true');
    expect(current).toHaveAccessibleDescription('The current passphrase is wrong. Nothing was changed.');
    expect(screen.getByLabelText('New passphrase')).toHaveValue(NEXT);

    await user.type(current, `${CURRENT}{Enter}`);
    expect(await screen.findByRole('status')).toHaveTextContent('Passphrase changed.');
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Change passphrase' })).toHaveFocus();
    expect(sent().map((c) => c.body)).toEqual([
      { old: 'not it', new: NEXT },
      { old: CURRENT, new: NEXT },
    ]);
  });

  it('is busy while the node re-encrypts, and stays open until it answers', async () => {
    const pending = deferred();
    const { user } = start({ 'POST /v1/passphrase': pending.reply });
    await open(user);
    await user.type(screen.getByLabelText('Current passphrase'), CURRENT);
    await user.type(screen.getByLabelText('New passphrase'), NEXT);
    await user.type(screen.getByLabelText('Confirm new passphrase'), `${NEXT}{Enter}`);

    const busy = submit();
    expect(busy).toHaveTextContent('Changing…');
    expect(busy).toBeDisabled();
    expect(busy).toHaveAttribute('aria-busy', 'true');
    expect(within(screen.getByRole('dialog')).getByRole('button', { name: 'Cancel' })).toBeDisabled();
    await user.keyboard('{Escape}');
    expect(screen.getByRole('dialog')).toBeInTheDocument();

    act(() => pending.settle(apiError(500, 'identity_error', 'cannot replace the keystore: disk full')));
    expect(await screen.findByRole('alert')).toHaveTextContent('cannot replace the keystore: disk full');
    expect(submit()).toBeEnabled();
    expect(submit()).toHaveFocus();
    expect(screen.getByLabelText('Current passphrase')).toHaveValue(CURRENT);
  });
});

describe('changePassphraseProblem', () => {
  it('checks the fields in order', () => {
    expect(changePassphraseProblem('', NEXT, NEXT)?.field).toBe('current');
    expect(changePassphraseProblem(CURRENT, 'seven77', 'seven77')?.field).toBe('next');
    // Eight characters, though more UTF-16 units.
    expect(changePassphraseProblem(CURRENT, '😀😀😀😀😀😀😀😀', '😀😀😀😀😀😀😀😀')).toBeNull();
    expect(changePassphraseProblem(CURRENT, CURRENT, CURRENT)?.message).toMatch(/same as the current one/);
    expect(changePassphraseProblem(CURRENT, NEXT, 'other')?.field).toBe('confirm');
    expect(changePassphraseProblem(CURRENT, NEXT, NEXT)).toBeNull();
  });
});
