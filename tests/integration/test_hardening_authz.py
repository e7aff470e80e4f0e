"""Roles hold against pattern options, forged ``forward_for`` and URI enumeration, on a real router.

The node has one listener per role (each listener's anonymous sessions get that role), so every session
here joins without credentials and with exactly the role under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
import txaio
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.request import CallRequest
from autobahn.wamp.types import PublishOptions, RegisterOptions, SubscribeOptions

from router.launch import RunningNode
from router.testkit import Inbox, session, start_node, wait
from tests.conftest import running, write_config

pytestmark = pytest.mark.integration

ROLES: dict[str, Any] = {
    # A subscriber allowed one exact topic, and one allowed a prefix rule.
    "exact_sub": {"allow": [{"uri": "t.a.b", "actions": ["subscribe"]}]},
    "room_sub": {"allow": [{"uri": "t.room", "match": "prefix", "actions": ["subscribe"]}]},
    # A callee allowed to register one exact procedure, and one allowed a prefix rule minus a deny.
    "exact_svc": {"allow": [{"uri": "t.svc", "actions": ["register"]}]},
    "prefix_svc": {
        "allow": [{"uri": "t.api", "match": "prefix", "actions": ["register"]}],
        "deny": [{"uri": "t.api.admin", "match": "prefix", "actions": ["register"]}],
    },
    # Everyone else: publish and call anything under t, disclosed.
    "anonymous": {"allow": [{"uri": "t", "match": "prefix", "actions": ["call", "publish"], "disclose": True}]},
    "backend": {"allow": [{"uri": "t", "match": "prefix", "actions": ["register", "subscribe"]}]},
}


@pytest.fixture(scope="module")
def authz_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A node with one WebSocket listener per role of :data:`ROLES`."""
    tmp = tmp_path_factory.mktemp("authz")
    doc = {
        "listen": [
            {"name": role, "type": "websocket", "port": 0, "auth": {"anonymous": {"role": role}}} for role in ROLES
        ],
        "realms": [{"name": "demo", "roles": ROLES}],
    }
    with running(start_node(reactor, write_config(tmp, doc), tmp / "data")) as node:
        yield node


def url(node: RunningNode, role: str) -> str:
    return next(t.url for t in node.config.transports if t.name == role)


