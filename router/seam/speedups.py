"""
Speed-ups of autobahn and Crossbar internals, each measured by ``bench/run.py`` (see docs/performance.md).

Everything here replaces a function of the pinned libraries by one that gives the same observable result
faster. Like every module of :mod:`router.seam`, it follows the seam's version policy
(:func:`router.seam.allowed`): on versions other than :data:`router.seam.VERIFIED`, :func:`install` raises
unless ``SWITCHBOARD_UNVERIFIED=1``, and then installs only if everything in :data:`RELIED_ON` exists. The
router worker installs them at start (:func:`router.seam.install`); a Python client may call
:func:`install` too. The environment variable ``SWITCHBOARD_SPEEDUPS=0`` turns them off (to compare, or to
rule them out).

**JSON.** autobahn decodes JSON with the standard library's *pure-Python* scanner, because WAMP sends
binary values in JSON as strings ``"\\u0000" + base64(bytes)`` and the C scanner cannot hook strings.
:func:`dumps` and :func:`loads` use orjson (C) and keep that convention exactly: ``bytes`` are written as
``"\\u0000"`` + standard base64 with padding; on reading, a string value (not an object key) starting with
``\\u0000`` becomes ``bytes``, which is only looked for when the raw message contains ``\\u0000``. Where
orjson and the standard library disagree, the standard library decides: integers beyond 64 bits and
non-string object keys are written, and messages with 20-digit numbers or ``NaN`` are read, by autobahn's
own code. One deliberate difference: a float NaN or infinity is written as ``null`` (as JavaScript's
``JSON.stringify`` does), where autobahn writes ``NaN``, which no JSON parser of a client accepts.

**Log arguments.** The router's per-message paths call ``self.log.debug(..., func=hltype(...),
x=hlval(...), authorization=pformat(...))``: the logger drops the message at level ``info``, but the
arguments, ANSI-coloured with click and pretty-printed, are built first (a fifth of the router's CPU per
call, by profile). When the log level is above ``debug``, :func:`install` rebinds those helper names in the
per-message modules (:data:`PLAIN_HELPERS`) to functions returning their argument unformatted. Every call
of them there is an argument of a log call but one, autobahn's ``Timings.__str__``, which is replaced by the
same code bound to the real ``pformat`` (a unit test parses the modules to check); the few of those
messages that are emitted (``info`` and up) show plain values instead of click-coloured ones, which
Switchboard turns off anyway (``--color false``). At ``debug`` or ``trace`` they are left alone.

**WebSocket masking and UTF-8.** autobahn unmasks every client frame with a masker object created per
frame through cffi (~5 µs for a small frame); wsaccel's C masker and UTF-8 validator, which Crossbar
already depends on, do the same in ~0.6 µs and ~0.5 µs.
"""

from __future__ import annotations

import base64
import decimal
import importlib
import os
import pprint
import re
from typing import Any

import autobahn.util
import crossbar._util
import orjson
import txaio
import wsaccel.utf8validator
import wsaccel.xormask
from autobahn.wamp import serializer as autobahn_serializer
from twisted.logger import Logger

__all__ = ["PLAIN_HELPERS", "RELIED_ON", "SIGNATURES", "dumps", "install", "installed", "loads", "uninstall"]

#: autobahn/Crossbar names this module relies on (checked by tests/unit/test_seam_canary.py and, on
#: unverified versions, before installing).
RELIED_ON = [
    "autobahn.wamp.serializer._dumps",
    "autobahn.wamp.serializer._loads",
    "autobahn.wamp.serializer.JsonObjectSerializer.serialize",
    "autobahn.wamp.serializer.JsonObjectSerializer.unserialize",
    "autobahn.wamp.serializer.JsonObjectSerializer._batched",
    "autobahn.wamp.serializer.JsonObjectSerializer._use_binary_hex_encoding",
    "autobahn.wamp.serializer.JsonObjectSerializer._use_decimal_from_str",
    "autobahn.wamp.serializer.JsonObjectSerializer._use_decimal_from_float",
    "autobahn.websocket.protocol.create_xor_masker",
    "autobahn.websocket.protocol.Utf8Validator",
    "autobahn.websocket.protocol.Timings.__str__",
    "autobahn.websocket.protocol.Timings._timings",
    "autobahn.util.hl",
    "autobahn.util.hlid",
    "autobahn.util.hlval",
    "autobahn.util.hltype",
    "crossbar._util.hl",
    "crossbar._util.hlid",
    "crossbar._util.hlval",
    "crossbar._util.hltype",
]

