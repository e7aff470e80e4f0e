"""
What the router accepts as a WAMP message, and how it says no: bounded nesting, no batched serializers, quiet
protocol errors (issue 9, findings 1 and 8).

**Nesting.** autobahn's JSON fallback parser (used when orjson refuses a message, and always with
``SWITCHBOARD_SPEEDUPS=0``) is recursive: one text frame ``[[[[…]]]]`` 60,000 deep sent before HELLO held
the reactor for 35-60 s while a RecursionError unwound and its traceback (18 MB of log) was formatted and
written (``bench/attack_nesting.py``). msgpack
and cbor2 decode in C with their own depth caps (1024, 400), but what they return is re-serialized to
other sessions by recursive encoders. So every message is held to ``limits.max_nesting`` levels of arrays
and maps *before* any recursive parse, for every serializer the router offers:

- JSON (:func:`json_too_deep`): ``count("[") + count("{")`` bounds the depth, so the common message is
  cleared by two C-speed counts. Only when that bound exceeds the limit are strings stripped (one linear
  regex), the rest translated to brackets and the running depth summed with ``itertools.accumulate``, all
  in C; no recursion, no parse. This runs in :meth:`Serializer.unserialize`, before the JSON object
  serializer (orjson from :mod:`router.seam.speedups`, or autobahn's parser) sees the bytes.
- msgpack and CBOR (:func:`msgpack_too_deep`, :func:`cbor_too_deep`, :func:`value_too_deep`): the
  bytes that can open a container bound the depth (C-speed ``translate``); above the limit, the decoded
  value is walked level by level (iterative, stops at the first level beyond the limit and after as many
  items as the message has bytes, which also stops CBOR's shared references from expanding a small
  message into a huge or cyclic value).

The depth is the whole message's: a CALL and its argument list are two of the levels. A message over the
limit is a :class:`NestingTooDeep` protocol error.

**Batched serializers.** Crossbar's WebSocket factory offers ``wamp.2.<name>.batched`` next to each
serializer; one batched frame of 30,000 CALLs is processed in one reactor turn and stalled every other
session for 6.5 s. They are turned off (:func:`_without_batched`): a client offering only a batched
subprotocol is refused at the handshake (HTTP 400). RawSocket has no batched mode.

**Protocol errors.** autobahn logged each bad WAMP message with a full traceback (``log.critical``) and
the error text (which can quote the payload), then the failed connection twice more at ``warn``. Here a
protocol error is logged once per connection at ``info`` — the peer, the close code and the error's
*class* only, never its text or the payload (for a framing error, autobahn's reason, which names the rule
broken, never the frame's content) — and the connection is closed: over WebSocket with a close
frame (1002 protocol error, or the code autobahn chose for a framing error) and dropped if the client does
not answer within :data:`CLOSE_GRACE` seconds; over RawSocket by dropping it. An internal error (a router
bug rather than a bad message) is logged once at ``error`` with the last :data:`TRACEBACK_FRAMES` frames.
While a WebSocket closes, what the router still sends on it (the answer to a HELLO whose authentication
finished meanwhile, say) is dropped rather than raised as ``Disconnected`` with a traceback in the log.

Every private name used is listed in :data:`RELIED_ON` (checked by ``tests/unit/test_seam_parsing.py``).
"""

from __future__ import annotations

import itertools
import re
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import cbor2
from autobahn.exception import PayloadExceededError
from autobahn.twisted import rawsocket
from autobahn.util import encode_truncate
from autobahn.wamp import message
from autobahn.wamp import serializer as wamp_serializer
from autobahn.wamp import websocket as wamp_websocket
from autobahn.wamp.exception import InvalidUriError, ProtocolError, SerializationError
from autobahn.websocket.protocol import WebSocketProtocol
from crossbar.router import protocol as crossbar_protocol
from twisted.internet.defer import CancelledError
from twisted.logger import Logger

from router.config import Limits
from router.metrics import note_connection_refused
from router.patches import Patches
from router.peers import Networks, client_address

__all__ = [
    "CLOSE_GRACE",
    "RELIED_ON",
    "SIGNATURES",
    "TRACEBACK_FRAMES",
    "NestingTooDeep",
    "cbor_too_deep",
    "install",
    "json_too_deep",
    "msgpack_too_deep",
    "value_too_deep",
]

