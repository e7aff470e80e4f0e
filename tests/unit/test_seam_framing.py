"""router.seam.framing: autobahn's protocol with the C framing behaves exactly as without it.

The oracle is autobahn itself: the same bytes, in the same random chunks, go to a server connection with
autobahn's own ``processData``/``sendFrame`` and to one with the replacements; what the application sees,
what goes back on the wire (pongs, close frames), the traffic counters and the connection's state must be
the same, with Crossbar's ``failByDrop=False`` as well as ``True`` and with both size limits.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from autobahn.websocket import protocol as ws_protocol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport

from router import wsframe
from router.seam import framing
from tests.unit.test_wsframe import HANDSHAKE, Recording, RecordingServer, encode, frame_streams


@contextmanager
def framing_installed() -> Iterator[None]:
    """The replacements installed for the block, and autobahn's own framing back after it."""
    assert not framing.installed()
    assert framing.install()
    try:
        yield
    finally:
        framing.uninstall()


class PongingServer(RecordingServer):
    """The recording server, answering pings as autobahn does (so pongs go through sendFrame)."""

    def onPing(self, payload: bytes) -> None:
        super().onPing(payload)
        WebSocketServerProtocol.onPing(self, payload)


def connection(options: dict[str, Any], cls: type[WebSocketServerProtocol] = PongingServer) -> Any:
    """An open server connection on a StringTransport, its handshake response cleared."""
    factory = WebSocketServerFactory()
    factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0, autoPingInterval=0, **options)
    factory.protocol = cls
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    transport.registerProducer(proto, True)
    proto.dataReceived(HANDSHAKE)
    transport.clear()
    return proto


class PongingClient(Recording, WebSocketClientProtocol):
    """A recording client protocol, answering pings as autobahn does."""

    def onPing(self, payload: bytes) -> None:
        super().onPing(payload)
        WebSocketClientProtocol.onPing(self, payload)


