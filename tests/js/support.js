'use strict';
const crypto = require('node:crypto');

const URL = process.env.SWITCHBOARD_URL;
if (!URL) {
  throw new Error('set SWITCHBOARD_URL to the ws:// URL of a running Switchboard node');
}

/** A room name no other test uses, so tests can share one node. */
function uniqueRoom(prefix) {
  return `${prefix}_${crypto.randomBytes(6).toString('hex')}`;
}

/** Reject if `promise` has not settled within `ms` milliseconds. */
function withTimeout(promise, what, ms = 10000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

module.exports = { URL, uniqueRoom, withTimeout };
