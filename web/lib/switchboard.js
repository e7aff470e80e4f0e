// Switchboard's JavaScript client: a WAMP connection to a Switchboard node that reconnects forever, restores
// registrations and subscriptions after each reconnect, recovers missed channel events from history and keeps
// a live presence list. An ES module without a build step, for browsers and Node >= 20, on autobahn-js.
// See docs/client-js.md.

/** WAMP reasons of a refused join that no retry can cure: the client stops in state `failed`. */
export const FATAL_REASONS = new Set(['not_authorized', 'authentication_failed', 'authorization_failed',
  'no_such_role', 'no_auth_method', 'no_such_realm'].map((name) => `wamp.error.${name}`));

/** Error URIs of the client's own failures (`err.error`, as autobahn's errors have). */
export const NOT_CONNECTED = 'switchboard.client.not_connected';
export const CONNECTION_LOST = 'switchboard.client.connection_lost';

/** A failure of the client itself, not an answer of the router: `error` is one of the URIs above. */
export class ClientError extends Error {
  constructor(error, message) {
    super(message);
    this.name = 'ClientError';
    this.error = error;
    this.args = [message];
    this.kwargs = {};
  }
}

/**
 * The WebSocket URL a page served by the node connects to: `ws(s)://<the page's host:port>/ws`, or the `?ws=`
 * of the page's address when it names the page's own host and port (another path). A link must never send a
 * login to another server, not even to another port of the same host.
 * @param {{protocol: string, host: string, search: string}} page the page's `location`
 * @returns {string}
 */
export function pageSocketUrl(page) {
  const own = `${page.protocol === 'https:' ? 'wss' : 'ws'}://${page.host}/ws`;
  const asked = new URLSearchParams(page.search).get('ws');
  try {
    return asked !== null && new URL(asked).host === page.host ? asked : own;
  } catch {
    return own;
  }
}

/** Backoff defaults, in seconds: the first retry after `initial`, each next one `factor` times longer, at
 * most `max`, each shortened by a random fraction of at most `jitter` so clients do not retry in step. */
export const DEFAULT_BACKOFF = Object.freeze({ initial: 0.5, max: 30, factor: 2, jitter: 0.5 });

/**
 * Seconds to wait before retry number `attempt` (0 for the first retry after a drop).
 * @param {number} attempt
 * @param {{initial?: number, max?: number, factor?: number, jitter?: number}} [backoff]
 * @param {() => number} [random] a number in [0, 1), Math.random by default
 * @returns {number} in [base * (1 - jitter), base] where base = min(max, initial * factor ** attempt)
 */
export function backoffDelay(attempt, backoff = {}, random = Math.random) {
  const { initial, max, factor, jitter } = { ...DEFAULT_BACKOFF, ...backoff };
  const base = Math.min(max, initial * factor ** attempt);
  return base * (1 - jitter * random());
}

/**
 * Connect to a Switchboard node and stay connected until `close()`.
 * @param {object} options
 * @param {string} options.url  ws:// or wss:// URL of the node's WebSocket transport
 * @param {string} options.realm
 * @param {object} [options.autobahn]  the autobahn module (default `globalThis.autobahn`)
 * @param {string} [options.authid]
 * @param {string[]} [options.authmethods]  e.g. ['ticket']; anonymous without
 * @param {object} [options.authextra]
 * @param {Function} [options.onchallenge]  autobahn's (session, method, extra) => signature
 * @param {object} [options.backoff]  see DEFAULT_BACKOFF
 * @param {(state: string, info: object) => void} [options.onstate]
 * @param {(error: Error, context: string) => void} [options.onerror]  failures nobody awaits (a handler that
 *   throws, a registration refused after a reconnect); console.warn by default
 * @returns {Client}
 */
export function connect(options) {
  const client = new Client(options);
  client._open();
  return client;
}

/** A connection that reconnects forever. Make one with `connect()`. */
export class Client {
  constructor({ url, realm, autobahn = globalThis.autobahn, backoff, onstate, onerror, ...auth }) {
    if (!autobahn || !autobahn.Connection) {
      throw new TypeError('switchboard: pass `autobahn` or load autobahn-browser first (globalThis.autobahn)');
    }
    this.url = url;
    this.realm = realm;
    this._autobahn = autobahn;
    this._auth = auth; // authid, authmethods, authextra, onchallenge
    this._backoff = { ...DEFAULT_BACKOFF, ...backoff };
    this._everJoined = false;
    this._onstate = onstate || (() => {});
    this._onerror = onerror || ((error, context) => console.warn(`switchboard: ${context}:`, error));
    /** `connecting`, `connected`, `disconnected`, `failed` or `closed`. */
    this.state = 'connecting';
    /** The current autobahn session, or null between connections. */
    this.session = null;
    this._connection = null;
    this._attempt = 0; // retries since the last successful join
    this._timer = null;
    this._closing = false;
    this._followers = new Set(); // registrations, subscriptions and presence lists to restore on every join
    this._pending = new Set(); // reject functions of calls in flight on the current session
    this._closed = new Promise((resolve) => (this._resolveClosed = resolve));
  }