#: (module, attribute path) of every library name this module reads, wraps or replaces; a name on a class
#: that is not a class attribute is assigned as ``self.<name>`` in that class (checked by the canary).
RELIED_ON: list[tuple[str, str]] = [
    ("crossbar.router.session", "RouterSession._session_id"),
    ("autobahn.wamp.serializer", "Serializer.unserialize"),
    ("autobahn.wamp.serializer", "MsgPackObjectSerializer.unserialize"),
    ("autobahn.wamp.serializer", "CBORObjectSerializer.unserialize"),
    ("autobahn.wamp.websocket", "WampWebSocketProtocol.onMessage"),
    ("autobahn.wamp.websocket", "WampWebSocketProtocol.send"),
    ("autobahn.websocket.protocol", "WebSocketProtocol.STATE_OPEN"),
    ("autobahn.websocket.protocol", "WebSocketProtocol._fail_connection"),
    ("autobahn.websocket.protocol", "WebSocketProtocol.dropConnection"),
    ("autobahn.websocket.protocol", "WebSocketProtocol.sendCloseFrame"),
    ("autobahn.websocket.protocol", "WebSocketProtocol.state"),
    ("autobahn.websocket.protocol", "WebSocketProtocol.failedByMe"),
    ("autobahn.websocket.protocol", "WebSocketProtocol.wasClean"),
    ("autobahn.websocket.protocol", "WebSocketProtocol.wasNotCleanReason"),
    ("crossbar.router.protocol", "WampWebSocketServerProtocol.log"),
    ("autobahn.twisted.websocket", "WebSocketServerFactory.reactor"),
    ("autobahn.wamp.websocket", "WampWebSocketProtocol._session"),
    ("autobahn.wamp.websocket", "WampWebSocketServerProtocol._serializer"),
    ("autobahn.twisted.rawsocket", "WampRawSocketProtocol._session"),
    ("autobahn.twisted.rawsocket", "WampRawSocketProtocol._serializer"),
    ("autobahn.wamp.serializer", "JsonObjectSerializer.NAME"),
    ("autobahn.wamp.serializer", "JsonObjectSerializer._batched"),
    ("autobahn.websocket.protocol", "WebSocketProtocol.STATE_CLOSING"),
    ("autobahn.websocket.protocol", "WebSocketProtocol.STATE_CLOSED"),
    ("autobahn.websocket.protocol", "WebSocketProtocol.CLOSE_STATUS_CODE_PROTOCOL_ERROR"),
    ("autobahn.websocket.protocol", "WebSocketProtocol.CLOSE_STATUS_CODE_INTERNAL_ERROR"),
    ("autobahn.websocket.protocol", "WebSocketProtocol.CLOSE_STATUS_CODE_INVALID_PAYLOAD"),
    ("autobahn.websocket.protocol", "WebSocketProtocol.CLOSE_STATUS_CODE_MESSAGE_TOO_BIG"),
    ("autobahn.twisted.rawsocket", "WampRawSocketProtocol.stringReceived"),
    ("autobahn.twisted.rawsocket", "WampRawSocketProtocol.abort"),
    ("autobahn.util", "encode_truncate"),
    ("crossbar.router.protocol", "WampWebSocketServerProtocol"),
    ("crossbar.router.protocol", "WampWebSocketServerFactory.__init__"),
]

#: Methods replaced or wrapped here and called with positional arguments: the parameters they take.
SIGNATURES = {
    "autobahn.wamp.serializer.Serializer.unserialize": ("self", "payload", "isBinary"),
    "autobahn.wamp.serializer.MsgPackObjectSerializer.unserialize": ("self", "payload"),
    "autobahn.wamp.serializer.CBORObjectSerializer.unserialize": ("self", "payload"),
    "autobahn.wamp.websocket.WampWebSocketProtocol.onMessage": ("self", "payload", "isBinary"),
    "autobahn.websocket.protocol.WebSocketProtocol._fail_connection": ("self", "code", "reason"),
    "autobahn.websocket.protocol.WebSocketProtocol.dropConnection": ("self", "abort"),
    "autobahn.twisted.rawsocket.WampRawSocketProtocol.stringReceived": ("self", "payload"),
}

#: Seconds a WebSocket client has to answer the router's close frame before its connection is dropped.
CLOSE_GRACE = 2.0
#: Frames of traceback logged for an internal error while handling a message (the innermost ones).
TRACEBACK_FRAMES = 12

_log = Logger()
#: Reverse proxies whose headers name the client in log lines (:func:`router.peers.client_address`).
_trusted: Networks = ()
_patches = Patches()
# Set on a connection once its protocol error has been logged: one line per connection, whatever follows.
_REFUSED = "_switchboard_refused"

