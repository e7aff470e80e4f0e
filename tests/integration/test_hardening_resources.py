"""
Resources at the transport and dealer level (issue 9, findings 6, 7 and the call timeouts of 8), on a real
node with small limits: the HTTP-stage deadline, the connection caps (also behind a trusted proxy), the
bound on unsent bytes for a subscriber that stops reading, call timeouts and the pending-call cap.

Raw clients are Twisted protocols on sockets bound to addresses of the loopback range (127.0.0.2, ...), so
each test has client addresses of its own; they speak WebSocket and WAMP by hand where a test needs a
client that misbehaves.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, PublishOptions
from twisted.internet import defer, error, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol

from router.launch import RunningNode
from router.testkit import session, start_node, wait
from router.uris import TOO_MANY_PENDING_CALLS, TOO_MANY_REGISTRATIONS, TOO_MANY_SUBSCRIPTIONS
from tests.conftest import demo_document, running, write_config

pytestmark = pytest.mark.integration

HTTP_TIMEOUT = 1
PER_PEER = 5
SEND_BUFFER = 256 * 1024
PENDING = 3
#: limits.max_subscriptions and limits.max_registrations of small_node.
HELD = 20
CALL_TIMEOUT = 2
PROXY = "127.0.0.4"


@pytest.fixture(scope="module")
def small_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A node on the demo config with small limits, a RawSocket listener, a trusted proxy (127.0.0.4) and
    the role ``anonymous`` allowed everything under ``hardening``."""
    doc = demo_document()
    doc["limits"] = {
        "http_timeout": HTTP_TIMEOUT,
        "max_connections_per_peer": PER_PEER,
        "max_send_buffer": SEND_BUFFER,
        "max_pending_calls": PENDING,
        "call_timeout": CALL_TIMEOUT,
        "max_subscriptions": HELD,
        "max_registrations": HELD,
    }
    doc["trusted_proxies"] = [PROXY]
    doc["listen"][0]["max_message_size"] = 65536
    doc["listen"].append(
        {
            "name": "raw",
            "type": "rawsocket",
            "port": 0,
            "max_message_size": 65536,
            "auth": {"anonymous": {"role": "anonymous"}},
        }
    )
    doc["realms"][0]["roles"]["anonymous"]["allow"].append(
        {"uri": "hardening", "match": "prefix", "actions": ["call", "register", "publish", "subscribe"]}
    )
    tmp = tmp_path_factory.mktemp("resources-node")
    with running(start_node(reactor, write_config(tmp, doc), tmp / "data")) as node:
        yield node


def _port(node: RunningNode, kind: str) -> int:
    return next(t.port for t in node.config.transports if t.type == kind)


