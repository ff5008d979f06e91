// End-to-end: the real `communitas demo` (five nodes on 127.0.0.1) and Debian's
// Chromium driven by playwright-core. Alice and bob each open their login link; alice
// adds bob by his four words and writes to him by keyboard; bob's page shows it
// without a reload, and his reply reaches alice the same way. Then alice sends a file
// (picked by keyboard); bob's page shows it, its download link appears once his node
// has it, and the bytes behind the link are the ones sent. Screenshots go to
// e2e/artifacts/. Run with `npm run e2e` (COMMUNITAS_BIN = the communitas binary).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import { assertAccessible } from './a11y.mjs';

const bin = process.env.COMMUNITAS_BIN;
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const artifacts = new URL('./artifacts/', import.meta.url).pathname;

/** Starts the demo and resolves with what it printed once it is ready. */
function startDemo() {
  const demo = spawn(bin, ['demo'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: demo.stdout });
  const users = [];
  const links = [];
  const ready = new Promise((resolve, reject) => {
    demo.on('exit', (code) => reject(new Error(`demo exited early (${code})`)));
    lines.on('line', (line) => {
      const user = line.match(/^(alice|bob)\s+(\S+)$/);
      if (user) users.push(user[2]);
      const web = line.match(/^\s+web\s+(http\S+)$/);
      if (web) links.push(web[1]);
      if (line.startsWith('Ctrl-C stops')) resolve({ alice: users[0], bob: users[1], aliceLink: links[0], bobLink: links[1] });
    });
  });
  return { demo, ready };
}

