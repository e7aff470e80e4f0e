// Shared helpers of the browser tests: Chromium through playwright-core, the demo app's DOM contract
// (docs/web.md), and a TCP proxy the tests can cut. Run by tests/integration/test_browser.py, which starts the
// nodes and sets SWITCHBOARD_PAGE (the node's own page), CHROMIUM and SWITCHBOARD_ARTIFACTS.

import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

/** Milliseconds any one wait for the page may take. */
export const TIMEOUT = 15000;

/** The env variable `name`; throws when the runner did not set it. */
export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/integration/test_browser.py`);
  return value;
}

/** A room name no other test uses (room names are [a-z0-9_]). */
export function uniqueRoom(prefix) {
  return `${prefix}_${randomUUID().slice(0, 8)}`;
}

/** Debian's Chromium (or $CHROMIUM), headless; without the sandbox only as root, where it cannot run. */
export async function launchBrowser() {
  const args = process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [];
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args, timeout: TIMEOUT });
}

/** A new page in its own context (its own cookies and storage: another user), with the waits bounded. The
 * page's console errors are kept in `page.problems` for the failure message. */
export async function newPage(browser, contextOptions = {}) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, ...contextOptions });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && page.problems.push(`console: ${m.text()}`));
  return page;
}

/** The app at `base` in `room`, with `?ws=` when given; waits until the login form is shown. */
export async function openApp(page, base, { room, ws } = {}) {
  const url = new URL(base);
  if (room) url.searchParams.set('room', room);
  if (ws) url.searchParams.set('ws', ws);
  await page.goto(url.href);
  await page.locator('form#login').waitFor({ state: 'visible' });
}

/** Log in (anonymously without `authid`, else by ticket) and wait until connected; the session's authid. */
export async function logIn(page, { authid, password } = {}) {
  if (authid) {
    await page.fill('#authid', authid);
    await page.fill('#password', password);
    await page.click('#login-user');
  } else {
    await page.click('#login-anon');
  }
  await page.locator('body[data-state="connected"]').waitFor();
  await page.locator('form#login').waitFor({ state: 'hidden' });
  const me = page.locator('#me');
  await me.filter({ hasText: /\S/ }).waitFor();
  return (await me.textContent()).trim();
}

/** Send `text` with the composer and wait until the page shows it. */
export async function send(page, text) {
  await page.fill('#text', text);
  await page.click('#send');
  await messageWithText(page, text).waitFor();
}

/** The `li.message` of `page` whose text is exactly `text`. */
export function messageWithText(page, text) {
  return page.locator('#messages li.message').filter({ has: page.locator('.text', { hasText: text, exact: true }) });
}

/** The texts of the page's messages, oldest first. */
export async function messageTexts(page) {
  return (await page.locator('#messages li.message .text').allTextContents()).map((t) => t.trim());
}

/** The `li.member` of `page` for `authid`. */
export function member(page, authid) {
  return page.locator(`#members li.member[data-authid="${authid}"]`);
}

/** What the page reported going wrong, for assertion messages. */
export function problems(...pages) {
  return pages.flatMap((p) => p.problems).join('\n') || '(no page errors)';
}

/**
 * A TCP proxy on 127.0.0.1 to `port` that a test can cut: `cut()` closes every connection and closes each new
 * one at once until `restore()`. For each connection, `origins` holds the Origin header the client sent (or
 * null) and `responses` the first line the upstream answered (for WebSockets: the handshake's status line).
 */
export async function tcpProxy(port) {
  const sockets = new Set();
  const origins = [];
  const responses = [];
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, '127.0.0.1');
    client.once('data', (chunk) => origins.push(/^Origin: *(.*?)\r$/im.exec(chunk.toString('latin1'))?.[1] ?? null));
    let first = true;
    upstream.on('data', (chunk) => {
      if (first) {
        first = false;
        responses.push(chunk.toString('latin1').split('\r\n')[0]);
      }
    });
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ]) {
      sockets.add(a);
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    origins,
    responses,
    cut() {
      refusing = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      refusing = false;
    },
    close() {
      refusing = true;
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Registers the file's before/after hooks: a browser, and a proxy to the port of the node's page
 * (SWITCHBOARD_PAGE). Returns the object they are set on once the hooks ran: `{browser, proxy}`.
 */
export function browserAndProxy() {
  const held = {};
  before(async () => {
    held.browser = await launchBrowser();
    held.proxy = await tcpProxy(Number(new URL(env('SWITCHBOARD_PAGE')).port));
  });
  after(async () => {
    await held.browser?.close();
    await held.proxy?.close();
  });
  return held;
}
