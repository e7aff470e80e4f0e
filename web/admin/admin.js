// The admin page served by the node at `/admin/`: the realm's sessions, the members of a channel topic, users
// (add, enable/disable, change role, remove), roles and their rules, and the live audit stream, all over the
// admin API (`switchboard.admin.*`, docs/uris.md) through the client library (../lib/switchboard.js).
//
// Login is WAMP-CRA: the password only derives the key that signs the router's challenge, it never leaves the
// page; once derived, the key is kept (for reconnects) and the password dropped. A user whose role may not use
// the admin API is logged out again with the router's answer. The DOM ids and data attributes are a contract
// with the browser test (tests/browser/admin.test.mjs): keep them stable.

import { connect, pageSocketUrl } from '../lib/switchboard.js';

const ADMIN = 'switchboard.admin.';
const SESSIONS_REFRESH_MS = 5000;
const MAX_AUDIT = 200; // audit lines kept on the page
const CONFIRM_MS = 4000; // a destructive button stays armed this long after the first click

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const WS_URL = pageSocketUrl(location); // ?ws= only for another path of this host and port

let client = null;
let me = null; // {authid, authrole, session}
let admitted = false; // the admin API answered this login
let roleNames = [];
let presence = null;
let sessionTimer = null;
let refreshing = null; // a pending refresh of users/roles after audit events

/** An element with a class and text (text through textContent: nothing from the router is parsed as HTML). */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function showError(id, text) {
  $(id).textContent = text || '';
  $(id).hidden = !text;
}

/** An error as the router gave it: its URI, then its message (e.g. `wamp.error.not_authorized`). */
function describe(error) {
  const uri = error?.error;
  const message = error?.args?.[0];
  if (uri && message && message !== uri) return `${uri}: ${message}`;
  return uri || message || error?.message || String(error);
}

function when(unixTime) {
  return unixTime == null ? '–' : new Date(unixTime * 1000).toLocaleString();
}

const call = (procedure, args = [], kwargs = {}) => client.call(ADMIN + procedure, args, kwargs);

// ---- login ----

/** WAMP-CRA with the salted key derived in the page (WebCrypto when there, autobahn's PBKDF2 otherwise). */
function challengeResponder(password) {
  let secret = password;
  const keys = new Map(); // "salt|iterations|keylen" -> derived key, for reconnects
  return async (session, method, extra) => {
    if (method !== 'wampcra') throw new Error(`unexpected authentication method ${method}`);
    const id = `${extra.salt}|${extra.iterations}|${extra.keylen}`;
    let key = keys.get(id);
    if (key === undefined) {
      if (secret === null) throw new Error('the password changed: log in again');
      key = extra.salt ? await deriveKey(secret, extra.salt, extra.iterations, extra.keylen) : secret;
      keys.set(id, key);
      secret = null;
    }
    return globalThis.autobahn.auth_cra.sign(key, extra.challenge);
  };
}

async function deriveKey(password, salt, iterations = 1000, keylen = 32) {
  const subtle = globalThis.crypto?.subtle; // only in secure contexts (https, localhost)
  if (!subtle) return globalThis.autobahn.auth_cra.derive_key(password, salt, iterations, keylen);
  const text = new TextEncoder();
  const base = await subtle.importKey('raw', text.encode(password), 'PBKDF2', false, ['deriveBits']);
  const bits = await subtle.deriveBits({ name: 'PBKDF2', salt: text.encode(salt), iterations, hash: 'SHA-256' },
    base, keylen * 8);
  return btoa(String.fromCharCode(...new Uint8Array(bits)));
}

function login(realm, authid, password) {
  if (client) return;
  showError('login-error', '');
  $('login-submit').disabled = true;
  admitted = false;
  client = connect({
    autobahn: globalThis.autobahn, url: WS_URL, realm, authid, authmethods: ['wampcra'],
    onchallenge: challengeResponder(password), onstate,
  });
  $('realm-name').textContent = realm;
}

function onstate(state, info) {
  document.body.dataset.state = state;
  const down = admitted && (state === 'disconnected' || state === 'connecting');
  $('banner').hidden = !down;
  if (state === 'disconnected' && admitted) {
    $('banner').textContent = `Connection lost. Reconnecting… (next try in ${Math.max(1, Math.round(info.delay))} s)`;
  } else if (down) {
    $('banner').textContent = 'Connection lost. Reconnecting…';
  }
  if (state === 'connected') onConnected(info.details);
  else if (state === 'failed') loggedOut(`Login failed: ${info.message || info.reason}`);
  else if (state === 'closed') loggedOut(loggedOut.reason || '');
  else if (state === 'disconnected' && !admitted && !me) loggedOut(`Cannot reach the server: ${info.reason}`, true);
}

