// The demo chat served by the node at `/`: rooms with history, members with a typing indicator, a banner while
// the connection is down and the missed messages after it, and a live dashboard. Everything WAMP goes through
// the client library (lib/switchboard.js), which reconnects, restores subscriptions and recovers missed events.
// The DOM ids and attributes are a contract with the browser tests (tests/browser): keep them stable.

import { connect, pageSocketUrl } from './lib/switchboard.js';

const REALM = 'demo';
const ROOM_PATTERN = /^[a-z0-9_]{1,64}$/;
const BACKLOG = 100; // messages shown on entering a room
const TYPING_IDLE_MS = 3000; // typing ends this long after the last key
const ROOMS_REFRESH_MS = 10000;

const $ = (id) => document.getElementById(id);
const WS_URL = pageSocketUrl(location); // ?ws= only for another path of this host and port

let client = null;
let me = null; // our authid, from sys.info
let room = null; // {name, topic, seen: Set of publication ids, subscription, presence}
let knownRooms = new Set();
let typing = false;
let typingTimer = null;
let everConnected = false;

/** An element with a class and text (text through textContent: nothing a user wrote is ever parsed as HTML). */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function roomFromUrl() {
  const name = new URLSearchParams(location.search).get('room');
  return name && ROOM_PATTERN.test(name) ? name : 'lobby';
}

function showError(id, text) {
  $(id).textContent = text || '';
  $(id).hidden = !text;
}

// ---- connection and login ----

function login(auth) {
  if (client) return;
  showError('login-error', '');
  for (const b of [$('login-user'), $('login-anon')]) b.disabled = true;
  everConnected = false;
  client = connect({ autobahn: globalThis.autobahn, url: WS_URL, realm: REALM, onstate, ...auth });
  // Followers attach as soon as the session joins, and again after every reconnect.
  client.subscribe('sys.stats', ([stats]) => showStats(stats)).catch(() => {});
  enterRoom(roomFromUrl());
}

function onstate(state, info) {
  document.body.dataset.state = state;
  const down = state === 'disconnected' || (state === 'connecting' && everConnected);
  $('banner').hidden = !down;
  const lost = everConnected ? 'Connection lost.' : 'Cannot reach the server.';
  if (state === 'disconnected') {
    $('banner').textContent = `${lost} Reconnecting… (next try in ${Math.max(1, Math.round(info.delay))} s)`;
  } else if (down) {
    $('banner').textContent = `${lost} Reconnecting…`;
  }
  $('send').disabled = state !== 'connected';
  if (state === 'connected') onConnected();
  else if (state === 'failed') loggedOut(`Login failed: ${info.message || info.reason}`);
  else if (state === 'closed') loggedOut('');
}

async function onConnected() {
  if (!everConnected) {
    everConnected = true;
    $('login').hidden = true;
    $('chat').hidden = false;
    $('logout').hidden = false;
    $('text').focus();
  }
  const session = client;
  try {
    const info = await client.call('sys.info');
    if (session !== client) return;
    me = info.authid;
    $('me').textContent = me;
    for (const li of $('messages').children) li.classList.toggle('mine', li.dataset.author === me);
  } catch {
    // the connection dropped again: the next `connected` asks again
  }
  refreshRooms();
}

function loggedOut(error) {
  client = null;
  room = null;
  me = null;
  everConnected = false;
  stopTyping(false);
  $('banner').hidden = true;
  $('chat').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('me').textContent = '';
  for (const id of ['messages', 'members', 'rooms']) $(id).replaceChildren();
  for (const id of ['stats-sessions', 'stats-rate']) $(id).textContent = '–';
  for (const b of [$('login-user'), $('login-anon')]) b.disabled = false;
  showError('login-error', error);
}

// ---- rooms ----

async function enterRoom(name) {
  if (room) leaveRoom();
  const topic = `chat.room.${name}`;
  const current = (room = { name, topic, seen: new Set(), subscription: null, presence: null });
  knownRooms.add(name);
  $('room-name').textContent = name;
  document.title = `#${name} · Switchboard demo chat`;
  $('messages').replaceChildren();
  $('members').replaceChildren();
  $('member-count').textContent = '0';
  $('gap').hidden = true;
  showError('send-error', '');
  renderRooms();
  try {
    // Presence first, so that our own join (the subscription below makes us a member) arrives as a change.
    current.presence = await client.presence(topic, {
      onchange: (presence) => current === room && renderMembers(presence),
    });
    current.subscription = await client.subscribe(topic, (args, kwargs, details) => {
      if (current === room) showMessage(args[0], details);
    }, {
      recover: true,
      backlog: BACKLOG,
      ongap: () => {
        if (current !== room) return;
        // The history no longer reaches back to what we saw: start over from the latest messages.
        current.seen.clear();
        $('messages').replaceChildren();
        $('gap').hidden = false;
      },
    });
  } catch (e) {
    if (current === room) showError('send-error', `Could not enter #${name}: ${describe(e)}`);
  }
  if (current !== room) close(current); // left (or logged out) while entering
}

function leaveRoom() {
  stopTyping(true);
  close(room);
  room = null;
}

function close(old) {
  old.subscription?.unsubscribe().catch(() => {});
  old.presence?.close().catch(() => {});
}

function navigate(name) {
  if (!ROOM_PATTERN.test(name) || !client || name === room?.name) return;
  const url = new URL(location.href);
  url.searchParams.set('room', name);
  history.pushState(null, '', url);
  enterRoom(name);
  $('text').focus();
}

