// Two users in the same room, each in their own browser context: members, messages, typing; and the
// screenshot of the demo (SWITCHBOARD_ARTIFACTS/demo.png).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { env, launchBrowser, newPage, openApp, logIn, send, messageTexts, messageWithText, member, problems, uniqueRoom } from './support.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test('two users see each other, their messages and their typing', async () => {
  const base = env('SWITCHBOARD_PAGE');
  const room = uniqueRoom('browser_chat');
  const alice = { authid: env('SWITCHBOARD_ALICE'), password: env('SWITCHBOARD_ALICE_PASSWORD') };
  const bob = { authid: env('SWITCHBOARD_BOB'), password: env('SWITCHBOARD_BOB_PASSWORD') };
  const a = await newPage(browser);
  const b = await newPage(browser);
  try {
    await openApp(a, base, { room });
    await openApp(b, base, { room });
    assert.equal(await logIn(a, alice), alice.authid);
    assert.equal(await logIn(b, bob), bob.authid);
    assert.equal((await a.locator('#room-name').textContent()).trim(), room);

    // Each sees both members (itself and the other), and the count says so.
    for (const page of [a, b]) {
      await member(page, alice.authid).waitFor();
      await member(page, bob.authid).waitFor();
      await page.locator('#member-count', { hasText: /\b2\b/ }).waitFor();
    }
    assert.equal(await a.locator('#members li.member').count(), 2, problems(a));

    await send(a, 'Hello Bob, are you there?');
    await send(b, 'Hi Alice! Reading you loud and clear.');
    await send(a, 'Messages, presence and history: all over WAMP.');
    const expected = [
      'Hello Bob, are you there?',
      'Hi Alice! Reading you loud and clear.',
      'Messages, presence and history: all over WAMP.',
    ];
    for (const page of [a, b]) {
      await page.locator('#messages li.message').nth(2).waitFor();
      assert.deepEqual(await messageTexts(page), expected, problems(a, b));
    }
    const authors = await b.locator('#messages li.message .author').allTextContents();
    assert.deepEqual(
      authors.map((t) => t.trim()),
      [alice.authid, bob.authid, alice.authid],
    );

    // Bob types (without sending): Alice sees him typing; sending clears it.
    await b.locator('#text').pressSequentially('Typing a rep', { delay: 40 });
    const typing = member(a, bob.authid);
    await a.locator(`#members li.member.typing[data-authid="${bob.authid}"]`).waitFor();
    await typing.getByText('typing…').waitFor();
    assert.equal(await member(a, alice.authid).evaluate((li) => li.classList.contains('typing')), false);

    // The screenshot of the demo: two users chatting, one of them typing.
    await a.screenshot({ path: path.join(env('SWITCHBOARD_ARTIFACTS'), 'demo.png') });

    await b.locator('#text').pressSequentially('ly', { delay: 40 });
    await b.click('#send');
    await a.locator(`#members li.member[data-authid="${bob.authid}"]:not(.typing)`).waitFor();
    await messageWithText(a, 'Typing a reply').waitFor();
    assert.equal((await messageTexts(a)).at(-1), 'Typing a reply');
  } catch (e) {
    e.message += `\n${problems(a, b)}`;
    throw e;
  } finally {
    await a.context().close();
    await b.context().close();
  }
});
