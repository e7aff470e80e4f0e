"""Issue 9, parsing: deeply nested messages, batched serializers and bad frames against a real node.

The node is this module's own (demo config plus a RawSocket listener, log level ``info``): the attacks here
are meant to hurt it, and its log is read to check what a bad client makes the router write.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, protocol, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from components import uris
from router.config import load_config
from router.launch import RunningNode, launch
from router.testkit import session, wait
from tests.conftest import DEMO_CONFIG, running

pytestmark = pytest.mark.integration

DEPTH = 60_000
#: Each serializer's encoding of a value nested DEPTH deep: arrays of one element around a null.
DEEP = {
    "json": b"[" * DEPTH + b"]" * DEPTH,
    "msgpack": b"\x91" * DEPTH + b"\xc0",
    "cbor": b"\x81" * DEPTH + b"\xf6",
}
RAWSOCKET_ID = {"json": 1, "msgpack": 2, "cbor": 3}
#: Worst canary latency tolerated while an attack runs (the unfixed router froze for ~60 s).
MAX_LATENCY = 1.0
PROTOCOL_ERROR = "protocol error on"


@pytest.fixture(scope="module")
def parsing_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A real node on the demo config plus a RawSocket listener (json, msgpack, cbor), logging at info."""
    config = load_config(DEMO_CONFIG)
    raw = dataclasses.replace(
        config.main_transport, name="raw", type="rawsocket", port=0, serializers=("json", "msgpack", "cbor")
    )
    config = dataclasses.replace(config, transports=(*(dataclasses.replace(t, port=0) for t in config.transports), raw))
    data_dir = tmp_path_factory.mktemp("parsing-node")
    with running(launch(reactor, config, data_dir, loglevel="info", ready_timeout=90)) as node:
        yield node


def port_of(node: RunningNode, kind: str) -> int:
    return next(t.port for t in node.config.transports if t.type == kind)


class Attacker(WebSocketClientProtocol):
    """Sends one message as soon as the WebSocket is open; ``closed`` fires with the router's close code."""

    def __init__(self, payload: bytes, binary: bool) -> None:
        super().__init__()
        self.payload, self.binary = payload, binary
        self.opened: defer.Deferred[None] = defer.Deferred()
        self.closed: defer.Deferred[int | None] = defer.Deferred()

    def onOpen(self) -> None:
        self.opened.callback(None)
        self.sendMessage(self.payload, self.binary)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if not self.closed.called:
            self.closed.callback(self.remoteCloseCode)


class RawClient(protocol.Protocol):
    """A TCP client that records what it receives; ``lost`` fires when the connection ends."""

    def __init__(self) -> None:
        self.received = b""
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.arrived: defer.Deferred[None] | None = None

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if self.arrived is not None:
            d, self.arrived = self.arrived, None
            d.callback(None)

    def connectionLost(self, reason: Any = None) -> None:
        if not self.lost.called:
            self.lost.callback(None)

    async def until(self, reactor: Any, enough: Any, timeout: float = 5.0) -> bytes:
        """The bytes received once ``enough(received)`` holds (at most ``timeout`` seconds)."""
        deadline = reactor.seconds() + timeout
        while not enough(self.received):
            remaining = deadline - reactor.seconds()
            if remaining <= 0 or self.lost.called:
                raise TimeoutError(f"got {self.received[:200]!r}")
            self.arrived = defer.Deferred()
            await wait(self.arrived, reactor, remaining)
        return self.received


async def raw_connect(reactor: Any, port: int) -> RawClient:
    client = RawClient()
    await wait(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client), reactor)
    return client


def upgrade_request(node: RunningNode, subprotocol: str) -> bytes:
    port, path = node.config.main_transport.port, node.config.main_transport.path
    return (
        f"GET /{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
    ).encode()


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """One masked client frame (a zero masking key leaves the payload as it is), payload under 64 KiB."""
    head = bytes([0x80 | opcode]) + (bytes([0x80 | len(payload)]) if len(payload) < 126 else b"")
    if len(payload) >= 126:
        head += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    return head + b"\x00\x00\x00\x00" + payload