async function onConnected(details) {
  const current = client;
  me = { authid: details.authid, authrole: details.authrole, session: client.session?.id };
  if (!admitted) {
    try {
      roleNames = await current.call(`${ADMIN}role.list`);
    } catch (e) {
      if (current !== client) return;
      // Logged in, but the role may not use the admin API: say so, and leave.
      loggedOut.reason = `${details.authid} (role ${details.authrole}) may not use the admin API: ${describe(e)}`;
      client.close();
      return;
    }
    if (current !== client) return;
    admitted = true;
    $('login').hidden = true;
    $('console').hidden = false;
    $('logout').hidden = false;
    $('realm-label').hidden = false;
    $('password').value = '';
    client.subscribe(`${ADMIN}on_change`, ([change]) => showChange(change)).catch((e) => {
      showError('audit-error', `Cannot follow the audit stream: ${describe(e)}`);
    });
    sessionTimer = setInterval(() => !document.hidden && refreshSessions(), SESSIONS_REFRESH_MS);
  }
  $('me').textContent = me.authid;
  $('my-role').textContent = me.authrole;
  $('my-role').hidden = false;
  await Promise.all([refreshSessions(), refreshRoles(), refreshUsers()]);
}

/** Back to the login form (the client is gone or going; with `stop`, stopped here); `error` is shown there. */
function loggedOut(error, stop = false) {
  if (stop) client?.close(); // its `closed` state comes back here at once, before the error is shown
  loggedOut.reason = '';
  clearInterval(sessionTimer);
  sessionTimer = null;
  client = null;
  me = null;
  admitted = false;
  presence = null;
  document.body.dataset.state = 'closed';
  $('banner').hidden = true;
  $('console').hidden = true;
  $('logout').hidden = true;
  $('realm-label').hidden = true;
  $('my-role').hidden = true;
  $('login').hidden = false;
  $('me').textContent = '';
  for (const id of ['audit', 'roles', 'presence-members']) $(id).replaceChildren();
  for (const id of ['sessions', 'users']) $(id).tBodies[0].replaceChildren();
  $('role-rules').hidden = true;
  $('presence-summary').hidden = true;
  for (const id of ['sessions-error', 'users-error', 'roles-error', 'presence-error', 'audit-error']) showError(id, '');
  $('login-submit').disabled = false;
  showError('login-error', error);
}
loggedOut.reason = '';

// ---- a button that asks twice ----

/** `button` runs `action` on its second click within CONFIRM_MS (its text says so meanwhile). */
function confirming(button, question, action) {
  const label = button.textContent;
  let timer = null;
  button.addEventListener('click', () => {
    if (button.dataset.armed !== 'true') {
      button.dataset.armed = 'true';
      button.textContent = question;
      timer = setTimeout(() => {
        button.dataset.armed = 'false';
        button.textContent = label;
      }, CONFIRM_MS);
      return;
    }
    clearTimeout(timer);
    button.dataset.armed = 'false';
    button.textContent = label;
    action();
  });
  return button;
}

// ---- sessions ----

async function refreshSessions() {
  if (!client) return;
  try {
    const page = await call('session.list', [], { limit: 1000 });
    renderSessions(page);
    showError('sessions-error', '');
  } catch (e) {
    showError('sessions-error', `Sessions: ${describe(e)}`);
  }
}