# A JSON string, or an unterminated one up to the end: every match attempt succeeds, so the scan is linear
# whatever the input (a pattern that could fail from each quote would be quadratic on `"\"\"\"…`).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_JSON_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_JSON_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Bytes that can start a msgpack map or array (fixmap, fixarray, array16/32, map16/32): all others deleted.
_MSGPACK_NOT_CONTAINERS = bytes(b for b in range(256) if not (0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF))
# CBOR arrays and maps (major types 4 and 5); and tags (major type 6), which can build containers and, with
# shared references (tags 28/29), deep or cyclic values from a few bytes.
_CBOR_NOT_CONTAINERS = bytes(b for b in range(256) if not 0x80 <= b <= 0xBF)
_CBOR_NOT_TAGS = bytes(b for b in range(256) if not 0xC0 <= b <= 0xDF)


# What a client's message can make the router raise: its fault, not the router's.
_BAD_MESSAGE = (ProtocolError, InvalidUriError, PayloadExceededError, SerializationError, RecursionError)


class NestingTooDeep(ProtocolError):
    """A WAMP message nests arrays/maps deeper than ``limits.max_nesting`` (or expands beyond its size)."""


def json_too_deep(data: bytes, limit: int) -> bool:
    """Whether the JSON text ``data`` nests arrays/objects deeper than ``limit``, decided without parsing.

    Invalid JSON may be judged either way (the parser rejects it anyway), but never so that a parser could
    recurse deeper than ``limit``: brackets inside strings are ignored exactly where a parser reads a string.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    if b'"' in data:
        data = _JSON_STRING.sub(b"", data)
    steps = data.translate(_JSON_BRACKETS, _JSON_NOT_BRACKETS)
    if steps.count(1) <= limit:
        return False
    return max(itertools.accumulate(memoryview(steps).cast("b"))) > limit


def msgpack_too_deep(data: bytes, values: list[Any], limit: int) -> bool:
    """Whether the msgpack message ``data``, decoded to ``values``, nests deeper than ``limit``."""
    if len(data.translate(None, _MSGPACK_NOT_CONTAINERS)) <= limit:
        return False
    return any(value_too_deep(v, limit, budget=len(data)) for v in values)


def cbor_too_deep(data: bytes, values: list[Any], limit: int) -> bool:
    """Whether the CBOR message ``data``, decoded to ``values``, nests deeper than ``limit``."""
    if len(data.translate(None, _CBOR_NOT_CONTAINERS)) <= limit and not data.translate(None, _CBOR_NOT_TAGS):
        return False
    return any(value_too_deep(v, limit, budget=len(data)) for v in values)


def _children(value: Any) -> Any:
    if isinstance(value, list | tuple | set | frozenset):
        return value
    if isinstance(value, Mapping):
        return itertools.chain(value.keys(), value.values())
    if isinstance(value, cbor2.CBORTag):
        return (value.value,)
    return ()


def _is_container(value: Any) -> bool:
    return isinstance(value, list | tuple | set | frozenset | Mapping | cbor2.CBORTag)


def value_too_deep(value: Any, limit: int, budget: int) -> bool:
    """Whether a decoded value nests containers deeper than ``limit``, or holds more than ``budget`` items.

    Iterative and breadth-first: it stops at the first level beyond ``limit`` and after ``budget`` items,
    so a cyclic value (CBOR shared references) or one shared many times is refused in bounded time.
    """
    level = [value] if _is_container(value) else []
    depth = seen = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below = []
        for container in level:
            for child in _children(container):
                seen += 1
                if _is_container(child):
                    below.append(child)
            if seen > budget:
                return True
        level = below
    return False


def _checked_unserialize(original: Callable[..., Any], limit: int) -> Callable[..., Any]:
    def unserialize(self: Any, payload: bytes, isBinary: bool | None = None) -> Any:
        if self._serializer.NAME == "json" and json_too_deep(payload, limit):
            raise NestingTooDeep(f"WAMP message nested deeper than {limit}")
        return original(self, payload, isBinary)

    return unserialize


def _checked_object_unserialize(
    original: Callable[[Any, bytes], list[Any]], too_deep: Callable[[bytes, list[Any], int], bool], limit: int
) -> Callable[[Any, bytes], list[Any]]:
    def unserialize(self: Any, payload: bytes) -> list[Any]:
        values = original(self, payload)
        if too_deep(payload, values, limit):
            raise NestingTooDeep(f"WAMP message nested deeper than {limit}")
        return values

    return unserialize


def _kind(error: BaseException) -> str:
    """The class names of an error and its cause: what went wrong, never the client's data."""
    cause = error.__cause__ or error.__context__
    return type(error).__name__ if cause is None else f"{type(error).__name__} ({type(cause).__name__})"


