"""The runtime admin API over WAMP on a real node: role and user changes, audit events, bad input."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from components import uris
from router import datadir
from router.credentials import password_credentials
from router.store import UserStore
from router.testkit import Inbox, JoinRefused, session, start_node, wait
from tests.conftest import demo_document, write_config
from tests.integration.users import add_user

pytestmark = pytest.mark.integration

ADMIN = "switchboard.admin."
HISTORY_AND_INFO = {
    "allow": [
        {"uri": "chat.history", "actions": ["call"]},
        {"uri": "sys.info", "actions": ["call"], "disclose": True},
    ]
}
INFO_ONLY = {"allow": [{"uri": "sys.info", "actions": ["call"], "disclose": True}]}


def admin_session(reactor: Any, node: Any, admin: Any) -> Any:
    return session(reactor, node.url, authmethod="ticket", authid=admin.authid, ticket=admin.password)


async def error_of(call: Any) -> tuple[str, str]:
    with pytest.raises(ApplicationError) as caught:
        await call
    return caught.value.error, caught.value.args[0] if caught.value.args else ""


@pytest_twisted.ensureDeferred
async def test_role_changes_apply_to_open_sessions_without_restart(reactor: Any, auth_node: Any) -> None:
    """Revoking a permission from a connected session's role denies its next call; granting it back allows
    it; every change is announced on switchboard.admin.on_change; the node process is the same."""
    admin = add_user(auth_node, role="admin")
    role = f"temp_{uuid.uuid4().hex[:8]}"
    member, password = f"member_{uuid.uuid4().hex[:8]}", "member-password-1"
    pid = auth_node.process.pid
    async with admin_session(reactor, auth_node, admin) as a:
        audit = Inbox(reactor)
        await a.subscribe(audit, ADMIN + "on_change")
        assert await a.call(ADMIN + "role.set", role, HISTORY_AND_INFO) == HISTORY_AND_INFO
        added = await a.call(ADMIN + "user.add", member, role, password=password)
        assert added == {"authid": member, "role": role, "enabled": True, "methods": ["scram", "ticket", "wampcra"]}
        async with session(reactor, auth_node.url, authmethod="ticket", authid=member, ticket=password) as m:
            assert await m.call(uris.CHAT_HISTORY, "admin_room") == []
            await a.call(ADMIN + "role.set", role, INFO_ONLY)
            error, _ = await error_of(m.call(uris.CHAT_HISTORY, "admin_room"))
            assert error == uris.NOT_AUTHORIZED
            await a.call(ADMIN + "role.set", role, HISTORY_AND_INFO)
            assert await m.call(uris.CHAT_HISTORY, "admin_room") == []
            assert (await m.call(uris.SYS_INFO))["authrole"] == role
        events = [await audit.next() for _ in range(4)]
    assert [e["what"]["action"] for e in events] == ["role.set", "user.add", "role.set", "role.set"]
    assert all(e["who"] == {"authid": admin.authid, "authrole": "admin"} for e in events)
    assert events[1]["what"] == {"action": "user.add", "authid": member, "role": role}
    assert all(password not in repr(e) for e in events)
    assert auth_node.process.pid == pid


@pytest.mark.parametrize(
    ("procedure", "args", "kwargs", "reason"),
    [
        (
            "role.set",
            ("Bad", {}),
            {},
            "switchboard.admin.role.set: name: 'Bad' does not match '^[a-z][a-z0-9_]{0,62}$'",
        ),
        (
            "role.set",
            ("r1x", {"allow": [{"uri": "a", "actions": ["cal"]}]}),
            {},
            "switchboard.admin.role.set: /definition/allow/0/actions/0: "
            "'cal' is not one of ['call', 'register', 'publish', 'subscribe']",
        ),
        (
            "role.set",
            ("r2x", {"inherits": ["nobody_here"]}),
            {},
            "switchboard.admin.role.set: /roles/r2x/inherits/0: no role 'nobody_here' in this realm",
        ),
        ("role.set", ("r3x", {"colour": 1}), {}, "switchboard.admin.role.set: /definition: Additional properties"),
        ("role.remove", ("user",), {}, "switchboard.admin.role.remove: role 'user' is inherited by admin, muted"),
        (
            "role.set",
            ("trusted", INFO_ONLY),
            {},
            "switchboard.admin.role.set: name: 'trusted' is a role reserved by the router",
        ),
        ("role.remove", ("trusted",), {}, "switchboard.admin.role.remove: 'trusted' is a role reserved by the router"),
        (
            "user.add",
            ("someone", "trusted"),
            {},
            "switchboard.admin.user.add: role: 'trusted' is a role reserved by the router",
        ),
        ("role.get", ("ghost",), {}, "switchboard.admin.role.get: no role 'ghost'"),
        ("user.add", ("someone", "ghost_role"), {}, "switchboard.admin.user.add: role: no role 'ghost_role'"),
        ("user.add", ("someone", "user"), {"password": "short"}, "switchboard.admin.user.add: password too short"),
        ("user.remove", ("ghost_user",), {}, "switchboard.admin.user.remove: no user 'ghost_user' in realm 'demo'"),
        ("user.disable", (), {}, "switchboard.admin.user.disable: missing a required argument: 'authid'"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_admin_input_is_invalid_argument(
    reactor: Any, auth_node: Any, procedure: str, args: tuple[Any, ...], kwargs: dict[str, Any], reason: str
) -> None:
    """Every bad admin request gets wamp.error.invalid_argument with the reason, and changes nothing."""
    admin = add_user(auth_node, role="admin")
    async with admin_session(reactor, auth_node, admin) as a:
        roles_before = await a.call(ADMIN + "role.list")
        error, message = await error_of(a.call(ADMIN + procedure, *args, **kwargs))
        assert error == uris.INVALID_ARGUMENT
        assert message.startswith(reason)
        assert await a.call(ADMIN + "role.list") == roles_before


@pytest_twisted.ensureDeferred
async def test_only_admin_roles_reach_the_admin_api(reactor: Any, auth_node: Any) -> None:
    """A user (or anonymous) session calling switchboard.admin.* gets wamp.error.not_authorized."""
    user = add_user(auth_node)
    async with session(reactor, auth_node.url, authmethod="ticket", authid=user.authid, ticket=user.password) as s:
        assert (await error_of(s.call(ADMIN + "role.list")))[0] == uris.NOT_AUTHORIZED
        assert (await error_of(s.call(ADMIN + "user.disable", user.authid)))[0] == uris.NOT_AUTHORIZED
    async with session(reactor, auth_node.url) as anonymous:
        assert (await error_of(anonymous.call(ADMIN + "role.set", "x", {})))[0] == uris.NOT_AUTHORIZED


@pytest_twisted.ensureDeferred
async def test_admin_disables_a_user_and_removes_a_role(reactor: Any, auth_node: Any) -> None:
    """user.disable closes the user's session and refuses the next login; role.remove leaves the role's
    sessions with no permission at all."""
    admin = add_user(auth_node, role="admin")
    target = add_user(auth_node)
    role = f"gone_{uuid.uuid4().hex[:8]}"
    async with admin_session(reactor, auth_node, admin) as a:
        async with session(
            reactor, auth_node.url, authmethod="ticket", authid=target.authid, ticket=target.password
        ) as t:
            await a.call(ADMIN + "user.disable", target.authid)
            await wait(t.left, reactor, timeout=1.0)
            assert t.close_reason == "switchboard.close.credentials_revoked"
        with pytest.raises(JoinRefused):
            async with session(
                reactor, auth_node.url, authmethod="ticket", authid=target.authid, ticket=target.password
            ):
                pass
        await a.call(ADMIN + "role.set", role, INFO_ONLY)
        member = f"m_{uuid.uuid4().hex[:8]}"
        await a.call(ADMIN + "user.add", member, role, password="member-password-2")
        async with session(reactor, auth_node.url, authmethod="ticket", authid=member, ticket="member-password-2") as m:
            assert (await m.call(uris.SYS_INFO))["authrole"] == role
            await a.call(ADMIN + "role.remove", role)
            assert role not in await a.call(ADMIN + "role.list")
            assert (await error_of(m.call(uris.SYS_INFO)))[0] == uris.NOT_AUTHORIZED
        users = {u["authid"]: u for u in await a.call(ADMIN + "user.list")}
        assert users[target.authid]["enabled"] is False
        assert set(users[target.authid]) == {"authid", "role", "enabled", "methods", "keys"}  # no secrets


@pytest_twisted.ensureDeferred
async def test_reserved_roles_are_refused_with_nothing_stored(reactor: Any, auth_node: Any) -> None:
    """role.set("trusted") and user.add/user.set_role with role "trusted" are invalid_argument and leave the
    store untouched: no stored role (which used to break the admin API at the next start) and no user who
    could log in as Crossbar's trusted role (which may register and publish under wamp.*)."""
    from router.store import UnknownUser, UserStore

    admin = add_user(auth_node, role="admin")
    target = add_user(auth_node)
    newcomer = f"n_{uuid.uuid4().hex[:8]}"
    async with admin_session(reactor, auth_node, admin) as a:
        for call in (
            a.call(ADMIN + "role.set", "trusted", INFO_ONLY),
            a.call(ADMIN + "user.add", newcomer, "trusted", password="newcomer-password-1"),
            a.call(ADMIN + "user.set_role", target.authid, "trusted"),
        ):
            error, message = await error_of(call)
            assert error == uris.INVALID_ARGUMENT
            assert "'trusted' is a role reserved by the router" in message
        assert "trusted" not in await a.call(ADMIN + "role.list")
    store = UserStore(auth_node.store_path)
    try:
        assert "trusted" not in store.role_definitions("demo")
        assert store.get_user("demo", target.authid).role == "user"
        with pytest.raises(UnknownUser):
            store.get_user("demo", newcomer)
    finally:
        store.close()