function renderSessions({ count, sessions, more }) {
  const rows = [...sessions].sort((a, b) => (a.joined ?? 0) - (b.joined ?? 0)).map((s) => {
    const tr = el('tr');
    tr.dataset.session = s.session;
    tr.dataset.authid = s.authid ?? '';
    const mine = s.session === me?.session;
    if (mine) tr.classList.add('mine');
    const who = el('td', 'authid', s.authid);
    if (mine) who.append(el('span', 'you', ' (you)'));
    const joined = el('td', 'time', when(s.joined));
    const transport = s.transport ? `${s.transport}${s.serializer ? ` / ${s.serializer}` : ''}` : 'in the router';
    const actions = el('td', 'actions-cell');
    if (!mine && s.transport) { // the router's own components cannot be closed
      const kill = confirming(el('button', 'ghost danger kill', 'Close'), 'Close it?', () => killSession(s));
      kill.type = 'button';
      kill.setAttribute('aria-label', `Close session ${s.session} of ${s.authid}`);
      actions.append(kill);
    }
    tr.append(el('td', 'mono', s.session), who, el('td', 'authrole', s.authrole), el('td', '', s.authmethod ?? '–'),
      el('td', '', transport), el('td', 'mono', s.peer ?? '–'), joined, actions);
    return tr;
  });
  $('sessions').tBodies[0].replaceChildren(...rows);
  $('session-count').textContent = String(count);
  $('sessions-note').hidden = !more;
  $('sessions-note').textContent = more ? `Showing the first ${sessions.length} of ${count} sessions.` : '';
}

async function killSession(s) {
  try {
    await call('session.kill', [s.session]);
  } catch (e) {
    showError('sessions-error', `Could not close session ${s.session}: ${describe(e)}`);
  }
  refreshSessions();
}

// ---- users ----

async function refreshUsers() {
  if (!client) return;
  try {
    renderUsers(await call('user.list'));
    showError('users-error', '');
  } catch (e) {
    showError('users-error', `Users: ${describe(e)}`);
  }
}

function roleSelect(current, onchange) {
  const select = el('select', 'role-select');
  const names = roleNames.includes(current) ? roleNames : [...roleNames, current];
  for (const name of names) {
    const option = el('option', '', name);
    option.value = name;
    option.selected = name === current;
    select.append(option);
  }
  select.addEventListener('change', () => onchange(select.value));
  return select;
}

function renderUsers(users) {
  const rows = [...users].sort((a, b) => a.authid.localeCompare(b.authid)).map((u) => {
    const tr = el('tr', u.enabled ? '' : 'disabled');
    tr.dataset.authid = u.authid;
    tr.dataset.enabled = String(u.enabled);
    const role = el('td');
    const select = roleSelect(u.role, (value) => userAction('set_role', [u.authid, value]));
    select.setAttribute('aria-label', `Role of ${u.authid}`);
    role.append(select);
    const logins = [...u.methods];
    if (u.keys) logins.push(`${u.keys} key${u.keys === 1 ? '' : 's'}`);
    const actions = el('td', 'actions-cell');
    const toggle = el('button', 'ghost toggle', u.enabled ? 'Disable' : 'Enable');
    toggle.type = 'button';
    toggle.addEventListener('click', () => userAction(u.enabled ? 'disable' : 'enable', [u.authid]));
    const remove = confirming(el('button', 'ghost danger remove', 'Remove'), 'Remove?', () => userAction('remove', [u.authid]));
    remove.type = 'button';
    remove.setAttribute('aria-label', `Remove ${u.authid}`);
    actions.append(toggle, remove);
    tr.append(el('td', 'authid', u.authid), role, el('td', 'status', u.enabled ? 'enabled' : 'disabled'),
      el('td', 'methods', logins.join(', ') || '–'), actions);
    return tr;
  });
  $('users').tBodies[0].replaceChildren(...rows);
  $('user-count').textContent = String(users.length);
}

async function userAction(action, args) {
  showError('users-error', '');
  try {
    await call(`user.${action}`, args);
  } catch (e) {
    showError('users-error', `user.${action} ${args[0]}: ${describe(e)}`);
  }
  refreshUsers(); // also puts a refused role change back in its select
}

async function addUser(event) {
  event.preventDefault();
  const authid = $('new-authid').value.trim();
  const role = $('new-role').value;
  const password = $('new-password').value;
  showError('users-error', '');
  $('add-user-submit').disabled = true;
  try {
    await call('user.add', [authid, role], password ? { password } : {});
    $('add-user').reset();
  } catch (e) {
    showError('users-error', `Could not add ${authid}: ${describe(e)}`);
  } finally {
    $('new-password').value = ''; // never left in the page
    $('add-user-submit').disabled = false;
  }
  refreshUsers();
}

// ---- roles ----

async function refreshRoles() {
  if (!client) return;
  try {
    roleNames = await call('role.list');
    renderRoles();
    showError('roles-error', '');
  } catch (e) {
    showError('roles-error', `Roles: ${describe(e)}`);
  }
}

