"""WebSocket framing (router.wsframe, router._wsframe): the C extension, the Python reference and autobahn agree.

Three oracles: a table of frames and the error autobahn reports for each, written by hand; the two
implementations held against each other on arbitrary bytes; and a real autobahn ``WebSocketServerProtocol``
(and ``sendFrame``) fed the same bytes in random chunks, whose messages, pings, pongs, close frames and
connection failures must be what a small reassembler over :func:`parse_frames` sees.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket import protocol as ws_protocol
from autobahn.websocket.utf8validator import Utf8Validator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport

from router import _wsframe, wsframe

PARSERS = {"python": wsframe.parse_frames_py, "c": _wsframe.parse_frames}
BUILDERS = {"python": wsframe.build_frame_py, "c": _wsframe.build_frame}
ALLOWED_CLOSE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013}
MASK = b"\x11\x22\x33\x44"
HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def masked(data: bytes, key: bytes) -> bytes:
    """XOR with the repeated key, the simplest way (the test's own masker)."""
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def encode(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    key: bytes | None = MASK,
    length_bytes: int | None = None,
    length: int | None = None,
) -> bytes:
    """A frame written out field by field; ``length_bytes`` 0/2/8 forces an encoding, ``length`` a value."""
    n = len(payload) if length is None else length
    if length_bytes is None:
        length_bytes = 0 if n <= 125 else 2 if n <= 0xFFFF else 8
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    mask_bit = 0x80 if key is not None else 0
    if length_bytes == 0:
        header = bytes((b0, mask_bit | n))
    elif length_bytes == 2:
        header = bytes((b0, mask_bit | 126)) + struct.pack("!H", n)
    else:
        header = bytes((b0, mask_bit | 127)) + struct.pack("!Q", n)
    if key is None:
        return header + payload
    return header + key + masked(payload, key)


# -- the hand-written table ------------------------------------------------------------------------------

P = 1002
ERRORS: list[tuple[str, bytes, bool, int, tuple[int, str]]] = [
    ("rsv bits", encode(1, b"x", rsv=4), True, 0, (P, "RSV = 4 and no extension negotiated")),
    ("unmasked from a client", encode(1, b"x", key=None), True, 0, (P, "unmasked client-to-server frame")),
    ("masked from a server", encode(1, b"x"), False, 0, (P, "masked server-to-client frame")),
    ("fragmented ping", encode(9, b"", fin=False), True, 0, (P, "fragmented control frame")),
    ("long ping", encode(9, b"p" * 126), True, 0, (P, "control frame with payload length > 125 octets")),
    ("opcode 11", encode(11, b""), True, 0, (P, "control frame using reserved opcode 11")),
    ("close of 1 byte", encode(8, b"\x03"), True, 0, (P, "received close control frame with payload len 1")),
    ("opcode 3", encode(3, b""), True, 0, (P, "data frame using reserved opcode 3")),
    (
        "stray continuation",
        encode(0, b"x"),
        True,
        0,
        (P, "received continuation data frame outside fragmented message"),
    ),
    (
        "16-bit length of 125",
        encode(2, b"x" * 125, length_bytes=2),
        True,
        0,
        (P, "invalid data frame length (not using minimal length encoding)"),
    ),
    (
        "64-bit length of 65535",
        encode(2, b"x" * 65535, length_bytes=8),
        True,
        0,
        (P, "invalid data frame length (not using minimal length encoding)"),
    ),
    ("64-bit length, top bit", encode(2, b"", length=2**63), True, 0, (P, "invalid data frame length (>2^63)")),
    (
        "frame above the limit, header only",
        encode(2, b"", length=1000),
        True,
        999,
        (1009, "received WebSocket frame size 1000 exceeds payload limit of 999 octets"),
    ),
]


@pytest.mark.parametrize("impl", PARSERS)
@pytest.mark.parametrize(("data", "expect_mask", "limit", "error"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_protocol_errors_are_autobahns(
    impl: str, data: bytes, expect_mask: bool, limit: int, error: tuple[int, str]
) -> None:
    """Each violation gives autobahn's close code and reason, after the good frames before it."""
    good = encode(9, b"ping", key=MASK if expect_mask else None)
    frames, consumed, found = PARSERS[impl](good + data, limit, expect_mask)
    assert (frames, consumed, found) == ([(True, 0, 9, expect_mask, b"ping")], len(good), error)


@pytest.mark.parametrize("impl", PARSERS)
def test_limit_is_for_data_frames_and_zero_is_none(impl: str) -> None:
    """A ping of 100 bytes passes a 10-byte frame limit, a 100-byte text frame passes a limit of 0 or 100."""
    ping, text = encode(9, b"p" * 100), encode(1, b"t" * 100)
    parse = PARSERS[impl]
    assert parse(ping, 10, True) == ([(True, 0, 9, True, b"p" * 100)], len(ping), None)
    assert parse(text, 0, True) == ([(True, 0, 1, True, b"t" * 100)], len(text), None)
    assert parse(text, 100, True) == parse(text, 0, True)


@pytest.mark.parametrize("impl", PARSERS)
def test_incomplete_frames_are_left_in_the_buffer(impl: str) -> None:
    """A frame cut anywhere (header, extended length, mask, payload) is not consumed and is no error."""
    frame = encode(2, b"z" * 300)
    for cut in range(len(frame)):
        assert PARSERS[impl](frame[:cut], 0, True) == ([], 0, None)


@pytest.mark.parametrize("impl", PARSERS)
def test_fragment_state_carries_in_and_across(impl: str) -> None:
    """inside_message says a message is open; a continuation then is fine, and its fin closes it."""
    data = encode(0, b"a", fin=False) + encode(9, b"") + encode(0, b"b") + encode(0, b"c")
    frames, consumed, error = PARSERS[impl](data, 0, True, inside_message=True)
    assert [f[2] for f in frames] == [0, 9, 0]
    assert error == (P, "received continuation data frame outside fragmented message")
    assert consumed == len(data) - len(encode(0, b"c"))


@pytest.mark.parametrize("impl", PARSERS)
def test_new_message_inside_a_fragmented_one_is_refused(impl: str) -> None:
    """A text frame while a fragmented binary message is open is autobahn's violation, after the fragment."""
    first = encode(2, b"a", fin=False)
    frames, consumed, error = PARSERS[impl](first + encode(1, b"b"), 0, True)
    assert (frames, consumed) == ([(False, 0, 2, True, b"a")], len(first))
    assert error == (P, "received non-continuation data frame while inside fragmented message")


# -- C against Python -----------------------------------------------------------------------------------


@settings(max_examples=500)
@given(
    data=st.binary(max_size=300),
    limit=st.sampled_from([0, 1, 5, 126, 65536]),
    expect_mask=st.booleans(),
    inside=st.booleans(),
)
def test_c_parses_arbitrary_bytes_as_python_does(data: bytes, limit: int, expect_mask: bool, inside: bool) -> None:
    """On any bytes, the extension returns exactly what the reference returns."""
    assert _wsframe.parse_frames(data, limit, expect_mask, inside) == wsframe.parse_frames_py(
        data, limit, expect_mask, inside
    )


@given(
    opcode=st.integers(0, 255),
    payload=st.binary(max_size=300) | st.sampled_from([b"", b"x" * 126, b"y" * 65535, b"z" * 65536]),
    fin=st.booleans(),
    rsv=st.integers(0, 64),
    mask=st.none() | st.just(b"") | st.binary(min_size=4, max_size=4),
)
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_c_builds_what_python_builds(opcode: int, payload: bytes, fin: bool, rsv: int, mask: bytes | None) -> None:
    """The extension's frames are the reference's, byte for byte, and parse back to the payload."""
    built = _wsframe.build_frame(opcode, payload, fin, rsv, mask)
    assert built == wsframe.build_frame_py(opcode, payload, fin, rsv, mask)
    if 0 < opcode < 3 and rsv % 8 == 0:
        assert wsframe.parse_frames_py(built, 0, bool(mask)) == (
            [(fin, 0, opcode, bool(mask), payload)],
            len(built),
            None,
        )


@pytest.mark.parametrize("impl", BUILDERS)
def test_bad_mask_is_refused(impl: str) -> None:
    """A mask key is four bytes."""
    with pytest.raises(ValueError, match="4 bytes"):
        BUILDERS[impl](2, b"x", True, 0, b"abc")


# -- against autobahn -----------------------------------------------------------------------------------


class Recording:
    """Records what reaches the application of an autobahn protocol and how the connection fails."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[Any, ...]] = []

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.events.append(("message", payload, isBinary))

    def onPing(self, payload: bytes) -> None:
        self.events.append(("ping", payload))

    def onPong(self, payload: bytes) -> None:
        self.events.append(("pong", payload))

    def onCloseFrame(self, code: int | None, reasonRaw: bytes | None) -> bool | None:
        self.events.append(("close", code, reasonRaw))
        return super().onCloseFrame(code, reasonRaw)

    def _fail_connection(self, code: int = 1001, reason: str = "going away") -> None:
        self.events.append(("fail", code, reason))
        super()._fail_connection(code, reason)


class RecordingServer(Recording, WebSocketServerProtocol):
    """autobahn's server protocol, recording what reaches the application and how the connection fails."""


def autobahn_events(data: bytes, chunks: list[int], limit: int) -> list[tuple[Any, ...]]:
    """Feed ``data`` to an open autobahn server connection in pieces of the given sizes."""
    factory = WebSocketServerFactory()
    # No timeouts: nothing is scheduled on a reactor. failByDrop: the first violation ends the connection.
    factory.setProtocolOptions(
        failByDrop=True, maxFramePayloadSize=limit, maxMessagePayloadSize=0, openHandshakeTimeout=0,
        closeHandshakeTimeout=0, autoPingInterval=0,
    )  # fmt: skip
    factory.protocol = RecordingServer
    proto: RecordingServer = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    transport.registerProducer(proto, True)  # as a TCP transport has it: dropping the connection unregisters it
    proto.dataReceived(HANDSHAKE)
    assert proto.state == ws_protocol.WebSocketProtocol.STATE_OPEN
    pos = 0
    for size in [*chunks, len(data)]:
        if pos >= len(data):
            break
        proto.dataReceived(data[pos : pos + size])
        pos += size
    return proto.events


def reassembled(data: bytes, limit: int, parse: Callable[..., Any]) -> list[tuple[Any, ...]]:
    """What an application sees, from ``parse``'s frames: the test's own reassembler and checks of content."""
    frames, _consumed, error = parse(data, limit, True)
    events: list[tuple[Any, ...]] = []
    chunks: list[bytes] = []
    validator: Utf8Validator | None = None
    state: tuple[bool, bool, int, int] = (True, True, 0, 0)
    binary = False
    for fin, _rsv, opcode, _masked, payload in frames:
        if opcode == 8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) > 1 else None
            reason = payload[2:] if len(payload) > 2 else None
            events.append(("close", code, reason))
            if code is not None and (code < 1000 or code >= 5000 or (code < 3000 and code not in ALLOWED_CLOSE_CODES)):
                events.append(("fail", 1002, f"invalid close code {code}"))
            elif reason is not None:
                check = Utf8Validator().validate(reason)
                if not (check[0] and check[1]):
                    events.append(("fail", 1007, "invalid close reason (non-UTF8 payload)"))
            return events
        if opcode in (9, 10):
            events.append(("ping" if opcode == 9 else "pong", payload))
            continue
        if opcode != 0:
            chunks, binary = [], opcode == 2
            validator = None if binary else Utf8Validator()
        if validator is not None:
            state = validator.validate(payload)
            if not state[0]:
                reason = f"encountered invalid UTF-8 while processing text message at payload octet index {state[3]}"
                return [*events, ("fail", 1007, reason)]
        chunks.append(payload)
        if fin:
            if validator is not None and not state[1]:
                reason = f"UTF-8 text message payload ended within Unicode code point at payload octet index {state[3]}"
                return [*events, ("fail", 1007, reason)]
            events.append(("message", b"".join(chunks), binary))
    if error is not None:
        events.append(("fail", *error))
    return events


CLOSE_CODES = st.sampled_from([1000, 1001, 1003, 1011, 1013, 3000, 4999, 0, 999, 1004, 1005, 1006, 1014, 2999, 5000])
TEXT = st.text(max_size=40).map(lambda s: s.encode()) | st.binary(max_size=8)
#: Payloads of each length encoding: 7 bits, 16 bits (126 and up), 64 bits (65536 and up).
BINARY = st.binary(max_size=125) | st.binary(min_size=126, max_size=300) | st.just(bytes(65536))


def broken_frames(key: bytes | None) -> st.SearchStrategy[bytes]:
    """Frames broken in ways a bit flip seldom gives, masked with ``key``."""
    return st.sampled_from(
        [
            encode(2, b"x" * 125, length_bytes=2, key=key),  # not the shortest length encoding
            encode(2, b"x" * 200, length_bytes=8, key=key),
            encode(2, b"", length=2**63 + 5, key=key),  # the top bit of a 64-bit length
            encode(2, b"", length=2**40, key=key),  # above any limit but 0: the header alone fails it
            encode(9, b"p" * 126, key=key),  # a control frame of more than 125 bytes
            encode(8, b"\x03", key=key),  # a close frame of one byte
        ]
    )


@st.composite
def frame_streams(draw: st.DrawFn, masked: bool = True) -> bytes:
    """Messages (fragmented or not, text or binary, with pings and pongs between fragments), control frames,
    and now and then a frame with one bit flipped or a broken one; masked as a client's, or not as a server's."""
    key = draw(st.binary(min_size=4, max_size=4)) if masked else None
    out: list[bytes] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["text", "binary", "ping", "pong", "close"]))
        if kind in ("ping", "pong"):
            out.append(encode(9 if kind == "ping" else 10, draw(st.binary(max_size=125)), key=key))
        elif kind == "close":
            body = draw(st.just(b"") | st.builds(lambda c, r: struct.pack("!H", c) + r, CLOSE_CODES, TEXT))
            out.append(encode(8, body, key=key))
        else:
            parts = draw(st.lists(TEXT if kind == "text" else BINARY, min_size=1, max_size=4))
            for i, part in enumerate(parts):
                opcode = (1 if kind == "text" else 2) if i == 0 else 0
                out.append(encode(opcode, part, fin=i == len(parts) - 1, key=key))
                if draw(st.integers(0, 5)) == 0:
                    out.append(encode(9, b"between", key=key))
    damage = draw(st.sampled_from(["none", "flip", "insert"]))
    if damage == "flip":
        i = draw(st.integers(0, len(out) - 1))
        broken = bytearray(out[i])
        broken[draw(st.integers(0, 1))] ^= 1 << draw(st.integers(0, 7))
        out[i] = bytes(broken)
    elif damage == "insert":
        out.insert(draw(st.integers(0, len(out))), draw(broken_frames(key)))
    return b"".join(out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    impl=st.sampled_from(list(PARSERS)),
    data=frame_streams(),
    chunks=st.lists(st.integers(1, 64), max_size=40),
    limit=st.sampled_from([0, 0, 3, 40, 150]),
)
def test_autobahn_server_sees_what_parse_frames_sees(impl: str, data: bytes, chunks: list[int], limit: int) -> None:
    """Fed in any chunking, autobahn's server delivers the messages, pings, pongs and close frames, and fails
    the connection with the code and reason, that the frames parse_frames returns add up to."""
    _frames, consumed, error = PARSERS[impl](data, limit, True)
    seen, expected = autobahn_events(data, chunks, limit), reassembled(data, limit, PARSERS[impl])
    if error is None and consumed < len(data):
        # A frame cut off at the end (a flipped length bit): parse_frames leaves it for later, while autobahn
        # already checks the UTF-8 of the part that is there. Nothing else may happen.
        assert seen[: len(expected)] == expected
        assert [e[:2] for e in seen[len(expected) :]] in ([], [("fail", 1007)])
    else:
        assert seen == expected


