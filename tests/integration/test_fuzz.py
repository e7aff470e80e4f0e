"""
The generated-message fuzz run (issue 9, "A reliability suite"): about 4,000 Hypothesis-generated WAMP
messages and raw frames against one real node, with a canary session calling ``sys.info`` throughout.

Each Hypothesis example is a :class:`tests.integration.wamp_strategies.Case`: a serializer (json, msgpack or
cbor), before HELLO or after an anonymous join on realm ``demo``, and a batch of generated messages of every
WAMP type (and bogus ones), deeply nested messages and raw frames (bad UTF-8, truncated, lying lengths,
reserved bits, bogus opcodes). The items are sent one by one over a raw WebSocket connection, each followed
by a ping: the pong — or the router closing the connection — proves the router has dealt with the item
(it handles a connection's frames in order). When the router closes the connection, the next item goes
on a new one, joined again if the case says so.

The oracle, per example (so Hypothesis shrinks to the smallest case that breaks it) and for the run: the
node process and its router worker stay alive (same PID), the router answers each ping or closes the
connection in time, and every call of the canary succeeds within :data:`CANARY_BOUND`; at the end a fresh
session still joins and gets ``sys.info``, and the node log holds no Python traceback (the report names
the cases sent just before each kind of traceback).

Bounded in time: Hypothesis runs at most :data:`MAX_EXAMPLES` examples, derandomized (the same ones in
every run), and once :data:`BUDGET` seconds have passed the remaining examples send nothing. It generates
in a thread, so the reactor that runs the canary and the cases is never blocked by generation.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import os
import reprlib
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cbor2
import msgpack
import pytest
import pytest_twisted
from hypothesis import HealthCheck, Phase, given, settings
from twisted.internet import defer, protocol, task, threads
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.python.failure import Failure

from components import uris
from router.launch import RunningNode
from router.testkit import session, start_node, wait
from tests.conftest import demo_document, running, write_config
from tests.integration import wamp_strategies as ws
from tests.integration.processes import alive, children, router_worker

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 600  # cases of ~7 items on average: ~4,200 messages
MIN_MESSAGES = 1_000  # a run that sent fewer did not test much: fail rather than pass quietly
BUDGET = 50.0  # seconds of fuzzing (about 15 s needed on an idle 2-core machine); later examples send nothing
CANARY_PERIOD = 0.05
CANARY_TIMEOUT = 5.0
CANARY_BOUND = 2.0
SYNC_TIMEOUT = 5.0  # for a pong, a WELCOME or the close
JOIN_HELLO = [
    1,
    "demo",
    {"roles": {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}, "authmethods": ["anonymous"]},
]
NUMPY_ABI_NOTICE = "compiled using NumPy 1.x cannot be run in"


@pytest.fixture(scope="module")
def fuzz_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A node of its own on the demo config, so generated URIs and ids touch no other test. Its login
    throttle never delays or refuses (the generated HELLOs fail thousands of logins from 127.0.0.1; the
    throttle has its own tests), everything else is the demo's."""
    doc = demo_document()
    doc["throttle"] = {"per_authid": 1_000_000, "per_peer": 1_000_000, "delay_after": 1_000_000}
    tmp = tmp_path_factory.mktemp("fuzz-node")
    with running(start_node(reactor, write_config(tmp, doc), tmp / "data")) as node:
        yield node


# -- a WebSocket client that sends anything ---------------------------------------------------------------


