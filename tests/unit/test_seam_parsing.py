"""router.seam.parsing: the nesting bound of every serializer, batched serializers off, quiet protocol errors."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import cbor2
import msgpack
import pytest
import txaio
from autobahn.wamp.exception import ProtocolError
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.websocket.protocol import WebSocketProtocol
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.logger import LogEvent, globalLogPublisher

from router.config import Limits
from router.peers import networks
from router.seam import exists, parsing, speedups

LIMIT = 8

# Strings full of what a naive bracket counter would trip on.
tricky_text = st.text(alphabet='[]{}"\\ab\x00é', max_size=8)
scalars = st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | tricky_text
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3), max_leaves=40
)


def depth(value: Any) -> int:
    """The oracle: nesting depth by plain recursion (containers count one level each, scalars zero)."""
    if isinstance(value, list | tuple):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


def nested(n: int) -> list[Any]:
    """A list nested ``n`` deep: [[[...]]]."""
    value: list[Any] = []
    for _ in range(n - 1):
        value = [value]
    return value


@pytest.fixture
def installed() -> Iterator[None]:
    """The seam installed with max_nesting = LIMIT, removed after the test."""
    parsing.uninstall()
    parsing.install(Limits(LIMIT, 1, 1, 1.0, 65536, 1, 1.0, 1))
    yield
    parsing.uninstall()


def test_every_relied_on_library_name_exists() -> None:
    """Canary: every private crossbar/autobahn name the module wraps or reads exists in the installed versions
    (an instance attribute counts when its class assigns it)."""
    missing = [f"{module}.{name}" for module, name in parsing.RELIED_ON if not exists(module, name)]
    assert missing == []
    assert len(parsing.RELIED_ON) >= 20


@pytest.mark.parametrize(
    ("payload", "too_deep"),
    [
        (b"[]", False),
        (b"[" * LIMIT + b"]" * LIMIT, False),
        (b"[" * (LIMIT + 1) + b"]" * (LIMIT + 1), True),
        (b"{" * LIMIT + b"}" * LIMIT, False),
        (b'[{"a":' * 5 + b"1" + b"}]" * 5, True),  # 10 levels, mixed
        (b'["' + b"[" * 100 + b'"]', False),  # brackets inside a string
        (b'["\\"' + b"[" * 100 + b'"]', False),  # after an escaped quote, still inside the string
        (b'["\\\\"' + b"," + b"[" * 20 + b"]" * 20 + b"]", True),  # an escaped backslash ends the string
        (b"[" + b"[]," * 100 + b"[]]", False),  # many brackets, two levels
        (b'["' + b"[" * 100, False),  # unterminated string: invalid, and nothing a parser nests into
    ],
)
def test_json_depth_by_hand(payload: bytes, too_deep: bool) -> None:
    """Hand-checked cases for the JSON text bound, around strings, escapes and wide messages."""
    assert parsing.json_too_deep(payload, LIMIT) is too_deep


@settings(max_examples=300)
@given(values)
def test_json_depth_agrees_with_recursion(value: Any) -> None:
    """For any JSON value, the bracket scan judges exactly what the recursive depth oracle says."""
    text = json.dumps(value).encode()
    assert parsing.json_too_deep(text, LIMIT) is (depth(value) > LIMIT)


@settings(max_examples=300)
@given(values)
def test_msgpack_and_cbor_depth_agree_with_recursion(value: Any) -> None:
    """For any value, the msgpack and CBOR checks judge exactly what the recursive oracle says."""
    packed = msgpack.packb(value)
    assert parsing.msgpack_too_deep(packed, [msgpack.unpackb(packed, raw=False)], LIMIT) is (depth(value) > LIMIT)
    encoded = cbor2.dumps(value)
    assert parsing.cbor_too_deep(encoded, [cbor2.loads(encoded)], LIMIT) is (depth(value) > LIMIT)


def test_cbor_shared_references_cannot_build_deep_or_cyclic_values() -> None:
    """A six-byte CBOR message that decodes to a list containing itself, and one whose shared references
    expand far beyond its size, are refused (in bounded time)."""
    cyclic = bytes.fromhex("d81c81d81d00")  # shareable([sharedref(0)])
    value = cbor2.loads(cyclic)
    assert value[0] is value
    assert parsing.cbor_too_deep(cyclic, [value], LIMIT)
    # 40 levels of [x, x] sharing x: 2**40 leaves from 200-odd bytes, depth 40 > LIMIT, walk stops early.
    leaf: list[Any] = []
    for _ in range(40):
        leaf = [leaf, leaf]
    encoded = cbor2.dumps(leaf, value_sharing=True)
    started = time.perf_counter()
    assert parsing.cbor_too_deep(encoded, [cbor2.loads(encoded)], 64)
    assert time.perf_counter() - started < 1.0


def test_value_walk_stops_at_its_budget() -> None:
    """A value holding more items than the message had bytes (only possible through shared references) is
    refused even when shallow."""
    assert parsing.value_too_deep([[1] * 10] * 10, LIMIT, budget=50)
    assert not parsing.value_too_deep([[1] * 10] * 10, LIMIT, budget=200)


def test_deep_json_is_refused_fast_without_a_recursive_parse(installed: None) -> None:
    """A JSON message 60,000 deep is a NestingTooDeep protocol error within milliseconds, with the
    speed-ups and without them (autobahn's own recursive parser)."""
    payload = b"[" * 60000 + b"]" * 60000
    was_installed = speedups.installed()
    try:
        for with_speedups in (True, False):
            if with_speedups:
                speedups.install()
            else:
                speedups.uninstall()
            started = time.perf_counter()
            with pytest.raises(parsing.NestingTooDeep):
                JsonSerializer().unserialize(payload, False)
            assert time.perf_counter() - started < 0.5
    finally:
        speedups.uninstall()
        if was_installed:
            speedups.install()


@pytest.mark.parametrize(("serializer", "encode"), [(MsgPackSerializer, msgpack.packb), (CBORSerializer, cbor2.dumps)])
def test_deep_binary_messages_are_protocol_errors(installed: None, serializer: Any, encode: Any) -> None:
    """msgpack/CBOR messages one level too deep are protocol errors; at the limit they are WAMP messages (the
    message itself and its argument list are two of the levels)."""
    ok = encode([48, 1, {}, "com.example.x", [nested(LIMIT - 2)]])
    assert serializer().unserialize(ok, True)[0].args == [nested(LIMIT - 2)]
    with pytest.raises(ProtocolError):
        serializer().unserialize(encode([48, 1, {}, "com.example.x", [nested(LIMIT - 1)]]), True)


def test_batched_serializers_are_not_offered(installed: None, tmp_path: Any) -> None:
    """Crossbar's WebSocket factory offers only the plain subprotocols once the seam is installed."""
    from crossbar.router.protocol import WampWebSocketServerFactory

    factory = WampWebSocketServerFactory(lambda: None, str(tmp_path), {"serializers": ["json", "msgpack"]}, None)
    assert sorted(factory.protocols) == ["wamp.2.json", "wamp.2.msgpack"]
    assert sorted(factory._serializers) == ["json", "msgpack"]


class FakeWebSocket:
    """What the replaced onMessage uses of a WAMP WebSocket connection, recording what it is asked to do."""

    peer = "tcp4:192.0.2.7:4711"
    http_headers: dict[str, str] = {}  # noqa: RUF012 (replaced per instance by the tests that set it)

    def __init__(self, clock: Clock) -> None:
        self.factory = type("Factory", (), {"reactor": clock})()
        self.state = WebSocketProtocol.STATE_OPEN
        self._serializer = JsonSerializer()
        self._session = type("Session", (), {"onMessage": lambda _self, msg: None})()
        self.closes: list[int] = []
        self.drops = 0
        self.log = txaio.make_logger()

    def sendCloseFrame(self, code: int, reasonUtf8: bytes, isReply: bool) -> None:
        self.closes.append(code)
        self.state = WebSocketProtocol.STATE_CLOSING

    def dropConnection(self, abort: bool = False) -> None:
        self.drops += 1
        self.state = WebSocketProtocol.STATE_CLOSED


@pytest.fixture
def log_events() -> Iterator[list[LogEvent]]:
    """Every log event emitted during the test."""
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def test_protocol_errors_are_logged_once_per_connection_without_payload(
    installed: None, log_events: list[LogEvent]
) -> None:
    """Three bad messages on one connection: one info line naming the error class (not the payload, no
    traceback), one close frame 1002, and the connection dropped when the client does not answer in time."""
    clock = Clock()
    conn = FakeWebSocket(clock)
    for payload in (b'[1, "SECRET-PAYLOAD"', b"[" * 100 + b"]" * 100, b"not json SECRET-PAYLOAD"):
        parsing._websocket_on_message(conn, payload, False)
    assert conn.closes == [1002]
    mine = [e for e in log_events if e.get("log_namespace") == parsing.__name__]
    assert len(mine) == 1
    assert mine[0]["log_level"].name == "info"
    text = repr(mine[0])
    assert "SECRET-PAYLOAD" not in text
    assert "Traceback" not in text
    assert mine[0]["kind"].startswith("ProtocolError")
    clock.advance(parsing.CLOSE_GRACE - 0.1)
    assert conn.drops == 0
    clock.advance(0.2)
    assert conn.drops == 1


def test_the_logged_peer_is_the_client_a_trusted_proxy_names(log_events: list[LogEvent]) -> None:
    """Behind a trusted proxy the protocol-error line names the client from X-Forwarded-For; from anyone
    else, the header is ignored."""
    parsing.uninstall()
    parsing.install(Limits(LIMIT, 1, 1, 1.0, 65536, 1, 1.0, 1), networks(["192.0.2.7"]))
    try:
        proxied = FakeWebSocket(Clock())
        proxied.http_headers = {"x-forwarded-for": "198.51.100.4"}
        parsing._websocket_on_message(proxied, b"not json", False)
        direct = FakeWebSocket(Clock())
        direct.peer = "tcp4:203.0.113.9:4711"
        direct.http_headers = {"x-forwarded-for": "198.51.100.4"}
        parsing._websocket_on_message(direct, b"not json", False)
    finally:
        parsing.uninstall()
    mine = [e["peer"] for e in log_events if e.get("log_namespace") == parsing.__name__]
    assert mine == ["198.51.100.4", "203.0.113.9"]


def test_good_messages_reach_the_session(installed: None) -> None:
    """A valid message is handed to the session and nothing is closed."""
    received: list[Any] = []
    conn = FakeWebSocket(Clock())
    conn._session = type("Session", (), {"onMessage": lambda _self, msg: received.append(msg), "_session_id": None})()
    parsing._websocket_on_message(conn, b'[1, "demo", {"roles": {"caller": {}}}]', False)
    assert [type(m).__name__ for m in received] == ["Hello"]
    assert conn.closes == []


def test_a_hello_on_a_joined_session_is_a_protocol_error(installed: None) -> None:
    """A second HELLO (the session has an id) never reaches the session: the connection is closed (1002)."""
    received: list[Any] = []
    conn = FakeWebSocket(Clock())
    conn._session = type("Session", (), {"onMessage": lambda _self, msg: received.append(msg), "_session_id": 7})()
    parsing._websocket_on_message(conn, b'[1, "demo", {"roles": {"caller": {}}}]', False)
    assert received == []
    assert conn.closes == [1002]


def test_a_closing_websocket_drops_what_the_router_still_sends(installed: Any) -> None:
    """A message sent on a server WebSocket that is closing is dropped, not raised as Disconnected (crossbar
    answers a HELLO whose authentication ended after a protocol error started closing the connection)."""
    from autobahn.exception import Disconnected
    from autobahn.wamp import message
    from autobahn.wamp.exception import TransportLost
    from autobahn.websocket.protocol import WebSocketProtocol
    from crossbar.router.protocol import WampWebSocketServerProtocol

    proto = WampWebSocketServerProtocol()
    proto.state = WebSocketProtocol.STATE_CLOSING
    sent: list[Any] = []
    proto.sendMessage = lambda *a, **kw: sent.append(a)  # type: ignore[method-assign]
    proto.send(message.Abort("wamp.error.not_authorized"))
    assert sent == []
    parsing.uninstall()
    with pytest.raises((TransportLost, Disconnected)):
        WampWebSocketServerProtocol.send(proto, message.Abort("wamp.error.not_authorized"))
