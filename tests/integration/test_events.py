"""Event lines of a real node (router.events, docs/operations.md#events): failed logins escaped, cut and
without the secret, one lockout line, session join and leave lines, and the per-second bound.

The node trusts 127.0.0.1 as a reverse proxy, so a test speaks from its own client addresses
(``X-Forwarded-For``), and logs at info.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, task

from router.config import load_config
from router.launch import RunningNode, launch, with_port
from router.testkit.sessions import session
from tests.conftest import demo_document, running, write_config
from tests.integration.test_hardening_auth import FAILED, NodeLines, attempt, fresh_address
from tests.integration.users import add_user

pytestmark = pytest.mark.integration

TIMEOUT = 15.0
#: limits.max_log_events of the node.
MAX_LOG_EVENTS = 8

lines = NodeLines()


@pytest.fixture(scope="module")
def events_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """The demo config, 127.0.0.1 a trusted proxy, 3 failures per authid and address, at most 8 event lines
    per second and event name, logging at info."""
    doc = demo_document()
    doc["throttle"] = {"per_authid": 3, "per_peer": 10000, "window": 600, "delay_after": 1000}
    doc["trusted_proxies"] = ["127.0.0.1"]
    doc["limits"] = {"max_log_events": MAX_LOG_EVENTS}
    tmp = tmp_path_factory.mktemp("events-node")
    config = with_port(load_config(write_config(tmp, doc)), 0)
    with running(launch(reactor, config, tmp / "data", loglevel="info", on_line=lines.feed)) as node:
        yield node


def event_text(line: str) -> str:
    """The event's own text: from ``event=`` to the end of the node's output line."""
    return line[line.index("event=") :]


async def first(reactor: Any, *parts: str) -> str:
    """The first node line with every one of ``parts`` (waiting at most TIMEOUT)."""
    line = await lines.first(lambda text: all(part in text for part in parts)).addTimeout(TIMEOUT, reactor)
    return event_text(line)


@pytest_twisted.ensureDeferred
async def test_a_failed_login_is_one_escaped_cut_line_without_the_secret(
    reactor: Any, events_node: RunningNode
) -> None:
    """An authid with a quote, a newline and a forged event is shown as one JSON string of 64 characters
    and '...'; the password sent appears nowhere in the node's output."""
    address = fresh_address()
    secret = f"pw-{uuid.uuid4().hex}"
    authid = 'eve"\nevent=session_joined ' + "x" * 200
    outcome = await attempt(reactor, events_node, "ticket", authid, address, {"ticket": secret})
    assert outcome.refused == FAILED
    text = await first(reactor, "event=login_failed", f"peer={address}")
    # 'eve"' (4) + newline (1) + 'event=session_joined ' (21) + 38 x = 64 characters, then '...'.
    assert text == (
        'event=login_failed realm=demo authid="eve\\"\\nevent=session_joined ' + "x" * 38 + '..."'
        f" method=ticket peer={address}"
    )
    assert not any(secret in line for line in lines.lines)
    assert not any(line.startswith("event=") for line in lines.lines)  # no line forged by the newline


@pytest_twisted.ensureDeferred
async def test_the_lockout_is_logged_once(reactor: Any, events_node: RunningNode) -> None:
    """per_authid 3: the third wrong password locks the user out from that address (one login_locked line);
    the refused fourth attempt is one more login_failed line and no second login_locked."""
    user = add_user(events_node)
    address = fresh_address()
    for _ in range(4):
        outcome = await attempt(reactor, events_node, "ticket", user.authid, address, {"ticket": "wrong"})
        assert outcome.refused == FAILED
    failures = 0

    def fourth_failure(text: str) -> bool:
        nonlocal failures
        failures += "event=login_failed" in text and f"peer={address}" in text
        return failures == 4

    await lines.first(fourth_failure).addTimeout(TIMEOUT, reactor)
    locked = await first(reactor, "event=login_locked", f"peer={address}")
    assert locked == f"event=login_locked realm=demo authid={user.authid} method=ticket peer={address} scope=per_authid"
    mine = [event_text(line) for line in lines.lines if f"authid={user.authid} " in line]
    assert [text.split()[0] for text in mine].count("event=login_failed") == 4
    assert [text.split()[0] for text in mine].count("event=login_locked") == 1