  /** Run application code `fn`: what it throws goes to `onerror`, never into the client's own work. */
  _safely(fn, context) {
    try {
      fn();
    } catch (e) {
      this._onerror(e, context);
    }
  }

  _setState(state, info = {}) {
    this.state = state;
    this._safely(() => this._onstate(state, info), 'onstate');
  }

  _open() {
    this._timer = null;
    this._setState('connecting', { attempt: this._attempt });
    const connection = new this._autobahn.Connection({
      url: this.url,
      realm: this.realm,
      ...this._auth,
      max_retries: 0, // the retry loop is ours: forever, with our backoff
      use_es6_promises: true,
    });
    let joined = false;
    this._connection = connection;
    connection.onopen = async (session, details) => {
      if (this._closing) {
        connection.close(); // close() was called while this connection was being made
        return;
      }
      joined = true;
      this._everJoined = true;
      this._attempt = 0;
      this.session = session;
      // `connected` once everything is restored, so that "connected" means "as before the drop".
      await Promise.all([...this._followers].map((f) => this._restore(f, session)));
      if (this.session === session) this._setState('connected', { session: session.id, details });
    };
    connection.onclose = (reason, details) => {
      this._connection = null;
      this.session = null;
      const lost = new ClientError(CONNECTION_LOST, 'the connection was lost before the answer came');
      for (const reject of this._pending) reject(lost);
      this._pending.clear();
      const why = details.reason || reason;
      if (this._closing) {
        this._setState('closed', {});
        this._resolveClosed();
      } else if (!joined && !this._everJoined && FATAL_REASONS.has(details.reason)) {
        // Refused before this client ever joined: wrong credentials, not worth retrying. Once it has joined,
        // a refusal (the router's login throttle, say) passes: keep trying, at the longest delay.
        this._setState('failed', { reason: why, message: details.message });
      } else {
        const refused = !joined && FATAL_REASONS.has(details.reason);
        const delay = refused ? this._backoff.max : backoffDelay(this._attempt, this._backoff);
        this._attempt += 1;
        this._setState('disconnected', { reason: why, message: details.message, delay, attempt: this._attempt });
        if (!this._closing) {
          // (onstate may have called close())
          this._timer = setTimeout(() => this._closing || this._open(), delay * 1000);
        }
      }
      return true; // autobahn must not retry on its own
    };
    connection.open();
  }

  async _restore(follower, session) {
    try {
      await follower._attach(session);
    } catch (e) {
      if (session.isOpen) this._onerror(e, `restoring the ${follower.what}`);
    }
  }

  /**
   * Stop: leave the session (if any), cancel the next retry. Resolves once the client is `closed`.
   * @returns {Promise<void>}
   */
  close() {
    if (this._closing || this.state === 'closed') return this._closed;
    this._closing = true;
    clearTimeout(this._timer);
    if (this._connection) {
      this._connection.close(); // onclose follows, and sets `closed`
    } else {
      this._setState('closed', {});
      this._resolveClosed();
    }
    return this._closed;
  }

  /** Run `action(session)` on the open session; reject at once when there is none (no queueing), and with
   * CONNECTION_LOST when the connection drops before the answer (autobahn alone would wait forever). */
  _run(action, session = this.session) {
    if (!session || !session.isOpen || session !== this.session) {
      return Promise.reject(new ClientError(NOT_CONNECTED, `not connected (state: ${this.state})`));
    }
    return new Promise((resolve, reject) => {
      this._pending.add(reject);
      Promise.resolve()
        .then(() => action(session))
        .then(resolve, reject)
        .finally(() => this._pending.delete(reject));
    });
  }

  /** Call a procedure; rejects with NOT_CONNECTED while disconnected (nothing is queued). */
  call(procedure, args, kwargs, options) {
    return this._run((s) => s.call(procedure, args, kwargs, options));
  }

  /** Publish; rejects with NOT_CONNECTED while disconnected. Resolves with autobahn's answer (a publication
   * only with `{acknowledge: true}`). */
  publish(topic, args, kwargs, options) {
    return this._run((s) => s.publish(topic, args, kwargs, options));
  }

