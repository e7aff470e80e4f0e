// wampy (npm) against a running Switchboard node: SWITCHBOARD_URL=ws://127.0.0.1:PORT/ws node --test
'use strict';
const { Wampy } = require('wampy');
const WebSocket = require('ws');
const test = require('node:test');
const assert = require('node:assert/strict');
const { uniqueRoom, withTimeout, URL } = require('./support');

async function open() {
  const client = new Wampy(URL, { realm: 'demo', ws: WebSocket, autoReconnect: false });
  await withTimeout(client.connect(), 'wampy join');
  return client;
}

test('wampy: chat.send returns the message and subscribers receive it', async () => {
  const client = await open();
  try {
    const room = uniqueRoom('wy');
    let onEvent;
    const received = new Promise((resolve) => (onEvent = resolve));
    await client.subscribe(`chat.room.${room}`, (event) => onEvent(event.argsList[0]));
    const result = await client.call('chat.send', [room, 'hello from wampy']);
    const sent = result.argsList[0];
    assert.equal(sent.room, room);
    // seq, the message's number in the channel history, is only in chat.send's answer: the event
    // carries the message as published.
    const { seq, ...message } = sent;
    assert.equal(seq, 1); // the room's first message
    assert.equal(sent.text, 'hello from wampy');
    assert.deepEqual(await withTimeout(received, 'event'), message);
  } finally {
    await client.disconnect();
  }
});

test('wampy: bad input is wamp.error.invalid_argument', async () => {
  const client = await open();
  try {
    await assert.rejects(client.call('chat.history', [uniqueRoom('wy'), 0]), (e) => {
      assert.equal(e.errorUri, 'wamp.error.invalid_argument');
      assert.match(e.argsList[0], /limit: must be between 1 and 500/);
      return true;
    });
  } finally {
    await client.disconnect();
  }
});