/** 200 KiB of known, non-repeating-looking bytes. */
function knownBytes(size) {
  const bytes = Buffer.alloc(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i += 1) {
    // xorshift32: deterministic, and no run of zeros a broken transfer could fake.
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

test('alice and bob chat live in their browsers, by keyboard', { timeout: 180_000 }, async () => {
  assert.ok(bin, 'set COMMUNITAS_BIN to the communitas binary');
  mkdirSync(artifacts, { recursive: true });
  const { demo, ready } = startDemo();
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const { alice, bob, aliceLink, bobLink } = await ready;
    assert.match(alice, /^[a-z]+-[a-z]+-[a-z]+-[a-z]+$/);
    assert.ok(aliceLink && bobLink, 'the demo printed two login links');

    const alicePage = await (await browser.newContext()).newPage();
    const bobPage = await (await browser.newContext({ viewport: { width: 375, height: 740 } })).newPage();
    await alicePage.goto(aliceLink);
    await bobPage.goto(bobLink);
    await alicePage.getByText(alice).first().waitFor();

    // Alice adds bob by his four words.
    await alicePage.getByRole('button', { name: 'Add contact' }).focus();
    await alicePage.keyboard.press('Enter');
    await alicePage.getByRole('combobox', { name: 'Their four-word address' }).fill(bob.replaceAll('-', ' '));
    const submit = alicePage.getByRole('dialog').getByRole('button', { name: 'Add contact' });
    await submit.focus();
    await alicePage.keyboard.press('Enter');
    const open = alicePage.getByRole('button', { name: 'Open conversation' });
    await open.waitFor();
    await alicePage.screenshot({ path: `${artifacts}alice-safety-number.png` });
    await assertAccessible(alicePage, 'add contact dialog');
    await open.focus();
    await alicePage.keyboard.press('Enter');

    // Bob opens his conversation with alice, by keyboard.
    await bobPage.getByRole('button', { name: /^alice/ }).focus();
    await bobPage.keyboard.press('Enter');

    // Alice writes; Enter sends.
    const composer = alicePage.getByRole('textbox', { name: /message/i });
    await composer.focus();
    await alicePage.keyboard.type('hello bob, from the browser 👋');
    await alicePage.keyboard.press('Enter');

    // Bob sees it without a reload.
    // In the conversation (the list shows the newest message too, issue 23 item 8).
    await bobPage.getByRole('region', { name: /^Messages with/ }).getByText('hello bob, from the browser 👋', { exact: true }).waitFor({ timeout: 10_000 });
    const bobComposer = bobPage.getByRole('textbox', { name: /message/i });
    await bobComposer.focus();
    await bobPage.keyboard.type('hi alice!');
    await bobPage.keyboard.press('Enter');
    await alicePage.getByRole('region', { name: /^Messages with/ }).getByText('hi alice!', { exact: true }).waitFor({ timeout: 10_000 });
    await alicePage.getByRole('img', { name: /delivered/i }).first().waitFor({ timeout: 10_000 });

    await alicePage.screenshot({ path: `${artifacts}alice.png`, fullPage: true });
    await bobPage.screenshot({ path: `${artifacts}bob-375px.png`, fullPage: true });
    await assertAccessible(alicePage, 'conversation');
    await assertAccessible(bobPage, 'conversation at 375 px');

    // Alice sends a file: the paperclip, by keyboard, opens the picker.
    const name = 'e2e-200k.bin';
    const payload = knownBytes(200 * 1024);
    const sent = createHash('sha256').update(payload).digest('hex');
    const chooser = alicePage.waitForEvent('filechooser');
    await alicePage.getByRole('button', { name: 'Attach a file' }).focus();
    await alicePage.keyboard.press('Enter');
    await (await chooser).setFiles({ name, mimeType: 'application/octet-stream', buffer: payload });
    await alicePage.getByRole('group', { name: 'Attached file' }).getByText(name).waitFor();
    await composer.focus();
    await alicePage.keyboard.type('the file, as promised');
    await alicePage.keyboard.press('Enter');
    // Her own copy is linked as soon as the node has queued it.
    await alicePage.getByRole('link', { name: `Download ${name}` }).waitFor({ timeout: 20_000 });

    // Bob's page shows it without a reload; the link appears once his node has it all.
    await bobPage.getByRole('region', { name: /^Messages with/ }).getByText('the file, as promised', { exact: true }).waitFor({ timeout: 20_000 });
    // Saved by his node; the link saves another copy (issue 23 item 8).
    const download = bobPage.getByRole('link', { name: `Save again: ${name}` });
    await download.waitFor({ timeout: 30_000 });
    const href = await download.getAttribute('href');
    const got = await bobPage.evaluate(async (url) => {
      const response = await fetch(url);
      const bytes = await response.arrayBuffer();
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
      return {
        status: response.status,
        size: bytes.byteLength,
        disposition: response.headers.get('content-disposition'),
        sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''),
      };
    }, href);
    assert.equal(got.status, 200);
    assert.equal(got.size, payload.length);
    assert.equal(got.sha256, sent, 'bob downloaded the bytes alice sent');
    assert.match(got.disposition ?? '', /^attachment/);

    await alicePage.screenshot({ path: `${artifacts}alice-file.png`, fullPage: true });
    await bobPage.screenshot({ path: `${artifacts}bob-file-375px.png`, fullPage: true });

    // Without the session the API refuses; from another origin too, even with it.
    const origin = new URL(aliceLink).origin;
    const anonymous = await fetch(`${origin}/v1/status`);
    assert.equal(anonymous.status, 401);
    const crossOrigin = await alicePage.request.get(`${origin}/v1/status`, { headers: { Origin: 'http://evil.example' } });
    assert.equal(crossOrigin.status(), 403);
    // The cookie alone (what a program on another local port collects) is no session;
    // with the page token that only alice's page holds, it is.
    const cookieOnly = await alicePage.request.get(`${origin}/v1/status`);
    assert.equal(cookieOnly.status(), 401);
    const page = await alicePage.evaluate(() => localStorage.getItem('communitas-page'));
    assert.match(page ?? '', /^[0-9a-f]{64}$/, 'the page kept its token');
    assert.ok(!alicePage.url().includes('page='), 'the token left the address bar');
    const sameOrigin = await alicePage.request.get(`${origin}/v1/status`, { headers: { 'X-Communitas-Page': page } });
    assert.equal(sameOrigin.status(), 200);
  } finally {
    await browser.close();
    demo.kill('SIGTERM');
  }
});
