// Switchboard's JavaScript client library (web/lib/switchboard.js) against a running demo node:
// SWITCHBOARD_URL=ws://127.0.0.1:PORT/ws node --test client.test.mjs
// SWITCHBOARD_WORKER_AUTHID / _PASSWORD name a user whose role may register and call under
// SWITCHBOARD_WORKER_PREFIX (tests/integration/test_js_client_lib.py creates them).
import { createRequire } from 'node:module';
import net from 'node:net';
import test from 'node:test';
import assert from 'node:assert/strict';
import { connect, backoffDelay, pageSocketUrl, NOT_CONNECTED } from '../../web/lib/switchboard.js';

const require = createRequire(import.meta.url);
// autobahn-js 26 expects a global WebSocket (Node >= 22); on Node 20 take it from `ws`, with an error
// listener: autobahn sets none, and `ws` throws an 'error' nobody listens to (a refused connection).
globalThis.WebSocket ??= class extends require('ws') {
  constructor(...args) {
    super(...args);
    this.on('error', () => {}); // 'close' follows, and autobahn handles that
  }
};
const autobahn = require('autobahn');
const { URL: NODE_URL, uniqueRoom, withTimeout } = require('./support.js');

const WORKER = {
  authid: process.env.SWITCHBOARD_WORKER_AUTHID,
  authmethods: ['ticket'],
  onchallenge: () => process.env.SWITCHBOARD_WORKER_PASSWORD,
};
const PREFIX = process.env.SWITCHBOARD_WORKER_PREFIX;
const FAST = { initial: 0.05, max: 0.4, factor: 2, jitter: 0.5 };

/** A TCP proxy in front of the node whose connections can be cut and which can refuse new ones. */
class CuttableProxy {
  constructor(target) {
    this.target = new URL(target);
    this.sockets = new Set();
    this.server = null;
    this.port = 0;
  }

  get url() {
    const url = new URL(this.target);
    url.port = String(this.port);
    return url.toString();
  }

  /** Listen (again, on the same port after `cut`). */
  start() {
    this.server = net.createServer((down) => {
      const up = net.connect(Number(this.target.port), this.target.hostname);
      for (const [a, b] of [[down, up], [up, down]]) {
        this.sockets.add(a);
        a.pipe(b);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          this.sockets.delete(a);
          b.destroy();
        });
      }
    });
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.port = this.server.address().port;
        resolve();
      });
    });
  }

  /** Drop every connection at once (no WebSocket close, no GOODBYE) and refuse new ones until `start`. */
  cut() {
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    return withTimeout(closed, 'proxy close');
  }
}

/** The client's state changes, awaited one condition at a time with a deadline. */
class StateLog {
  constructor() {
    this.entries = [];
    this.waiters = [];
    this.onstate = (state, info) => {
      this.entries.push({ state, ...info });
      this.waiters = this.waiters.filter((w) => !w());
    };
  }

  count(state) {
    return this.entries.filter((e) => e.state === state).length;
  }

  /** Resolve once `state` has been reached `n` times in all. */
  until(state, n = 1, ms = 10000) {
    return withTimeout(
      new Promise((resolve) => {
        const check = () => this.count(state) >= n && (resolve(this.entries.filter((e) => e.state === state)), true);
        if (!check()) this.waiters.push(check);
      }),
      `state ${state} #${n}`,
      ms,
    );
  }
}

/** Conditions re-checked at every `kick()` (call it whenever something changed), each with a deadline. */
class Changes {
  constructor() {
    this.checks = new Set();
    this.kick = () => this.checks.forEach((check) => check());
  }

  until(predicate, what) {
    return withTimeout(
      new Promise((resolve) => {
        const check = () => predicate() && (this.checks.delete(check), resolve());
        this.checks.add(check);
        check();
      }),
      what,
    );
  }
}

/** Join the demo realm directly (not through a proxy) with plain autobahn-js. */
function plainSession(options = {}) {
  const connection = new autobahn.Connection({ url: NODE_URL, realm: 'demo', max_retries: 0, ...options });
  return withTimeout(
    new Promise((resolve, reject) => {
      connection.onopen = (session) => resolve({ session, close: () => connection.close() });
      connection.onclose = (reason, details) => {
        reject(new Error(`closed: ${reason} ${JSON.stringify(details)}`));
        return true;
      };
      connection.open();
    }),
    'plain autobahn join',
  );
}

