// The app from a TLS listener (the self-signed development certificate): the page over HTTPS, WAMP over wss.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, launchBrowser, newPage, openApp, logIn, send, problems, uniqueRoom } from './support.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test('the page loads over https and chats over wss', async () => {
  const base = env('SWITCHBOARD_PAGE');
  assert.match(base, /^https:\/\//);
  // The certificate is self-signed: trusting it is the one thing the test changes from a user's browser.
  const page = await newPage(browser, { ignoreHTTPSErrors: true });
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  try {
    await openApp(page, base, { room: uniqueRoom('browser_tls') });
    assert.equal(await page.evaluate(() => location.protocol), 'https:');
    await logIn(page);
    await send(page, 'over wss');
    const { host } = new URL(base);
    assert.deepEqual(sockets, [`wss://${host}/ws`]);
  } catch (e) {
    e.message += `\n${problems(page)}`;
    throw e;
  } finally {
    await page.context().close();
  }
});