@pytest_twisted.ensureDeferred
async def test_join_and_leave_lines(reactor: Any, events_node: RunningNode) -> None:
    """A ticket login's session is logged when it joins (realm, session, authid, role, method, peer) and
    when it leaves (with the reason it gave)."""
    user = add_user(events_node)
    async with session(reactor, events_node.url, authmethod="ticket", authid=user.authid, ticket=user.password) as s:
        sid = s.session_id
        joined = await first(reactor, "event=session_joined", f"session={sid} ")
    assert joined == (
        f"event=session_joined realm=demo session={sid} authid={user.authid} authrole=user authmethod=ticket"
        " peer=127.0.0.1"
    )
    left = await first(reactor, "event=session_left", f"session={sid} ")
    assert left == f"event=session_left realm=demo session={sid} authid={user.authid} reason=wamp.close.normal"


@pytest_twisted.ensureDeferred
async def test_a_burst_of_joins_is_bounded_per_second(reactor: Any, events_node: RunningNode) -> None:
    """30 sessions joining (then leaving) at once: at most max_log_events session_joined (session_left) lines
    in that second, and every other join (leave) counted in an events_suppressed line when it ends."""
    before = len(lines.lines)
    done: defer.Deferred[None] = defer.Deferred()
    joined: list[int] = []

    async def one() -> None:
        async with session(reactor, events_node.url) as s:
            joined.append(s.session_id)
            if len(joined) == 30:
                done.callback(None)
            await done  # all 30 joined at the same time

    await defer.gatherResults([defer.ensureDeferred(one()) for _ in range(30)], consumeErrors=True)
    await first(reactor, "event=events_suppressed", "name=session_joined")
    await first(reactor, "event=events_suppressed", "name=session_left")
    burst = [event_text(line) for line in lines.lines[before:]]
    for name in ("session_joined", "session_left"):
        shown = {int(m.group(1)) for t in burst if (m := re.match(rf"event={name} realm=demo session=(\d+) ", t))}
        suppressed = sum(
            int(m.group(1)) for t in burst if (m := re.match(rf"event=events_suppressed name={name} count=(\d+)", t))
        )
        mine = shown & set(joined)
        assert 1 <= len(mine) <= MAX_LOG_EVENTS  # other tests' lines may share the first second
        assert suppressed >= 30 - len(mine)


@pytest_twisted.ensureDeferred
async def test_the_nodes_own_sessions_are_not_logged(reactor: Any, events_node: RunningNode) -> None:
    """/ready joins a probe session over the control socket (role trusted) each time it checks: it is not a
    client, so no session_joined/session_left line (every probe would write two) and no count in the joins;
    a client's join still is logged."""
    from tests.integration.test_operations import http_base, ready_becomes, scrape

    before = len(lines.lines)
    base = http_base(events_node)
    joins = ("switchboard_session_joins_total", (("realm", "demo"),))
    joined_before = (await scrape(base)).get(joins, 0)
    for _ in range(3):  # a readiness check each second: three probe sessions
        await ready_becomes(reactor, base, 200)
        await task.deferLater(reactor, 1.1, lambda: None)
    assert (await scrape(base)).get(joins, 0) == joined_before  # (an exposition is at most 1 s old)
    async with session(reactor, events_node.url) as s:
        sid = s.session_id
    await first(reactor, "event=session_left", f"session={sid} ")
    shown = [event_text(line) for line in lines.lines[before:] if "event=session_" in line]
    assert [t.split()[0] for t in shown] == ["event=session_joined", "event=session_left"]
    assert all(f"session={sid} " in t for t in shown)