test('pageSocketUrl: the page\'s own /ws; ?ws= only for another path of the same host and port', () => {
  const page = (search, protocol = 'http:') => ({ protocol, host: '127.0.0.1:8080', search });
  assert.equal(pageSocketUrl(page('')), 'ws://127.0.0.1:8080/ws');
  assert.equal(pageSocketUrl(page('', 'https:')), 'wss://127.0.0.1:8080/ws');
  assert.equal(pageSocketUrl(page('?ws=ws://127.0.0.1:8080/other')), 'ws://127.0.0.1:8080/other');
  for (const elsewhere of ['ws://127.0.0.1:9999/ws', 'ws://evil.example:8080/ws', 'ws://127.0.0.1/ws', 'not a url', '']) {
    assert.equal(pageSocketUrl(page(`?ws=${encodeURIComponent(elsewhere)}`)), 'ws://127.0.0.1:8080/ws', elsewhere);
  }
});

test('backoffDelay: grows by factor, is capped at max, jitter shortens by at most its fraction', () => {
  const b = { initial: 0.5, max: 30, factor: 2, jitter: 0.5 };
  const expected = [0.5, 1, 2, 4, 8, 16, 30, 30, 30]; // written by hand
  expected.forEach((base, attempt) => {
    assert.equal(backoffDelay(attempt, b, () => 0), base);
    assert.equal(backoffDelay(attempt, b, () => 0.5), base * 0.75);
    assert.equal(backoffDelay(attempt, b, () => 1), base * 0.5);
  });
  assert.equal(backoffDelay(100, {}, () => 0), 30); // the defaults
  assert.equal(backoffDelay(3, { initial: 1, factor: 3, max: 100, jitter: 0 }, () => 0.9), 27);
});

test('retries forever with growing, capped delays while the node is unreachable; close() stops it', async () => {
  const proxy = new CuttableProxy(NODE_URL);
  await proxy.start();
  await proxy.cut(); // a port where nothing listens
  const log = new StateLog();
  const client = connect({ url: proxy.url, realm: 'demo', autobahn, backoff: { initial: 0.02, max: 0.1, jitter: 0 }, onstate: log.onstate });
  try {
    const drops = await log.until('disconnected', 7);
    assert.deepEqual(drops.slice(0, 7).map((d) => d.delay), [0.02, 0.04, 0.08, 0.1, 0.1, 0.1, 0.1]);
    assert.deepEqual(drops.slice(0, 7).map((d) => d.attempt), [1, 2, 3, 4, 5, 6, 7]);
    assert.equal(drops[0].reason, 'unreachable');
  } finally {
    await withTimeout(client.close(), 'client close');
  }
  assert.equal(client.state, 'closed');
  await assert.rejects(client.call('chat.rooms'), (e) => e.error === NOT_CONNECTED);
  const attempts = log.count('connecting');
  await new Promise((resolve) => setTimeout(resolve, 300)); // three times the longest delay: no retry came
  assert.equal(log.count('connecting'), attempts);
});

test('reconnects after a drop and recovers the 10 messages sent meanwhile, once each and in order', async () => {
  const room = uniqueRoom('libjs');
  const topic = `chat.room.${room}`;
  const sender = await plainSession();
  const proxy = new CuttableProxy(NODE_URL);
  await proxy.start();
  const log = new StateLog();
  const received = [];
  const gaps = [];
  const changes = new Changes();
  const client = connect({ url: proxy.url, realm: 'demo', autobahn, backoff: FAST, onstate: log.onstate });
  try {
    await log.until('connected');
    await client.subscribe(topic, (args, kwargs, details) => {
      received.push({ text: args[0].text, details });
      changes.kick();
    }, { recover: true, ongap: (gap) => gaps.push(gap) });
    for (const text of ['live 1', 'live 2']) await sender.session.call('chat.send', [room, text]);
    await changes.until(() => received.length === 2, 'the live messages');
    await proxy.cut();
    const [drop] = await log.until('disconnected');
    assert.ok(drop.delay <= FAST.initial && drop.delay >= FAST.initial / 2, JSON.stringify(drop));
    await assert.rejects(client.call('chat.rooms'), (e) => e.error === NOT_CONNECTED);
    const sent = [];
    for (let i = 1; i <= 10; i += 1) sent.push(await sender.session.call('chat.send', [room, `missed ${i}`]));
    await proxy.start();
    await log.until('connected', 2);
    await sender.session.call('chat.send', [room, 'live 3']);
    await changes.until(() => received.length >= 13, 'the recovered and the new live messages');
    const texts = received.map((r) => r.text);
    assert.deepEqual(texts, ['live 1', 'live 2', ...sent.map((m) => m.text), 'live 3']);
    assert.ok([0, 1, 12].every((i) => !received[i].details.history && received[i].details.seq === undefined));
    const recovered = received.slice(2, 12);
    assert.deepEqual(recovered.map((r) => r.details.seq), sent.map((m) => m.seq));
    assert.ok(recovered.every((r) => r.details.history && r.details.topic === topic));
    assert.equal(new Set(received.map((r) => r.details.publication)).size, 13);
    assert.deepEqual(gaps, []);
  } finally {
    await withTimeout(client.close(), 'client close');
    sender.close();
    await proxy.cut();
  }
});

