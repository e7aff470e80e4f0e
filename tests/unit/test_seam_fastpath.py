"""router.seam.fastpath, the pure parts: which cached decision stands in for ``Router.authorize``, the message
counts of ``Router.send``, and a WebSocket message sent in one function.

The oracles are Crossbar's and autobahn's own methods: the same messages go to a connection with autobahn's
``send`` and to one with the fast path, and the bytes written, the traffic counters and the serializer's
statistics must be the same; the decisions are a table written by hand.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
import txaio
from autobahn.wamp import message
from autobahn.wamp.exception import SerializationError
from autobahn.wamp.serializer import JsonSerializer
from autobahn.wamp.websocket import WampWebSocketProtocol
from autobahn.websocket import protocol as ws_protocol
from autobahn.websocket.protocol import PayloadExceededError
from crossbar.router.router import Router
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport

from router.seam import authorization, fastpath, framing
from router.seam.authorization import DecisionCache
from tests.unit.test_seam_framing import PongingServer, connection

ALLOW = {"allow": True, "disclose": False, "cache": True}


def _authorize(*_: Any) -> None:
    """Stands for router.seam.authorization's Router.authorize in the fake routers below."""


class FakeRouter:
    """What cached_decision reads of a router: roles, the decision cache, channels."""

    authorize = _authorize

    def __init__(self, roles: set[str], cache: Any, channels: bool = False) -> None:
        self._roles = dict.fromkeys(roles)
        self._authorization_cache = cache
        if channels:
            setattr(self, authorization.CHANNELS_ATTRIBUTE, object())


class FakeSession:
    def __init__(self, authrole: str, realm: str = "demo") -> None:
        self._authrole = authrole
        self._realm = realm


@pytest.fixture
def authorize_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake routers' authorize counts as the one router.seam.authorization installed."""
    monkeypatch.setattr(fastpath, "_installed_authorize", _authorize)


def _cache(*entries: tuple[tuple[str, str, str, str, str], dict[str, Any]]) -> DecisionCache:
    cache = DecisionCache(10)
    for key, decision in entries:
        cache.remember(key, decision)
    return cache


@pytest.mark.usefixtures("authorize_installed")
@pytest.mark.parametrize(
    ("roles", "authrole", "uri", "channels", "expected"),
    [
        ({"anonymous"}, "anonymous", "app.echo", False, ALLOW),  # a cache hit
        ({"anonymous"}, "anonymous", "app.other", False, None),  # a miss: the role decides
        (set(), "anonymous", "app.echo", False, None),  # the role is gone: Crossbar's denial
        ({"anonymous"}, "anonymous", "switchboard.history.get", True, None),  # a channel URI on a channel realm
        ({"anonymous"}, "anonymous", "app.echo", True, ALLOW),  # an ordinary URI on a channel realm
        ({"trusted"}, "trusted", "switchboard.history.get", True, None),  # not cached for trusted here
    ],
)
def test_cached_decision_is_what_authorize_would_answer_from_its_cache(
    roles: set[str], authrole: str, uri: str, channels: bool, expected: dict[str, Any] | None
) -> None:
    """A decision is used only where router.seam.authorization would answer from its cache without asking."""
    cache = _cache((("demo", authrole, "app.echo", "call", "exact"), ALLOW))
    router = FakeRouter(roles, cache, channels)
    assert fastpath.cached_decision(router, FakeSession(authrole), uri, "call") == expected


@pytest.mark.usefixtures("authorize_installed")
def test_cached_decision_refreshes_the_entry_as_authorize_does() -> None:
    """A hit makes the entry the most recently used, so the LRU evicts the same entries as before."""
    first, second = ("demo", "anonymous", "a", "call", "exact"), ("demo", "anonymous", "b", "call", "exact")
    cache = _cache((first, ALLOW), (second, ALLOW))
    fastpath.cached_decision(FakeRouter({"anonymous"}, cache), FakeSession("anonymous"), "a", "call")
    assert list(cache) == [second, first]


def test_no_decision_without_router_seam_authorization() -> None:
    """A router whose authorize is not router.seam.authorization's (or none installed) gets Crossbar's path."""
    cache = _cache((("demo", "anonymous", "app.echo", "call", "exact"), ALLOW))
    router = FakeRouter({"anonymous"}, cache)
    assert fastpath.cached_decision(router, FakeSession("anonymous"), "app.echo", "call") is None


@pytest.mark.usefixtures("authorize_installed")
def test_no_decision_from_crossbars_own_cache() -> None:
    """Crossbar's plain dict cache (router.seam.authorization not installed on it yet) is not read."""
    router = FakeRouter({"anonymous"}, {("demo", "anonymous", "app.echo", "call"): ALLOW})
    assert fastpath.cached_decision(router, FakeSession("anonymous"), "app.echo", "call") is None


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, msg: Any) -> None:
        self.sent.append(msg)


class CountingRouter:
    """The state Crossbar's Router.send uses."""

    log = txaio.make_logger()
    _check_trace = Router._check_trace

    def __init__(self) -> None:
        self._trace_traffic = False
        self._is_traced = False
        self._message_stats: dict[str, dict[str, int]] = {"sent": {}, "received": {}}


def test_router_send_counts_like_crossbar() -> None:
    """The fast Router.send delivers each message and counts it under the same name as Crossbar's own
    (the message class, lower-cased), also for a session whose transport is gone."""
    messages = [message.Result(1, args=[1]), message.Event(2, 3, args=[]), message.Result(4), message.Goodbye()]
    fast_send = fastpath._make_router_send(Router.send)
    results = []
    for send in (Router.send, fast_send):
        router, session, gone = CountingRouter(), FakeSession("anonymous"), FakeSession("anonymous")
        session._transport = FakeTransport()  # type: ignore[attr-defined]
        gone._transport = None  # type: ignore[attr-defined]
        for msg in messages:
            send(router, session, msg)
        send(router, gone, messages[0])
        results.append((session._transport.sent, router._message_stats))  # type: ignore[attr-defined]
    assert results[0] == results[1]
    assert results[1][1]["sent"] == {"result": 3, "event": 1, "goodbye": 1}