  /**
   * Register `fn(args, kwargs, details)` now (if connected) and again after every reconnect. Connected, it
   * resolves once registered and rejects if the router refuses; disconnected, it resolves at once.
   * @returns {Promise<{procedure: string, unregister: () => Promise<void>}>}
   */
  async register(procedure, fn, options) {
    const follower = {
      procedure,
      registration: null,
      what: `registration of ${procedure}`,
      _attach: async (session) => {
        follower.registration = await this._run((s) => s.register(procedure, fn, options), session);
      },
      unregister: async () => {
        this._followers.delete(follower);
        const { registration } = follower;
        follower.registration = null;
        if (registration && registration.active && this.session?.isOpen) {
          await this._run((s) => s.unregister(registration));
        }
      },
    };
    await this._follow(follower);
    return follower;
  }

  /**
   * Subscribe `handler(args, kwargs, details)` now and after every reconnect; `details` has `publication`,
   * `topic`, and `seq` for events that came from history.
   * @param {string} topic
   * @param {Function} handler
   * @param {object} [options]
   * @param {boolean} [options.recover] after each reconnect, deliver the events missed meanwhile from the
   *   channel's history, once each and in order, before any live event
   * @param {(gap: {topic: string, epoch: string|null, after: number}) => void} [options.ongap] with recover:
   *   the history no longer reaches back to the last event seen; drop what was built from the topic, the
   *   latest events follow
   * @param {number} [options.backlog] with recover: deliver the topic's latest `backlog` events first
   * @param {number|null} [options.after] with recover: start after this publication id instead
   * @param {number} [options.limit] events per history page (default 100)
   * @param {object} [options.subscribe] autobahn subscribe options (e.g. {match: 'prefix'}; no recover then)
   * @returns {Promise<ChannelSubscription>}
   */
  async subscribe(topic, handler, options = {}) {
    const subscription = new ChannelSubscription(this, topic, handler, options);
    await this._follow(subscription);
    return subscription;
  }

  /**
   * A live member list of a presence channel topic. With `join: true` this client is a member too: it
   * subscribes exactly to `topic` (members are the sessions subscribed exactly to it).
   * @param {string} topic
   * @param {{onchange?: (presence: Presence, event: object) => void, join?: boolean, data?: any}} [options]
   * @returns {Promise<Presence>}
   */
  async presence(topic, options = {}) {
    const presence = new Presence(this, topic, options);
    await this._follow(presence);
    return presence;
  }

  async _follow(follower) {
    this._followers.add(follower);
    if (this.session?.isOpen) {
      try {
        await follower._attach(this.session);
      } catch (e) {
        // Refused by the router: the caller learns it. Cut off by a drop: restored at the next join.
        if (!(e instanceof ClientError)) {
          this._followers.delete(follower);
          throw e;
        }
      }
    }
  }
}

/** One topic followed across reconnects (see `Client.subscribe`). */
export class ChannelSubscription {
  constructor(client, topic, handler, { recover = false, ongap, backlog = 0, after = null, limit = 100, subscribe } = {}) {
    Object.assign(this, { client, topic, handler, recover, ongap, backlog, limit, subscribeOptions: subscribe });
    /** Publication id of the last event delivered (or the latest event when first subscribed), or null. */
    this.lastSeen = after;
    this._started = after !== null;
    this._session = null;
    this._sub = null;
    this.what = `subscription to ${topic}`;
  }

  _deliver(args, kwargs, details) {
    this.lastSeen = details.publication;
    this.client._safely(() => this.handler(args, kwargs, details), `handler of ${this.topic}`);
  }

  async _attach(session) {
    const run = (action) => this.client._run(action, session);
    let buffer = this.recover ? [] : null;
    this._session = session;
    const onEvent = (args, kwargs, event) => {
      if (this._session !== session) return;
      const details = { publication: event.publication, topic: event.topic, publisher_authid: event.publisher_authid,
        publisher_authrole: event.publisher_authrole };
      if (buffer) buffer.push([args, kwargs, details]);
      else this._deliver(args, kwargs, details);
    };
    this._sub = await run((s) => s.subscribe(this.topic, onEvent, this.subscribeOptions));
    if (!buffer) return;
    try {
      await this._recover(session, run, () => buffer);
    } catch (error) {
      // History refused or the connection lost: stop buffering, and drop the subscription that would feed it.
      abandon(this, session, [this._sub]);
      throw error;
    } finally {
      buffer = null;
    }
  }

