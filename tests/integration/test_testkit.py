"""The test kit's fixtures on Switchboard's own session node (the plugin's ``switchboard_node`` on the demo
config): sessions per role and authid through the test-login transport, real logins through the public
one, and the test-login transport's absence from every node started without it."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions
from twisted.internet import task

from components import uris
from router import datadir
from router.compile import KIT_LOGIN_AUTHENTICATOR, KIT_LOGIN_TRANSPORT_ID
from router.launch import RunningNode
from router.testkit import Inbox, JoinRefused, SessionFactory, assert_denied, assert_invalid
from router.uris import ADMIN_ROLE_REMOVE, ADMIN_ROLE_SET
from tests.conftest import DEMO_CONFIG
from tests.integration.cli import RunningCommand
from tests.integration.users import add_user

pytestmark = pytest.mark.integration


def kit_socket(node: RunningNode) -> Path:
    """Where ``node``'s test-login socket is (or would be)."""
    return datadir.kit_login_socket_path(node.data_dir)


def compiled_text(node: RunningNode) -> str:
    """The Crossbar config ``node`` was started with, as written."""
    return (datadir.node_dir(node.data_dir) / "config.json").read_text()


async def logged(reactor: Any, node: RunningNode, marker: str) -> bool:
    """Whether ``marker`` is in the node log within 10 seconds (workers log through the controller: a line
    arrives after the client has its answer)."""
    deadline = reactor.seconds() + 10
    while marker not in node.process.log_path.read_text(encoding="utf-8", errors="replace"):
        if reactor.seconds() > deadline:
            return False
        await task.deferLater(reactor, 0.05, lambda: None)
    return True


@pytest.mark.parametrize("role", ["anonymous", "user", "admin"])
@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
@pytest_twisted.ensureDeferred
async def test_a_role_session_is_exactly_the_role_and_authid_asked_for(
    wamp_session: SessionFactory, role: str, serializer: str
) -> None:
    """sys.info (the router's own view of the caller) reports exactly the role and authid requested, over
    each serializer, with no user in the store."""
    authid = f"alice-{uuid.uuid4().hex[:6]}"
    async with wamp_session(realm="demo", role=role, authid=authid, serializer=serializer) as s:
        assert (s.details.authid, s.details.authrole) == (authid, role)
        info = await s.call(uris.SYS_INFO)
    assert (info["realm"], info["authid"], info["authrole"]) == ("demo", authid, role)


@pytest_twisted.ensureDeferred
async def test_defaults_are_the_anonymous_role_and_a_fresh_authid(wamp_session: SessionFactory) -> None:
    """Without arguments: realm demo, the main transport's anonymous role, a different authid each time."""
    async with wamp_session() as first, wamp_session() as second:
        one, two = await first.call(uris.SYS_INFO), await second.call(uris.SYS_INFO)
    assert (one["realm"], one["authrole"], two["authrole"]) == ("demo", "anonymous", "anonymous")
    assert one["authid"] != two["authid"]


@pytest_twisted.ensureDeferred
async def test_a_role_created_at_run_time_can_be_joined_until_it_is_removed(wamp_session: SessionFactory) -> None:
    """An admin creates a role; a test session joins with it at once; once removed, the join is refused
    with not_authorized."""
    role = f"auditor_{uuid.uuid4().hex[:8]}"
    async with wamp_session(role="admin", authid="root") as admin:
        await admin.call(ADMIN_ROLE_SET, role, {"allow": [{"uri": "sys.info", "actions": ["call"], "disclose": True}]})
        try:
            async with wamp_session(role=role, authid="auditor") as s:
                info = await s.call(uris.SYS_INFO)
            assert (info["authid"], info["authrole"]) == ("auditor", role)
        finally:
            await admin.call(ADMIN_ROLE_REMOVE, role)
    with pytest.raises(JoinRefused) as caught:
        async with wamp_session(role=role):
            pass
    assert caught.value.reason == "wamp.error.not_authorized"
    assert f"test login as role {role!r} on realm 'demo'" in str(caught.value)


@pytest.mark.parametrize("role", ["nosuch", "trusted"])
@pytest_twisted.ensureDeferred
async def test_a_role_the_realm_lacks_or_the_router_keeps_is_refused(
    reactor: Any, wamp_session: SessionFactory, demo_node: RunningNode, role: str
) -> None:
    """A role the realm does not have, or the router's own trusted role, is refused with not_authorized,
    and the node log says why."""
    authid = f"intruder-{uuid.uuid4().hex[:6]}"
    with pytest.raises(JoinRefused) as caught:
        async with wamp_session(role=role, authid=authid):
            pass
    assert caught.value.reason == "wamp.error.not_authorized"
    assert await logged(reactor, demo_node, f"test login refused: realm='demo' role={role!r} authid={authid!r}")


