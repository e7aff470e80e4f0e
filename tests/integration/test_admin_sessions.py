"""``switchboard.admin.session.list`` and ``session.kill`` on a real node: who is connected, how, since when;
pages bounded by ``limit``; ending a session; refused to every role without the admin permission."""

from __future__ import annotations

import time
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError

from router import uris
from router.testkit import Inbox, session, wait
from tests.integration.users import add_user

pytestmark = pytest.mark.integration


def ticket_session(reactor: Any, node: Any, user: Any) -> Any:
    return session(reactor, node.url, authmethod="ticket", authid=user.authid, ticket=user.password)


async def error_of(call: Any) -> tuple[str, str]:
    with pytest.raises(ApplicationError) as caught:
        await call
    return caught.value.error, caught.value.args[0] if caught.value.args else ""


async def all_sessions(admin: Any) -> dict[int, dict[str, Any]]:
    answer = await admin.call(uris.ADMIN_SESSION_LIST)
    assert answer["more"] is False
    return {s["session"]: s for s in answer["sessions"]}


@pytest_twisted.ensureDeferred
async def test_admin_lists_the_realms_sessions_with_who_how_and_since_when(reactor: Any, auth_node: Any) -> None:
    """Each client session is listed with its authid, role, login method, transport, serializer, peer and
    join time; the admin's own session too; trusted sessions never; a session that left is gone."""
    admin, user = add_user(auth_node, role="admin"), add_user(auth_node)
    before = time.time()
    async with ticket_session(reactor, auth_node, admin) as a:
        async with session(reactor, auth_node.url, authmethod="wampcra", authid=user.authid, secret=user.password) as u:
            after = time.time()
            listed = await all_sessions(a)
            mine, theirs = listed[a.details.session], listed[u.details.session]
            assert mine == {
                "session": a.details.session,
                "authid": admin.authid,
                "authrole": "admin",
                "authmethod": "ticket",
                "transport": "websocket",
                "serializer": "json",
                "peer": mine["peer"],
                "joined": mine["joined"],
                "worker": 0,
            }
            assert mine["peer"].startswith("tcp4:127.0.0.1:")
            assert (theirs["authid"], theirs["authrole"], theirs["authmethod"]) == (user.authid, "user", "wampcra")
            for entry in (mine, theirs):
                assert before - 1 <= entry["joined"] <= after + 1
            assert all(s["authrole"] != "trusted" for s in listed.values())
            assert (await a.call(uris.ADMIN_SESSION_LIST))["count"] == len(listed)
        assert u.details.session not in await all_sessions(a)


@pytest_twisted.ensureDeferred
async def test_session_list_pages_by_limit_and_after(reactor: Any, auth_node: Any) -> None:
    """limit bounds each answer and `more` says whether sessions remain; following `after` from page to page
    visits every session once, in session id order."""
    admin, user = add_user(auth_node, role="admin"), add_user(auth_node)
    async with (
        ticket_session(reactor, auth_node, admin) as a,
        ticket_session(reactor, auth_node, user),
        ticket_session(reactor, auth_node, user),
    ):
        everyone = sorted(await all_sessions(a))
        assert len(everyone) >= 3
        seen: list[int] = []
        after = None
        while True:
            page = await a.call(uris.ADMIN_SESSION_LIST, limit=2, after=after)
            assert len(page["sessions"]) <= 2
            seen += [s["session"] for s in page["sessions"]]
            if not page["more"]:
                break
            after = page["sessions"][-1]["session"]
        assert seen == everyone
        first = await a.call(uris.ADMIN_SESSION_LIST, 1)
        assert [s["session"] for s in first["sessions"]] == everyone[:1]
        assert first["more"] is True


