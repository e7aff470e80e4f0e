"""The greeter on a real Switchboard node, started by Switchboard's pytest plugin from ../switchboard.json.

No conftest.py: the plugin (installed with ``switchboard[testing]``) provides the node and the sessions.
Each test uses realm ``greeter``; ``wamp_session(role=..., authid=...)`` joins with exactly that role and
authid without any user in the store, so every role of the config is one line away.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from router.testkit import Inbox, assert_denied, assert_invalid

PROJECT = Path(__file__).resolve().parent.parent


@pytest_twisted.ensureDeferred
async def test_greets_by_name(wamp_session: Any) -> None:
    """An anonymous caller is greeted by name."""
    async with wamp_session(realm="greeter", role="anonymous") as s:
        assert await s.call("greeter.greet", "Ann") == "Hello, Ann"


@pytest_twisted.ensureDeferred
async def test_a_greeting_is_published_with_the_callers_authid(wamp_session: Any) -> None:
    """Every subscriber of greeter.greeted learns who was greeted and by whom (the caller is disclosed)."""
    inbox = Inbox()
    async with (
        wamp_session(realm="greeter", role="anonymous") as watcher,
        wamp_session(realm="greeter", role="user", authid="alice") as alice,
    ):
        await watcher.subscribe(inbox, "greeter.greeted")
        assert await alice.call("greeter.greet", "Bob") == "Hello, Bob"
        assert await inbox.next(timeout=5) == {"name": "Bob", "greeting": "Hello, Bob", "by": "alice"}


@pytest_twisted.ensureDeferred
async def test_only_an_admin_may_reset_the_count(wamp_session: Any) -> None:
    """greeter.reset is refused to a user and to anonymous callers (the config grants it to admin only)."""
    async with wamp_session(realm="greeter", role="user", authid="alice") as s:
        await assert_denied(s.call("greeter.reset"))
    async with wamp_session(realm="greeter", role="anonymous") as s:
        await assert_denied(s.call("greeter.reset"))


@pytest_twisted.ensureDeferred
async def test_an_admin_resets_the_count(wamp_session: Any) -> None:
    """greeter.reset answers the greetings since the last reset and sets the count back to zero."""
    async with wamp_session(realm="greeter", role="admin", authid="root") as admin:
        await admin.call("greeter.reset")  # the node is shared: start from zero
        await admin.call("greeter.greet", "Ann")
        await admin.call("greeter.greet", "Bob")
        assert await admin.call("greeter.count") == 2
        assert await admin.call("greeter.reset") == 2
        assert await admin.call("greeter.count") == 0


@pytest.mark.parametrize("name", ["", "   ", 42, None, "x" * 65])
@pytest_twisted.ensureDeferred
async def test_a_bad_name_is_an_invalid_argument(wamp_session: Any, name: object) -> None:
    """A name that is not a non-empty string of at most 64 characters is refused, naming the argument."""
    async with wamp_session(realm="greeter", role="anonymous") as s:
        await assert_invalid(s.call("greeter.greet", name), argument="name")


@pytest_twisted.ensureDeferred
async def test_a_missing_name_is_an_invalid_argument(wamp_session: Any) -> None:
    """A call without the name is refused by the procedure's own signature, naming the argument."""
    async with wamp_session(realm="greeter", role="anonymous") as s:
        await assert_invalid(s.call("greeter.greet"), argument="name")


@pytest.fixture(scope="module")
def carol(switchboard_node: Any) -> tuple[str, str]:
    """A real user of the node's store, role ``user``, added with the ``switchboard`` command: (authid, password)."""
    password = secrets.token_urlsafe(16)
    command = [str(Path(sys.executable).with_name("switchboard")), "user", "add", "carol", "--role", "user"]
    command += ["--password-stdin", "--config", str(PROJECT / "switchboard.json")]
    command += ["--data-dir", str(switchboard_node.data_dir)]
    subprocess.run(command, input=password + "\n", text=True, check=True, capture_output=True, timeout=60)
    return "carol", password


@pytest_twisted.ensureDeferred
async def test_a_user_logs_in_with_a_ticket(wamp_session: Any, carol: tuple[str, str]) -> None:
    """The real login path: carol's password gets her role from the store, and greetings name her."""
    authid, password = carol
    inbox = Inbox()
    async with (
        wamp_session(realm="greeter", role="anonymous") as watcher,
        wamp_session(realm="greeter", authmethod="ticket", authid=authid, secret=password) as s,
    ):
        assert (s.details.authid, s.details.authrole) == ("carol", "user")
        await watcher.subscribe(inbox, "greeter.greeted")
        await s.call("greeter.greet", "Dan")
        assert (await inbox.next(timeout=5))["by"] == "carol"
        await assert_denied(s.call("greeter.reset"))