def _note_refusal(proto: Any, transport: str, code: int | None, kind: str) -> bool:
    """Log a connection's protocol error once (info); False if this connection was already refused."""
    if getattr(proto, _REFUSED, False):
        return False
    setattr(proto, _REFUSED, True)
    note_connection_refused("protocol_error")
    _log.info(
        "protocol error on {transport} connection from {peer}: {kind}; connection closed (code {code})",
        transport=transport,
        peer=client_address(getattr(proto, "peer", None), getattr(proto, "http_headers", None), _trusted),
        kind=kind,
        code=code if code is not None else "dropped",
    )
    return True


def _note_internal_error(proto: Any, transport: str) -> None:
    if getattr(proto, _REFUSED, False):
        return
    setattr(proto, _REFUSED, True)
    _log.error(
        "internal error handling a message on {transport} connection from {peer}; connection closed\n{tb}",
        transport=transport,
        peer=getattr(proto, "peer", None),
        tb=traceback.format_exc(limit=-TRACEBACK_FRAMES),
    )


def _close_websocket(proto: Any, code: int, reason: str) -> None:
    """Send a close frame with ``code``; drop the connection if the client has not answered in time."""
    if proto.state in (WebSocketProtocol.STATE_CLOSING, WebSocketProtocol.STATE_CLOSED):
        return
    proto.failedByMe = True
    proto.wasClean = False
    proto.wasNotCleanReason = reason
    proto.sendCloseFrame(code=code, reasonUtf8=encode_truncate(reason, 123), isReply=False)
    proto.factory.reactor.callLater(CLOSE_GRACE, _drop_if_open, proto)


def _drop_if_open(proto: Any) -> None:
    if proto.state != WebSocketProtocol.STATE_CLOSED:
        proto.dropConnection(abort=True)


def _parse(serializer: Any, *payload: Any) -> tuple[list[Any] | None, BaseException | None]:
    """The messages of a client's payload, or the error that shows it is not valid WAMP.

    Whatever turning a client's bytes into messages raises is the client's fault, not the router's:
    autobahn 26.10.2 also asserts on some well-formed but invalid messages (a ``str`` payload where
    passthrough needs bytes, malformed ``forward_for`` entries).
    """
    try:
        return serializer.unserialize(*payload), None
    except Exception as e:
        return None, e


def _websocket_on_message(self: Any, payload: bytes, isBinary: bool) -> None:
    if getattr(self, _REFUSED, False) or self._session is None:
        return  # closing after a protocol error: what the client still sends is ignored
    messages, error = _parse(self._serializer, payload, isBinary)
    if error is not None:
        code = WebSocketProtocol.CLOSE_STATUS_CODE_PROTOCOL_ERROR
        _note_refusal(self, "WebSocket", code, _kind(error))
        _close_websocket(self, code, "WAMP Protocol Error")
        return
    try:
        for msg in messages or ():
            self.log.trace("WAMP-Receive {message}", message=msg)
            _refuse_second_hello(self._session, msg)
            self._session.onMessage(msg)
    except _BAD_MESSAGE as e:
        code = WebSocketProtocol.CLOSE_STATUS_CODE_PROTOCOL_ERROR
        _note_refusal(self, "WebSocket", code, _kind(e))
        _close_websocket(self, code, "WAMP Protocol Error")
    except Exception:
        _note_internal_error(self, "WebSocket")
        _close_websocket(self, WebSocketProtocol.CLOSE_STATUS_CODE_INTERNAL_ERROR, "WAMP Internal Error")


#: WebSocket close codes autobahn fails a connection with for what the client sent.
_CLIENT_FAULTS = frozenset(
    {
        WebSocketProtocol.CLOSE_STATUS_CODE_PROTOCOL_ERROR,
        WebSocketProtocol.CLOSE_STATUS_CODE_INVALID_PAYLOAD,
        WebSocketProtocol.CLOSE_STATUS_CODE_MESSAGE_TOO_BIG,
    }
)


def _quiet_fail_connection(original: Callable[..., None]) -> Callable[..., None]:
    def _fail_connection(self: Any, code: int = 1001, reason: str = "going away") -> None:
        # Framing errors (bad opcode, invalid UTF-8, oversize message...): autobahn's handling, logged once.
        if self.state == WebSocketProtocol.STATE_CLOSED or code not in _CLIENT_FAULTS:
            original(self, code, reason)  # going away, internal error...: not the client's fault, as before
            return
        # autobahn's reasons for these name the rule broken and numbers, never the frame's content.
        _note_refusal(self, "WebSocket", code, f"bad frame ({reason[:120]})")
        with _silenced(self):
            original(self, code, reason)
        if self.state != WebSocketProtocol.STATE_CLOSED:
            # Crossbar sends a close frame and has no close-handshake timeout: bound the wait for the answer.
            self.factory.reactor.callLater(CLOSE_GRACE, _drop_if_open, self)

    return _fail_connection