class RawWebSocket(protocol.Protocol):
    """A WebSocket client that writes whatever bytes it is given, and reads the router's frames."""

    transport: Any

    def __init__(self, host: str, port: int, path: str, subprotocol: str) -> None:
        self._key = base64.b64encode(os.urandom(16)).decode()
        self._request = (
            f"GET /{path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self._key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
        ).encode()
        self._buffer = b""
        self._fragments: list[bytes] = []
        self.open: defer.Deferred[None] = defer.Deferred()
        self.lost: defer.Deferred[None] = defer.Deferred()
        # ("message", payload) for a WAMP message, ("pong", payload) for a pong, None once the connection is lost
        self.received: defer.DeferredQueue[tuple[str, bytes] | None] = defer.DeferredQueue()
        self.upgraded = False
        self.closed = False
        self.close_code: int | None = None

    def connectionMade(self) -> None:
        self.transport.write(self._request)

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        if not self.upgraded:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            accept = base64.b64encode(
                hashlib.sha1((self._key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()  # noqa: S324
            )
            if not head.startswith(b"HTTP/1.1 101") or accept not in head:
                self.open.errback(RuntimeError(f"handshake refused: {head[:200]!r}"))
                self.transport.loseConnection()
                return
            self.upgraded, self._buffer = True, rest
            self.open.callback(None)
        self._parse_frames()

    def _parse_frames(self) -> None:
        while len(self._buffer) >= 2:
            b0, b1 = self._buffer[0], self._buffer[1]
            length, offset = b1 & 0x7F, 2
            if length == 126:
                if len(self._buffer) < 4:
                    return
                length, offset = int.from_bytes(self._buffer[2:4], "big"), 4
            elif length == 127:
                if len(self._buffer) < 10:
                    return
                length, offset = int.from_bytes(self._buffer[2:10], "big"), 10
            if b1 & 0x80:
                offset += 4  # a masked server frame is the router's bug; unmasking is not our job here
            if len(self._buffer) < offset + length:
                return
            payload, self._buffer = self._buffer[offset : offset + length], self._buffer[offset + length :]
            self._frame(b0 & 0x0F, bool(b0 & 0x80), payload)

    def _frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode == ws.CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            self.closed = True
            with contextlib.suppress(Exception):
                self.transport.write(ws.frame(ws.CLOSE, payload[:2]))
            self.transport.loseConnection()
        elif opcode == ws.PING:
            self.transport.write(ws.frame(ws.PONG, payload))
        elif opcode == ws.PONG:
            self.received.put(("pong", payload))
        elif opcode in (ws.TEXT, ws.BINARY, ws.CONTINUATION):
            self._fragments.append(payload)
            if fin:
                self.received.put(("message", b"".join(self._fragments)))
                self._fragments = []

    def send(self, data: bytes) -> None:
        """Write ``data`` as is (once the connection is upgraded)."""
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.closed = True
        if not self.open.called:
            self.open.errback(RuntimeError("connection lost during the handshake"))
        self.received.put(None)
        self.lost.callback(None)


def decode(serializer: str, payload: bytes) -> Any:
    """A WAMP message from the router, or None if it cannot be decoded."""
    try:
        if serializer == "json":
            return json.loads(payload)
        if serializer == "msgpack":
            return msgpack.unpackb(payload, strict_map_key=False)
        return cbor2.loads(payload)
    except Exception:
        return None


async def next_received(proto: RawWebSocket, reactor: Any, deadline: float) -> tuple[str, bytes] | None:
    """The next WAMP message or pong from the router; None once the connection is lost. Raises
    ``defer.TimeoutError`` at ``deadline`` (reactor time)."""
    received: tuple[str, bytes] | None = await wait(
        proto.received.get(), reactor, max(0.01, deadline - reactor.seconds())
    )
    return received


@dataclass
class Outcome:
    """What happened to one case's messages."""

    processed: int = 0  # answered by the router, or the connection closed by it, after the message
    connections: int = 0
    endings: dict[str, int] = field(default_factory=dict)  # "answered", "closed", "abandoned"
    problem: str | None = None  # the router neither answered nor closed, or refused a fresh connection

    def end(self, ending: str) -> None:
        self.endings[ending] = self.endings.get(ending, 0) + 1


class Connection:
    """One raw connection of a case; reopened (and rejoined) after the router closes it."""

    def __init__(self, reactor: Any, node: RunningNode, case: ws.Case) -> None:
        self._reactor = reactor
        self._node = node
        self._case = case
        self._pings = 0
        self.proto: RawWebSocket | None = None

    async def open(self, outcome: Outcome) -> bool:
        """A fresh connection, joined if the case says so; False (and ``outcome.problem``) if refused."""
        transport = self._node.config.main_transport
        host, port = "127.0.0.1", transport.port
        proto = RawWebSocket(host, port, transport.path, f"wamp.2.{self._case.serializer}")
        factory: Any = protocol.Factory.forProtocol(lambda: proto)
        await wait(TCP4ClientEndpoint(self._reactor, host, port).connect(factory), self._reactor)
        self.proto = proto
        outcome.connections += 1
        try:
            await wait(proto.open, self._reactor, SYNC_TIMEOUT)
        except Exception as e:
            outcome.problem = f"WebSocket handshake failed: {e}"
            return False
        if self._case.join:
            proto.send(ws.render(self._case.serializer, ws.Message(JOIN_HELLO))[0])
            deadline = self._reactor.seconds() + SYNC_TIMEOUT
            welcome: Any = "no answer"
            with contextlib.suppress(defer.TimeoutError):
                while (received := await next_received(proto, self._reactor, deadline)) is not None:
                    if received[0] == "message":
                        welcome = decode(self._case.serializer, received[1])
                        break
            if not (isinstance(welcome, list) and welcome[:1] == [2]):
                outcome.problem = f"anonymous join on demo refused: {welcome!r}"
                return False
        return True

    async def close(self) -> None:
        """Drop the connection (bounded)."""
        proto, self.proto = self.proto, None
        if proto is not None:
            if proto.transport is not None:
                proto.transport.abortConnection()
            await wait(proto.lost, self._reactor)

    async def sync(self) -> str:
        """Ping and wait for the pong or the connection's end: "answered", "closed" or "timeout". The router
        handles a connection's frames in order, so the pong comes after it has dealt with every message
        sent before. (A CALL would not do: Crossbar ignores all but HELLO before a session is joined.)"""
        proto = self.proto
        assert proto is not None
        self._pings += 1
        token = b"sync %d" % self._pings
        proto.send(ws.frame(ws.PING, token))
        deadline = self._reactor.seconds() + SYNC_TIMEOUT
        while True:
            try:
                received = await next_received(proto, self._reactor, deadline)
            except defer.TimeoutError:
                return "timeout"
            if received is None:
                return "closed"
            if received == ("pong", token):
                return "answered"


async def run_case(reactor: Any, node: RunningNode, case: ws.Case) -> Outcome:
    """Send the case's items one by one, each followed by a sync; reconnect when the router closes."""
    outcome = Outcome()
    connection = Connection(reactor, node, case)
    try:
        for item in case.items:
            if connection.proto is None and not await connection.open(outcome):
                return outcome
            assert connection.proto is not None
            data, abandon = ws.render(case.serializer, item)
            connection.proto.send(data)
            if abandon:
                outcome.end("abandoned")
                await connection.close()
                continue
            ending = await connection.sync()
            if ending == "timeout":
                outcome.problem = f"the router neither answered nor closed the connection after {_SHORT.repr(item)}"
                return outcome
            outcome.processed += 1
            outcome.end(ending)
            if ending == "closed":
                await connection.close()
        return outcome
    finally:
        await connection.close()


# -- the canary -------------------------------------------------------------------------------------------


@dataclass
class Canary:
    """An anonymous autobahn session calling sys.info every CANARY_PERIOD s; each call bounded."""

    reactor: Any
    samples: list[tuple[float, float]] = field(default_factory=list)  # (end, latency), monotonic seconds
    failures: list[tuple[float, str]] = field(default_factory=list)
    stopping: bool = False

    async def run(self, url: str) -> None:
        """Call until :attr:`stopping`; a lost session ends the run (recorded as a failure)."""
        try:
            async with session(self.reactor, url) as s:
                while not self.stopping:
                    start = time.monotonic()
                    try:
                        await wait(s.call(uris.SYS_INFO), self.reactor, CANARY_TIMEOUT)
                    except Exception as e:
                        self.failures.append((time.monotonic(), f"{type(e).__name__}: {e}"))
                        if not s.is_attached():
                            return
                    else:
                        end = time.monotonic()
                        self.samples.append((end, end - start))
                    await task.deferLater(self.reactor, CANARY_PERIOD, lambda: None)
        except Exception as e:
            self.failures.append((time.monotonic(), f"canary session: {type(e).__name__}: {e}"))

    def trouble_since(self, since: float) -> list[str]:
        """Failures and over-bound latencies seen after ``since``."""
        slow = [f"sys.info took {lat:.3f} s" for end, lat in self.samples if end >= since and lat > CANARY_BOUND]
        return slow + [f"sys.info failed: {why}" for when, why in self.failures if when >= since]


# -- the node's health ------------------------------------------------------------------------------------


def node_worker(node: RunningNode) -> int:
    """The PID of the node's router worker."""
    return router_worker(children(node.process.pid or 0))


@dataclass(frozen=True)
class Traceback:
    """A Python traceback in the node log: where it starts (byte offset) and its text."""

    offset: int
    text: str

    @property
    def signature(self) -> str:
        """What it is about: its innermost frame and its exception line."""
        lines = self.text.splitlines()
        frames = [line.strip() for line in lines if line.lstrip().startswith("File ")]
        return f"{frames[-1] if frames else '?'} -> {lines[-1].strip()}"


def tracebacks(log: bytes) -> list[Traceback]:
    """Every Python traceback in a node log, except NumPy's ABI notice that importing bjdata prints in
    every process (harmless: see CROSSBAR_NOTES). A traceback is its ``Traceback`` line, the indented
    frame lines under it and the exception line that ends it."""
    found = []
    lines = log.decode("utf-8", "replace").splitlines(keepends=True)
    offsets = list(itertools.accumulate((len(line.encode("utf-8", "replace")) for line in lines), initial=0))
    i = 0
    while i < len(lines):
        if "Traceback (most recent call last)" not in lines[i]:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].startswith((" ", "\t")):
            end += 1
        end = min(end + 1, len(lines))  # the exception line
        text = "".join(lines[i:end])
        before = "".join(lines[max(0, i - 8) : i])
        if not (NUMPY_ABI_NOTICE in before + text and "bjdata" in before + text):
            found.append(Traceback(offsets[i], text))
        i = end
    return found


# -- the run ----------------------------------------------------------------------------------------------


@dataclass
class Run:
    """What the fuzz run did, for the report and the final asserts."""

    started: float
    examples: int = 0
    messages: int = 0
    connections: int = 0
    endings: dict[str, int] = field(default_factory=dict)
    cases: list[tuple[int, ws.Case]] = field(default_factory=list)  # (log size before, case)
    first_failure: str | None = None


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# Hypothesis generates in a thread (so it never blocks the reactor) and notices the reactor's own use of the
# global `random` (autobahn's session ids) as if a strategy had used it: none of ours does. A failing case
# with a long URI has a long repr: the report is still wanted.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@pytest_twisted.ensureDeferred
async def test_router_survives_generated_messages(reactor: Any, fuzz_node: RunningNode, record_property: Any) -> None:
    """About 4,000 generated WAMP messages and raw frames of every kind, before HELLO and after an anonymous
    join, in json, msgpack and cbor: the router process and its worker survive, every message is answered
    or its connection closed in time, a canary session's sys.info calls all succeed within CANARY_BOUND
    throughout, a fresh session joins at the end, and the node log holds no traceback."""
    node = fuzz_node
    worker = node_worker(node)
    log_path = node.process.log_path
    canary = Canary(reactor)
    canary_done = defer.ensureDeferred(canary.run(node.url))
    await _until_canary_sampled(reactor, canary, canary_done)
    run = Run(started=time.monotonic())

    def send(case: ws.Case) -> Outcome:
        # Called from Hypothesis' thread: the case runs in the reactor, which generation never blocks.
        call: Any = threads.blockingCallFromThread
        result: Outcome = call(reactor, lambda: defer.ensureDeferred(run_case(reactor, node, case)))
        return result

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=ws.cases())
    def fuzz(case: ws.Case) -> None:
        if run.first_failure is None and time.monotonic() - run.started > BUDGET:
            return  # out of time: the remaining examples send nothing
        before = time.monotonic()
        run.cases.append((log_path.stat().st_size, case))
        problems = []
        try:
            outcome = send(case)
        except Exception as e:  # e.g. the connection refused: the liveness checks below say why
            outcome = Outcome(problem=f"sending failed: {e!r}")
        run.examples += 1
        run.messages += outcome.processed
        run.connections += outcome.connections
        for ending, count in outcome.endings.items():
            run.endings[ending] = run.endings.get(ending, 0) + count
        if node.process.exit_code is not None:
            problems.append(f"the node exited with code {node.process.exit_code}")
        elif not alive(worker):
            problems.append(f"the router worker {worker} died")
        if outcome.problem is not None:
            problems.append(outcome.problem)
        problems += canary.trouble_since(before)
        if problems and run.first_failure is None:
            run.first_failure = f"{problems} in {short(case)}"
        assert not problems, f"{problems}; first failure: {run.first_failure}"

    try:
        await threads.deferToThread(fuzz)
    finally:
        canary.stopping = True
        await wait(canary_done, reactor, CANARY_TIMEOUT + 5)

    latencies = [lat for _, lat in canary.samples]
    assert latencies, canary.failures[:5]
    figures = {
        "examples": run.examples,
        "messages": run.messages,
        "connections": run.connections,
        "seconds": round(time.monotonic() - run.started, 1),
        "endings": run.endings,
        "canary_calls": len(latencies),
        "canary_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "canary_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "canary_max_ms": round(max(latencies) * 1000, 1),
        "canary_failures": len(canary.failures),
    }
    for key, value in figures.items():
        record_property(f"fuzz_{key}", value)
    sys.stdout.write(f"\nfuzz run: {json.dumps(figures)}\n")

    assert canary.failures == [], canary.failures[:5]
    assert max(latencies) < CANARY_BOUND, figures
    assert run.messages >= MIN_MESSAGES, figures
    assert node.process.exit_code is None
    assert alive(worker), f"router worker {worker} is gone"
    assert node_worker(node) == worker

    async with session(reactor, node.url) as s:
        info = await s.call(uris.SYS_INFO)
    assert (info["realm"], info["authrole"]) == ("demo", "anonymous")

    found = tracebacks(log_path.read_bytes())
    assert found == [], _attribute(found, run)


