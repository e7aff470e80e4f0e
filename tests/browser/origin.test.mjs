// The node's allowed origins in a browser: a page from another origin cannot open a WebSocket to the node (the
// node refuses the handshake), the node's own page can. The sockets go through a proxy that records the
// node's answer, so the refusal is seen to be the node's, not the browser's.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browserAndProxy, env, newPage } from './support.mjs';

const held = browserAndProxy();

/** In the page: open a WAMP WebSocket to `url`; resolves to 'open' or 'closed <code>'. */
function tryWebSocket(url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, ['wamp.2.json']);
    ws.onopen = () => {
      ws.close();
      resolve('open');
    };
    ws.onclose = (event) => resolve(`closed ${event.code}`);
  });
}

test('a page of another origin is refused the WebSocket, the node’s own page is not', async () => {
  const { browser, proxy } = held;
  const url = `ws://127.0.0.1:${proxy.port}/ws`;
  const evil = await newPage(browser);
  // Chromium's own Local Network Access check would stop a public site's socket to 127.0.0.1 before the node
  // sees it: the user grants the permission (possible only for a secure origin), so what refuses is the node.
  await evil.context().grantPermissions(['local-network-access'], { origin: 'https://evil.example' });
  try {
    await evil.route('https://evil.example/**', (route) =>
      route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>evil</title><p>another site</p>' }),
    );
    await evil.goto('https://evil.example/');
    assert.equal(await evil.evaluate(() => location.origin), 'https://evil.example');
    assert.equal(await evil.evaluate(tryWebSocket, url), 'closed 1006');
    assert.deepEqual(proxy.origins, ['https://evil.example'], 'the handshake reached the node');
    assert.match(proxy.responses[0], /^HTTP\/1\.1 4\d\d /, 'the node refused it');
  } finally {
    await evil.context().close();
  }

  const own = await newPage(browser);
  try {
    await own.goto(env('SWITCHBOARD_PAGE'));
    assert.equal(await own.evaluate(tryWebSocket, url), 'open');
    assert.deepEqual(proxy.origins, ['https://evil.example', new URL(env('SWITCHBOARD_PAGE')).origin]);
    assert.match(proxy.responses[1], /^HTTP\/1\.1 101 /);
  } finally {
    await own.context().close();
  }
});
