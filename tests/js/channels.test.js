// Channels (history, presence) with autobahn-js against a running Switchboard demo node:
// SWITCHBOARD_URL=ws://127.0.0.1:PORT/ws node --test channels.test.js
'use strict';
// autobahn-js 26 expects a global WebSocket (Node >= 22); on Node 20 take it from `ws`.
globalThis.WebSocket ??= require('ws');
const autobahn = require('autobahn');
const test = require('node:test');
const assert = require('node:assert/strict');
const { uniqueRoom, withTimeout, URL } = require('./support');

/** Join the demo realm anonymously; `closed` settles once the connection is gone. */
function open(realm = 'demo') {
  const connection = new autobahn.Connection({ url: URL, realm, max_retries: 0 });
  let onClosed;
  const closed = new Promise((resolve) => (onClosed = resolve));
  return withTimeout(
    new Promise((resolve, reject) => {
      connection.onopen = (session) => resolve({ connection, session, closed });
      connection.onclose = (reason, details) => {
        reject(new Error(`connection closed: ${reason} ${JSON.stringify(details)}`));
        onClosed(reason);
        return true; // do not retry
      };
      connection.open();
    }),
    'autobahn-js join',
  );
}

/** Close `client`'s connection (if still open) and wait until it is closed. */
async function close(client) {
  if (client.connection.isOpen) {
    client.connection.close();
  }
  await withTimeout(client.closed, 'connection close');
}

/** Events received by a subscription handler, taken one at a time with a deadline. */
class Inbox {
  constructor() {
    this.events = [];
    this.waiting = [];
    this.handler = (args, kwargs, details) => {
      const event = { args: args || [], kwargs: kwargs || {}, details };
      const waiter = this.waiting.shift();
      if (waiter) {
        waiter(event);
      } else {
        this.events.push(event);
      }
    };
  }

  next(what) {
    if (this.events.length) {
      return Promise.resolve(this.events.shift());
    }
    return withTimeout(new Promise((resolve) => this.waiting.push(resolve)), what);
  }

  async take(count, what) {
    const taken = [];
    for (let i = 0; i < count; i += 1) {
      taken.push(await this.next(`${what} (${i + 1} of ${count})`));
    }
    return taken;
  }
}

/** Assert that `promise` fails with the WAMP error `uri` and a message matching `message`. */
async function rejectsWith(promise, uri, message) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.error, uri);
    if (message) {
      assert.match(String(e.args[0]), message);
    }
    return true;
  });
}

/** All events of `topic` after publication `after`, following `more` page by page. */
async function recover(session, topic, after, limit) {
  const pages = [];
  let cursor = after;
  for (let page = 0; page < 100; page += 1) {
    const got = await session.call('switchboard.history.get', [topic], { after: cursor, limit });
    pages.push(got);
    if (!got.more) {
      return pages;
    }
    assert.ok(got.events.length > 0, 'a page with more: true has events');
    cursor = got.events[got.events.length - 1].publication;
  }
  throw new Error('history.get still says more after 100 pages');
}

const texts = (events) => events.map((e) => e.args[0].text);

test('history: a client that reconnects recovers exactly the events it missed, in order', async () => {
  const room = uniqueRoom('recover');
  const topic = `chat.room.${room}`;
  const sender = await open();
  let listener = await open();
  try {
    const inbox = new Inbox();
    await listener.session.subscribe(topic, inbox.handler);
    const before = ['before 0', 'before 1', 'before 2'];
    for (const text of before) {
      await sender.session.call('chat.send', [room, text]);
    }
    const seen = await inbox.take(before.length, 'live event');
    assert.deepEqual(texts(seen), before);
    assert.ok(seen.every((e) => e.args[0].room === room));
    const last = seen[seen.length - 1].details.publication;
    assert.equal(typeof last, 'number');

    await close(listener);
    const missed = Array.from({ length: 20 }, (_, i) => `missed ${i}`);
    for (const text of missed) {
      await sender.session.call('chat.send', [room, text]);
    }

    listener = await open();
    const again = new Inbox();
    await listener.session.subscribe(topic, again.handler);
    const pages = await recover(listener.session, topic, last, 7);
    assert.deepEqual(
      pages.map((p) => p.events.length),
      [7, 7, 6],
    );
    const epochs = new Set(pages.map((p) => p.epoch));
    assert.equal(epochs.size, 1);
    assert.equal(typeof pages[0].epoch, 'string');
    for (const page of pages) {
      assert.equal(page.topic, topic);
      assert.equal(page.recovered, true);
    }
    const events = pages.flatMap((p) => p.events);
    assert.deepEqual(texts(events), missed);
    assert.ok(events.every((e) => e.args[0].room === room));
    assert.equal(new Set(events.map((e) => e.publication)).size, missed.length);
    assert.ok(!events.some((e) => e.publication === last));
    // The numbering continues from the last event the client saw, one per publication.
    const lastSeen = await listener.session.call('switchboard.history.lookup', [topic, last]);
    assert.equal(lastSeen.args[0].text, 'before 2');
    assert.deepEqual(
      events.map((e) => e.seq),
      missed.map((_, i) => lastSeen.seq + 1 + i),
    );

    // After recovering, the live subscription carries on where history ended.
    await sender.session.call('chat.send', [room, 'live again']);
    const live = await again.next('event after recovery');
    assert.equal(live.args[0].text, 'live again');
    const tail = await listener.session.call('switchboard.history.get', [topic], {
      after: events[events.length - 1].publication,
    });
    assert.equal(tail.recovered, true);
    assert.equal(tail.more, false);
    assert.deepEqual(
      tail.events.map((e) => [e.publication, e.seq, e.args[0].text]),
      [[live.details.publication, lastSeen.seq + 21, 'live again']],
    );
  } finally {
    await close(listener);
    await close(sender);
  }
});