@pytest_twisted.ensureDeferred
async def test_real_credentials_take_the_real_login_path(wamp_session: SessionFactory, demo_node: RunningNode) -> None:
    """With an authmethod the session logs in over the public transport as the stored user: its role is the
    user's; a wrong secret is refused like any login."""
    user = add_user(demo_node, role="user", prefix="kit")
    async with wamp_session(authmethod="ticket", authid=user.authid, secret=user.password) as s:
        info = await s.call(uris.SYS_INFO)
    assert (info["authid"], info["authrole"]) == (user.authid, "user")
    async with wamp_session(authmethod="wampcra", authid=user.authid, secret=user.password) as s:
        assert s.details.authmethod == "wampcra"
    async with wamp_session(authmethod="cryptosign", privkey=user.privkey) as s:
        assert (s.details.authid, s.details.authmethod) == (user.authid, "cryptosign")
    with pytest.raises(JoinRefused) as caught:
        async with wamp_session(authmethod="ticket", authid=user.authid, secret="wrong"):
            pass
    assert caught.value.reason == "wamp.error.not_authorized"


@pytest_twisted.ensureDeferred
async def test_denials_invalid_arguments_and_events(wamp_session: SessionFactory) -> None:
    """The helpers against the demo's rules: an anonymous register and an acknowledged publish are denied, a
    bad chat.send names its argument, and an event reaches an inbox."""
    room = f"kit{uuid.uuid4().hex[:8]}"
    async with wamp_session(role="anonymous") as anonymous, wamp_session(role="user", authid="ann") as ann:
        await assert_denied(anonymous.register(lambda: None, "sys.nothing"))
        await assert_denied(anonymous.publish(f"chat.room.{room}", "x", options=PublishOptions(acknowledge=True)))
        await assert_invalid(ann.call("chat.send", room, ""), argument="text")
        inbox = Inbox()
        await anonymous.subscribe(inbox, f"chat.room.{room}")
        await ann.call("chat.send", room, "hello")
        event = await inbox.next(timeout=10)
    assert event["text"] == "hello"
    assert event["author"] == "ann"


def test_the_plugins_node_has_an_owner_only_test_login_socket(demo_node: RunningNode) -> None:
    """The node the plugin started has the test-login socket in the owner-only node directory, and its
    compiled config the transport."""
    socket = kit_socket(demo_node)
    assert demo_node.test_login_socket == str(socket)
    assert stat.S_ISSOCK(socket.stat().st_mode)
    assert stat.S_IMODE(socket.parent.stat().st_mode) == 0o700
    assert KIT_LOGIN_TRANSPORT_ID in compiled_text(demo_node)


def test_a_node_launched_without_test_logins_has_none(auth_node: RunningNode) -> None:
    """A node started by launch() without test_logins (here the session's auth node) has no test-login
    socket and nothing of it in its compiled config."""
    assert auth_node.test_login_socket is None
    assert not kit_socket(auth_node).exists()
    text = compiled_text(auth_node)
    assert KIT_LOGIN_TRANSPORT_ID not in text
    assert KIT_LOGIN_AUTHENTICATOR not in text


def test_switchboard_run_never_has_a_test_login_transport(tmp_path: Path) -> None:
    """`switchboard run`, on a data directory a test node used before (its test-login socket left behind),
    serves without a test-login socket or transport."""
    data = tmp_path / "data"
    datadir.prepare(data)
    datadir.kit_login_socket_path(data).write_text("left behind")
    run = RunningCommand("--config", str(DEMO_CONFIG), "--port", "0", "--data-dir", "data", cwd=tmp_path)
    try:
        line = run.read_line()
        assert line.startswith("Switchboard ready: "), line
        assert not datadir.kit_login_socket_path(data).exists()
        compiled = json.loads((datadir.node_dir(data) / "config.json").read_text())
        transports = [t["id"] for t in compiled["workers"][0]["transports"]]
        assert transports == ["transport_main", "transport_control"]
        assert KIT_LOGIN_AUTHENTICATOR not in json.dumps(compiled)
    finally:
        run.proc.terminate()
        code, _ = run.wait(timeout=60)
        run.kill()
    assert code == 0
    assert run.processes() == []
