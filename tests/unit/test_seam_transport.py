"""router.seam.transport without sockets: the connection table, the refusal log, the guard's deadline and
send-buffer bound (task.Clock, a file descriptor that never sends), and the canary for private names."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from autobahn.twisted.rawsocket import WampRawSocketServerProtocol
from autobahn.websocket.protocol import WebSocketServerProtocol
from twisted.internet import abstract, task
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock

from router.config import Limits
from router.peers import networks
from router.seam import exists, split_module, transport
from router.seam.transport import ConnectionTable, Guard, GuardFactory, GuardPolicy, RefusalLog

LIMITS = Limits(
    max_nesting=64,
    max_connections=10,
    max_connections_per_peer=2,
    http_timeout=3,
    max_send_buffer=1000,
    max_pending_calls=4,
    call_timeout=60,
    authorization_cache=100,
)


def resolve(dotted: str) -> bool:
    """Whether the full dotted name exists in the installed libraries (the shared canary's rule)."""
    return exists(*split_module(dotted))


@pytest.mark.parametrize("name", transport.RELIED_ON)
def test_every_private_name_relied_on_exists(name: str) -> None:
    """Each Crossbar/autobahn/Twisted name the module relies on exists in the installed versions."""
    assert resolve(name), f"{name} is gone: re-verify router.seam.transport against the new version"


def test_the_canary_notices_a_missing_name() -> None:
    """The canary's resolver says no for names that do not exist (it can fail)."""
    assert not resolve("twisted.internet.abstract.FileDescriptor._noSuchBuffer")
    assert not resolve("crossbar.worker.transport.no_such_function")


def test_connection_table_caps_total_and_per_address() -> None:
    """Admissions follow a hand-written table: per-address and total caps, uncounted (proxy) connections,
    claims for a named address, and releases that free room again."""
    table = ConnectionTable(max_total=4, max_per_address=2)
    steps = [
        (table.admit, "a", None),
        (table.admit, "a", None),
        (table.admit, "a", "max_connections_per_peer"),
        (table.admit, None, None),
        (table.admit, "b", None),
        (table.admit, "c", "max_connections"),
    ]
    for step, address, expected in steps:
        assert step(address) == expected
    assert (table.total, table.count("a"), table.count("b")) == (4, 2, 1)
    assert table.claim("b") is True  # the proxied connection is now counted for "b"
    assert table.claim("b") is False
    table.release("a")
    assert (table.total, table.count("a")) == (3, 1)
    assert table.admit("a") is None
    for address in ("a", "a", "b", "b"):
        table.release(address)
    assert (table.total, table.count("a"), table.count("b")) == (0, 0, 0)


def test_refusal_log_logs_once_then_counts_per_interval() -> None:
    """The first refusal is logged at once; later ones are summed into one line per interval; a quiet
    interval logs nothing and the next refusal is logged at once again."""
    clock = task.Clock()
    lines: list[dict[str, Any]] = []
    log = RefusalLog(clock, emit=lambda _format, **kw: lines.append(kw))
    log.count("max_connections_per_peer", "10.0.0.1")
    assert [line["total"] for line in lines] == [1]
    for _ in range(500):
        log.count("http_timeout", "10.0.0.2")
    log.count("max_connections_per_peer", "10.0.0.3")
    assert len(lines) == 1
    clock.advance(RefusalLog.INTERVAL)
    assert len(lines) == 2
    assert lines[1]["total"] == 501
    assert lines[1]["reasons"] == "http_timeout x500, max_connections_per_peer x1"
    assert lines[1]["address"] == "10.0.0.3"
    clock.advance(RefusalLog.INTERVAL * 3)
    assert len(lines) == 2
    log.count("http_timeout", "10.0.0.4")
    assert len(lines) == 3


class _StuckDescriptor(abstract.FileDescriptor):
    """A connected file descriptor whose kernel never takes a byte."""

    def __init__(self) -> None:
        super().__init__(reactor=MemoryReactorClock())
        self.connected = 1
        self.aborted = False

    def writeSomeData(self, data: bytes) -> int:
        return 0

    def abortConnection(self) -> None:
        self.aborted = True

    def getPeer(self) -> IPv4Address:
        return IPv4Address("TCP", "10.0.0.1", 1234)

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 8080)


class _FastDescriptor(_StuckDescriptor):
    """A connected file descriptor whose kernel takes every byte as soon as it is offered."""

    def writeSomeData(self, data: bytes) -> int:
        self.sent = getattr(self, "sent", 0) + len(data)
        return len(data)