test('history: an unknown `after` gives the latest events with recovered: false', async () => {
  const room = uniqueRoom('unknown');
  const topic = `chat.room.${room}`;
  const client = await open();
  try {
    const sent = ['one', 'two', 'three'];
    for (const text of sent) {
      await client.session.call('chat.send', [room, text]);
    }
    const got = await client.session.call('switchboard.history.get', [topic], { after: 1, limit: 2 });
    assert.equal(got.topic, topic);
    assert.equal(got.recovered, false);
    assert.deepEqual(texts(got.events), ['two', 'three']);
    const all = await client.session.call('switchboard.history.get', [topic], { after: 1 });
    assert.equal(all.recovered, false);
    assert.equal(all.more, false);
    assert.deepEqual(texts(all.events), sent);
  } finally {
    await close(client);
  }
});

test('presence: join, members, update and leave are seen by a watcher', async () => {
  const topic = `chat.room.${uniqueRoom('presence')}`;
  const member = await open();
  const watcher = await open();
  try {
    const inbox = new Inbox();
    await watcher.session.subscribe(`switchboard.presence.${topic}`, inbox.handler);
    const me = await member.session.call('sys.info');

    const subscription = await member.session.subscribe(topic, () => {});
    const join = (await inbox.next('presence join')).kwargs;
    assert.equal(join.event, 'join');
    assert.equal(join.topic, topic);
    assert.equal(join.member.session, member.session.id);
    assert.equal(join.member.authid, me.authid);
    assert.equal(join.member.authrole, 'anonymous');
    assert.equal(join.sessions, 1);
    assert.equal(join.users, 1);

    const present = await watcher.session.call('switchboard.presence.get', [topic]);
    assert.equal(present.topic, topic);
    assert.equal(present.sessions, 1);
    assert.equal(present.users, 1);
    assert.deepEqual(
      present.members.map((m) => [m.session, m.authid, m.authrole]),
      [[member.session.id, me.authid, 'anonymous']],
    );

    const updated = await member.session.call('switchboard.presence.update', [topic, { typing: true }]);
    assert.equal(updated.session, member.session.id);
    assert.deepEqual(updated.data, { typing: true });
    const update = (await inbox.next('presence update')).kwargs;
    assert.equal(update.event, 'update');
    assert.equal(update.topic, topic);
    assert.equal(update.member.session, member.session.id);
    assert.deepEqual(update.member.data, { typing: true });

    await member.session.unsubscribe(subscription);
    const leave = (await inbox.next('presence leave')).kwargs;
    assert.equal(leave.event, 'leave');
    assert.equal(leave.topic, topic);
    assert.equal(leave.member.session, member.session.id);
    assert.equal(leave.sessions, 0);
    const gone = await watcher.session.call('switchboard.presence.get', [topic]);
    assert.equal(gone.sessions, 0);
    assert.deepEqual(gone.members, []);
    // No longer a member: updating needs the subscription.
    await rejectsWith(
      member.session.call('switchboard.presence.update', [topic, { typing: false }]),
      'wamp.error.invalid_argument',
      /topic/,
    );
  } finally {
    await close(watcher);
    await close(member);
  }
});

test('channels: a bad limit is invalid_argument, a topic the caller may not subscribe to is not_authorized', async () => {
  const client = await open();
  try {
    const topic = `chat.room.${uniqueRoom('errors')}`;
    await rejectsWith(
      client.session.call('switchboard.history.get', [topic], { limit: 0 }),
      'wamp.error.invalid_argument',
      /limit/,
    );
    await rejectsWith(
      client.session.call('switchboard.history.get', ['secret.x']),
      'wamp.error.not_authorized',
    );
    await rejectsWith(
      client.session.call('switchboard.presence.get', ['secret.x']),
      'wamp.error.not_authorized',
    );
    await rejectsWith(
      client.session.subscribe('switchboard.presence.secret.x', () => {}),
      'wamp.error.not_authorized',
    );
  } finally {
    await close(client);
  }
});