async def refused(d: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await d
    return caught.value


@pytest_twisted.ensureDeferred
async def test_exact_rule_does_not_grant_a_prefix_subscription(reactor: Any, authz_node: RunningNode) -> None:
    """A role allowed exact ``t.a.b`` may subscribe to it, but not to the prefix ``t.a.b`` (even once cached)."""
    async with session(reactor, url(authz_node, "exact_sub")) as s:
        await s.subscribe(lambda *a: None, "t.a.b")  # allowed, and now cached for the role
        error = await refused(s.subscribe(lambda *a: None, "t.a.b", options=SubscribeOptions(match="prefix")))
        assert error.error == ApplicationError.NOT_AUTHORIZED
        error = await refused(s.subscribe(lambda *a: None, "t.a..", options=SubscribeOptions(match="wildcard")))
        assert error.error == ApplicationError.NOT_AUTHORIZED


@pytest_twisted.ensureDeferred
async def test_prefix_subscription_gets_what_the_rule_covers_and_nothing_beside(
    reactor: Any, authz_node: RunningNode
) -> None:
    """``t.room`` as a raw prefix would reach ``t.roomy``: refused; ``t.room.`` gets ``t.room.*`` events."""
    async with (
        session(reactor, url(authz_node, "room_sub")) as sub,
        session(reactor, url(authz_node, "anonymous")) as pub,
    ):
        error = await refused(sub.subscribe(lambda *a: None, "t.room", options=SubscribeOptions(match="prefix")))
        assert error.error == ApplicationError.NOT_AUTHORIZED
        inbox = Inbox(reactor)
        await sub.subscribe(inbox, "t.room.", options=SubscribeOptions(match="prefix"))
        await pub.publish("t.roomy", "not for you", options=PublishOptions(acknowledge=True))
        await pub.publish("t.room.lobby", "hello", options=PublishOptions(acknowledge=True))
        assert await inbox.next() == "hello"


@pytest_twisted.ensureDeferred
async def test_exact_register_rule_does_not_grant_a_prefix_registration(reactor: Any, authz_node: RunningNode) -> None:
    """A callee allowed exact ``t.svc`` cannot register it as a prefix and answer ``t.svc.admin.reset``."""
    answered: list[Any] = []
    async with (
        session(reactor, url(authz_node, "exact_svc")) as callee,
        session(reactor, url(authz_node, "anonymous")) as caller,
    ):
        error = await refused(callee.register(answered.append, "t.svc", options=RegisterOptions(match="prefix")))
        assert error.error == ApplicationError.NOT_AUTHORIZED
        error = await refused(caller.call("t.svc.admin.reset", "secret-argument"))
        assert error.error == ApplicationError.NO_SUCH_PROCEDURE
    assert answered == []


@pytest_twisted.ensureDeferred
async def test_prefix_registration_must_stay_clear_of_deny_rules(reactor: Any, authz_node: RunningNode) -> None:
    """A prefix registration reaching a denied branch is refused; one below the allowed branch is not."""
    async with (
        session(reactor, url(authz_node, "prefix_svc")) as callee,
        session(reactor, url(authz_node, "anonymous")) as caller,
    ):
        error = await refused(callee.register(lambda *a: "x", "t.api.", options=RegisterOptions(match="prefix")))
        assert error.error == ApplicationError.NOT_AUTHORIZED
        await callee.register(lambda *a, **kw: "public", "t.api.public.", options=RegisterOptions(match="prefix"))
        assert await caller.call("t.api.public.hello") == "public"


def _send_call_with_forward_for(s: Any, procedure: str, forged: list[dict[str, Any]]) -> Any:
    """Send a CALL carrying a client-made ``forward_for`` (autobahn's API has no way to), await its result."""
    request = s._request_id_gen.next()
    on_reply = txaio.create_future()
    s._call_reqs[request] = CallRequest(request, procedure, on_reply, {})
    s._transport.send(message.Call(request, procedure, args=["x"], forward_for=forged))
    return on_reply


FORGED = [{"session": 1, "authid": "admin", "authrole": "admin"}]


@pytest_twisted.ensureDeferred
async def test_a_client_cannot_call_as_someone_else(reactor: Any, authz_node: RunningNode) -> None:
    """A CALL with a forged ``forward_for`` reaches the callee with the caller's own identity."""
    seen: list[tuple[Any, Any]] = []

    def whoami(*args: Any, details: Any) -> str:
        seen.append((details.caller_authid, details.caller_authrole))
        return "ok"

    async with (
        session(reactor, url(authz_node, "backend")) as callee,
        session(reactor, url(authz_node, "anonymous")) as caller,
    ):
        await callee.register(whoami, "t.whoami", options=RegisterOptions(details_arg="details"))
        assert await wait(_send_call_with_forward_for(caller, "t.whoami", FORGED), reactor) == "ok"
        assert seen == [(caller.details.authid, "anonymous")]


@pytest_twisted.ensureDeferred
async def test_a_client_cannot_publish_as_someone_else(reactor: Any, authz_node: RunningNode) -> None:
    """A PUBLISH with a forged ``forward_for`` reaches subscribers with the publisher's own identity."""
    inbox = Inbox(reactor)
    async with (
        session(reactor, url(authz_node, "backend")) as sub,
        session(reactor, url(authz_node, "anonymous")) as pub,
    ):
        await sub.subscribe(
            lambda *a, details: inbox((details.publisher_authid, details.publisher_authrole)),
            "t.news",
            options=SubscribeOptions(details_arg="details"),
        )
        request = pub._request_id_gen.next()
        pub._transport.send(message.Publish(request, "t.news", args=["hi"], forward_for=FORGED))
        assert await inbox.next() == (pub.details.authid, "anonymous")


@pytest_twisted.ensureDeferred
async def test_register_denials_do_not_tell_which_procedures_exist(reactor: Any, authz_node: RunningNode) -> None:
    """A denied REGISTER reads the same for a registered and an unregistered URI (but for the URI itself)."""
    async with (
        session(reactor, url(authz_node, "backend")) as owner,
        session(reactor, url(authz_node, "exact_sub")) as other,
    ):
        await owner.register(lambda: None, "t.taken")
        taken = await refused(other.register(lambda: None, "t.taken"))
        free = await refused(other.register(lambda: None, "t.free"))
        meta = await refused(other.register(lambda: None, "wamp.session.list"))
    assert taken.error == free.error == meta.error == ApplicationError.NOT_AUTHORIZED
    assert taken.args[0].replace("t.taken", "URI") == free.args[0].replace("t.free", "URI")
    assert taken.args[0].replace("t.taken", "URI") == meta.args[0].replace("wamp.session.list", "URI")
