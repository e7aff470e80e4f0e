"""
WebSocket framing in C for autobahn's protocol: :func:`router.wsframe.parse_frames` and
:func:`router.wsframe.build_frame` (the extension ``router._wsframe``) in ``processData`` and ``sendFrame``
(issue 14).

autobahn parses each incoming frame in Python: ``processData`` runs about three times per frame (header,
payload, the loop), and a message passes ``onFrameBegin``, ``onMessageBegin``, ``onMessageFrameBegin``,
``onFrameData``, ``onMessageFrameData``, ``onFrameEnd``, ``onMessageFrameEnd``, ``onMessageFrame`` and
``onMessageEnd`` before ``onMessage``. The replacement parses every complete frame in the buffer with one C
call and hands a *simple* message straight to ``onMessage`` with the same effects autobahn leaves (traffic
counters, UTF-8 check, the auto-ping timeout, the ``message`` event); everything else goes to autobahn's own
``processData``, from the first frame that is not simple on:

- a simple frame is a whole unfragmented text or binary message within the size limits, of valid UTF-8 if
  text (and validation is on), on an open connection without extensions, frame logging or timings, whose
  class keeps autobahn's message hooks (``onMessageBegin`` ... ``onMessageEnd``);
- control frames (ping, pong, close), fragments, frames cut off at the end of the buffer, every protocol
  violation, and everything after the connection leaves the open state are autobahn's, so the replies,
  close codes and reasons are its own (also with Crossbar's ``failByDrop=False``, where it reads on).

``sendFrame`` writes :func:`~router.wsframe.build_frame`'s bytes when autobahn would write the same without
choices of its own: no explicit mask or repeated payload, no frame logging, and no masking, or a client's
with autobahn's random key.

Installed by :func:`router.seam.install` in the router worker when the extension is built (no use for the
Python reference here), under the seam's version policy; ``SWITCHBOARD_WSFRAME=0`` (or
``SWITCHBOARD_SPEEDUPS=0``) leaves autobahn's framing alone.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import txaio
from autobahn.websocket import protocol as ws_protocol
from twisted.logger import Logger

from router import wsframe

__all__ = ["COPIED_OPTIONS", "RELIED_ON", "SIGNATURES", "install", "installed", "uninstall"]

_WS = "autobahn.websocket.protocol.WebSocketProtocol"
#: Options autobahn copies from the factory onto each protocol (its ``CONFIG_ATTRS``; a unit test checks that
#: they are among them), by the factory class that defines them.
COPIED_OPTIONS = {
    "WebSocketServerFactory": (
        "logFrames",
        "applyMask",
        "requireMaskedClientFrames",
        "maskServerFrames",
        "maxFramePayloadSize",
        "maxMessagePayloadSize",
        "utf8validateIncoming",
        "autoPingRestartOnAnyTraffic",
    ),
    "WebSocketClientFactory": ("acceptMaskedServerFrames", "maskClientFrames"),
}
_PROTOCOL_NAMES = (
    "processData",
    "sendFrame",
    "sendData",
    "fire",
    "_listeners",
    "_cancelAutoPingTimeoutCall",
    "STATE_OPEN",
    "STATE_CLOSED",
    "data",
    "state",
    "current_frame",
    "inside_message",
    "failedByMe",
    "_perMessageCompress",
    "_isMessageCompressed",
    "trackedTimings",
    "utf8validator",
    "utf8validateIncomingCurrentMessage",
    "utf8validateLast",
    "message_is_binary",
    "message_data",
    "message_data_total_length",
    "frame_length",
    "frame_data",
    "trafficStats",
    "autoPingTimeoutCall",
    "onFrameBegin",
    "onFrameData",
    "onFrameEnd",
    "onMessageBegin",
    "onMessageFrameBegin",
    "onMessageFrameData",
    "onMessageFrameEnd",
    "onMessageFrame",
    "onMessageEnd",
)
_TRAFFIC_COUNTERS = (
    "incomingOctetsWebSocketLevel",
    "incomingOctetsAppLevel",
    "incomingWebSocketFrames",
    "incomingWebSocketMessages",
    "outgoingWebSocketFrames",
)
#: autobahn names this module relies on (tests/unit/test_seam_canary.py; before installing on unverified versions).
RELIED_ON = [
    *(f"{_WS}.{name}" for name in _PROTOCOL_NAMES),
    *(f"autobahn.websocket.protocol.TrafficStats.{name}" for name in _TRAFFIC_COUNTERS),
    *(f"autobahn.websocket.protocol.{cls}.{name}" for cls, names in COPIED_OPTIONS.items() for name in names),
    "autobahn.websocket.protocol.random",
    "autobahn.websocket.protocol.WebSocketServerProtocol.websocket_version",
    "twisted.internet.protocol.Protocol.factory",
    "autobahn.twisted.websocket.WebSocketAdapterProtocol._onMessage",
    "autobahn.twisted.websocket.WebSocketAdapterProtocol._onMessageBegin",
    "autobahn.twisted.websocket.WebSocketAdapterProtocol._onMessageEnd",
]

#: What is replaced or called with positional arguments: the parameters expected.
SIGNATURES = {
    f"{_WS}.processData": ("self",),
    f"{_WS}.sendFrame": ("self", "opcode", "payload", "fin", "rsv", "mask", "payload_len", "chopsize", "sync"),
    f"{_WS}.sendData": ("self", "data", "sync", "chopsize"),
    "autobahn.twisted.websocket.WebSocketAdapterProtocol._onMessage": ("self", "payload", "isBinary"),
}

#: The hooks a message passes in autobahn; a class overriding one of them gets autobahn's path.
_MESSAGE_HOOKS = (
    "onFrameBegin",
    "onFrameData",
    "onFrameEnd",
    "onMessageBegin",
    "onMessageFrameBegin",
    "onMessageFrameData",
    "onMessageFrameEnd",
    "onMessageFrame",
    "onMessageEnd",
    "_onMessageBegin",
    "_onMessageFrameBegin",
    "_onMessageFrameData",
    "_onMessageFrameEnd",
    "_onMessageFrame",
    "_onMessageEnd",
)

_log = Logger(namespace="switchboard.framing")
_original: dict[str, Any] = {}
_plain_classes: dict[type, bool] = {}
_OPEN = ws_protocol.WebSocketProtocol.STATE_OPEN
_random: Any = getattr(ws_protocol, "random")  # noqa: B009 - the module autobahn draws its mask keys from


def _hooks_are_autobahns(cls: type) -> bool:
    plain = _plain_classes.get(cls)
    if plain is None:
        from autobahn.twisted.websocket import WebSocketAdapterProtocol

        defaults = (ws_protocol.WebSocketProtocol, WebSocketAdapterProtocol)
        plain = all(
            getattr(cls, name, None) in [getattr(base, name, None) for base in defaults] for name in _MESSAGE_HOOKS
        )
        _plain_classes[cls] = plain
    return plain


def _frame_size(length: int, masked: bool) -> int:
    return (2 if length < 126 else 4 if length < 65536 else 10) + (4 if masked else 0) + length


def _process_data(self: Any) -> bool:
    """autobahn's ``processData`` with the simple messages of the buffer handled in one pass."""
    if (
        self.current_frame is not None
        or self.inside_message
        or self.state != _OPEN
        or self.failedByMe
        or self._perMessageCompress is not None
        or self.logFrames
        or self.trackedTimings
        or not self.applyMask
        or self.websocket_version == 0
        or not _hooks_are_autobahns(type(self))
    ):
        return _original["processData"](self)  # type: ignore[no-any-return]
    if self.factory.isServer:
        if not self.requireMaskedClientFrames:
            return _original["processData"](self)  # type: ignore[no-any-return]
        expect_mask = True
    else:
        if self.acceptMaskedServerFrames:
            return _original["processData"](self)  # type: ignore[no-any-return]
        expect_mask = False
    # A first frame is its message: above either limit it is autobahn's to refuse (its close reason), and
    # parse_frames stops before copying its payload.
    limit, message_limit = self.maxFramePayloadSize, self.maxMessagePayloadSize
    if message_limit > 0 and not 0 < limit <= message_limit:
        limit = message_limit
    data = self.data
    frames, _consumed, _error = _parse_frames(data, limit, expect_mask)
    pos = 0
    try:
        for fin, _rsv, opcode, masked, payload in frames:
            if not fin or opcode not in (1, 2):
                break
            length = len(payload)
            text = opcode == 1
            validated = text and self.utf8validateIncoming
            if validated:
                self.utf8validator.reset()
                check = self.utf8validator.validate(payload)
                if not (check[0] and check[1]):
                    break
                self.utf8validateLast = check
            pos += _frame_size(length, masked)
            _deliver(self, payload, not text, validated)
            if self.state != _OPEN:
                break
    finally:
        if pos:
            self.data = data[pos:]
    if not self.data or self.state == ws_protocol.WebSocketProtocol.STATE_CLOSED:
        return False
    return _original["processData"](self)  # type: ignore[no-any-return]


