// A page whose connection goes through a proxy the test cuts: the banner while cut off, then every message
// sent meanwhile, once each and in order, after the connection returns.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  browserAndProxy,
  env,
  newPage,
  openApp,
  logIn,
  send,
  messageTexts,
  messageWithText,
  problems,
  uniqueRoom,
} from './support.mjs';

const held = browserAndProxy();

test('a cut-off page shows the banner, then recovers the missed messages once each, in order', async () => {
  const { browser, proxy } = held;
  const base = env('SWITCHBOARD_PAGE');
  const room = uniqueRoom('browser_recovery');
  const a = await newPage(browser);
  const b = await newPage(browser);
  try {
    await openApp(a, base, { room });
    await openApp(b, `http://127.0.0.1:${proxy.port}/`, { room }); // page and socket through the proxy
    await logIn(a);
    await logIn(b);
    const banner = b.locator('#banner');
    await banner.waitFor({ state: 'hidden' });

    await send(a, 'before the cut');
    await messageWithText(b, 'before the cut').waitFor();

    proxy.cut();
    await banner.waitFor({ state: 'visible' });
    assert.match(await banner.textContent(), /Reconnecting/);
    // The library retries at once: between attempts it is `disconnected`, during one `connecting`.
    assert.match(await b.getAttribute('body', 'data-state'), /^(disconnected|connecting)$/, problems(b));

    const missed = [1, 2, 3, 4, 5].map((i) => `missed ${i}`);
    for (const text of missed) await send(a, text);
    // Still cut off: nothing arrived.
    assert.deepEqual(await messageTexts(b), ['before the cut']);

    proxy.restore();
    await banner.waitFor({ state: 'hidden', timeout: 30000 });
    await b.locator('body[data-state="connected"]').waitFor();
    await messageWithText(b, 'missed 5').waitFor();
    await send(a, 'after the return');
    await messageWithText(b, 'after the return').waitFor();

    const expected = ['before the cut', ...missed, 'after the return'];
    assert.deepEqual(await messageTexts(b), expected, problems(b));
    assert.deepEqual(await messageTexts(a), expected, problems(a));
    const publications = await b.locator('#messages li.message').evaluateAll((lis) => lis.map((li) => li.dataset.publication));
    assert.equal(new Set(publications).size, expected.length, `publications: ${publications}`);
    assert.ok(publications.every(Boolean), `publications: ${publications}`);
    assert.equal(await b.locator('#gap').isVisible(), false, 'the missed messages were all recovered: no gap');
  } catch (e) {
    e.message += `\n${problems(a, b)}`;
    throw e;
  } finally {
    await a.context().close();
    await b.context().close();
  }
});
