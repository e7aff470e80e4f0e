// Clients for the load generator, all with one small promise API:
//   call(procedure, args) -> result args     register(procedure, fn)     subscribe(topic, fn(args))
//   publish(topic, args)                     close()
//   publishAcked(topic, args): autobahn-js only, resolves when the router has accepted the event
// - WebSocket/JSON, client 'lean' (the rpc and fanout default): a minimal WAMP client (anonymous join, RPC,
//   pub/sub) over `ws`, so the load side costs as little as possible per message (bench/run.py reports its
//   CPU beside the router's), the same for every system.
// - WebSocket/JSON, client 'autobahn': autobahn-js, the client most JavaScript users run (every other
//   scenario, and the second rpc/fanout case).
// - RawSocket/msgpack: autobahn-js speaks RawSocket with JSON only, so the same minimal WAMP client over
//   RawSocket framing with msgpackr. It does no more than a router needs to see.
// - Echo: the same framings without WAMP, for the echo-server ceiling; `call` sends a WAMP-sized message
//   and resolves when it comes back.
'use strict';
globalThis.WebSocket ??= require('ws');
// autobahn-js binds console.warn when loaded and warns about every closed connection: a load generator
// closes thousands. Errors that matter are written to stderr by load.js itself.
const warn = console.warn;
console.warn = () => {};
const autobahn = require('autobahn');
console.warn = warn;
const net = require('node:net');
const WebSocket = require('ws');
const { Packr } = require('msgpackr');

const msgpack = new Packr({ useRecords: false, mapsAsObjects: true });
const SERIALIZER_IDS = { json: 1, msgpack: 2 };
const CONNECT_TIMEOUT_MS = 15000;

function withTimeout(promise, what, ms = CONNECT_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Join over WebSocket with autobahn-js. `auth`: extra Connection options (authmethods, onchallenge...). */
function openAutobahn(target, serializer, auth = {}) {
  const serializers = [
    serializer === 'msgpack' ? new autobahn.serializer.MsgpackSerializer() : new autobahn.serializer.JSONSerializer(),
  ];
  const connection = new autobahn.Connection({
    transports: [{ type: 'websocket', url: target.url, serializers }],
    realm: target.realm,
    max_retries: 0,
    ...auth,
  });
  return withTimeout(
    new Promise((resolve, reject) => {
      connection.onopen = (session) => {
        const closed = new Promise((done) => {
          connection.onclose = () => {
            done();
            return true;
          };
        });
        resolve({
          call: (procedure, args) => session.call(procedure, args),
          register: (procedure, fn) => session.register(procedure, fn),
          subscribe: (topic, fn) => session.subscribe(topic, fn),
          publish: (topic, args) => session.publish(topic, args),
          publishAcked: (topic, args) => session.publish(topic, args, {}, { acknowledge: true }),
          close: () => {
            connection.close();
            return withTimeout(closed, 'close', 5000).catch(() => {});
          },
        });
      };
      connection.onclose = (reason, details) => {
        reject(new Error(`join refused: ${details.reason ?? reason} ${details.message ?? ''}`));
        return true;
      };
      connection.open();
    }),
    'autobahn-js join',
  );
}

/** A RawSocket connection: handshake, then length-prefixed frames (pings answered). */
class RawFrames {
  constructor(socket, serializer, onFrame) {
    this.socket = socket;
    this.serializer = serializer;
    this.onFrame = onFrame;
    this.buffer = Buffer.alloc(0);
    this.handshaken = false;
  }

  static open(host, port, serializer, onFrame) {
    return withTimeout(
      new Promise((resolve, reject) => {
        const socket = net.connect({ host, port });
        socket.setNoDelay(true);
        const frames = new RawFrames(socket, serializer, onFrame);
        frames.ready = { resolve, reject };
        socket.on('connect', () => socket.write(Buffer.from([0x7f, 0xf0 | SERIALIZER_IDS[serializer], 0, 0])));
        socket.on('data', (data) => frames.receive(data));
        socket.on('error', (e) => reject(e));
        socket.on('close', () => reject(new Error('connection closed')));
      }),
      'rawsocket handshake',
    );
  }

  receive(data) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, data]) : data;
    if (!this.handshaken) {
      if (this.buffer.length < 4) return;
      const reply = this.buffer.subarray(0, 4);
      this.buffer = this.buffer.subarray(4);
      if (reply[0] !== 0x7f || (reply[1] & 0x0f) !== SERIALIZER_IDS[this.serializer]) {
        this.ready.reject(new Error(`rawsocket handshake refused: ${reply.toString('hex')}`));
        return;
      }
      this.handshaken = true;
      this.ready.resolve(this);
    }
    let offset = 0;
    while (this.buffer.length - offset >= 4) {
      const kind = this.buffer[offset] & 0x07;
      const length = this.buffer.readUIntBE(offset + 1, 3);
      if (this.buffer.length - offset - 4 < length) break;
      const payload = this.buffer.subarray(offset + 4, offset + 4 + length);
      offset += 4 + length;
      if (kind === 0) this.onFrame(payload);
      else if (kind === 1) this.write(payload, 2);
    }
    this.buffer = this.buffer.subarray(offset);
  }

  write(payload, kind = 0) {
    const header = Buffer.allocUnsafe(4);
    header[0] = kind;
    header.writeUIntBE(payload.length, 1, 3);
    this.socket.write(Buffer.concat([header, payload]));
  }

  close() {
    this.socket.destroy();
  }
}