def _deliver(self: Any, payload: bytes, binary: bool, validated: bool) -> None:
    """What autobahn does from ``onFrameBegin`` to ``onMessageEnd`` for one whole message, in its order."""
    length = len(payload)
    self._isMessageCompressed = False
    self.utf8validateIncomingCurrentMessage = validated
    self.message_is_binary = binary
    self.message_data_total_length = length
    self.frame_length = length
    stats = self.trafficStats
    stats.incomingOctetsWebSocketLevel += length
    stats.incomingOctetsAppLevel += length
    stats.incomingWebSocketFrames += 1
    if self.autoPingTimeoutCall and self.autoPingRestartOnAnyTraffic:
        self._cancelAutoPingTimeoutCall()
    stats.incomingWebSocketMessages += 1
    self.frame_data = None
    self.inside_message = True  # as during autobahn's onMessage
    self._onMessage(payload, binary)
    if self._listeners is None:
        # Nothing listens: autobahn's fire() would return an already-succeeded Deferred for nobody.
        self.message_data = None
        self.inside_message = False
        return
    fired = self.fire("message", payload, is_binary=binary)

    def error(failure: Any) -> None:
        self.log.error("Firing signal 'message' failed: {fail}", fail=failure)

    txaio.add_callbacks(fired, None, error)  # type: ignore[attr-defined]
    self.message_data = None
    self.inside_message = False


