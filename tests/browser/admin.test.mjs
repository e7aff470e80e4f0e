// The admin page (web/admin/) in Chromium: an admin created in the store logs in (WAMP-CRA), sees its own
// session and a chatting user's, that user in the presence of their room, adds a user and sees it in the user
// list and in the audit stream; a user without the admin permission is refused with the router's answer.
// Screenshot: SWITCHBOARD_ARTIFACTS/admin.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { env, launchBrowser, newPage, openApp, logIn, problems, uniqueRoom } from './support.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** The admin page of the node, login form shown. */
async function openAdmin(page) {
  await page.goto(new URL('admin/', env('SWITCHBOARD_PAGE')).href);
  await page.locator('form#login').waitFor({ state: 'visible' });
}

async function adminLogIn(page, authid, password) {
  await page.fill('#authid', authid);
  await page.fill('#password', password);
  await page.click('#login-submit');
}

test('an admin sees sessions and presence, adds a user and sees it in the users and the audit stream', async () => {
  const admin = { authid: env('SWITCHBOARD_ADMIN'), password: env('SWITCHBOARD_ADMIN_PASSWORD') };
  const user = { authid: env('SWITCHBOARD_USER'), password: env('SWITCHBOARD_USER_PASSWORD') };
  const room = uniqueRoom('admin_view');
  const newcomer = `new_${randomUUID().slice(0, 8)}`;
  const chat = await newPage(browser);
  const page = await newPage(browser);
  try {
    // A user in the chat app, in a room of their own.
    await openApp(chat, env('SWITCHBOARD_PAGE'), { room });
    assert.equal(await logIn(chat, user), user.authid);

    await openAdmin(page);
    await adminLogIn(page, admin.authid, admin.password);
    await page.locator('#console').waitFor({ state: 'visible' });
    assert.equal(await page.locator('body').getAttribute('data-state'), 'connected');
    assert.equal((await page.locator('#me').textContent()).trim(), admin.authid);
    assert.equal((await page.locator('#my-role').textContent()).trim(), 'admin');
    assert.equal(await page.locator('#password').inputValue(), '', 'the password is not left in the form');

    // Sessions: our own (marked), and the chatting user's with its role and transport.
    const own = page.locator(`#sessions tbody tr.mine[data-authid="${admin.authid}"]`);
    await own.waitFor();
    assert.match(await own.textContent(), /\(you\)/);
    assert.match(await own.locator('td').nth(3).textContent(), /wampcra/);
    const theirs = page.locator(`#sessions tbody tr[data-authid="${user.authid}"]`);
    await theirs.waitFor();
    assert.equal((await theirs.locator('td.authrole').textContent()).trim(), 'user');
    assert.match(await theirs.textContent(), /websocket \/ json/);
    assert.match(await theirs.textContent(), /tcp4:127\.0\.0\.1:\d+/);

    // Presence of the user's room.
    await page.fill('#presence-topic', `chat.room.${room}`);
    await page.click('#presence-show');
    await page.locator(`#presence-members li[data-authid="${user.authid}"]`).waitFor();
    assert.match(await page.locator('#presence-summary').textContent(), /1 session, 1 user/);

    // Roles and their rules.
    await page.locator('#roles button[data-role="admin"]').click();
    await page.locator('#role-rules', { hasText: 'switchboard.admin' }).waitFor();

    // Add a user: it appears in the list, and the audit stream reports it with who did it.
    await page.fill('#new-authid', newcomer);
    await page.selectOption('#new-role', 'user');
    await page.fill('#new-password', 'newcomer-password-1');
    await page.click('#add-user-submit');
    const row = page.locator(`#users tbody tr[data-authid="${newcomer}"]`);
    await row.waitFor();
    assert.equal(await row.locator('select').inputValue(), 'user');
    assert.equal(await row.getAttribute('data-enabled'), 'true');
    const change = page.locator('#audit li[data-action="user.add"]', { hasText: newcomer });
    await change.waitFor();
    assert.match(await change.textContent(), new RegExp(`${admin.authid} \\(admin\\)`));
    assert.doesNotMatch(await change.textContent(), /newcomer-password-1/);
    assert.equal(await page.locator('#new-password').inputValue(), '');

    // Disable them: the row and the audit stream say so.
    await row.locator('button.toggle').click();
    await page.locator(`#users tbody tr[data-authid="${newcomer}"][data-enabled="false"]`).waitFor();
    await page.locator('#audit li[data-action="user.disable"]', { hasText: newcomer }).waitFor();

    assert.equal(await page.locator('#new-role').inputValue(), 'user', 'the form is ready for the next user');
    await page.locator('#role-rules').evaluate((pre) => { pre.hidden = true; }); // a tidier screenshot
    await page.evaluate(() => window.scrollTo(0, 0)); // the sticky top bar at the top of the full-page shot
    await page.screenshot({ path: path.join(env('SWITCHBOARD_ARTIFACTS'), 'admin.png'), fullPage: true });
    assert.deepEqual(page.problems, [], problems(page));
  } catch (e) {
    e.message += `\n${problems(page, chat)}`;
    throw e;
  } finally {
    await page.context().close();
    await chat.context().close();
  }
});

test('a user without the admin permission, and a wrong password, are refused politely', async () => {
  const user = { authid: env('SWITCHBOARD_USER'), password: env('SWITCHBOARD_USER_PASSWORD') };
  const page = await newPage(browser);
  try {
    await openAdmin(page);
    await adminLogIn(page, user.authid, user.password);
    const error = page.locator('#login-error');
    await error.filter({ hasText: 'may not use the admin API' }).waitFor();
    assert.match(await error.textContent(), new RegExp(`${user.authid} \\(role user\\) .*wamp\\.error\\.not_authorized`));
    assert.equal(await page.locator('#console').isHidden(), true);
    await page.locator('body[data-state="closed"]').waitFor();
    assert.equal(await page.locator('#login-submit').isEnabled(), true);

    await adminLogIn(page, user.authid, 'not-the-password');
    await error.filter({ hasText: 'Login failed' }).waitFor();
    assert.match(await error.textContent(), /not_authorized|authentication failed/);
    assert.equal(await page.locator('#console').isHidden(), true);
  } catch (e) {
    e.message += `\n${problems(page)}`;
    throw e;
  } finally {
    await page.context().close();
  }
});