def _quiet_send(original: Callable[..., None]) -> Callable[..., None]:
    def send(self: Any, msg: Any) -> None:
        if self.state != WebSocketProtocol.STATE_OPEN:
            # The connection is closing (a protocol error, the peer's close): nothing more reaches the peer.
            # Crossbar still answers a HELLO whose authentication finished meanwhile; autobahn would raise
            # Disconnected there, logged as an unhandled error with its traceback.
            return
        original(self, msg)

    return send


def _quiet_drop_connection(original: Callable[..., None]) -> Callable[..., None]:
    def dropConnection(self: Any, abort: bool = False) -> None:
        if not getattr(self, _REFUSED, False):
            original(self, abort)
            return
        with _silenced(self):
            original(self, abort)

    return dropConnection


class _silenced:
    """Route one protocol instance's autobahn log calls to ``debug`` while a library method runs."""

    def __init__(self, proto: Any) -> None:
        self._proto = proto

    def __enter__(self) -> None:
        self._saved = self._proto.__dict__.get("log")
        self._proto.log = _DebugOnly(self._proto.log)

    def __exit__(self, *exc: object) -> None:
        if self._saved is None:
            del self._proto.log  # back to the class attribute
        else:
            self._proto.log = self._saved


class _DebugOnly:
    def __init__(self, log: Any) -> None:
        self._log = log

    def __getattr__(self, name: str) -> Any:
        return self._log.debug


def _refuse_second_hello(session: Any, msg: Any) -> None:
    """A HELLO on a joined session is a protocol violation (WAMP: the router must close the connection).
    Crossbar only logs a warning and goes on, so any client could write a log line per message."""
    if msg.__class__ is message.Hello and session._session_id is not None:
        raise ProtocolError("HELLO received while the session is joined")


def _rawsocket_string_received(self: Any, payload: bytes) -> None:
    if getattr(self, _REFUSED, False) or self._session is None:
        return
    messages, error = _parse(self._serializer, payload)
    if error is not None:
        _note_refusal(self, "RawSocket", None, _kind(error))
        self.abort()
        return
    try:
        for msg in messages or ():
            _refuse_second_hello(self._session, msg)
            self._session.onMessage(msg)
    except CancelledError:
        pass  # as autobahn: a cancelled call is no reason to close the connection
    except _BAD_MESSAGE as e:
        _note_refusal(self, "RawSocket", None, _kind(e))
        self.abort()
    except Exception:
        _note_internal_error(self, "RawSocket")
        self.abort()


def _without_batched(original: Callable[..., None]) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        kept = {sid: s for sid, s in self._serializers.items() if not s._serializer._batched}
        self._serializers = kept
        self._protocols = [f"wamp.2.{sid}" for sid in kept]
        self.protocols = list(self._protocols)

    return __init__


def install(limits: Limits, trusted_proxies: Networks = ()) -> None:
    """Install the overrides of this module in this process (the router worker), once."""
    if _patches:
        return
    global _trusted
    _trusted = trusted_proxies
    limit = limits.max_nesting
    ser = wamp_serializer.Serializer
    _patches.replace(ser, "unserialize", _checked_unserialize(ser.unserialize, limit))
    for cls, too_deep in (
        (wamp_serializer.MsgPackObjectSerializer, msgpack_too_deep),
        (wamp_serializer.CBORObjectSerializer, cbor_too_deep),
    ):
        _patches.replace(cls, "unserialize", _checked_object_unserialize(cls.unserialize, too_deep, limit))
    _patches.replace(wamp_websocket.WampWebSocketProtocol, "onMessage", _websocket_on_message)
    server = crossbar_protocol.WampWebSocketServerProtocol
    _patches.replace(server, "_fail_connection", _quiet_fail_connection(server._fail_connection))
    _patches.replace(server, "dropConnection", _quiet_drop_connection(server.dropConnection))
    _patches.replace(server, "send", _quiet_send(server.send))
    _patches.replace(rawsocket.WampRawSocketProtocol, "stringReceived", _rawsocket_string_received)
    factory = crossbar_protocol.WampWebSocketServerFactory
    _patches.replace(factory, "__init__", _without_batched(factory.__init__))


def uninstall() -> None:
    """Undo :func:`install` (for tests)."""
    _patches.undo()
