"""
WebSocket (RFC 6455) frame parsing and building, as autobahn's ``WebSocketProtocol`` does it (issue 14).

Two implementations with the same functions: the pure-Python one below is the reference, and
``router._wsframe`` (``router/_wsframe.c``, built by the normal install) is the fast one. :func:`parse_frames`
and :func:`build_frame` are the C functions when the extension is importable and ``SWITCHBOARD_WSFRAME`` is not
``0``, else the Python ones; :data:`IMPLEMENTATION` says which. Both are always reachable by name
(:func:`parse_frames_py`, :func:`build_frame_py`) so tests can hold them against each other and against autobahn.

**Parsing** mirrors ``WebSocketProtocol.processData`` of autobahn 26.10 for a connection without extensions
(no permessage-deflate): the same checks in the same order, with the same close code and reason as the
violation autobahn reports (it fails the connection with that code, 1002 or 1009, and reason). A check of
the two-byte header fires as soon as two bytes are there, one of the extended length when the whole header
is there, and the frame size limit (``maxFramePayloadSize``, data frames only, ``0`` = none) once the header
is complete, before the payload has arrived, as autobahn's ``onMessageFrameBegin`` does. The message size
limit (``maxMessagePayloadSize``) and everything about a frame's content (UTF-8 of text, close codes) stay
with the caller: they depend on the whole message.

**Building** gives the bytes ``WebSocketProtocol.sendFrame`` writes. One difference on purpose: when
``sendFrame`` is *given* a mask it masks the payload but leaves the mask key out of the frame (only a
fuzzing client passes one); :func:`build_frame` writes the key, as ``sendFrame`` does with the random
key it picks itself, so a client frame built here is the one ``sendFrame`` writes for that key.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

__all__ = [
    "IMPLEMENTATION",
    "Frame",
    "FrameError",
    "build_frame",
    "build_frame_py",
    "parse_frames",
    "parse_frames_py",
]

#: One complete frame: (fin, rsv, opcode, masked, payload after unmasking).
Frame = tuple[bool, int, int, bool, bytes]
#: Why the connection fails: (WebSocket close code, autobahn's reason text).
FrameError = tuple[int, str]

PROTOCOL_ERROR = 1002
MESSAGE_TOO_BIG = 1009
_MAX_LENGTH = 0x7FFFFFFFFFFFFFFF


def _unmask(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def _header_error(b0: int, b1: int, expect_mask: bool, inside_message: bool) -> str | None:
    """The first protocol violation autobahn finds in a frame's first two bytes, in its order."""
    fin = b0 & 0x80
    rsv = (b0 & 0x70) >> 4
    opcode = b0 & 0x0F
    masked = b1 & 0x80
    length1 = b1 & 0x7F
    if rsv != 0:
        return f"RSV = {rsv} and no extension negotiated"
    if expect_mask and not masked:
        return "unmasked client-to-server frame"
    if not expect_mask and masked:
        return "masked server-to-client frame"
    if opcode > 7:
        if not fin:
            return "fragmented control frame"
        if length1 > 125:
            return "control frame with payload length > 125 octets"
        if opcode not in (8, 9, 10):
            return f"control frame using reserved opcode {opcode}"
        if opcode == 8 and length1 == 1:
            return "received close control frame with payload len 1"
        return None
    if opcode not in (0, 1, 2):
        return f"data frame using reserved opcode {opcode}"
    if not inside_message and opcode == 0:
        return "received continuation data frame outside fragmented message"
    if inside_message and opcode != 0:
        return "received non-continuation data frame while inside fragmented message"
    return None


def parse_frames_py(
    buffer: bytes, max_frame_payload: int, expect_mask: bool, inside_message: bool = False
) -> tuple[list[Frame], int, FrameError | None]:
    """Parse the complete frames at the start of ``buffer``: ``(frames, consumed, error)``.

    ``consumed`` is the number of bytes the frames took; what follows is an incomplete frame, or the frame
    ``error`` is about (then nothing after it is parsed). ``expect_mask`` is True on the server side (client
    frames must be masked) and False on the client side (server frames must not be); ``inside_message``
    whether a fragmented data message is open before the buffer (it is tracked across the frames parsed).
    ``max_frame_payload`` above 0 limits a data frame's payload length.
    """
    data = bytes(buffer)
    frames: list[Frame] = []
    pos = 0
    end = len(data)
    while end - pos >= 2:
        b0 = data[pos]
        b1 = data[pos + 1]
        reason = _header_error(b0, b1, expect_mask, inside_message)
        if reason is not None:
            return frames, pos, (PROTOCOL_ERROR, reason)
        fin = bool(b0 & 0x80)
        opcode = b0 & 0x0F
        masked = bool(b1 & 0x80)
        length = b1 & 0x7F
        i = pos + 2
        extended = 2 if length == 126 else 8 if length == 127 else 0
        if end - i < extended + (4 if masked else 0):
            break
        if length == 126:
            length = struct.unpack_from("!H", data, i)[0]
            if length < 126:
                return frames, pos, (PROTOCOL_ERROR, "invalid data frame length (not using minimal length encoding)")
        elif length == 127:
            length = struct.unpack_from("!Q", data, i)[0]
            if length > _MAX_LENGTH:
                return frames, pos, (PROTOCOL_ERROR, "invalid data frame length (>2^63)")
            if length < 65536:
                return frames, pos, (PROTOCOL_ERROR, "invalid data frame length (not using minimal length encoding)")
        i += extended
        mask = data[i : i + 4] if masked else b""
        i += len(mask)
        if opcode <= 7 and 0 < max_frame_payload < length:
            reason = f"received WebSocket frame size {length} exceeds payload limit of {max_frame_payload} octets"
            return frames, pos, (MESSAGE_TOO_BIG, reason)
        if end - i < length:
            break
        payload = data[i : i + length]
        frames.append((fin, 0, opcode, masked, _unmask(payload, mask) if masked else payload))
        if opcode <= 7:
            inside_message = not fin
        pos = i + length
    return frames, pos, None


def build_frame_py(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, mask: bytes | None = None) -> bytes:
    """The frame autobahn's ``sendFrame`` writes for ``payload`` (masked with the 4-byte ``mask`` if given)."""
    length = len(payload)
    b0 = (0x80 if fin else 0) | (rsv % 8) << 4 | opcode % 128
    b1 = 0x80 if mask else 0
    if length <= 125:
        header = bytes((b0, b1 | length))
    elif length <= 0xFFFF:
        header = struct.pack("!BBH", b0, b1 | 126, length)
    elif length <= _MAX_LENGTH:
        header = struct.pack("!BBQ", b0, b1 | 127, length)
    else:  # pragma: no cover - no buffer is this long
        raise ValueError("invalid payload length")
    if not mask:
        return header + bytes(payload)
    if len(mask) != 4:
        raise ValueError("a WebSocket mask is 4 bytes")
    return header + bytes(mask) + _unmask(bytes(payload), bytes(mask))


ParseFrames = Callable[..., tuple[list[Frame], int, "FrameError | None"]]
BuildFrame = Callable[..., bytes]


def _select() -> tuple[str, ParseFrames, BuildFrame]:
    if os.environ.get("SWITCHBOARD_WSFRAME", "1") == "0":
        return "python", parse_frames_py, build_frame_py
    try:
        from router import _wsframe
    except ImportError:
        return "python", parse_frames_py, build_frame_py
    return "c", _wsframe.parse_frames, _wsframe.build_frame


#: ``"c"`` when :func:`parse_frames`/:func:`build_frame` are the extension's, ``"python"`` when the fallback's.
IMPLEMENTATION, parse_frames, build_frame = _select()
