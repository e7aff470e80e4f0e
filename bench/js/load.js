// Load generator driven by bench/run.py: `node load.js '<json options>'`.
// Prints JSON lines on stdout: {"event": "ready"} once connected, {"event": "measure"} when the measured
// interval starts (after a warm-up), {"event": "stop"} when it ends (before any teardown), then
// {"event": "result", ...}. `client` ('lean' or 'autobahn', the default) picks the WebSocket/JSON client
// (bench/js/clients.js). Scenarios:
//   rpc     {transport, window, duration, client?}: one callee, one caller keeping `window` calls in flight
//   fanout  {subscribers, duration, topic?, presence?, client?}: one publisher, N subscribers of one topic (EXACT),
//           a bounded event window; with `presence` the topic is a presence channel: checks it lists N members
//   store   {prefix, topics, events}: publish `events` acknowledged events round-robin to `topics` topics of a
//           history channel once a line arrives on stdin, check the history has them, hold until stdin closes
//   idle    {sessions}: join N sessions, report the join rate, hold them until stdin closes
//   login   {method, concurrency, duration}: join + leave in a loop with one auth method
//   canary  {}: one session calling its own procedure every 5 ms until stdin closes (latency under load)
//   scale   {load: 'rpc'|'fanout', rate, duration, callers?, subscribers?}: a fixed offered rate, paced every
//           5 ms (calls or publications per second) from `callers` caller sessions to one callee, or from one
//           publisher to `subscribers`, lean WebSocket/JSON clients; first waits until every caller reaches the
//           callee and every subscriber gets events (with several router workers they cross links)
'use strict';
const nacl = require('tweetnacl');
const { autobahn, open, withTimeout } = require('./clients');

const options = JSON.parse(process.argv[2]);
const target = options.target;
const PAYLOAD = 'x'.repeat(32);
const WARMUP_MS = options.warmup_ms ?? 500;
const HOLD_LIMIT_MS = 600000;

function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function percentiles(samples) {
  if (samples.length === 0) return { p50_ms: null, p99_ms: null };
  const sorted = Float64Array.from(samples).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50_ms: at(0.5), p99_ms: at(0.99) };
}

const now = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the first line written to stdin (bench/run.py's signal to go on). */
function stdinLine() {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk) => {
      buffered += chunk;
      if (buffered.includes('\n')) {
        process.stdin.off('data', onData);
        process.stdin.pause();
        resolve(buffered.split('\n')[0]);
      }
    };
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', onData);
    process.stdin.once('end', () => reject(new Error('stdin closed before a line arrived')));
    process.stdin.resume();
  });
}

/** Resolves when stdin closes (bench/run.py's signal to stop holding), or after HOLD_LIMIT_MS. */
function stdinClosed() {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, HOLD_LIMIT_MS);
    process.stdin.on('end', () => {
      clearTimeout(timer);
      resolve();
    });
    process.stdin.resume();
  });
}

/** Run `op` with `window` in flight: warm up, then measure for `duration` seconds. */
async function closedLoop(op, window, duration) {
  let measuring = false;
  let stop = false;
  let ops = 0;
  const latencies = [];
  async function lane() {
    while (!stop) {
      const start = now();
      await op();
      if (measuring && !stop) {
        ops += 1;
        latencies.push(now() - start);
      }
    }
  }
  const lanes = Array.from({ length: window }, lane);
  await sleep(WARMUP_MS);
  emit('measure');
  measuring = true;
  const began = now();
  await sleep(duration * 1000);
  stop = true;
  const seconds = (now() - began) / 1000;
  emit('stop');
  await Promise.all(lanes);
  return { ops, seconds, rate: ops / seconds, ...percentiles(latencies) };
}