async def _until_canary_sampled(reactor: Any, canary: Canary, done: defer.Deferred[None]) -> None:
    """Wait (bounded) until the canary has joined and made its first call."""
    for _ in range(200):
        if canary.samples or canary.failures or done.called:
            break
        await task.deferLater(reactor, 0.05, lambda: None)
    assert canary.samples, f"the canary never got an answer: {canary.failures}"


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 120
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 12
_SHORT.maxlevel = 8


def short(case: ws.Case) -> str:
    """``case`` for a report: long strings and deep values cut."""
    items = ", ".join(_SHORT.repr(item) for item in case.items)
    return f"Case(serializer={case.serializer!r}, join={case.join}, items=({items}))"


def _attribute(found: list[Traceback], run: Run) -> str:
    """Each kind of traceback once, with the cases sent just before it first appeared (the log lags a
    little behind the router, so the culprit is one of the last two or three)."""
    kinds: dict[str, Traceback] = {}
    for tb in found:
        kinds.setdefault(tb.signature, tb)
    report = [f"{len(found)} traceback(s) in the node log, {len(kinds)} kind(s):"]
    for signature, tb in list(kinds.items())[:6]:
        suspects = [case for size, case in run.cases if size <= tb.offset][-3:]
        report += [f"\n== {signature}\n{tb.text}-- sent just before it (last is likeliest):"]
        report += [short(case) for case in suspects]
    return "\n".join(report)


