// Screenshots of the web UI for the docs: the real `communitas demo` (server nodes,
// alice and bob on 127.0.0.1) and Debian's Chromium driven by playwright-core, as in
// demo.test.mjs. Alice adds bob by his four words, they write a few texts each way
// (one right-to-left, one with a link) and alice sends a small file; a stranger,
// carol, joins the network from her own node and writes to alice (a message request).
// Each screen is saved at 1280×800 and at 375×812 (deviceScaleFactor 1) as
// `<width>-<screen>.png`, and checked with axe: violations are printed, not fatal.
//
// Not a test (no `.test.mjs`, so `npm run e2e` leaves it out). Run from web/ after
// `npm run build`:
//   COMMUNITAS_BIN=/path/to/communitas npm run screenshots
// Environment: COMMUNITAS_BIN (required), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOTS_DIR (default ../docs/screenshots/), COMMUNITAS_WEB_DIR (default web/dist).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import { assertAccessible } from './a11y.mjs';

const started = Date.now();
const bin = process.env.COMMUNITAS_BIN;
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const webRoot = new URL('..', import.meta.url).pathname;
const outDir = resolve(webRoot, process.env.SCREENSHOTS_DIR ?? '../docs/screenshots/');
const webDir = process.env.COMMUNITAS_WEB_DIR ?? join(webRoot, 'dist');