async def canary_while(reactor: Any, node: RunningNode, attack: Any) -> tuple[Any, float]:
    """Run ``attack()`` while a session calls sys.info back to back; return its result and the worst latency
    of any call (one still unanswered counts for as long as it has waited)."""
    async with session(reactor, node.url) as canary:
        worst, started, done = 0.0, reactor.seconds(), False

        async def calls() -> None:
            nonlocal worst, started
            while not done:
                started = reactor.seconds()
                await wait(canary.call(uris.SYS_INFO), reactor, 120)
                worst = max(worst, reactor.seconds() - started)

        loop = defer.ensureDeferred(calls())
        try:
            result = await attack()
            # A few more calls after the attack: a frozen reactor would show here at the latest.
            for _ in range(3):
                await task.deferLater(reactor, 0.05, lambda: None)
            worst = max(worst, reactor.seconds() - started) if not loop.called else worst
        finally:
            done = True
        await wait(loop, reactor, 120)
        return result, worst


def log_size(node: RunningNode) -> int:
    return node.process.log_path.stat().st_size


async def log_since(reactor: Any, node: RunningNode, offset: int, marker: str, count: int = 1) -> str:
    """The node log written after ``offset``, once ``marker`` occurs ``count`` times in it or a traceback
    appears (workers log through the controller: lines arrive after the fact). At most 10 seconds."""
    deadline = reactor.seconds() + 10
    while True:
        with node.process.log_path.open(encoding="utf-8", errors="replace") as f:
            f.seek(offset)
            text = f.read()
        if text.count(marker) >= count or "Traceback" in text or reactor.seconds() > deadline:
            return text
        await task.deferLater(reactor, 0.05, lambda: None)


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
@pytest_twisted.ensureDeferred
async def test_deep_message_before_hello_is_refused_at_once_over_websocket(
    reactor: Any, parsing_node: RunningNode, serializer: str
) -> None:
    """A message nested 60,000 deep sent before HELLO: the router closes the WebSocket with 1002 within a
    second, a canary session's calls stay fast throughout, and the log gains one line and no traceback."""
    offset = log_size(parsing_node)

    async def attack() -> tuple[int | None, float]:
        attacker = Attacker(DEEP[serializer], binary=serializer != "json")
        factory = WebSocketClientFactory(parsing_node.url, protocols=[f"wamp.2.{serializer}"])
        factory.protocol = lambda: attacker
        factory.setProtocolOptions(maxMessagePayloadSize=0)
        port = parsing_node.config.main_transport.port
        await wait(TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory), reactor)
        await wait(attacker.opened, reactor)
        sent = reactor.seconds()
        code = await wait(attacker.closed, reactor, 120)
        return code, reactor.seconds() - sent

    (code, closed_after), worst = await canary_while(reactor, parsing_node, attack)
    assert code == 1002
    assert closed_after < 2.0
    assert worst < MAX_LATENCY
    log = await log_since(reactor, parsing_node, offset, PROTOCOL_ERROR)
    assert "Traceback" not in log
    assert log.count(PROTOCOL_ERROR) == 1


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
@pytest_twisted.ensureDeferred
async def test_deep_message_before_hello_is_refused_at_once_over_rawsocket(
    reactor: Any, parsing_node: RunningNode, serializer: str
) -> None:
    """The same over RawSocket: the connection is dropped within a second, the canary stays fast, one log
    line and no traceback."""
    offset = log_size(parsing_node)

    async def attack() -> float:
        client = await raw_connect(reactor, port_of(parsing_node, "rawsocket"))
        client.transport.write(bytes([0x7F, 0xF0 | RAWSOCKET_ID[serializer], 0, 0]))
        await client.until(reactor, lambda got: len(got) >= 4)
        sent = reactor.seconds()
        client.transport.write(len(DEEP[serializer]).to_bytes(4, "big") + DEEP[serializer])
        await wait(client.lost, reactor, 120)
        return float(reactor.seconds() - sent)

    closed_after, worst = await canary_while(reactor, parsing_node, attack)
    assert closed_after < 2.0
    assert worst < MAX_LATENCY
    log = await log_since(reactor, parsing_node, offset, PROTOCOL_ERROR)
    assert "Traceback" not in log
    assert log.count(PROTOCOL_ERROR) == 1