def _send_frame(
    self: Any,
    opcode: int,
    payload: bytes = b"",
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    payload_len: int | None = None,
    chopsize: int | None = None,
    sync: bool = False,
) -> None:
    """autobahn's ``sendFrame``, with the frame built in C when autobahn leaves nothing to choose."""
    if mask or payload_len is not None or self.logFrames:
        return _original["sendFrame"](self, opcode, payload, fin, rsv, mask, payload_len, chopsize, sync)  # type: ignore[no-any-return]
    if self.maskServerFrames if self.factory.isServer else self.maskClientFrames:
        if not self.applyMask:
            return _original["sendFrame"](self, opcode, payload, fin, rsv, mask, payload_len, chopsize, sync)  # type: ignore[no-any-return]
        key = struct.pack("!I", _random.getrandbits(32))
        raw = _build_frame(opcode, payload, fin, rsv, key)
    else:
        raw = _build_frame(opcode, payload, fin, rsv, None)
    if opcode in (0, 1, 2):
        self.trafficStats.outgoingWebSocketFrames += 1
    self.sendData(raw, sync, chopsize)


_parse_frames = wsframe.parse_frames
_build_frame = wsframe.build_frame


def installed() -> bool:
    """Whether :func:`install` has replaced autobahn's framing in this process."""
    return bool(_original)


def install() -> bool:
    """Replace autobahn's ``processData``/``sendFrame`` (idempotent); False when switched off
    (``SWITCHBOARD_WSFRAME=0`` or ``SWITCHBOARD_SPEEDUPS=0``), without the C extension, or skipped by the
    seam's version policy (:func:`router.seam.allowed`)."""
    if _original:
        return True
    if "0" in (os.environ.get("SWITCHBOARD_WSFRAME", "1"), os.environ.get("SWITCHBOARD_SPEEDUPS", "1")):
        _log.info("C WebSocket framing not installed: switched off")
        return False
    if wsframe.IMPLEMENTATION != "c":
        _log.warn("C WebSocket framing not installed: the extension router._wsframe was not built")
        return False
    from router.seam import allowed

    if not allowed("framing"):
        return False
    cls = ws_protocol.WebSocketProtocol
    _original.update(processData=cls.processData, sendFrame=cls.sendFrame)
    cls.processData = _process_data  # type: ignore[method-assign]
    cls.sendFrame = _send_frame  # type: ignore[method-assign]
    return True


def uninstall() -> None:
    """Undo :func:`install` (for tests)."""
    cls = ws_protocol.WebSocketProtocol
    if _original:
        cls.processData = _original.pop("processData")  # type: ignore[method-assign]
        cls.sendFrame = _original.pop("sendFrame")  # type: ignore[method-assign]