const VIEWPORTS = [
  { width: 1280, height: 800 },
  { width: 375, height: 812 },
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...args) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s]`, ...args);

// The nodes are started with the built UI (the node serves it from COMMUNITAS_WEB_DIR).
const nodeEnv = { ...process.env, COMMUNITAS_WEB_DIR: webDir };
// Processes to stop at the end, whatever happens.
const children = [];

/** Starts the demo; resolves with the users, their login links and the join address. */
function startDemo() {
  const demo = spawn(bin, ['demo'], { env: nodeEnv, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(demo);
  const lines = createInterface({ input: demo.stdout });
  const users = [];
  const links = [];
  let join = null;
  const ready = new Promise((resolve, reject) => {
    demo.on('exit', (code) => reject(new Error(`demo exited early (${code})`)));
    lines.on('line', (line) => {
      const user = line.match(/^(alice|bob)\s+(\S+)$/);
      if (user) users.push(user[2]);
      const web = line.match(/^\s+web\s+(http\S+)$/);
      if (web) links.push(web[1]);
      const boot = line.match(/run --bootstrap (\S+)$/);
      if (boot) join = boot[1];
      if (line.startsWith('Ctrl-C stops')) {
        resolve({ alice: users[0], bob: users[1], aliceLink: links[0], bobLink: links[1], join });
      }
    });
  });
  return ready;
}

/** `communitas --home HOME ...args` for carol, synchronously. */
function cli(home, args) {
  const out = spawnSync(bin, ['--home', home, ...args], {
    env: { ...nodeEnv, COMMUNITAS_PASSPHRASE: 'carol-screenshots' },
    encoding: 'utf8',
  });
  return { ok: out.status === 0, stdout: out.stdout, stderr: out.stderr };
}

// Every screen's axe results, printed again at the end.
const violations = [];

/**
 * Saves the page as `<width>-<name>.png` and runs axe on it (reporting, not failing).
 * `blur`: take the focus off whatever has it first (a screen at rest, no focus ring on
 * the composer); dialogs keep theirs, as a user sees them.
 */
async function shot(page, name, { blur = false } = {}) {
  const { width } = page.viewportSize();
  const file = join(outDir, `${width}-${name}.png`);
  if (blur) await page.evaluate(() => document.activeElement?.blur());
  // Let transitions and the live updates settle; no blinking caret in the picture.
  await sleep(300);
  await page.screenshot({ path: file, animations: 'disabled', caret: 'hide' });
  try {
    await assertAccessible(page, `${width}-${name}`);
  } catch (e) {
    // The rules broken, without node:assert's diff of the same list.
    const message = e.message.split('\n+ actual')[0];
    violations.push(message);
    console.log(message);
  }
  log('saved', file);
}

/** A small text file to attach. */
const directions = Buffer.from(
  'From the station: take exit B, walk up Rue des Lilas, the café is on the left.\n' +
    'Table booked under "Alice", 19:00.\n',
);

async function main() {
  if (!bin) throw new Error('set COMMUNITAS_BIN to the communitas binary');
  if (!existsSync(join(webDir, 'index.html'))) throw new Error(`no built UI in ${webDir}: run \`npm run build\` first`);
  mkdirSync(outDir, { recursive: true });

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const carolHome = mkdtempSync(join(tmpdir(), 'communitas-carol-'));
  try {
    const { alice, bob, aliceLink, bobLink, join: boot } = await startDemo();
    log('demo up: alice', alice, 'bob', bob);

    // Carol, a stranger: her own identity and node, joined through a server node.
    // Started now so that she is up by the time she writes (at the end).
    const init = cli(carolHome, ['init', '--name', 'carol']);
    if (!init.ok) throw new Error(`carol's init failed: ${init.stderr}`);
    const carol = init.stdout.trim().split(/\s+/).pop();
    const carolNode = spawn(bin, ['--home', carolHome, 'run', '--bootstrap', boot, '--listen', '/ip4/127.0.0.1/tcp/0'], {
      env: { ...nodeEnv, COMMUNITAS_PASSPHRASE: 'carol-screenshots' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(carolNode);

    // One browser context per user, light colours, 1 CSS px = 1 image px.
    // Times shown in UTC, in US English, whatever the machine's settings.
    const context = () =>
      browser.newContext({
        viewport: VIEWPORTS[0],
        deviceScaleFactor: 1,
        colorScheme: 'light',
        locale: 'en-US',
        timezoneId: 'UTC',
      });
    const alicePage = await (await context()).newPage();
    const bobPage = await (await context()).newPage();
    await alicePage.goto(aliceLink);
    await bobPage.goto(bobLink);
    await alicePage.getByText(alice).first().waitFor();
    await bobPage.getByText(bob).first().waitFor();
    const origin = (link) => new URL(link).origin;
    const messagesOf = (page) => page.getByRole('region', { name: /^Messages with/ });

    /** Alice opens the add-contact dialog and types bob's four words; two shots. */
    async function addBob() {
      await alicePage.getByRole('button', { name: 'Add contact' }).first().click();
      const dialog = alicePage.getByRole('dialog');
      await dialog.getByRole('combobox').fill(bob.replaceAll('-', ' '));
      await shot(alicePage, 'add-contact');
      await dialog.getByRole('button', { name: 'Add contact' }).click();
      const open = alicePage.getByRole('button', { name: 'Open conversation' });
      await open.waitFor({ timeout: 20_000 });
      await shot(alicePage, 'add-contact-safety-number');
      await open.click();
    }

    /** `page` opens its conversation with `name`, from the list. */
    async function openConversation(page, name) {
      await page.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: new RegExp(`^${name}`) }).click();
      await messagesOf(page).waitFor();
    }

    /** `from` types and sends `text`; waits until `to` shows it. */
    async function say(from, to, text) {
      const composer = from.getByRole('textbox', { name: /message/i });
      await composer.fill(text);
      await composer.press('Enter');
      await messagesOf(to).getByText(text, { exact: true }).waitFor({ timeout: 20_000 });
    }

    for (const [i, viewport] of VIEWPORTS.entries()) {
      log(`viewport ${viewport.width}×${viewport.height}`);
      await alicePage.setViewportSize(viewport);
      await bobPage.setViewportSize(viewport);

      // The add-contact dialog, then the safety number it shows; on to the conversation.
      await addBob();
      await bobPage.goto(`${origin(bobLink)}/`);
      await openConversation(bobPage, 'alice');

      if (i === 0) {
        // The conversation, built once: texts both ways, a link, Arabic, a file.
        log('writing the conversation');
        await say(alicePage, bobPage, 'Hi Bob! Are we still on for dinner on Thursday? 🍝');
        await say(bobPage, alicePage, 'Yes! 7 pm works for me.');
        await say(alicePage, bobPage, 'Great. This is the place: https://example.org/cafe-des-lilas');
        await say(bobPage, alicePage, 'شكراً! أراك يوم الخميس');
        // A file, with a caption.
        const name = 'directions.txt';
        const chooser = alicePage.waitForEvent('filechooser');
        await alicePage.getByRole('button', { name: 'Attach a file' }).click();
        await (await chooser).setFiles({ name, mimeType: 'text/plain', buffer: directions });
        await alicePage.getByRole('group', { name: 'Attached file' }).getByText(name).waitFor();
        await say(alicePage, bobPage, 'And the directions from the station, just in case.');
        // Bob's node has the file once his page links it; then he answers.
        await bobPage.getByRole('link', { name: `Save again: ${name}` }).waitFor({ timeout: 30_000 });
        await say(bobPage, alicePage, 'Perfect, see you there 👋');
        // Alice's texts show delivered (or read) before the pictures are taken.
        await alicePage.getByRole('img', { name: /delivered|read/i }).first().waitFor({ timeout: 20_000 });
        await sleep(1000);
      }

      // The conversation from each side.
      await shot(alicePage, 'conversation-alice', { blur: true });
      await shot(bobPage, 'conversation-bob', { blur: true });
      // Alice's side again in the dark colour scheme (the app follows the system's).
      await alicePage.emulateMedia({ colorScheme: 'dark' });
      await shot(alicePage, 'conversation-alice-dark', { blur: true });
      await alicePage.emulateMedia({ colorScheme: 'light' });

      // The welcome screen, no conversation open (on a narrow screen: the list).
      await alicePage.goto(`${origin(aliceLink)}/`);
      await alicePage.getByText(alice).first().waitFor();
      await shot(alicePage, 'welcome', { blur: true });

      // Account actions: the name and passphrase dialogs.
      await alicePage.getByRole('button', { name: /^(Change|Set) name$/ }).click();
      await alicePage.getByRole('dialog').waitFor();
      await shot(alicePage, 'name-dialog');
      await alicePage.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
      await alicePage.getByRole('button', { name: 'Change passphrase' }).click();
      await alicePage.getByRole('dialog').waitFor();
      await shot(alicePage, 'passphrase-dialog');
      await alicePage.getByRole('dialog').getByRole('button', { name: 'Close' }).click();

      // Her address as a QR code.
      await alicePage.getByRole('button', { name: 'QR code' }).click();
      await alicePage.getByRole('dialog').waitFor();
      await shot(alicePage, 'qr-code');
      await alicePage.getByRole('dialog').getByRole('button', { name: 'Close' }).click();

      // The settings at the foot of the sidebar (read receipts, notifications, blocked).
      await alicePage.getByRole('region', { name: 'Settings' }).scrollIntoViewIfNeeded();
      await shot(alicePage, 'settings', { blur: true });
      await alicePage.evaluate(() => {
        document.querySelector('.sidebar')?.scrollTo(0, 0);
        window.scrollTo(0, 0);
      });
    }

    // Carol writes to alice, a stranger to her (retried until carol's node is up
    // and alice's record found).
    log('carol writes to alice');
    const deadline = Date.now() + 60_000;
    for (;;) {
      const sent = cli(carolHome, ['send', alice, 'Hello Alice, this is Carol from the book club. Is this still your address?']);
      if (sent.ok) break;
      if (Date.now() > deadline) throw new Error(`carol never reached alice: ${sent.stderr}`);
      await sleep(500);
    }
    const request = alicePage
      .getByRole('region', { name: /message requests/i })
      .getByRole('listitem', { name: `Request from ${carol}` });
    await request.waitFor({ timeout: 30_000 });
    for (const viewport of VIEWPORTS) {
      await alicePage.setViewportSize(viewport);
      await request.scrollIntoViewIfNeeded();
      await shot(alicePage, 'message-request', { blur: true });
    }
  } finally {
    await browser.close();
    // SIGTERM: the demo stops its nodes and deletes its folder.
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)));
    rmSync(carolHome, { recursive: true, force: true });
  }
}

try {
  await main();
  log(`done: ${outDir}`);
  if (violations.length) console.log(`\n${violations.length} screen(s) with axe violations:\n${violations.join('\n')}`);
  else console.log('axe: no serious or critical violations');
} catch (e) {
  console.error(e);
  process.exitCode = 1;
}