@pytest.mark.parametrize(
    ("args", "kwargs", "reason"),
    [
        ((0,), {}, "switchboard.admin.session.list: limit: must be an integer from 1 to 1000"),
        ((1001,), {}, "switchboard.admin.session.list: limit: must be an integer from 1 to 1000"),
        ((True,), {}, "switchboard.admin.session.list: limit: must be an integer from 1 to 1000"),
        ((), {"limit": "10"}, "switchboard.admin.session.list: limit: must be an integer from 1 to 1000"),
        ((), {"after": "abc"}, "switchboard.admin.session.list: after: must be a session id (an integer) or null"),
        ((), {"colour": 1}, "switchboard.admin.session.list: got an unexpected keyword argument 'colour'"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_session_list_arguments_are_invalid_argument(
    reactor: Any, auth_node: Any, args: tuple[Any, ...], kwargs: dict[str, Any], reason: str
) -> None:
    """A limit outside 1..1000 (or not an integer), a non-integer `after`, an unknown argument: each gets
    wamp.error.invalid_argument with the reason."""
    admin = add_user(auth_node, role="admin")
    async with ticket_session(reactor, auth_node, admin) as a:
        error, message = await error_of(a.call(uris.ADMIN_SESSION_LIST, *args, **kwargs))
    assert error == uris.INVALID_ARGUMENT
    assert message == reason


@pytest_twisted.ensureDeferred
async def test_admin_kills_a_session_and_the_audit_stream_says_so(reactor: Any, auth_node: Any) -> None:
    """session.kill closes exactly that session with reason switchboard.close.killed (another session of the
    same user stays), publishes {"action": "session.kill", ...} on the audit topic, and leaves the user free
    to log in again; an unknown session id is invalid_argument."""
    admin, user = add_user(auth_node, role="admin"), add_user(auth_node)
    async with ticket_session(reactor, auth_node, admin) as a:
        audit = Inbox(reactor)
        await a.subscribe(audit, uris.ADMIN_ON_CHANGE)
        async with (
            ticket_session(reactor, auth_node, user) as victim,
            ticket_session(reactor, auth_node, user) as other,
        ):
            assert await a.call(uris.ADMIN_SESSION_KILL, victim.details.session) is None
            await wait(victim.left, reactor, timeout=5.0)
            assert victim.close_reason == uris.ADMIN_SESSION_KILLED
            listed = await all_sessions(a)
            assert victim.details.session not in listed
            assert other.details.session in listed
            event = await audit.next()
            assert event["who"] == {"authid": admin.authid, "authrole": "admin"}
            assert event["what"] == {"action": "session.kill", "session": victim.details.session, "authid": user.authid}
            error, message = await error_of(a.call(uris.ADMIN_SESSION_KILL, victim.details.session))
            assert error == uris.INVALID_ARGUMENT
            assert message == f"switchboard.admin.session.kill: no session {victim.details.session} in realm 'demo'"
            error, _ = await error_of(a.call(uris.ADMIN_SESSION_KILL, "not-an-id"))
            assert error == uris.INVALID_ARGUMENT
        async with ticket_session(reactor, auth_node, user) as again:
            assert again.details.authid == user.authid


@pytest.mark.parametrize(
    "uri",
    [uris.ADMIN_SESSION_LIST, uris.ADMIN_SESSION_KILL, uris.ADMIN_PREFIX + "session.no_such_thing"],
)
@pytest_twisted.ensureDeferred
async def test_only_admin_roles_reach_the_session_procedures(reactor: Any, auth_node: Any, uri: str) -> None:
    """A user session and an anonymous one get wamp.error.not_authorized for session.list and session.kill,
    and the same for an admin URI that does not exist (a refusal never tells which procedures exist);
    the user's sessions are untouched."""
    user = add_user(auth_node)
    args = (1,) if uri == uris.ADMIN_SESSION_KILL else ()
    async with ticket_session(reactor, auth_node, user) as u:
        assert (await error_of(u.call(uri, *args)))[0] == uris.NOT_AUTHORIZED
        async with session(reactor, auth_node.url) as anonymous:
            assert (await error_of(anonymous.call(uri, *args)))[0] == uris.NOT_AUTHORIZED
            assert (await error_of(anonymous.call(uris.ADMIN_SESSION_KILL, u.details.session)))[
                0
            ] == uris.NOT_AUTHORIZED
        assert (await u.call("sys.info"))["authid"] == user.authid


@pytest_twisted.ensureDeferred
async def test_the_routers_own_components_are_listed_but_cannot_be_killed(reactor: Any, auth_node: Any) -> None:
    """The demo's backend components appear with no transport, method or peer, and session.kill refuses them
    with invalid_argument: the chat keeps working."""
    admin = add_user(auth_node, role="admin")
    async with ticket_session(reactor, auth_node, admin) as a:
        backends = [s for s in (await all_sessions(a)).values() if s["authrole"] == "backend"]
        assert len(backends) == 2  # components.chat and components.system
        for entry in backends:
            assert (entry["transport"], entry["serializer"], entry["peer"], entry["authmethod"]) == (None,) * 4
            error, message = await error_of(a.call(uris.ADMIN_SESSION_KILL, entry["session"]))
            assert error == uris.INVALID_ARGUMENT
            assert message == (
                f"switchboard.admin.session.kill: session {entry['session']} is a component hosted in the router"
            )
        assert await a.call("chat.history", "admin_sessions_room") == []
        assert {s["session"] for s in backends} <= set(await all_sessions(a))