  async _recover(session, run, buffered) {
    const history = (after, limit) => run((s) => s.call('switchboard.history.get', [this.topic], { after, limit }));
    const seen = new Set();
    const deliverPage = (events) => {
      for (const e of events) {
        seen.add(e.publication);
        this._deliver(e.args, e.kwargs, { publication: e.publication, topic: this.topic, seq: e.seq, ts: e.ts,
          publisher_authid: e.publisher_authid, publisher_authrole: e.publisher_authrole, history: true });
      }
    };
    if (!this._started) {
      // First subscription: nothing was missed; remember where history stands so a drop can be recovered.
      const page = await history(null, this.backlog || 1);
      this._started = true;
      if (this.backlog) deliverPage(page.events);
      else if (page.events.length) this.lastSeen = page.events[page.events.length - 1].publication;
    } else {
      const after = this.lastSeen;
      let page = await history(after, this.limit);
      // With no `after` (the topic had no history when first subscribed) a full page may hide a gap.
      if (after !== null ? !page.recovered : page.events.length >= this.limit) this._gap(page, after);
      for (;;) {
        deliverPage(page.events);
        if (!page.more || !page.events.length) break;
        page = await history(page.events[page.events.length - 1].publication, this.limit);
      }
    }
    if (this._session !== session) return;
    // No await from here to the end of `_attach` (which drops the buffer): no live event can slip in between.
    for (const [args, kwargs, details] of buffered()) {
      if (!seen.has(details.publication)) this._deliver(args, kwargs, details);
    }
  }

  _gap(page, after) {
    if (this.ongap) this.client._safely(() => this.ongap({ topic: this.topic, epoch: page.epoch, after }), 'ongap');
  }

  /** Stop following the topic (and unsubscribe now if connected). */
  async unsubscribe() {
    this.client._followers.delete(this);
    const { _sub: sub } = this;
    this._session = null;
    this._sub = null;
    if (sub && sub.active && this.client.session?.isOpen) await this.client._run((s) => s.unsubscribe(sub));
  }
}

/** After a failed (re)attach: stop taking events of `session` and drop its subscriptions (best effort). */
function abandon(follower, session, subscriptions) {
  if (follower._session !== session) return;
  follower._session = null;
  for (const sub of subscriptions) {
    if (sub && sub.active && session.isOpen) session.unsubscribe(sub).catch(() => {});
  }
}

/** The members of a presence channel topic, kept up to date (see `Client.presence`). */
export class Presence {
  constructor(client, topic, { onchange, join = false, data } = {}) {
    Object.assign(this, { client, topic, join, data, onchange });
    /** Counts from the router: member sessions, and distinct users (authid and authrole) among them. */
    this.sessions = 0;
    this.users = 0;
    this._members = new Map(); // member session id -> member
    this._subs = [];
    this._session = null;
    this.what = `presence of ${topic}`;
  }

  /** The members, in the order they joined: `{session, authid, authrole, since, data}`. */
  get members() {
    return [...this._members.values()];
  }

  /** The member with session id `session`, or undefined. */
  member(session) {
    return this._members.get(session);
  }

  _apply(change, source) {
    const { event, member } = change;
    if (member) {
      if (event === 'leave') this._members.delete(member.session);
      else {
        if (member.replaces != null) this._members.delete(member.replaces);
        this._members.set(member.session, member);
      }
    }
    this.sessions = change.sessions;
    this.users = change.users;
    if (source === 'live') this._changed(change);
  }

  _changed(change) {
    if (this.onchange) this.client._safely(() => this.onchange(this, change), `onchange of ${this.what}`);
  }

  async _attach(session) {
    const run = (action) => this.client._run(action, session);
    let buffer = [];
    this._session = session;
    this._subs = [];
    // Subscribe to the changes before reading the list, so none falls between the two.
    this._subs.push(await run((s) => s.subscribe(`switchboard.presence.${this.topic}`, (args, change) => {
      if (this._session !== session) return;
      if (buffer) buffer.push(change);
      else this._apply(change, 'live');
    })));
    let snapshot;
    try {
      if (this.join) {
        this._subs.push(await run((s) => s.subscribe(this.topic, () => {})));
        if (this.data !== undefined) await run((s) => s.call('switchboard.presence.update', [this.topic, this.data]));
      }
      snapshot = await run((s) => s.call('switchboard.presence.get', [this.topic]));
    } catch (error) {
      buffer = null;
      abandon(this, session, this._subs);
      throw error;
    }
    if (this._session !== session) return;
    this._members = new Map(snapshot.members.map((m) => [m.session, m]));
    this.sessions = snapshot.sessions;
    this.users = snapshot.users;
    for (const change of buffer) this._apply(change, 'snapshot');
    buffer = null;
    this._changed({ event: 'snapshot', topic: this.topic, sessions: this.sessions, users: this.users });
  }

  /** Set this client's member data (it must be a member: `join: true`); restored after reconnects. */
  async update(data) {
    const member = await this.client.call('switchboard.presence.update', [this.topic, data]);
    this.data = data;
    return member;
  }

  /** Stop following (and leave, with `join: true`). */
  async close() {
    this.client._followers.delete(this);
    const subs = this._subs;
    this._session = null;
    this._subs = [];
    if (this.client.session?.isOpen) {
      await Promise.all(subs.filter((sub) => sub.active).map((sub) => this.client._run((s) => s.unsubscribe(sub))));
    }
  }
}
