// End-to-end: a node started with `communitas run --locked` on a fresh home, and
// Debian's Chromium. The login link opens the first-run screen; the user creates the
// identity by keyboard (a too-short passphrase is refused first, nothing sent), locks
// it, is refused with a wrong passphrase, unlocks with the right one, reloads (the
// session stays), changes the passphrase (a wrong current one first), locks and
// unlocks with the new one, then signs out (the API refuses the browser from then on).
// Screenshots go to e2e/artifacts/. Run with `npm run e2e` (COMMUNITAS_BIN set).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import { assertAccessible } from './a11y.mjs';

const bin = process.env.COMMUNITAS_BIN;
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const artifacts = new URL('./artifacts/', import.meta.url).pathname;
const PASSPHRASE = 'a long passphrase for carol';
const NEW_PASSPHRASE = 'another passphrase for carol';

/** Starts `run --locked` and resolves with its login link once its API is up. */
function startLocked(home) {
  const node = spawn(bin, ['--home', home, 'run', '--locked', '--listen', '/ip4/127.0.0.1/tcp/0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: node.stdout });
  let link = null;
  const ready = new Promise((resolve, reject) => {
    node.on('exit', (code) => reject(new Error(`run --locked exited early (${code})`)));
    lines.on('line', (line) => {
      const web = line.match(/^web UI\s+(http\S+)/);
      if (web) link = web[1];
      if (line.startsWith('api ')) resolve(link);
    });
  });
  const exited = new Promise((resolve) => node.on('exit', (code) => resolve(code)));
  return { node, ready, exited };
}

test('a new user creates, locks and unlocks an identity in the browser, by keyboard', { timeout: 120_000 }, async () => {
  assert.ok(bin, 'set COMMUNITAS_BIN to the communitas binary');
  mkdirSync(artifacts, { recursive: true });
  const home = mkdtempSync(join(tmpdir(), 'communitas-e2e-'));
  const { node, ready, exited } = startLocked(join(home, 'carol'));
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const link = await ready;
    assert.ok(link, 'run --locked printed a login link');
    const page = await (await browser.newContext({ viewport: { width: 375, height: 740 } })).newPage();
    await page.goto(link);

    // First run: the form, by keyboard. Too short first: refused in the page.
    await page.getByRole('heading', { name: 'Set up Communitas' }).waitFor();
    await page.getByLabel('Display name (optional)').focus();
    await page.keyboard.type('carol');
    await page.keyboard.press('Tab');
    await page.getByLabel('Passphrase', { exact: true }).focus();
    await page.keyboard.type('short');
    await page.getByLabel('Confirm passphrase').focus();
    await page.keyboard.type('short');
    await page.keyboard.press('Enter');
    await page.getByText('The passphrase is too short: use at least 8 characters.').waitFor();
    const pageToken = await page.evaluate(() => localStorage.getItem('communitas-page'));
    const ours = { headers: { 'X-Communitas-Page': pageToken } };
    const identity = await page.request.get(new URL('/v1/identity', link).href, ours);
    assert.equal((await identity.json()).state, 'new', 'nothing was created');

    await page.getByLabel('Passphrase', { exact: true }).fill('');
    await page.getByLabel('Passphrase', { exact: true }).focus();
    await page.keyboard.type(PASSPHRASE);
    await page.getByLabel('Confirm passphrase').fill('');
    await page.getByLabel('Confirm passphrase').focus();
    await page.keyboard.type(PASSPHRASE);
    await page.screenshot({ path: `${artifacts}first-run-375px.png`, fullPage: true });
    await assertAccessible(page, 'first run');
    await page.keyboard.press('Enter');

    // The messenger, with the new four-word address.
    const lock = page.getByRole('button', { name: 'Lock' });
    await lock.waitFor({ timeout: 30_000 });
    const created = await (await page.request.get(new URL('/v1/identity', link).href, ours)).json();
    assert.equal(created.state, 'unlocked');
    assert.equal(created.name, 'carol');
    assert.match(created.address, /^[a-z]+-[a-z]+-[a-z]+-[a-z]+$/);
    await page.getByText(created.address).first().waitFor();
    await page.screenshot({ path: `${artifacts}created-375px.png`, fullPage: true });
    await assertAccessible(page, 'messenger');

    // Lock; a wrong passphrase is refused, the right one opens the same identity.
    await lock.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Unlock Communitas' }).waitFor();
    const status = await page.request.get(new URL('/v1/status', link).href, ours);
    assert.equal(status.status(), 423, 'a locked node serves nothing of its data');
    const field = page.getByLabel('Passphrase', { exact: true });
    await field.focus();
    await page.keyboard.type('not the passphrase');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').getByText('Wrong passphrase').waitFor({ timeout: 10_000 });
    await page.screenshot({ path: `${artifacts}unlock-wrong-375px.png`, fullPage: true });
    await assertAccessible(page, 'unlock');
    await field.focus();
    await page.keyboard.type(PASSPHRASE);
    await page.keyboard.press('Enter');
    await lock.waitFor({ timeout: 10_000 });
    await page.getByText(created.address).first().waitFor();

    // A reload keeps the session and the unlocked identity.
    await page.reload();
    await lock.waitFor();

    // Change the passphrase by keyboard: a wrong current one is refused inline, the
    // right one closes the dialog; after a lock only the new one unlocks.
    await page.getByRole('button', { name: 'Change passphrase' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Change passphrase' });
    await dialog.waitFor();
    await page.keyboard.type('not the passphrase');
    await dialog.getByLabel('New passphrase', { exact: true }).focus();
    await page.keyboard.type(NEW_PASSPHRASE);
    await dialog.getByLabel('Confirm new passphrase').focus();
    await page.keyboard.type(NEW_PASSPHRASE);
    await page.keyboard.press('Enter');
    await dialog.getByRole('alert').getByText('The current passphrase is wrong').waitFor({ timeout: 10_000 });
    await page.screenshot({ path: `${artifacts}change-passphrase-wrong-375px.png`, fullPage: true });
    await page.keyboard.type(PASSPHRASE);
    await page.keyboard.press('Enter');
    await page.getByRole('status').getByText('Passphrase changed').waitFor({ timeout: 10_000 });
    assert.equal(await dialog.count(), 0, 'the dialog closed');
    await page.screenshot({ path: `${artifacts}passphrase-changed-375px.png`, fullPage: true });
    await lock.focus();
    await page.keyboard.press('Enter');
    await field.focus();
    await page.keyboard.type(PASSPHRASE);
    await page.keyboard.press('Enter');
    await page.getByRole('alert').getByText('Wrong passphrase').waitFor({ timeout: 10_000 });
    await field.focus();
    await page.keyboard.type(NEW_PASSPHRASE);
    await page.keyboard.press('Enter');
    await lock.waitFor({ timeout: 10_000 });

    // Signing out ends the session: the API refuses this browser from now on.
    await page.getByRole('button', { name: 'Sign out' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Signed out' }).waitFor();
    const after = await page.request.get(new URL('/v1/identity', link).href, ours);
    assert.equal(after.status(), 401);
    const kept = await page.evaluate(() => localStorage.getItem('communitas-page'));
    assert.equal(kept, null, 'signing out forgets the page token');
  } finally {
    await browser.close();
    node.kill('SIGTERM');
    assert.equal(await exited, 0, 'the node stopped cleanly');
    rmSync(home, { recursive: true, force: true });
  }
});