@pytest_twisted.ensureDeferred
async def test_stored_role_changes_are_installed_at_start_in_every_realm(reactor: Any, tmp_path: Path) -> None:
    """A node starting on a store that holds role changes has them in every realm before the first client:
    a role created at run time (in the second realm, one only the in-router decider gets right), a config
    role removed at run time (its users cannot log in), and a stored reserved name is ignored."""
    doc = demo_document()
    doc["realms"].append(
        {
            "name": "second",
            "roles": {
                "anonymous": {"allow": [{"uri": "x.open", "actions": ["publish"]}]},
                "gone": {"allow": [{"uri": "x", "match": "prefix", "actions": ["publish"]}]},
            },
        }
    )
    gap = {  # a prefix with an exact rule under it: Crossbar's static form would refuse x.gap.bx
        "allow": [
            {"uri": "x.gap", "match": "prefix", "actions": ["publish"]},
            {"uri": "x.gap.b", "actions": ["subscribe"]},
        ]
    }
    quiet = {"allow": [{"uri": "sys.info", "actions": ["call"], "disclose": True}]}
    data = tmp_path / "data"
    datadir.prepare(data)
    store = UserStore(datadir.store_path(data))
    password = password_credentials("start-password-1")
    try:
        store.set_role_definition("demo", "quiet", quiet)
        store.set_role_definition("demo", "trusted", quiet)  # as an older version could have stored it
        store.set_role_definition("second", "reader", gap)
        store.set_role_definition("second", "gone", None)
        store.add_user("demo", "q_user", "quiet", password)
        store.add_user("second", "s_reader", "reader", password)
        store.add_user("second", "s_gone", "gone", password)
    finally:
        store.close()

    node = await start_node(reactor, write_config(tmp_path, doc), data)
    try:
        ticket = {"authmethod": "ticket", "ticket": "start-password-1"}
        async with session(reactor, node.url, authid="q_user", **ticket) as q:
            assert (await q.call(uris.SYS_INFO))["authrole"] == "quiet"
        async with session(reactor, node.url, realm="second", authid="s_reader", **ticket) as r:
            acknowledged = PublishOptions(acknowledge=True)
            await r.publish("x.gap.bx", options=acknowledged)
            assert (await error_of(r.publish("x.open", options=acknowledged)))[0] == uris.NOT_AUTHORIZED
        with pytest.raises(JoinRefused) as refused:
            async with session(reactor, node.url, realm="second", authid="s_gone", **ticket):
                pass
        assert refused.value.reason == "wamp.error.no_such_role"
    finally:
        await node.stop()