#: Methods replaced here, called by autobahn with positional arguments: the parameters expected.
SIGNATURES = {
    "autobahn.wamp.serializer.JsonObjectSerializer.serialize": ("self", "obj"),
    "autobahn.wamp.serializer.JsonObjectSerializer.unserialize": ("self", "payload"),
}

#: Per-message modules whose log-argument helpers are rebound when debug logging is off.
PLAIN_HELPERS = (
    "crossbar.router.router",
    "crossbar.router.dealer",
    "crossbar.router.broker",
    "crossbar.router.session",
    "crossbar.router.protocol",
    "crossbar.router.role",
    "autobahn.wamp.websocket",
    "autobahn.websocket.protocol",
    "autobahn.twisted.websocket",
)

_log = Logger(namespace="switchboard.speedups")
_original: dict[str, Any] = {}
_rebound: list[tuple[Any, str, Any]] = []
_BINARY_MARK = b"\\u0000"
#: Numbers orjson would read as floats instead of integers: 20 digits and more (beyond 2**64), and negative
#: ones of 19 digits (some are below -2**63). autobahn's parser reads those.
_LONG_NUMBER = re.compile(rb"\d{20}|-\d{19}")
_MAX_DEPTH = 1024  # orjson's limit
_orjson_dumps = orjson.dumps
_orjson_loads = orjson.loads
_b64encode = base64.b64encode
_b64decode = base64.b64decode


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return "\x00" + _b64encode(obj).decode("ascii")
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(obj: Any) -> bytes:
    """WAMP JSON for ``obj``: what autobahn writes (compact, UTF-8, binary as ``"\\u0000"`` + base64)."""
    try:
        return _orjson_dumps(obj, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:
        # Integers beyond 64 bits, non-string keys, types neither knows: autobahn's rules (and errors).
        encoded: bytes = autobahn_serializer._dumps(obj).encode("utf8")
        return encoded


def loads(data: bytes) -> Any:
    """The value of one WAMP JSON message, with ``"\\u0000"``-prefixed string values turned into bytes."""
    if _LONG_NUMBER.search(data) is None:
        try:
            value = _orjson_loads(data)
        except orjson.JSONDecodeError:
            pass  # NaN, lone surrogates, too deep, invalid input: autobahn's parser decides (and raises)
        else:
            return _unbinary(value) if _BINARY_MARK in data else value
    return _autobahn_loads(data)


def _autobahn_loads(data: bytes) -> Any:
    """autobahn's parser, which recurses once per level: nesting orjson refuses is refused before it recurses
    (it could only end in a RecursionError unwinding a thousand frames; in the router, router.seam.parsing
    bounds nesting far below this before any parser runs)."""
    if data.count(b"[") + data.count(b"{") > _MAX_DEPTH:
        from router.seam.parsing import json_too_deep  # only for the rare message that needs it

        if json_too_deep(data, _MAX_DEPTH):
            raise ValueError(f"JSON nested deeper than {_MAX_DEPTH} levels")
    return autobahn_serializer._loads(data.decode("utf8"))


def _unbinary(value: Any) -> Any:
    if isinstance(value, str):
        return _b64decode(value[1:]) if value[:1] == "\x00" else value
    if isinstance(value, list):
        return [_unbinary(v) for v in value]
    if isinstance(value, dict):
        return {k: _unbinary(v) for k, v in value.items()}
    return value


def _plain(value: Any, *args: Any, **kwargs: Any) -> Any:
    return value


def _plain_type(obj: Any, *args: Any, **kwargs: Any) -> Any:
    return getattr(obj, "__qualname__", obj)


def _originals() -> dict[str, tuple[Any, Any]]:
    """Helper name -> (the library functions it may be bound to, its plain stand-in)."""
    helpers: dict[str, tuple[Any, Any]] = {}
    for name in ("hl", "hlid", "hlval", "hlflag", "hluserid", "hlcontract", "hltype"):
        found = tuple(getattr(m, name) for m in (autobahn.util, crossbar._util) if hasattr(m, name))
        helpers[name] = (found, _plain_type if name == "hltype" else _plain)
    helpers["pformat"] = ((pprint.pformat,), _plain)
    return helpers


def _timings_text(self: Any) -> str:
    return pprint.pformat(self._timings)


def _rebind_log_helpers() -> None:
    helpers = _originals()
    for module_name in PLAIN_HELPERS:
        module = importlib.import_module(module_name)
        for name, (originals, plain) in helpers.items():
            current = getattr(module, name, None)
            if current is not None and current in originals:
                _rebound.append((module, name, current))
                setattr(module, name, plain)


def _serialize(self: Any, obj: Any) -> bytes:
    if self._use_binary_hex_encoding or self._use_decimal_from_str or self._use_decimal_from_float:
        return _original["serialize"](self, obj)  # type: ignore[no-any-return]
    data = dumps(obj)
    return data + b"\x18" if self._batched else data


def _unserialize(self: Any, payload: bytes) -> list[Any]:
    if self._use_binary_hex_encoding or self._use_decimal_from_str or self._use_decimal_from_float:
        return _original["unserialize"](self, payload)  # type: ignore[no-any-return]
    if not self._batched:
        return [loads(payload)]
    chunks = payload.split(b"\x18")[:-1]
    if not chunks:
        raise ValueError("batch format error")
    return [loads(chunk) for chunk in chunks]


def installed() -> bool:
    """Whether :func:`install` has replaced the library functions in this process."""
    return bool(_original)


def install() -> bool:
    """Install the speed-ups in this process (idempotent); False if switched off (``SWITCHBOARD_SPEEDUPS=0``)
    or skipped by the seam's version policy (:func:`router.seam.allowed`, which raises on unverified
    versions unless ``SWITCHBOARD_UNVERIFIED=1``)."""
    if _original:
        return True
    if os.environ.get("SWITCHBOARD_SPEEDUPS", "1") == "0":
        _log.info("speed-ups not installed: SWITCHBOARD_SPEEDUPS=0")
        return False
    from router.seam import allowed

    if not allowed("speedups"):
        return False
    cls = autobahn_serializer.JsonObjectSerializer
    _original.update(serialize=cls.serialize, unserialize=cls.unserialize)
    cls.serialize = _serialize  # type: ignore[method-assign]
    cls.unserialize = _unserialize  # type: ignore[method-assign]
    ws: Any = importlib.import_module("autobahn.websocket.protocol")
    _rebound.extend([(ws, "create_xor_masker", ws.create_xor_masker), (ws, "Utf8Validator", ws.Utf8Validator)])
    ws.create_xor_masker = wsaccel.xormask.createXorMasker
    ws.Utf8Validator = wsaccel.utf8validator.Utf8Validator
    if txaio.get_global_log_level() not in ("debug", "trace"):  # type: ignore[attr-defined]
        _rebind_log_helpers()
        # The one use of a rebound helper outside a log call: autobahn's Timings print with pformat.
        _rebound.append((ws.Timings, "__str__", ws.Timings.__str__))
        ws.Timings.__str__ = _timings_text
    return True


def uninstall() -> None:
    """Undo :func:`install` (for tests)."""
    cls = autobahn_serializer.JsonObjectSerializer
    if _original:
        cls.serialize = _original.pop("serialize")  # type: ignore[method-assign]
        cls.unserialize = _original.pop("unserialize")  # type: ignore[method-assign]
    while _rebound:
        module, name, value = _rebound.pop()
        setattr(module, name, value)
