// Authenticated logins from autobahn-js and wampy against a running Switchboard node.
// SWITCHBOARD_URL, SWITCHBOARD_AUTHID, SWITCHBOARD_PASSWORD and SWITCHBOARD_SEED (Ed25519 seed, hex)
// describe a user of the node's store with role "user"; tests/integration/test_js_clients.py sets them.
'use strict';
globalThis.WebSocket ??= require('ws');
const autobahn = require('autobahn');
const nacl = require('tweetnacl');
const { Wampy } = require('wampy');
const wampyCra = require('wampy-cra');
const wampyCryptosign = require('wampy-cryptosign');
const WebSocket = require('ws');
const test = require('node:test');
const assert = require('node:assert/strict');
const { withTimeout, URL } = require('./support');

const AUTHID = process.env.SWITCHBOARD_AUTHID;
const PASSWORD = process.env.SWITCHBOARD_PASSWORD;
const SEED = process.env.SWITCHBOARD_SEED;

function hexToBytes(hex) {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

const keyPair = nacl.sign.keyPair.fromSeed(hexToBytes(SEED));
const PUBKEY = Buffer.from(keyPair.publicKey).toString('hex');

const AUTOBAHN_METHODS = {
  ticket: { authmethods: ['ticket'], authid: AUTHID, onchallenge: () => PASSWORD },
  wampcra: {
    authmethods: ['wampcra'],
    authid: AUTHID,
    onchallenge: (session, method, extra) => {
      const key = autobahn.auth_cra.derive_key(PASSWORD, extra.salt, extra.iterations, extra.keylen);
      return autobahn.auth_cra.sign(key, extra.challenge);
    },
  },
  cryptosign: {
    authmethods: ['cryptosign'],
    authid: AUTHID,
    authextra: { pubkey: PUBKEY },
    onchallenge: (session, method, extra) => autobahn.auth_cryptosign.sign_challenge(keyPair, extra),
  },
};

/** Join with autobahn-js; resolves {connection, session, details} or rejects with {reason, message}. */
function autobahnJoin(options) {
  const connection = new autobahn.Connection({ url: URL, realm: 'demo', max_retries: 0, ...options });
  return withTimeout(
    new Promise((resolve, reject) => {
      connection.onopen = (session, details) => resolve({ connection, session, details });
      connection.onclose = (reason, details) => {
        reject({ reason: details.reason ?? reason, message: details.message });
        return true;
      };
      connection.open();
    }),
    'autobahn-js join',
  );
}

for (const [method, options] of Object.entries(AUTOBAHN_METHODS)) {
  test(`autobahn-js logs in with ${method}`, async () => {
    const { connection, session, details } = await autobahnJoin(options);
    try {
      assert.equal(details.authid, AUTHID);
      assert.equal(details.authrole, 'user');
      assert.equal(details.authmethod, method);
      const info = await session.call('sys.info');
      assert.equal(info.authid, AUTHID);
    } finally {
      connection.close();
    }
  });
}

test('autobahn-js: a wrong ticket is wamp.error.not_authorized / authentication failed', async () => {
  await assert.rejects(
    autobahnJoin({ authmethods: ['ticket'], authid: AUTHID, onchallenge: () => 'wrong password' }),
    (e) => {
      assert.equal(e.reason, 'wamp.error.not_authorized');
      assert.equal(e.message, 'authentication failed');
      return true;
    },
  );
});

const WAMPY_METHODS = {
  ticket: { authmethods: ['ticket'], onChallenge: () => PASSWORD },
  wampcra: { authmethods: ['wampcra'], onChallenge: wampyCra.sign(PASSWORD) },
  cryptosign: { authmethods: ['cryptosign'], authextra: { pubkey: PUBKEY }, onChallenge: wampyCryptosign.sign(SEED) },
};

for (const [method, options] of Object.entries(WAMPY_METHODS)) {
  test(`wampy logs in with ${method}`, async () => {
    const client = new Wampy(URL, { realm: 'demo', ws: WebSocket, autoReconnect: false, authid: AUTHID, ...options });
    await withTimeout(client.connect(), `wampy ${method} join`);
    try {
      const result = await client.call('sys.info');
      assert.equal(result.argsList[0].authid, AUTHID);
      assert.equal(result.argsList[0].authrole, 'user');
    } finally {
      await client.disconnect();
    }
  });
}