def _depth(value: Any) -> int:
    """Nesting depth of arrays and maps, iteratively (the fuzz's own oracle for :class:`ws.Deep`)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, list | dict):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


@pytest.mark.parametrize("serializer", ws.SERIALIZERS)
@pytest.mark.parametrize(("container", "where"), [("list", "args"), ("dict", "kwargs"), ("dict", "options")])
def test_deep_messages_are_as_deep_as_they_say(serializer: str, container: str, where: str) -> None:
    """A generated deep CALL is one masked final frame of the serializer's opcode, and decodes (with the
    plain libraries) to a CALL whose options, args or kwargs is nested exactly ``depth`` levels."""
    data, abandon = ws.render(serializer, ws.Deep(depth=50, container=container, where=where))
    assert not abandon
    assert data[0] == 0x80 | (ws.TEXT if serializer == "json" else ws.BINARY)
    assert data[1] & 0x80  # masked
    length, offset = data[1] & 0x7F, 2
    if length == 126:
        length, offset = int.from_bytes(data[2:4], "big"), 4
    mask, body = data[offset : offset + 4], data[offset + 4 :]
    assert len(body) == length
    message = decode(serializer, bytes(b ^ mask[i % 4] for i, b in enumerate(body)))
    assert message[:2] == [48, 1]
    value = message[{"options": 2, "args": 4, "kwargs": 5}[where]]
    assert isinstance(value, list if container == "list" else dict)
    assert _depth(value) == 50
    assert _depth(message) == 51