function renderRoles() {
  const shown = $('role-rules').dataset.role;
  $('roles').replaceChildren(...roleNames.map((name) => {
    const li = el('li');
    const button = el('button', 'chip', name);
    button.type = 'button';
    button.dataset.role = name;
    button.setAttribute('aria-pressed', String(name === shown));
    button.addEventListener('click', () => showRole(name));
    li.append(button);
    return li;
  }));
  $('role-count').textContent = String(roleNames.length);
  const select = $('new-role');
  const chosen = select.value || (roleNames.includes('user') ? 'user' : roleNames[0]);
  select.replaceChildren(...roleNames.map((name) => {
    const option = el('option', '', name);
    option.value = name;
    option.selected = option.defaultSelected = name === chosen; // defaultSelected: what a form reset picks
    return option;
  }));
  if (shown && !roleNames.includes(shown)) $('role-rules').hidden = true;
}

async function showRole(name) {
  showError('roles-error', '');
  try {
    const definition = await call('role.get', [name]);
    $('role-rules').dataset.role = name;
    $('role-rules').textContent = `${name}: ${JSON.stringify(definition, null, 2)}`;
    $('role-rules').hidden = false;
    for (const b of $('roles').querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.role === name));
  } catch (e) {
    showError('roles-error', `Role ${name}: ${describe(e)}`);
  }
}

// ---- presence ----

async function showPresence(event) {
  event.preventDefault();
  const topic = $('presence-topic').value.trim();
  showError('presence-error', '');
  const previous = presence;
  presence = null;
  previous?.close().catch(() => {});
  $('presence-members').replaceChildren();
  $('presence-summary').hidden = true;
  try {
    const current = await client.presence(topic, { onchange: (p) => p === presence && renderPresence(p) });
    presence = current;
    renderPresence(current);
  } catch (e) {
    showError('presence-error', `Presence of ${topic}: ${describe(e)}`);
  }
}

function renderPresence(p) {
  $('presence-summary').textContent = `${p.topic}: ${p.sessions} session${p.sessions === 1 ? '' : 's'}, ` +
    `${p.users} user${p.users === 1 ? '' : 's'}`;
  $('presence-summary').hidden = false;
  $('presence-members').replaceChildren(...p.members.map((m) => {
    const li = el('li', 'member');
    li.dataset.session = m.session;
    li.dataset.authid = m.authid ?? '';
    li.append(el('span', 'name', m.authid ?? '(hidden)'), el('span', 'hint', ` ${m.authrole ?? ''} · since ${when(m.since)}`));
    return li;
  }));
}

// ---- audit stream ----

function showChange(change) {
  if (!change || typeof change !== 'object') return;
  const { who = {}, what = {} } = change;
  const li = el('li', 'change');
  li.dataset.action = what.action ?? '';
  const time = el('time', 'time', new Date((change.when ?? 0) * 1000).toLocaleTimeString());
  const detail = Object.entries(what).filter(([k]) => k !== 'action' && k !== 'definition')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
  li.append(time, el('span', 'who', `${who.authid} (${who.authrole})`), el('span', 'action', what.action),
    el('span', 'detail', detail));
  if (what.definition) li.title = JSON.stringify(what.definition);
  $('audit').prepend(li);
  while ($('audit').children.length > MAX_AUDIT) $('audit').lastElementChild.remove();
  // Someone changed something: show the new state (once for a burst of changes).
  clearTimeout(refreshing);
  refreshing = setTimeout(() => {
    refreshing = null;
    if (String(what.action).startsWith('role.')) refreshRoles().then(refreshUsers);
    else refreshUsers();
    refreshSessions();
  }, 100);
}

// ---- wiring ----

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  const authid = $('authid').value.trim();
  const password = $('password').value;
  const realm = $('realm').value.trim();
  if (!authid || !password || !realm) return showError('login-error', 'Enter a user name, a password and a realm.');
  $('password').value = '';
  login(realm, authid, password);
});
$('logout').addEventListener('click', () => client?.close());
$('sessions-refresh').addEventListener('click', () => refreshSessions());
$('users-refresh').addEventListener('click', () => refreshUsers());
$('add-user').addEventListener('submit', addUser);
$('presence-form').addEventListener('submit', showPresence);
if (params.get('realm')) $('realm').value = params.get('realm');
