// autobahn-js (npm) against a running Switchboard node: SWITCHBOARD_URL=ws://127.0.0.1:PORT/ws node --test
'use strict';
// autobahn-js 26 expects a global WebSocket (Node >= 22); on Node 20 take it from `ws`.
globalThis.WebSocket ??= require('ws');
const autobahn = require('autobahn');
const test = require('node:test');
const assert = require('node:assert/strict');
const { uniqueRoom, withTimeout, URL } = require('./support');

function open(realm = 'demo') {
  const connection = new autobahn.Connection({ url: URL, realm, max_retries: 0 });
  return withTimeout(
    new Promise((resolve, reject) => {
      connection.onopen = (session) => resolve({ connection, session });
      connection.onclose = (reason, details) => {
        reject(new Error(`connection closed: ${reason} ${JSON.stringify(details)}`));
        return true; // do not retry
      };
      connection.open();
    }),
    'autobahn-js join',
  );
}

test('autobahn-js: chat.send returns the message and subscribers receive it', async () => {
  const { connection, session } = await open();
  try {
    const room = uniqueRoom('ab');
    let onEvent;
    const received = new Promise((resolve) => (onEvent = resolve));
    await session.subscribe(`chat.room.${room}`, (args) => onEvent(args[0]));
    const sent = await session.call('chat.send', [room, 'hello from autobahn-js']);
    assert.equal(sent.room, room);
    // seq, the message's number in the channel history, is only in chat.send's answer: the event
    // carries the message as published.
    const { seq, ...message } = sent;
    assert.equal(seq, 1); // the room's first message
    assert.equal(sent.text, 'hello from autobahn-js');
    const me = await session.call('sys.info');
    assert.equal(sent.author, me.authid);
    assert.equal(me.authrole, 'anonymous');
    assert.deepEqual(await withTimeout(received, 'event'), message);
    const history = await session.call('chat.history', [room], { limit: 10 });
    assert.deepEqual(history, [sent]);
  } finally {
    connection.close();
  }
});

test('autobahn-js: bad input is wamp.error.invalid_argument, register is not_authorized', async () => {
  const { connection, session } = await open();
  try {
    await assert.rejects(session.call('chat.send', [uniqueRoom('ab'), '']), (e) => {
      assert.equal(e.error, 'wamp.error.invalid_argument');
      assert.match(e.args[0], /text: must not be empty/);
      return true;
    });
    await assert.rejects(session.register('chat.js_was_here', () => 1), (e) => {
      assert.equal(e.error, 'wamp.error.not_authorized');
      return true;
    });
  } finally {
    connection.close();
  }
});