def _guard(protocol: Any, descriptor: Any = None) -> tuple[Any, Any, Any]:
    clock = task.Clock()
    policy = GuardPolicy(LIMITS, (), clock)
    factory = GuardFactory(Factory.forProtocol(lambda: protocol), policy)
    guard = factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", 1234))
    descriptor = descriptor or _StuckDescriptor()
    guard.makeConnection(descriptor)
    return guard, descriptor, clock


def test_guard_aborts_a_connection_holding_more_than_max_send_buffer() -> None:
    """Writes up to max_send_buffer unsent bytes are kept; the write that goes beyond aborts the connection,
    and nothing more is buffered after it."""
    guard, descriptor, _ = _guard(Protocol())
    guard.write(b"x" * 600)
    guard.writeSequence([b"y" * 400])
    assert (transport.unsent_bytes(descriptor), descriptor.aborted) == (1000, False)
    guard.write(b"z")
    assert descriptor.aborted
    guard.write(b"w" * 5000)
    assert transport.unsent_bytes(descriptor) == 1001


# Protocols frozen in a state (makeConnection stubbed: the real one would reset the handshake state).


def test_guard_keeps_a_client_that_reads_fast_through_a_burst() -> None:
    """A burst beyond max_send_buffer within one reactor turn does not close a connection whose kernel takes
    the bytes: they are handed over, and nothing stays buffered."""
    guard, descriptor, _ = _guard(Protocol(), _FastDescriptor())
    for _ in range(10):
        guard.write(b"x" * 600)
    assert (descriptor.aborted, descriptor.sent, transport.unsent_bytes(descriptor)) == (False, 6000, 0)


def _open_websocket() -> WebSocketServerProtocol:
    protocol = WebSocketServerProtocol()
    protocol.makeConnection = lambda transport: None  # type: ignore[method-assign]
    protocol.state = WebSocketServerProtocol.STATE_OPEN
    return protocol


def _open_rawsocket() -> WampRawSocketServerProtocol:
    protocol = WampRawSocketServerProtocol()
    protocol.makeConnection = lambda transport: None  # type: ignore[method-assign]
    protocol._handshake_complete = True
    return protocol


def _connecting_websocket() -> WebSocketServerProtocol:
    protocol = WebSocketServerProtocol()
    protocol.makeConnection = lambda transport: None  # type: ignore[method-assign]
    protocol.state = WebSocketServerProtocol.STATE_CONNECTING
    return protocol


@pytest.mark.parametrize(
    ("make", "aborted"),
    [
        pytest.param(Protocol, True, id="still-http"),
        pytest.param(_connecting_websocket, True, id="websocket-connecting"),
        pytest.param(_open_websocket, False, id="websocket-open"),
        pytest.param(_open_rawsocket, False, id="rawsocket-after-handshake"),
    ],
)
def test_guard_closes_connections_not_open_at_http_timeout(make: Any, aborted: bool) -> None:
    """At http_timeout a connection is aborted unless it is a WebSocket/RawSocket past its handshake."""
    _, descriptor, clock = _guard(make())
    clock.advance(LIMITS.http_timeout - 0.1)
    assert descriptor.aborted is False
    clock.advance(0.1)
    assert descriptor.aborted is aborted


def test_factory_refuses_beyond_the_per_address_cap_but_not_for_a_trusted_proxy() -> None:
    """Connections over max_connections_per_peer from one address get a refused protocol; from a trusted
    proxy only the total cap applies; a closed connection frees its place."""
    policy = GuardPolicy(LIMITS, networks(["10.0.0.9"]), task.Clock())
    factory = GuardFactory(Factory.forProtocol(Protocol), policy)
    client = IPv4Address("TCP", "10.0.0.1", 1)
    built = [factory.buildProtocol(client) for _ in range(3)]
    assert [isinstance(p, Guard) for p in built] == [True, True, False]
    proxy = [factory.buildProtocol(IPv4Address("TCP", "10.0.0.9", 1)) for _ in range(9)]
    assert [isinstance(p, Guard) for p in proxy] == [True] * 8 + [False]  # total 10
    built[0].makeConnection(_StuckDescriptor())
    built[0].connectionLost(None)
    assert isinstance(factory.buildProtocol(client), Guard)


def test_total_cap_stays_below_the_file_descriptor_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The total cap is max_connections or RLIMIT_NOFILE minus the margin, whichever is lower."""
    monkeypatch.setattr(transport.resource, "getrlimit", lambda _which: (1024, 4096))
    assert transport._max_total(replace(LIMITS, max_connections=10000)) == 1024 - transport.FD_MARGIN
    assert transport._max_total(replace(LIMITS, max_connections=100)) == 100