async function refreshRooms() {
  try {
    const names = await client.call('chat.rooms');
    for (const name of names) knownRooms.add(name);
    renderRooms();
  } catch {
    // not connected: the next `connected` refreshes
  }
}

function renderRooms() {
  const items = [...knownRooms].sort().map((name) => {
    const li = el('li');
    const a = el('a', '', name);
    a.href = `?room=${name}`;
    if (name === room?.name) a.setAttribute('aria-current', 'page');
    li.append(a);
    return li;
  });
  $('rooms').replaceChildren(...items);
}

// ---- messages ----

function showMessage(message, details) {
  if (!message || typeof message !== 'object' || room.seen.has(details.publication)) return;
  room.seen.add(details.publication);
  const list = $('messages');
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 48;
  const li = el('li', message.author === me ? 'message mine' : 'message');
  li.dataset.publication = details.publication;
  li.dataset.seq = details.seq ?? '';
  li.dataset.id = message.id;
  li.dataset.author = message.author;
  const avatar = el('span', 'avatar', (message.author || '?').slice(0, 1).toUpperCase());
  avatar.setAttribute('aria-hidden', 'true');
  avatar.style.setProperty('--hue', hue(message.author));
  const when = new Date(message.ts * 1000);
  const time = el('time', 'time', when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
  time.dateTime = when.toISOString();
  time.title = when.toLocaleString();
  const head = el('div', 'head');
  head.append(el('span', 'author', message.author), time);
  const body = el('div', 'body');
  body.append(head, el('p', 'text', message.text));
  li.append(avatar, body);
  list.append(li);
  if (atBottom) list.scrollTop = list.scrollHeight;
  // Live events carry no seq: the channel's history knows it.
  if (details.seq == null) {
    client.call('switchboard.history.lookup', [room.topic, details.publication])
      .then((event) => { if (event && !li.dataset.seq) li.dataset.seq = event.seq; })
      .catch(() => {});
  }
}

/** A stable colour per author. */
function hue(text = '') {
  let h = 0;
  for (const c of text) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

async function send(event) {
  event.preventDefault();
  const input = $('text');
  const text = input.value.trim();
  if (!text || !room) return;
  showError('send-error', '');
  input.value = '';
  stopTyping(true);
  try {
    const message = await client.call('chat.send', [room.name, text]);
    const li = $('messages').querySelector(`li[data-id="${CSS.escape(message.id)}"]`);
    if (li && message.seq != null) li.dataset.seq = message.seq;
    if (!knownRooms.has(message.room)) refreshRooms();
  } catch (e) {
    if (!input.value) input.value = text;
    showError('send-error', `Not sent: ${describe(e)}`);
  }
}

function describe(error) {
  return error?.args?.[0] || error?.error || error?.message || String(error);
}

// ---- presence: members and typing ----

function renderMembers(presence) {
  const mine = client?.session?.id;
  const items = presence.members.map((member) => {
    const li = el('li', member.data?.typing ? 'member typing' : 'member');
    li.dataset.session = member.session;
    li.dataset.authid = member.authid ?? '';
    const avatar = el('span', 'avatar small', (member.authid || '?').slice(0, 1).toUpperCase());
    avatar.setAttribute('aria-hidden', 'true');
    avatar.style.setProperty('--hue', hue(member.authid));
    const who = el('span', 'who');
    who.append(el('span', 'name', member.authid));
    if (member.session === mine) who.append(el('span', 'you', ' (you)'));
    if (member.data?.typing) who.append(el('span', 'typing-label', 'typing…'));
    li.append(avatar, who);
    return li;
  });
  $('members').replaceChildren(...items);
  $('member-count').textContent = String(presence.members.length);
}

function setTyping(on) {
  typing = on;
  room?.presence?.update({ typing: on }).catch(() => {});
}

function onInput() {
  if (!$('text').value) return stopTyping(true);
  if (!typing) setTyping(true);
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => stopTyping(true), TYPING_IDLE_MS);
}

function stopTyping(tell) {
  clearTimeout(typingTimer);
  typingTimer = null;
  if (typing && tell) setTyping(false);
  typing = false;
}

// ---- dashboard ----

function showStats(stats) {
  if (!stats) return;
  $('stats-sessions').textContent = String(stats.sessions);
  $('stats-rate').textContent = Number(stats.messages_per_second).toFixed(1);
}

// ---- wiring ----

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  const authid = $('authid').value.trim();
  const password = $('password').value;
  if (!authid || !password) return showError('login-error', 'Enter a user name and a password, or continue anonymously.');
  login({ authid, authmethods: ['ticket'], onchallenge: () => password });
});
$('login-anon').addEventListener('click', () => login({}));
$('logout').addEventListener('click', () => client?.close());
$('composer').addEventListener('submit', send);
$('text').addEventListener('input', onInput);
$('new-room').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('new-room-name');
  const name = input.value.trim().toLowerCase();
  if (!ROOM_PATTERN.test(name)) return;
  input.value = '';
  navigate(name);
});
$('rooms').addEventListener('click', (event) => {
  const a = event.target.closest('a');
  if (!a || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(new URL(a.href).searchParams.get('room'));
});
window.addEventListener('popstate', () => {
  if (client && roomFromUrl() !== room?.name) enterRoom(roomFromUrl());
});
setInterval(() => {
  if (client?.state === 'connected') refreshRooms();
}, ROOMS_REFRESH_MS);
$('room-name').textContent = roomFromUrl();