def client_connection(options: dict[str, Any]) -> Any:
    """An open client connection on a StringTransport, after a server's handshake response by hand."""
    factory = WebSocketClientFactory("ws://localhost:9000/")
    factory.setProtocolOptions(
        openHandshakeTimeout=0, closeHandshakeTimeout=0, autoPingInterval=0, serverConnectionDropTimeout=0, **options
    )
    factory.protocol = PongingClient
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    transport.registerProducer(proto, True)
    found = re.search(rb"Sec-WebSocket-Key: (\S+)", transport.value())
    assert found is not None
    accept = base64.b64encode(hashlib.sha1(found.group(1) + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())  # noqa: S324 - RFC 6455
    proto.dataReceived(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    assert proto.state == ws_protocol.WebSocketProtocol.STATE_OPEN
    transport.clear()
    return proto


def observed(data: bytes, chunks: list[int], options: dict[str, Any], client: bool = False) -> dict[str, Any]:
    """Everything observable of a server (or client) connection fed ``data`` in pieces of the given sizes;
    a client's mask keys are 0, 1, 2, ... so both runs draw the same."""
    proto = client_connection(options) if client else connection(options)
    pos = 0
    with mock.patch.object(ws_protocol.random, "getrandbits", side_effect=itertools.count()):
        for size in [*chunks, len(data)]:
            if pos >= len(data) or proto.state == ws_protocol.WebSocketProtocol.STATE_CLOSED:
                break
            proto.dataReceived(data[pos : pos + size])
            pos += size
    return {
        "events": proto.events,
        "sent": proto.transport.value(),
        "stats": vars(proto.trafficStats),
        "state": proto.state,
        "buffered": proto.data,
        "inside_message": proto.inside_message,
        "clean": (proto.wasClean, proto.wasNotCleanReason, proto.failedByMe),
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=frame_streams(),
    chunks=st.lists(st.integers(1, 64), max_size=40),
    options=st.fixed_dictionaries(
        {
            "failByDrop": st.booleans(),
            "maxFramePayloadSize": st.sampled_from([0, 3, 40, 150]),
            "maxMessagePayloadSize": st.sampled_from([0, 5, 100]),
            "utf8validateIncoming": st.booleans(),
        }
    ),
)
def test_server_connection_is_the_same_with_c_framing(data: bytes, chunks: list[int], options: dict[str, Any]) -> None:
    """Messages, pings/pongs, close frames, failures, bytes sent, counters and state match autobahn's own."""
    expected = observed(data, chunks, options)
    with framing_installed():
        assert observed(data, chunks, options) == expected


OPTIONS = st.fixed_dictionaries(
    {
        "failByDrop": st.booleans(),
        "maxFramePayloadSize": st.sampled_from([0, 3, 40, 150]),
        "maxMessagePayloadSize": st.sampled_from([0, 5, 100]),
        "utf8validateIncoming": st.booleans(),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=frame_streams(masked=False), chunks=st.lists(st.integers(1, 64), max_size=40), options=OPTIONS)
def test_client_connection_is_the_same_with_c_framing(data: bytes, chunks: list[int], options: dict[str, Any]) -> None:
    """A client's side (unmasked frames from the server, masked replies) matches autobahn's own as well."""
    expected = observed(data, chunks, options, client=True)
    with framing_installed():
        assert observed(data, chunks, options, client=True) == expected


@given(payload=st.binary(max_size=300) | st.just(b"x" * 70000), binary=st.booleans(), key=st.integers(0, 2**32 - 1))
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_messages_sent_are_the_same_bytes(payload: bytes, binary: bool, key: int) -> None:
    """sendMessage writes the same frames with the replacement, unmasked and masked (autobahn's random key)."""

    def sent(mask_frames: bool) -> bytes:
        proto = connection({"maskServerFrames": mask_frames})
        with mock.patch.object(ws_protocol.random, "getrandbits", return_value=key):
            proto.sendMessage(payload, binary)
            proto.sendPing(b"p")
        value: bytes = proto.transport.value()
        return value

    expected = [sent(False), sent(True)]
    with framing_installed():
        assert [sent(False), sent(True)] == expected


def test_messages_are_delivered_by_the_fast_path() -> None:
    """A buffer of whole messages of each length encoding is delivered in one processData call, without
    autobahn's (three per frame)."""
    proto = connection({})
    big, medium = bytes(65536), b"m" * 300  # 64-bit and 16-bit lengths
    data = encode(1, b"one") + encode(2, big) + encode(2, medium) + encode(1, b"drei")
    with framing_installed():
        autobahns = mock.Mock(wraps=framing._original["processData"])
        with mock.patch.dict(framing._original, processData=autobahns):
            proto.dataReceived(data)
    assert proto.events == [
        ("message", b"one", False),
        ("message", big, True),
        ("message", medium, True),
        ("message", b"drei", False),
    ]
    assert autobahns.call_count == 0
    assert proto.data == b""


class StreamingServer(PongingServer):
    """A protocol that reads messages frame by frame (overrides one of autobahn's message hooks)."""

    def onMessageFrameData(self, payload: bytes) -> None:
        self.events.append(("frame data", payload))
        super().onMessageFrameData(payload)


def test_classes_with_their_own_message_hooks_keep_autobahns_path() -> None:
    """A protocol overriding a message hook gets its hook called, as without the replacement."""
    proto = connection({}, StreamingServer)
    with framing_installed():
        proto.dataReceived(encode(2, b"abc"))
    assert proto.events == [("frame data", b"abc"), ("message", b"abc", True)]


@pytest.mark.parametrize("variable", ["SWITCHBOARD_WSFRAME", "SWITCHBOARD_SPEEDUPS"])
def test_switches_leave_autobahns_framing(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """SWITCHBOARD_WSFRAME=0 or SWITCHBOARD_SPEEDUPS=0: nothing installed."""
    monkeypatch.setenv(variable, "0")
    processData = ws_protocol.WebSocketProtocol.processData
    assert framing.install() is False
    assert not framing.installed()
    assert ws_protocol.WebSocketProtocol.processData is processData


def test_not_installed_without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the Python reference only (no compiler at install), autobahn's framing stays."""
    monkeypatch.setattr(wsframe, "IMPLEMENTATION", "python")
    assert framing.install() is False
    assert not framing.installed()


def test_uninstall_restores_autobahn() -> None:
    """install replaces processData and sendFrame; uninstall puts autobahn's back."""
    cls = ws_protocol.WebSocketProtocol
    before = (cls.processData, cls.sendFrame)
    with framing_installed():
        assert (cls.processData, cls.sendFrame) == (framing._process_data, framing._send_frame)
    assert (cls.processData, cls.sendFrame) == before


@pytest.mark.parametrize(
    ("protocol", "factory"),
    [(WebSocketServerProtocol, "WebSocketServerFactory"), (WebSocketClientProtocol, "WebSocketClientFactory")],
)
def test_options_read_are_copied_from_the_factory(protocol: type, factory: str) -> None:
    """Every factory option the replacement reads on a protocol is one autobahn copies onto it."""
    copied = set(protocol.CONFIG_ATTRS)  # type: ignore[attr-defined]
    assert set(framing.COPIED_OPTIONS[factory]) <= copied


def test_frame_size_is_the_encoded_size() -> None:
    """The bytes a parsed frame took: the shortest length encoding, the mask key, the payload."""
    for length in (0, 125, 126, 65535, 65536):
        for key in (None, b"abcd"):
            assert framing._frame_size(length, key is not None) == len(encode(2, b"x" * length, key=key))


def test_message_listeners_are_fired() -> None:
    """A listener of the protocol's "message" event gets each message, as with autobahn's own path."""
    proto = connection({})
    heard: list[tuple[bytes, bool]] = []
    proto.on("message", lambda payload, is_binary: heard.append((payload, is_binary)))
    with framing_installed():
        proto.dataReceived(encode(1, b"one") + encode(2, b"two"))
    assert heard == [(b"one", False), (b"two", True)]
    assert proto.events == [("message", b"one", False), ("message", b"two", True)]