class RawClient(Protocol):
    """A client that records what it receives and when the connection ends."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.closed: defer.Deferred[None] = defer.Deferred()
        self._waiting: list[tuple[bytes, defer.Deferred[None]]] = []

    def send(self, data: bytes) -> None:
        """Write ``data`` unless the router has already closed the connection (a refusal at accept)."""
        if self.transport is not None and not self.closed.called:
            self.transport.write(data)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        for marker, d in list(self._waiting):
            if marker in self.received:
                self._waiting.remove((marker, d))
                d.callback(None)

    def connectionLost(self, reason: Any = None) -> None:
        for _, d in self._waiting:
            d.errback(ConnectionError("closed"))
        self._waiting.clear()
        self.closed.callback(None)

    def until(self, marker: bytes) -> defer.Deferred[None]:
        """Fires once ``marker`` has been received (fails if the connection ends first)."""
        d: defer.Deferred[None] = defer.Deferred()
        if marker in self.received:
            d.callback(None)
        elif self.closed.called:
            d.errback(ConnectionError("closed"))
        else:
            self._waiting.append((marker, d))
        return d


async def connect(reactor: Any, port: int, source: str, rcvbuf: int | None = None) -> RawClient:
    """A raw client connected from ``source`` (a loopback address) to ``port``.

    The router may close a connection the moment it accepts it (over a cap): the client then sees a
    connection made and lost at once, never an error.
    """
    client = RawClient()
    if rcvbuf is None:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=10, bindAddress=(source, 0))
        try:
            await wait(endpoint.connect(Factory.forProtocol(lambda: client)), reactor)
        except error.ConnectError:
            # Reset before the connection was made: the router closed it at accept.
            if not client.closed.called:
                client.closed.callback(None)
        return client
    # A receive buffer must be set before connecting: a socket of our own, handed to the reactor.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))  # loopback: completes at once
        sock.setblocking(False)
        reactor.adoptStreamConnection(sock.fileno(), socket.AF_INET, Factory.forProtocol(lambda: client))
    finally:
        sock.close()  # the reactor holds its own duplicate
    return client


def upgrade_request(port: int, headers: dict[str, str] | None = None) -> bytes:
    """A WebSocket upgrade request for the node's ``/ws`` path, WAMP/JSON."""
    lines = [
        "GET /ws HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: wamp.2.json",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def upgraded(reactor: Any, port: int, source: str, headers: dict[str, str] | None = None) -> RawClient:
    """A raw client that sent an upgrade request; fails unless the router answers 101."""
    client = await connect(reactor, port, source)
    client.transport.write(upgrade_request(port, headers))
    await wait(client.until(b"\r\n\r\n"), reactor)
    assert client.received.startswith(b"HTTP/1.1 101"), bytes(client.received[:80])
    return client


async def attempt(reactor: Any, port: int, source: str) -> RawClient | None:
    """A raw client whose upgrade the router accepted (101), or None if it closed the connection instead."""
    client = await connect(reactor, port, source)
    client.transport.write(upgrade_request(port))
    try:
        await wait(client.until(b"\r\n\r\n"), reactor)
    except ConnectionError:
        return None
    assert client.received.startswith(b"HTTP/1.1 101"), bytes(client.received[:80])
    return client


def ws_frame(payload: bytes) -> bytes:
    """A masked client text frame."""
    n = len(payload)
    header = b"\x81" + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_messages(data: bytes) -> list[bytes]:
    """The complete server frames' payloads in ``data`` (after the HTTP response)."""
    data = data[data.index(b"\r\n\r\n") + 4 :]
    out = []
    while len(data) >= 2:
        n, at = data[1] & 0x7F, 2
        if n == 126:
            n, at = struct.unpack("!H", data[2:4])[0], 4
        elif n == 127:
            n, at = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < at + n:
            break
        out.append(data[at : at + n])
        data = data[at + n :]
    return out


class Counter:
    """Counts events; ``reached(n)`` fires once ``n`` have arrived."""

    def __init__(self) -> None:
        self.n = 0
        self._goals: list[tuple[int, defer.Deferred[None]]] = []

    def __call__(self, *args: Any) -> None:
        self.n += 1
        for goal, d in list(self._goals):
            if self.n >= goal:
                self._goals.remove((goal, d))
                d.callback(None)

    def reached(self, goal: int) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        if self.n >= goal:
            d.callback(None)
        else:
            self._goals.append((goal, d))
        return d


# --- finding 6: the HTTP stage and connection caps


@pytest_twisted.ensureDeferred
async def test_silent_and_trickling_connections_are_closed_after_http_timeout(
    reactor: Any, small_node: RunningNode
) -> None:
    """A silent WebSocket connection, one trickling a byte every 0.2 s and a silent RawSocket connection are
    all closed about http_timeout after they were accepted; a session opened before them keeps working."""
    ws_port, raw_port = _port(small_node, "websocket"), _port(small_node, "rawsocket")
    async with session(reactor, small_node.url) as s:
        start = reactor.seconds()
        silent = await connect(reactor, ws_port, "127.0.0.5")
        trickling = await connect(reactor, ws_port, "127.0.0.5")
        raw = await connect(reactor, raw_port, "127.0.0.5")
        request = upgrade_request(ws_port)
        sent = iter(range(len(request)))

        def trickle() -> None:
            i = next(sent)
            trickling.transport.write(request[i : i + 1])

        dripping = task.LoopingCall(trickle)
        dripping.clock = reactor
        dripping.start(0.2)
        try:
            for name, client in (("silent", silent), ("trickling", trickling), ("raw", raw)):
                try:
                    await wait(client.closed, reactor, timeout=HTTP_TIMEOUT + 4)
                except defer.TimeoutError:
                    pytest.fail(f"{name} connection still open")
        finally:
            dripping.stop()
        assert reactor.seconds() - start >= HTTP_TIMEOUT * 0.9
        assert (silent.received, trickling.received, raw.received) == (b"", b"", b"")
        assert await s.call("sys.info") is not None


@pytest_twisted.ensureDeferred
async def test_connections_beyond_the_per_address_cap_are_closed_at_once(reactor: Any, small_node: RunningNode) -> None:
    """From one address, max_connections_per_peer WebSocket connections open; the next is closed without
    an answer while another address still connects, and one more fits again once one of them has closed."""
    port = _port(small_node, "websocket")
    opened = [await upgraded(reactor, port, "127.0.0.2") for _ in range(PER_PEER)]
    try:
        extra = await connect(reactor, port, "127.0.0.2")
        extra.send(upgrade_request(port))
        await wait(extra.closed, reactor, timeout=HTTP_TIMEOUT * 0.8)
        assert extra.received == b""

        canary = await upgraded(reactor, port, "127.0.0.3")
        canary.transport.loseConnection()

        opened[0].transport.abortConnection()
        await wait(opened[0].closed, reactor)
        # The router learns of the close a moment after the client: try again until it has (bounded).
        for _ in range(20):
            again = await attempt(reactor, port, "127.0.0.2")
            if again is not None:
                opened[0] = again
                break
        else:
            pytest.fail("no connection accepted after one of the address's connections closed")
    finally:
        for client in opened:
            client.transport.abortConnection()


@pytest_twisted.ensureDeferred
async def test_behind_a_trusted_proxy_the_cap_applies_to_the_forwarded_address(
    reactor: Any, small_node: RunningNode
) -> None:
    """Connections from a trusted proxy are capped per address the proxy names in X-Forwarded-For: the
    sixth for one client gets HTTP 503, while the proxy itself carries more than five connections."""
    port = _port(small_node, "websocket")
    one = {"X-Forwarded-For": "10.9.0.1"}
    opened = [await upgraded(reactor, port, PROXY, one) for _ in range(PER_PEER)]
    try:
        refused = await connect(reactor, port, PROXY)
        refused.send(upgrade_request(port, one))
        await wait(refused.closed, reactor)
        assert refused.received.startswith(b"HTTP/1.1 503"), bytes(refused.received[:80])

        opened.append(await upgraded(reactor, port, PROXY, {"X-Forwarded-For": "10.9.0.2"}))
    finally:
        for client in opened:
            client.transport.abortConnection()


# --- finding 7: slow consumers


@pytest_twisted.ensureDeferred
async def test_a_subscriber_that_stops_reading_is_dropped_and_others_get_every_event(
    reactor: Any, small_node: RunningNode
) -> None:
    """A subscriber that stops reading is disconnected once the router holds more than max_send_buffer
    for it (it never gets all events); a normal subscriber of the same topic receives every event."""
    topic = f"hardening.slow.{uuid.uuid4().hex[:8]}"
    port = _port(small_node, "websocket")
    count, size = 500, 16 * 1024
    slow = await connect(reactor, port, "127.0.0.6", rcvbuf=4096)
    slow.transport.write(upgrade_request(port))
    await wait(slow.until(b"\r\n\r\n"), reactor)
    slow.transport.write(ws_frame(json.dumps([1, "demo", {"roles": {"subscriber": {}}}]).encode()))
    await wait(slow.until(b"[2,"), reactor)
    slow.transport.write(ws_frame(json.dumps([32, 1, {}, topic]).encode()))
    await wait(slow.until(b"[33,"), reactor)
    slow.transport.pauseProducing()  # stop reading

    async with session(reactor, small_node.url) as sub, session(reactor, small_node.url) as pub:
        got = Counter()
        await sub.subscribe(got, topic)
        blob = "x" * size
        for _ in range(count):
            await pub.publish(topic, blob, options=PublishOptions(acknowledge=True))
        await wait(got.reached(count), reactor, timeout=30)

    slow.transport.resumeProducing()  # read what the router sent, and see whether it closed the connection
    await wait(slow.closed, reactor, timeout=5)
    events = [m for m in ws_messages(bytes(slow.received)) if m.startswith(b"[36,")]
    assert len(events) < count
    assert got.n == count


# --- finding 8: call timeouts and pending calls


async def _never_answering(s: Any, uri: str) -> list[Any]:
    """Register ``uri`` on ``s`` with a handler that never answers; returns the list of its invocations."""
    calls: list[Any] = []

    def never(*args: Any, **kwargs: Any) -> defer.Deferred[None]:
        calls.append(args)
        return defer.Deferred()

    await s.register(never, uri)
    return calls


async def _failure(reactor: Any, d: defer.Deferred[Any], timeout: float) -> tuple[str, float]:
    """The error URI the call ``d`` fails with, and after how many seconds."""
    start = reactor.seconds()
    with pytest.raises(ApplicationError) as caught:
        await wait(d, reactor, timeout)
    return caught.value.error, reactor.seconds() - start


@pytest_twisted.ensureDeferred
async def test_the_callers_timeout_counts_milliseconds(reactor: Any, small_node: RunningNode) -> None:
    """A call with timeout=500 (ms) to a callee that never answers fails with wamp.error.canceled after
    about half a second, and the router announces call_timeout."""
    uri = f"hardening.never.{uuid.uuid4().hex[:8]}"
    async with session(reactor, small_node.url) as callee, session(reactor, small_node.url) as caller:
        await _never_answering(callee, uri)
        error, seconds = await _failure(reactor, caller.call(uri, options=CallOptions(timeout=500)), timeout=5)
        assert error == "wamp.error.canceled"
        assert 0.4 <= seconds < 1.5
        assert caller._router_roles["dealer"].call_timeout is True


@pytest_twisted.ensureDeferred
async def test_a_call_to_a_callee_that_never_answers_fails_after_call_timeout(
    reactor: Any, small_node: RunningNode
) -> None:
    """Without a timeout option, a call to a callee that never answers fails with wamp.error.canceled after
    the router's call_timeout."""
    uri = f"hardening.never.{uuid.uuid4().hex[:8]}"
    async with session(reactor, small_node.url) as callee, session(reactor, small_node.url) as caller:
        invoked = await _never_answering(callee, uri)
        error, seconds = await _failure(reactor, caller.call(uri, 1), timeout=CALL_TIMEOUT + 4)
        assert error == "wamp.error.canceled"
        assert CALL_TIMEOUT * 0.9 <= seconds < CALL_TIMEOUT + 2
        assert invoked == [(1,)]


@pytest_twisted.ensureDeferred
async def test_a_session_holds_at_most_max_subscriptions_and_max_registrations(
    reactor: Any, small_node: RunningNode
) -> None:
    """A session at its cap of subscriptions (registrations) gets switchboard.error.too_many_subscriptions
    (too_many_registrations) for one more, whatever the URI; after dropping one it may add one again."""
    tag = uuid.uuid4().hex[:8]
    async with session(reactor, small_node.url) as s:
        subscriptions = [await s.subscribe(lambda *a: None, f"hardening.sub.{tag}.{i}") for i in range(HELD)]
        registrations = [await s.register(lambda: None, f"hardening.reg.{tag}.{i}") for i in range(HELD)]
        for refused, error in (
            (s.subscribe(lambda *a: None, f"hardening.sub.{tag}.more"), TOO_MANY_SUBSCRIPTIONS),
            (s.subscribe(lambda *a: None, "not.allowed.at.all"), TOO_MANY_SUBSCRIPTIONS),
            (s.register(lambda: None, f"hardening.reg.{tag}.more"), TOO_MANY_REGISTRATIONS),
        ):
            with pytest.raises(ApplicationError) as caught:
                await refused
            assert caught.value.error == error
        await subscriptions[0].unsubscribe()
        await registrations[0].unregister()
        await s.subscribe(lambda *a: None, f"hardening.sub.{tag}.more")
        await s.register(lambda: None, f"hardening.reg.{tag}.more")


@pytest_twisted.ensureDeferred
async def test_one_call_more_than_max_pending_calls_is_refused(reactor: Any, small_node: RunningNode) -> None:
    """With max_pending_calls calls pending, one more fails at once with switchboard.error.too_many_pending_calls;
    once the pending ones have timed out, the session may call again."""
    uri = f"hardening.never.{uuid.uuid4().hex[:8]}"
    async with session(reactor, small_node.url) as callee, session(reactor, small_node.url) as caller:
        invoked = await _never_answering(callee, uri)
        pending = [caller.call(uri, i) for i in range(PENDING)]
        error, _ = await _failure(reactor, caller.call(uri, "one more"), timeout=1)
        assert error == TOO_MANY_PENDING_CALLS
        for d in pending:
            assert (await _failure(reactor, d, timeout=CALL_TIMEOUT + 4))[0] == "wamp.error.canceled"
        assert len(invoked) == PENDING
        error, _ = await _failure(reactor, caller.call(uri, "again"), timeout=CALL_TIMEOUT + 4)
        assert error == "wamp.error.canceled"
        assert len(invoked) == PENDING + 1