@given(
    impl=st.sampled_from(list(BUILDERS)),
    opcode=st.sampled_from([0, 1, 2, 8, 9, 10]),
    payload=st.binary(max_size=300) | st.sampled_from([b"x" * 125, b"x" * 126, b"y" * 65535, b"z" * 65536]),
    fin=st.booleans(),
    rsv=st.integers(0, 7),
    client=st.booleans(),
    key=st.integers(0, 2**32 - 1),
)
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_build_frame_writes_what_send_frame_writes(
    impl: str, opcode: int, payload: bytes, fin: bool, rsv: int, client: bool, key: int
) -> None:
    """A server's frame (unmasked), and a client's with the mask key sendFrame picked, byte for byte."""
    factory = WebSocketServerFactory()
    factory.setProtocolOptions(maskServerFrames=client, openHandshakeTimeout=0, closeHandshakeTimeout=0)
    factory.protocol = WebSocketServerProtocol
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(HANDSHAKE)
    transport.clear()
    with mock.patch.object(ws_protocol.random, "getrandbits", return_value=key):
        proto.sendFrame(opcode, payload, fin, rsv)
    mask = struct.pack("!I", key) if client else None
    assert transport.value() == BUILDERS[impl](opcode, payload, fin, rsv, mask)


# -- which implementation ------------------------------------------------------------------------------


def test_the_extension_is_built_and_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The normal install builds router._wsframe (a shared library), and router.wsframe selects it."""
    monkeypatch.delenv("SWITCHBOARD_WSFRAME", raising=False)
    assert str(_wsframe.__file__).endswith(".so")
    assert wsframe._select() == ("c", _wsframe.parse_frames, _wsframe.build_frame)


def test_switch_selects_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """SWITCHBOARD_WSFRAME=0 selects the Python reference."""
    monkeypatch.setenv("SWITCHBOARD_WSFRAME", "0")
    assert wsframe._select() == ("python", wsframe.parse_frames_py, wsframe.build_frame_py)


def test_missing_extension_selects_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the extension (no compiler at install), the Python reference is used."""
    monkeypatch.delenv("SWITCHBOARD_WSFRAME", raising=False)
    monkeypatch.setitem(sys.modules, "router._wsframe", None)
    monkeypatch.delattr("router._wsframe", raising=False)
    assert wsframe._select() == ("python", wsframe.parse_frames_py, wsframe.build_frame_py)