class WampServer(PongingServer):
    """An open WebSocket server connection with autobahn's WAMP send and a joined session."""

    send = WampWebSocketProtocol.send
    isOpen = WampWebSocketProtocol.isOpen


@pytest.fixture
def info_level() -> Iterator[None]:
    """Logging at info, as the router runs (trace and debug calls are no-ops then)."""
    level = txaio.get_global_log_level()
    txaio.set_global_log_level("info")
    try:
        yield
    finally:
        txaio.set_global_log_level(level)


@pytest.fixture
def c_framing() -> Iterator[None]:
    """router.seam.framing installed (the fast send stands in for its sendFrame)."""
    assert framing.install()
    try:
        yield
    finally:
        framing.uninstall()


def wamp_connection(options: dict[str, Any]) -> Any:
    proto = connection(options, WampServer)
    proto._serializer = JsonSerializer()
    proto._session = SimpleNamespace(_authid="someone", _session_id=1)
    proto.log = txaio.make_logger()
    return proto


def observe(send: Any, msgs: list[Any], options: dict[str, Any]) -> dict[str, Any]:
    proto = wamp_connection(options)
    transport: StringTransport = proto.transport
    outcomes = []
    # The same masking keys (maskServerFrames) for both.
    with mock.patch.object(ws_protocol.random, "getrandbits", side_effect=itertools.count()):
        for msg in msgs:
            try:
                send(proto, msg)
                outcomes.append("sent")
            except PayloadExceededError:
                outcomes.append("too big")
    ser = proto._serializer
    return {
        "outcomes": outcomes,
        "bytes": transport.value(),
        "traffic": proto.trafficStats.__json__(),
        "serializer": (ser._serialized_bytes, ser._serialized_messages, ser._serialized_rated_messages),
        "state": proto.state,
    }


payloads = st.lists(st.one_of(st.text(max_size=300), st.integers(), st.binary(max_size=100)), max_size=4)
messages = st.lists(
    st.builds(lambda request, args: message.Result(request, args=args), st.integers(1, 2**53), payloads),
    min_size=1,
    max_size=5,
)
send_options = st.fixed_dictionaries(
    {
        "maxMessagePayloadSize": st.sampled_from([0, 64, 1000]),
        "autoFragmentSize": st.sampled_from([0, 50, 4096]),
        "maskServerFrames": st.booleans(),
    }
)


@pytest.mark.usefixtures("info_level", "c_framing")
@settings(max_examples=150, deadline=None)
@given(msgs=messages, options=send_options)
def test_messages_sent_are_the_same_as_autobahns(msgs: list[Any], options: dict[str, Any]) -> None:
    """The same messages sent with autobahn's send and with the fast one: the same bytes on the wire, the same
    traffic counters and serializer statistics, the same refusals of messages over the size limit."""
    fast = fastpath._make_websocket_send(WampWebSocketProtocol.send)
    assert observe(fast, msgs, options) == observe(WampWebSocketProtocol.send, msgs, options)


@pytest.mark.usefixtures("info_level", "c_framing")
def test_plain_messages_take_the_fast_send() -> None:
    """A small message on a plain connection is sent by the fast path (its counter moves)."""
    fast = fastpath._make_websocket_send(WampWebSocketProtocol.send)
    before = fastpath.taken.sends
    observe(fast, [message.Result(1, args=["x"])], {})
    assert fastpath.taken.sends == before + 1


@pytest.mark.usefixtures("c_framing")
def test_tracing_keeps_autobahns_send() -> None:
    """At log level trace the fast send leaves the message to autobahn's (which logs it)."""
    level = txaio.get_global_log_level()
    txaio.set_global_log_level("trace")
    try:
        fast = fastpath._make_websocket_send(WampWebSocketProtocol.send)
        before = fastpath.taken.sends
        result = observe(fast, [message.Result(1, args=["x"])], {})
    finally:
        txaio.set_global_log_level(level)
    assert fastpath.taken.sends == before
    assert result["outcomes"] == ["sent"]


@pytest.mark.parametrize("variable", [fastpath.SWITCH_ENV, "SWITCHBOARD_SPEEDUPS"])
def test_switches_leave_crossbar_alone(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """SWITCHBOARD_FASTPATH=0 (or SWITCHBOARD_SPEEDUPS=0) installs nothing."""
    monkeypatch.setenv(variable, "0")
    before = Router.send
    assert fastpath.install() is False
    assert not fastpath.installed()
    assert Router.send is before


def test_not_installed_without_router_seam_authorization() -> None:
    """Without router.seam.authorization's authorize (no decision cache to read) nothing is installed."""
    assert not getattr(Router.authorize, "_switchboard", False)
    assert fastpath.install() is False
    assert not fastpath.installed()


@pytest.mark.usefixtures("info_level", "c_framing")
def test_serialization_errors_are_autobahns() -> None:
    """A message the serializer cannot encode raises autobahn's SerializationError with the same text, and
    nothing is written or counted."""
    fast = fastpath._make_websocket_send(WampWebSocketProtocol.send)
    outcomes = []
    for send in (WampWebSocketProtocol.send, fast):
        proto = wamp_connection({})
        with pytest.raises(SerializationError) as raised:
            send(proto, message.Result(1, args=[object()]))
        outcomes.append((str(raised.value), proto.transport.value(), proto._serializer._serialized_messages))
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][1:] == (b"", 0)