const HELLO = 1;
const WELCOME = 2;
const ABORT = 3;
const GOODBYE = 6;
const ERROR = 8;
const PUBLISH = 16;
const SUBSCRIBE = 32;
const SUBSCRIBED = 33;
const EVENT = 36;
const CALL = 48;
const RESULT = 50;
const REGISTER = 64;
const REGISTERED = 65;
const INVOCATION = 68;
const YIELD = 70;
const ROLES = { caller: {}, callee: {}, publisher: {}, subscriber: {} };

/** Minimal anonymous WAMP session over RawSocket/msgpack. */
function openRawWamp(target) {
  return leanSession(target.realm, async (receive) => {
    const frames = await RawFrames.open(target.host, target.rawsocket, 'msgpack', (p) => receive(msgpack.unpack(p)));
    return { send: (msg) => frames.write(msgpack.pack(msg)), close: () => frames.close() };
  });
}

/** Minimal anonymous WAMP session over WebSocket/JSON (`ws`, no per-message objects beyond the JSON). */
function openWebSocketWamp(target) {
  return leanSession(
    target.realm,
    (receive) =>
      withTimeout(
        new Promise((resolve, reject) => {
          const ws = new WebSocket(target.url, ['wamp.2.json'], { perMessageDeflate: false });
          ws.on('open', () => resolve({ send: (msg) => ws.send(JSON.stringify(msg)), close: () => ws.terminate() }));
          ws.on('message', (data) => receive(JSON.parse(data)));
          ws.on('error', reject);
          ws.on('close', () => reject(new Error('connection closed')));
        }),
        'websocket connect',
      ),
  );
}

/** A minimal anonymous WAMP session on `realm` over `connect(receive) -> {send(msg), close()}`. */
async function leanSession(realm, connect) {
  let nextId = 0;
  const pending = new Map();
  const endpoints = new Map();
  const handlers = new Map();
  let joined;
  const welcome = new Promise((resolve, reject) => {
    joined = { resolve, reject };
  });
  const wire = await connect((msg) => {
    switch (msg[0]) {
      case WELCOME:
        joined.resolve();
        break;
      case ABORT:
        joined.reject(new Error(`join refused: ${msg[2]}`));
        break;
      case RESULT:
      case SUBSCRIBED:
      case REGISTERED: {
        const request = pending.get(msg[1]);
        pending.delete(msg[1]);
        request.resolve(msg[0] === RESULT ? msg[3] : msg[2]);
        break;
      }
      case ERROR: {
        const request = pending.get(msg[2]);
        pending.delete(msg[2]);
        request.reject(new Error(msg[4]));
        break;
      }
      case INVOCATION: {
        const result = endpoints.get(msg[2])(msg[4] ?? []);
        send([YIELD, msg[1], {}, [result]]);
        break;
      }
      case EVENT:
        handlers.get(msg[1])(msg[4] ?? []);
        break;
      case GOODBYE:
        wire.close();
        break;
      default:
        break;
    }
  });
  const send = (msg) => wire.send(msg);
  const request = (msg) =>
    new Promise((resolve, reject) => {
      pending.set(msg[1], { resolve, reject });
      send(msg);
    });
  send([HELLO, realm, { roles: ROLES, authmethods: ['anonymous'] }]);
  await withTimeout(welcome, 'lean client join');
  return {
    call: (procedure, args) => request([CALL, ++nextId, {}, procedure, args]).then((a) => a?.[0]),
    register: async (procedure, fn) => endpoints.set(await request([REGISTER, ++nextId, {}, procedure]), fn),
    subscribe: async (topic, fn) => handlers.set(await request([SUBSCRIBE, ++nextId, {}, topic]), fn),
    publish: (topic, args) => send([PUBLISH, ++nextId, {}, topic, args]),
    close: async () => {
      send([GOODBYE, {}, 'wamp.close.normal']);
      wire.close();
    },
  };
}

/** WebSocket echo: `call` sends a WAMP-sized text message and resolves when it returns (FIFO). */
function openWebSocketEcho(target) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(target.url, ['wamp.2.json']);
      const waiting = [];
      let nextId = 0;
      ws.on('open', () =>
        resolve({
          call: (procedure, args) =>
            new Promise((done) => {
              waiting.push(done);
              ws.send(JSON.stringify([CALL, ++nextId, {}, procedure, args]));
            }),
          close: () => ws.close(),
        }),
      );
      ws.on('message', () => waiting.shift()());
      ws.on('error', reject);
    }),
    'websocket echo connect',
  );
}

/** RawSocket echo: msgpack frames of a WAMP CALL's size, echoed back (FIFO). */
async function openRawEcho(target) {
  const waiting = [];
  const frames = await RawFrames.open(target.host, target.rawsocket, 'msgpack', () => waiting.shift()());
  let nextId = 0;
  return {
    call: (procedure, args) =>
      new Promise((done) => {
        waiting.push(done);
        frames.write(msgpack.pack([CALL, ++nextId, {}, procedure, args]));
      }),
    close: async () => frames.close(),
  };
}

/** Open a client of `target` ({kind: 'wamp'|'echo', url, host, rawsocket, realm}) over `transport`;
 * `client` 'lean' or 'autobahn' (the default) for WebSocket/JSON. */
function open(target, transport, auth, client = 'autobahn') {
  if (target.kind === 'echo') return transport === 'rawsocket' ? openRawEcho(target) : openWebSocketEcho(target);
  if (transport === 'rawsocket') return openRawWamp(target);
  if (client === 'lean' && !auth) return openWebSocketWamp(target);
  return openAutobahn(target, 'json', auth);
}

module.exports = { autobahn, open, withTimeout };