@pytest_twisted.ensureDeferred
async def test_messages_at_the_nesting_limit_are_routed(reactor: Any, parsing_node: RunningNode) -> None:
    """A CALL nested exactly to the limit (the CALL and its argument list are two of its levels) reaches the
    callee, which answers (sys.info takes no arguments: invalid_argument); one level more closes the
    connection with 1002 before anything is routed."""
    limit = parsing_node.config.limits.max_nesting
    value: Any = []
    for _ in range(limit - 3):
        value = [value]
    async with session(reactor, parsing_node.url) as s:
        with pytest.raises(ApplicationError) as refused:
            await s.call(uris.SYS_INFO, value)
        assert refused.value.error == ApplicationError.INVALID_ARGUMENT
        assert (await s.call(uris.SYS_INFO))["realm"] == "demo"
    offset = log_size(parsing_node)
    client = await raw_connect(reactor, parsing_node.config.main_transport.port)
    client.transport.write(upgrade_request(parsing_node, "wamp.2.json"))
    await client.until(reactor, lambda got: b"\r\n\r\n" in got)
    too_deep = b'[48,1,{},"sys.info",[' + b"[" * (limit - 1) + b"]" * (limit - 1) + b"]]"
    client.transport.write(client_frame(too_deep))
    await wait(client.lost, reactor, 10)
    frames = client.received.split(b"\r\n\r\n", 1)[1]
    assert frames[:1] == b"\x88"  # a close frame came first...
    assert frames[2:4] == (1002).to_bytes(2, "big")  # ...with code 1002
    log = await log_since(reactor, parsing_node, offset, PROTOCOL_ERROR)
    assert "NestingTooDeep" in log


@pytest_twisted.ensureDeferred
async def test_batched_subprotocols_are_refused_at_the_handshake(reactor: Any, parsing_node: RunningNode) -> None:
    """Batched serializers are off: a client offering only wamp.2.json.batched gets HTTP 400, the plain
    wamp.2.json is accepted."""
    for subprotocol, status in (("wamp.2.json.batched", b"HTTP/1.1 400"), ("wamp.2.json", b"HTTP/1.1 101")):
        client = await raw_connect(reactor, parsing_node.config.main_transport.port)
        try:
            client.transport.write(upgrade_request(parsing_node, subprotocol))
            head = await client.until(reactor, lambda got: b"\r\n" in got)
            assert head.split(b"\r\n", 1)[0].startswith(status)
        finally:
            client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_bad_messages_are_logged_once_per_connection_without_payload(
    reactor: Any, parsing_node: RunningNode
) -> None:
    """Two unparseable WAMP messages on one connection, a HELLO whose realm is not a URI on a second (autobahn's
    error quotes it) and a bad frame (reserved opcode) on a third: three info lines in all, none quoting the
    payload, no traceback."""
    marker = "PAYLOAD-MUST-NOT-BE-LOGGED"
    offset = log_size(parsing_node)
    frames = [
        [client_frame(f'[1, "{marker}"'.encode()), client_frame(f"[{marker}]".encode())],
        [client_frame(f'[1, "{marker} realm!", {{"roles": {{"caller": {{}}}}}}]'.encode())],
        [bytes([0x83, 0x80 | len(marker)]) + b"\x00\x00\x00\x00" + marker.encode()],
    ]
    for sent in frames:
        client = await raw_connect(reactor, parsing_node.config.main_transport.port)
        client.transport.write(upgrade_request(parsing_node, "wamp.2.json"))
        await client.until(reactor, lambda got: b"\r\n\r\n" in got)
        for frame in sent:
            client.transport.write(frame)
        await wait(client.lost, reactor, 10)
    log = await log_since(reactor, parsing_node, offset, PROTOCOL_ERROR, count=3)
    lines = [line for line in log.splitlines() if PROTOCOL_ERROR in line]
    assert len(lines) == 3
    assert marker not in log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    "message",
    [
        b'[16, 1, {}, "a.b", ""]',  # PUBLISH with a str payload: autobahn asserts bytes
        b'[48, 1, {}, "a.b", ""]',  # CALL, likewise
        b'[16, 1, {"forward_for": [1]}, "a.b"]',  # malformed forward_for entries: autobahn asserts
        b'[32, 1, {"forward_for": [1]}, "a.b"]',
        b'[64, 1, {"forward_for": [1]}, "a.b"]',
        b'[48, 1, {"forward_for": [{"session": 1, "authid": "x"}]}, "a.b"]',
    ],
)
@pytest_twisted.ensureDeferred
async def test_messages_autobahn_asserts_on_are_protocol_errors(
    reactor: Any, parsing_node: RunningNode, message: bytes
) -> None:
    """Messages that make autobahn's parser raise AssertionError (found by the fuzz run) close the connection
    as a protocol error, logged once at info, with no traceback."""
    offset = log_size(parsing_node)
    client = await raw_connect(reactor, parsing_node.config.main_transport.port)
    client.transport.write(upgrade_request(parsing_node, "wamp.2.json"))
    await client.until(reactor, lambda got: b"\r\n\r\n" in got)
    client.transport.write(client_frame(message))
    await wait(client.lost, reactor, 10)
    log = await log_since(reactor, parsing_node, offset, PROTOCOL_ERROR)
    assert "AssertionError" in log
    assert "Traceback" not in log