async function rpc() {
  const clients = [];
  try {
    if (target.kind === 'wamp') {
      const callee = await open(target, options.transport, undefined, options.client);
      clients.push(callee);
      await callee.register('bench.echo', (args) => args[0]);
    }
    const caller = await open(target, options.transport, undefined, options.client);
    clients.push(caller);
    emit('ready');
    return await closedLoop(() => caller.call('bench.echo', [PAYLOAD]), options.window, options.duration);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

/** Open `count` sessions, at most `concurrency` joining at once; resolves with them and the seconds spent. */
async function openMany(count, concurrency, transport, client) {
  const sessions = [];
  let next = 0;
  const began = now();
  async function opener() {
    while (next < count) {
      next += 1;
      sessions.push(await open(target, transport, undefined, client));
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, opener));
  return { sessions, seconds: (now() - began) / 1000 };
}

async function fanout() {
  const n = options.subscribers;
  const topic = options.topic ?? 'bench.fanout';
  const { sessions: subscribers } = await openMany(n, 50, options.transport, options.client);
  const publisher = await open(target, options.transport, undefined, options.client);
  // Each event is done when all subscribers have it; at most `window` events are unfinished.
  const window = Math.max(1, Math.min(16, Math.floor(1000 / n)));
  const remaining = new Map();
  let release = null;
  let measuring = false;
  let deliveries = 0;
  const latencies = [];
  const onEvent = (args) => {
    const [seq, sent] = args;
    if (measuring) {
      deliveries += 1;
      if (latencies.length < 2000000) latencies.push(now() - sent);
    }
    const left = remaining.get(seq) - 1;
    if (left === 0) {
      remaining.delete(seq);
      if (release) release();
    } else remaining.set(seq, left);
  };
  // autobahn-js subscribes EXACT by default: on a presence channel each subscriber is a member.
  await Promise.all(subscribers.map((s) => s.subscribe(topic, onEvent)));
  let members = null;
  if (options.presence) {
    members = (await publisher.call('switchboard.presence.get', [topic])).sessions;
    if (members !== n) throw new Error(`presence of ${topic} lists ${members} sessions, expected ${n}`);
  }
  emit('ready');
  let seq = 0;
  let stop = false;
  const publishing = (async () => {
    while (!stop) {
      while (remaining.size >= window) await new Promise((resolve) => (release = resolve));
      release = null;
      seq += 1;
      remaining.set(seq, n);
      publisher.publish(topic, [seq, now()]);
      if (seq % 64 === 0) await new Promise(setImmediate); // let incoming events be read
    }
  })();
  await sleep(WARMUP_MS);
  emit('measure');
  measuring = true;
  const began = now();
  await sleep(options.duration * 1000);
  measuring = false;
  const seconds = (now() - began) / 1000;
  emit('stop');
  stop = true;
  // Drain: the publisher stops once the window frees; bounded.
  await withTimeout(publishing, 'fan-out drain', 10000).catch(() => {});
  await Promise.all([publisher, ...subscribers].map((s) => s.close()));
  return { ops: deliveries, seconds, rate: deliveries / seconds, events: seq, members, ...percentiles(latencies) };
}

async function store() {
  const { prefix, topics, events } = options;
  const window = 32;
  const names = Array.from({ length: topics }, (_, i) => `${prefix}.store.${i}`);
  const s = await open(target, 'websocket');
  try {
    // One event through the whole history path (recording, a write) before the "before" RSS is read.
    await s.publishAcked(`${prefix}.warmup`, [0, PAYLOAD]);
    await sleep(200);
    emit('ready');
    await stdinLine();
    let next = 0;
    const began = now();
    async function lane() {
      while (next < events) {
        const i = next;
        next += 1;
        await s.publishAcked(names[i % topics], [i, PAYLOAD]);
      }
    }
    await Promise.all(Array.from({ length: window }, lane));
    const seconds = (now() - began) / 1000;
    // Every event is in the history: each topic's latest sequence number is the count published to it.
    for (const [i, name] of names.entries()) {
      const expected = Math.floor(events / topics) + (i < events % topics ? 1 : 0);
      const got = await s.call('switchboard.history.get', [name, null, 1]);
      const last = got.events.at(-1)?.seq ?? 0;
      if (last !== expected) throw new Error(`history of ${name} ends at seq ${last}, expected ${expected}`);
    }
    emit('stored', { events, seconds, rate: events / seconds });
    await stdinClosed();
    return { ops: events, seconds, rate: events / seconds, p50_ms: null, p99_ms: null };
  } finally {
    await s.close();
  }
}

async function idle() {
  const { sessions, seconds } = await openMany(options.sessions, 100, options.transport ?? 'websocket');
  emit('joined', { sessions: sessions.length, seconds, rate: sessions.length / seconds });
  await stdinClosed();
  await Promise.all(sessions.map((s) => withTimeout(s.close(), 'close', 10000).catch(() => {})));
  return { ops: sessions.length, seconds, rate: sessions.length / seconds, p50_ms: null, p99_ms: null };
}

/** Connection options logging in as the bench user with `method` (credentials from bench/run.py). */
function authOptions(method, credentials) {
  switch (method) {
    case 'anonymous':
      return { authmethods: ['anonymous'] };
    case 'ticket':
      return { authmethods: ['ticket'], authid: credentials.authid, onchallenge: () => credentials.password };
    case 'wampcra': {
      // A client derives its salted key once and keeps it, so each login costs the router, not the client.
      let key = null;
      return {
        authmethods: ['wampcra'],
        authid: credentials.authid,
        onchallenge: (session, m, extra) => {
          key ??= extra.salt
            ? autobahn.auth_cra.derive_key(credentials.password, extra.salt, extra.iterations, extra.keylen)
            : credentials.password;
          return autobahn.auth_cra.sign(key, extra.challenge);
        },
      };
    }
    case 'cryptosign': {
      const keyPair = nacl.sign.keyPair.fromSeed(Uint8Array.from(Buffer.from(credentials.seed, 'hex')));
      return {
        authmethods: ['cryptosign'],
        authid: credentials.authid,
        authextra: { pubkey: Buffer.from(keyPair.publicKey).toString('hex') },
        onchallenge: (session, m, extra) => autobahn.auth_cryptosign.sign_challenge(keyPair, extra),
      };
    }
    default:
      throw new Error(`unknown auth method ${method}`);
  }
}

async function login() {
  const auth = authOptions(options.method, options.credentials);
  let failures = 0;
  const op = async () => {
    try {
      const s = await open(target, 'websocket', auth);
      await s.close();
    } catch (e) {
      failures += 1;
      if (failures === 1) process.stderr.write(`login failed: ${e.message}\n`);
      await sleep(10);
    }
  };
  emit('ready');
  const result = await closedLoop(op, options.concurrency, options.duration);
  return { ...result, failures };
}

async function canary() {
  const s = await open(target, 'websocket');
  const procedure = `bench.canary_${process.pid}`;
  await s.register(procedure, (args) => args[0]);
  const latencies = [];
  let stop = false;
  stdinClosed().then(() => (stop = true));
  emit('ready');
  const began = now();
  while (!stop) {
    const start = now();
    await s.call(procedure, [PAYLOAD]);
    latencies.push(now() - start);
    await sleep(5);
  }
  const seconds = (now() - began) / 1000;
  await s.close();
  return { ops: latencies.length, seconds, rate: latencies.length / seconds, ...percentiles(latencies) };
}

/** Resolves once `attempt()` resolves, trying every 50 ms for at most `ms`. */
async function until(attempt, what, ms = 30000) {
  const deadline = now() + ms;
  for (;;) {
    try {
      return await attempt();
    } catch (e) {
      if (now() > deadline) throw new Error(`${what}: ${e.message}`);
    }
    await sleep(50);
  }
}

/** Run `fire()` `rate` times a second, paced in ticks of 5 ms, with `gate.measuring` set while measured:
 * warm up, then measure `duration` seconds; the measured seconds. */
async function paced(fire, rate, duration, gate) {
  const started = now();
  let issued = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((now() - started) / 1000) * rate);
    for (; issued < due; issued += 1) fire();
  }, 5);
  try {
    await sleep(WARMUP_MS);
    emit('measure');
    gate.measuring = true;
    const began = now();
    await sleep(duration * 1000);
    gate.measuring = false;
    const seconds = (now() - began) / 1000;
    emit('stop');
    return seconds;
  } finally {
    clearInterval(timer);
  }
}