test('a registration is restored after a reconnect: another session calls it again', async () => {
  const caller = await plainSession(WORKER);
  const proxy = new CuttableProxy(NODE_URL);
  await proxy.start();
  const log = new StateLog();
  const procedure = `${PREFIX}.echo`;
  const client = connect({ url: proxy.url, realm: 'demo', autobahn, backoff: FAST, onstate: log.onstate, ...WORKER });
  try {
    await log.until('connected');
    await client.register(procedure, (args) => `echo ${args[0]}`);
    assert.equal(await caller.session.call(procedure, ['one']), 'echo one');
    await proxy.cut();
    await log.until('disconnected');
    await proxy.start();
    await log.until('connected', 2);
    assert.equal(await withTimeout(caller.session.call(procedure, ['two']), 'call after reconnect'), 'echo two');
  } finally {
    await withTimeout(client.close(), 'client close');
    caller.close();
    await proxy.cut();
  }
});

test('a refused login is fatal: state failed with the reason, no retry', async () => {
  const log = new StateLog();
  const client = connect({
    url: NODE_URL, realm: 'demo', autobahn, backoff: { initial: 0.05 }, onstate: log.onstate,
    authid: uniqueRoom('nobody'), authmethods: ['ticket'], onchallenge: () => 'wrong password',
  });
  const [failed] = await log.until('failed');
  assert.equal(failed.reason, 'wamp.error.not_authorized');
  assert.equal(client.state, 'failed');
  // Asserting an absence needs a wait: a retry would have come after 0.05 s.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.equal(log.count('connecting'), 1);
  assert.equal(log.count('disconnected'), 0);
  await withTimeout(client.close(), 'client close');
  assert.equal(client.state, 'closed');
});

test('presence: two clients see each other, an update, a leave, and the list after a reconnect', async () => {
  const topic = `chat.room.${uniqueRoom('libpresence')}`;
  const proxy = new CuttableProxy(NODE_URL);
  await proxy.start();
  const logA = new StateLog();
  const a = connect({ url: proxy.url, realm: 'demo', autobahn, backoff: FAST, onstate: logA.onstate });
  const logB = new StateLog();
  const b = connect({ url: NODE_URL, realm: 'demo', autobahn, backoff: FAST, onstate: logB.onstate });
  const changes = new Changes();
  const when = (predicate, what) => changes.until(predicate, what);
  try {
    await logA.until('connected');
    const pa = await a.presence(topic, { join: true, onchange: changes.kick });
    const idA = a.session.id;
    await when(() => pa.member(idA), 'a sees itself');
    await logB.until('connected');
    const pb = await b.presence(topic, { join: true, data: { status: 'here' } });
    const idB = b.session.id;
    await when(() => pa.member(idB)?.data?.status === 'here', 'a sees b join with its data');
    assert.deepEqual(new Set(pb.members.map((m) => m.session)), new Set([idA, idB]));
    assert.equal(pa.sessions, 2);
    await pb.update({ status: 'typing' });
    await when(() => pa.member(idB)?.data?.status === 'typing', 'a sees b update');
    await pb.close();
    await when(() => !pa.member(idB) && pa.sessions === 1, 'a sees b leave');
    // a reconnects as a new (anonymous) session: the list is fetched again and has it.
    await proxy.cut();
    await logA.until('disconnected');
    await proxy.start();
    await logA.until('connected', 2);
    assert.ok(pa.member(a.session.id), JSON.stringify(pa.members));
    assert.notEqual(a.session.id, idA);
  } finally {
    await withTimeout(Promise.all([a.close(), b.close()]), 'clients close');
    await proxy.cut();
  }
});