@pytest_twisted.ensureDeferred
async def test_a_second_hello_closes_the_connection(reactor: Any, parsing_node: RunningNode) -> None:
    """A HELLO on a joined session is a protocol error that closes the connection, logged once: Crossbar alone
    logs a warning per such message and goes on (a client could write the log full at the default level)."""
    offset = log_size(parsing_node)
    client = await raw_connect(reactor, parsing_node.config.main_transport.port)
    client.transport.write(upgrade_request(parsing_node, "wamp.2.json"))
    await client.until(reactor, lambda got: b"\r\n\r\n" in got)
    hello = b'[1, "demo", {"roles": {"caller": {}}}]'
    client.transport.write(client_frame(hello))
    await client.until(reactor, lambda got: b"[2," in got)  # WELCOME
    for _ in range(50):
        client.transport.write(client_frame(hello))
    await wait(client.lost, reactor, 10)
    log = await log_since(reactor, parsing_node, offset, PROTOCOL_ERROR)
    assert log.count("protocol error on WebSocket connection from 127.0.0.1: ProtocolError") == 1
    assert "already joined" not in log


def test_node_config_is_the_demo_one_with_rawsocket(parsing_node: RunningNode) -> None:
    """The fixture's node listens for WebSocket and RawSocket on ports picked at start."""
    assert {t.type for t in parsing_node.config.transports} == {"websocket", "rawsocket"}
    assert all(t.port for t in parsing_node.config.transports)
    assert Path(parsing_node.process.log_path).exists()


@pytest_twisted.ensureDeferred
async def test_an_abort_after_leaving_is_no_internal_error(reactor: Any, parsing_node: RunningNode) -> None:
    """A client that joins, leaves (GOODBYE) and then sends ABORT on the same connection is no internal error:
    Crossbar alone would undo the join a second time, fail on the details it has already dropped, log a
    traceback and close the connection (found by the fuzz run). The connection stays usable: a new HELLO on
    it is welcomed (which also proves the ABORT was handled: one connection's messages are handled in order)."""
    offset = log_size(parsing_node)
    client = await raw_connect(reactor, parsing_node.config.main_transport.port)
    client.transport.write(upgrade_request(parsing_node, "wamp.2.json"))
    await client.until(reactor, lambda got: b"\r\n\r\n" in got)
    hello = client_frame(b'[1, "demo", {"roles": {"caller": {}}}]')
    client.transport.write(hello)
    await client.until(reactor, lambda got: got.count(b"[2,") == 1)  # WELCOME
    client.transport.write(client_frame(b'[6, {}, "wamp.close.normal"]'))
    await client.until(reactor, lambda got: b"[6," in got)  # GOODBYE back
    client.transport.write(client_frame(b'[3, {}, "wamp.close.normal"]') + hello)
    await client.until(reactor, lambda got: got.count(b"[2,") == 2)  # welcomed again
    client.transport.loseConnection()
    await wait(client.lost, reactor, 10)
    log = await log_since(reactor, parsing_node, offset, "event=session_left", count=2)
    assert "internal error" not in log
    assert "Traceback" not in log