/** Calls past which a paced caller skips (and counts) calls instead of queueing them without bound. */
const MAX_UNFINISHED = 4096;

async function scaleRpc(clients, gate) {
  const callee = await open(target, 'websocket', undefined, 'lean');
  clients.push(callee);
  await callee.register('bench.echo', (args) => args[0]);
  const callers = [];
  for (let i = 0; i < options.callers; i += 1) callers.push(await open(target, 'websocket', undefined, 'lean'));
  clients.push(...callers);
  for (const caller of callers) await until(() => caller.call('bench.echo', [PAYLOAD]), 'no callee reached');
  emit('ready');
  let ops = 0;
  let unfinished = 0;
  let skipped = 0;
  let failed = 0;
  let next = 0;
  const latencies = [];
  const seconds = await paced(
    () => {
      if (unfinished >= MAX_UNFINISHED) {
        skipped += 1;
        return;
      }
      const counted = gate.measuring;
      const start = now();
      unfinished += 1;
      callers[next++ % callers.length].call('bench.echo', [PAYLOAD]).then(
        () => {
          unfinished -= 1;
          if (counted && gate.measuring) {
            ops += 1;
            latencies.push(now() - start);
          }
        },
        () => {
          unfinished -= 1;
          failed += 1;
        },
      );
    },
    options.rate,
    options.duration,
    gate,
  );
  return { ops, seconds, rate: ops / seconds, skipped, failed, ...percentiles(latencies) };
}

async function scaleFanout(clients, gate) {
  const topic = 'bench.scale';
  const { sessions: subscribers } = await openMany(options.subscribers, 50, 'websocket', 'lean');
  const publisher = await open(target, 'websocket', undefined, 'lean');
  clients.push(publisher, ...subscribers);
  const reached = new Set();
  let ops = 0;
  const latencies = [];
  await Promise.all(
    subscribers.map((s, i) =>
      s.subscribe(topic, (args) => {
        if (args[0] === 'probe') reached.add(i);
        else if (gate.measuring) {
          ops += 1;
          if (latencies.length < 2000000) latencies.push(now() - args[1]);
        }
      }),
    ),
  );
  await until(async () => {
    publisher.publish(topic, ['probe']);
    await sleep(50);
    if (reached.size < subscribers.length) throw new Error(`${reached.size} of ${subscribers.length} reached`);
  }, 'subscribers not reached');
  await sleep(200); // the last probes
  emit('ready');
  const seconds = await paced(() => publisher.publish(topic, ['event', now()]), options.rate, options.duration, gate);
  return { ops, seconds, rate: ops / seconds, ...percentiles(latencies) };
}

async function scale() {
  const clients = [];
  const gate = { measuring: false };
  try {
    return await (options.load === 'rpc' ? scaleRpc(clients, gate) : scaleFanout(clients, gate));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

const SCENARIOS = { rpc, fanout, store, idle, login, canary, scale };

SCENARIOS[options.scenario]()
  .then((result) => {
    emit('result', result);
    process.exit(0);
  })
  .catch((e) => {
    process.stderr.write(`${e.stack ?? e}\n`);
    process.exit(1);
  });
