"""
Synchronous fast paths through Crossbar's dealer and the sending side, where the outcome is already known
(issue 14).

**CALL with a cached decision** (``Dealer.processCall``).

Crossbar 26.10.1's ``Dealer.processCall`` asks ``Router.authorize`` for every CALL and goes on in a callback
(``txaio.add_callbacks``), even when the decision comes from the authorization cache: one Deferred made,
fired and run per call, plus the CALL's options marshalled into a dict only the role would read. Here a CALL
whose decision :mod:`router.seam.authorization` would take from its cache is decided on the spot and goes
on with the very steps of Crossbar's callback (``on_authorize_success``), in its order: a denial with the
same ``not_authorized`` ERROR, the payload validation, the registration lookup, ``Dealer._call`` (so the
call timeouts of :mod:`router.seam.calls` and the per-call counts of :mod:`router.seam.metrics` run as
before) or ``no_such_procedure``.

Crossbar's own ``processCall`` runs whenever anything else is involved:

- the router traces messages, or the dealer logs at ``debug`` (Crossbar's callback logs each decision);
- ``Router.authorize`` is not the one :mod:`router.seam.authorization` installed, the session's role is
  gone, or the URI is a channel URI (:func:`router.channels.access.exact_decision` decides it);
- the decision is not in the cache (the role decides, maybe asynchronously);
- the procedure URI is invalid (Crossbar's ``invalid_uri`` ERROR).

An exception in the steps after the decision ends as Crossbar's would: in a failed Deferred that nobody
handles (logged as an unhandled error), not in the caller of ``processCall``.

**Sending a message** (``Router.send`` and the WebSocket protocol's ``send``). Every message the router
sends passes ``Router.send`` (trace check, the transport's ``send``, its count in ``Router.stats()``: the
type name lower-cased per message), autobahn's ``WampWebSocketProtocol.send`` (a ``log.trace`` call whose
arguments are built even when nobody traces), ``Serializer.serialize`` (its statistics), ``sendMessage``
(type assertions, traffic counters, limits), :mod:`router.seam.framing`'s ``sendFrame`` and ``sendData``.
Here ``Router.send`` keeps the lower-cased names per message class, and an open server connection with
a plain WebSocket (no compression, fragmentation, frame or octet logging, timings, send queue; unmasked
server frames; within the message size limit) gets the same serialization, the same counters (the
serializer's statistics, every ``trafficStats`` field autobahn counts) and the same bytes written, in one
function. Otherwise autobahn's own methods run: a message over the size limit still raises
``PayloadExceededError`` after autobahn's warning, a closing connection still drops it quietly
(:mod:`router.seam.parsing`), tracing and ``debug``/``trace`` logging still log.

Installed by :func:`router.seam.install` under the seam's version policy after :mod:`router.seam.authorization`
(whose ``Router.authorize`` it stands in for on a cache hit); ``SWITCHBOARD_FASTPATH=0`` (or
``SWITCHBOARD_SPEEDUPS=0``) leaves Crossbar's dealer alone. :data:`taken` counts how often each path was
taken, and the first time each is taken the router logs it at ``info`` (``fast path: first ...``).
"""

from __future__ import annotations

import math
import os
from typing import Any

import txaio
from autobahn.wamp import message
from autobahn.wamp import serializer as wamp_serializer
from autobahn.wamp.exception import ApplicationError, SerializationError
from autobahn.websocket.protocol import WebSocketProtocol
from crossbar.router import dealer as crossbar_dealer
from crossbar.router import protocol as crossbar_protocol
from crossbar.router.dealer import Dealer
from crossbar.router.router import Router
from twisted.internet import defer
from twisted.logger import Logger

from router.channels.access import exact_decision
from router.patches import Patches
from router.seam import DEALER_CALL, authorization, framing

__all__ = ["RELIED_ON", "SIGNATURES", "SWITCH_ENV", "Taken", "install", "installed", "taken", "uninstall"]

#: Set to ``0`` to leave Crossbar's dealer alone (``SWITCHBOARD_SPEEDUPS=0`` does too).
SWITCH_ENV = "SWITCHBOARD_FASTPATH"

#: Crossbar/autobahn/txaio names this module relies on (tests/unit/test_seam_canary.py).
RELIED_ON = [
    "crossbar.router.dealer.Dealer.processCall",
    "crossbar.router.dealer.Dealer._call",
    "crossbar.router.dealer.Dealer._router",
    "crossbar.router.dealer.Dealer._registration_map",
    "crossbar.router.dealer.Dealer._option_uri_strict",
    "crossbar.router.dealer._URI_PAT_STRICT_NON_EMPTY",
    "crossbar.router.dealer._URI_PAT_LOOSE_NON_EMPTY",
    "crossbar.router.router.Router.authorize",
    "crossbar.router.router.Router.validate",
    "crossbar.router.router.Router.is_traced",
    "crossbar.router.router.Router.send",
    "crossbar.router.router.Router._roles",
    "crossbar.router.router.Router._authorization_cache",
    "crossbar.router.session.RouterSession._realm",
    "crossbar.router.session.RouterSession._authrole",
    "crossbar.router.session.RouterSession._authid",
    "crossbar.router.session.RouterSession._session_id",
    "autobahn.wamp.message.Call.procedure",
    "autobahn.wamp.message.Call.request",
    "autobahn.wamp.message.Call.payload",
    "autobahn.wamp.message.Call.args",
    "autobahn.wamp.message.Call.kwargs",
    "autobahn.wamp.message.Call.correlation_id",
    "txaio.tx._no_op",
    "crossbar.router.router.Router._trace_traffic",
    "crossbar.router.router.Router._is_traced",
    "crossbar.router.router.Router._message_stats",
    "crossbar.router.session.RouterSession._transport",
    "crossbar.router.protocol.WampWebSocketServerProtocol.send",
    "autobahn.wamp.websocket.WampWebSocketProtocol.send",
    "autobahn.wamp.websocket.WampWebSocketServerProtocol._serializer",
    "autobahn.wamp.websocket.WampWebSocketProtocol._session",
    "autobahn.wamp.serializer.Serializer.serialize",
    "autobahn.wamp.serializer.Serializer._serializer",
    "autobahn.wamp.serializer.Serializer._serialized_bytes",
    "autobahn.wamp.serializer.Serializer._serialized_messages",
    "autobahn.wamp.serializer.Serializer._serialized_rated_messages",
    "autobahn.wamp.serializer.Serializer._autoreset_callback",
    "autobahn.wamp.serializer.Serializer.RATED_MESSAGE_SIZE",
    "autobahn.websocket.protocol.WebSocketProtocol.sendMessage",
    "autobahn.websocket.protocol.WebSocketProtocol.sendData",
    "autobahn.websocket.protocol.WebSocketProtocol.send_queue",
    "autobahn.websocket.protocol.WebSocketServerFactory.logOctets",
    "autobahn.websocket.protocol.WebSocketServerFactory.autoFragmentSize",
    "autobahn.websocket.protocol.TrafficStats.outgoingWebSocketMessages",
    "autobahn.websocket.protocol.TrafficStats.outgoingOctetsAppLevel",
    "autobahn.websocket.protocol.TrafficStats.outgoingOctetsWebSocketLevel",
    "autobahn.websocket.protocol.TrafficStats.outgoingOctetsWireLevel",
    "autobahn.websocket.protocol.WebSocketServerFactory.maskServerFrames",
]

#: What is replaced or called with positional arguments: the parameters expected.
SIGNATURES = {
    "crossbar.router.dealer.Dealer.processCall": ("self", "session", "call"),
    **DEALER_CALL,
    "crossbar.router.router.Router.validate": ("self", "payload_type", "uri", "args", "kwargs", "validate"),
    "crossbar.router.router.Router.send": ("self", "session", "msg"),
    "autobahn.wamp.websocket.WampWebSocketProtocol.send": ("self", "msg"),
    "autobahn.wamp.serializer.Serializer.serialize": ("self", "msg"),
    "autobahn.websocket.protocol.WebSocketProtocol.sendMessage": (
        "self",
        "payload",
        "isBinary",
        "fragmentSize",
        "sync",
        "doNotCompress",
    ),
    "autobahn.websocket.protocol.WebSocketProtocol.sendData": ("self", "data", "sync", "chopsize"),
}


class Taken:
    """How often each fast path was taken (for tests and for the benchmark's notes)."""

    def __init__(self) -> None:
        #: CALLs decided from the authorization cache.
        self.calls = 0
        #: WebSocket messages sent in one function.
        self.sends = 0


#: The calls decided here since the process started.
taken = Taken()

_log = Logger(namespace="switchboard.fastpath")
_patches = Patches()
_NO_OP: Any = txaio.tx._no_op
_dealer_module: Any = crossbar_dealer
_STRICT = _dealer_module._URI_PAT_STRICT_NON_EMPTY
_LOOSE = _dealer_module._URI_PAT_LOOSE_NON_EMPTY
_CALL = message.Call.MESSAGE_TYPE


def cached_decision(router: Any, session: Any, uri: str, action: str) -> dict[str, Any] | None:
    """The decision :mod:`router.seam.authorization`'s ``Router.authorize`` would answer from its cache for
    an exact-match action, with the same effect on the cache (the entry becomes the most recently used), or
    None when it would do anything else (ask the role, derive a channel URI, deny a gone role)."""
    if type(router).authorize is not _installed_authorize or _installed_authorize is None:
        return None
    authrole = session._authrole
    if authrole not in router._roles:
        return None
    channels = getattr(router, authorization.CHANNELS_ATTRIBUTE, None)
    if channels and authrole != "trusted" and exact_decision(uri, action) is not None:
        return None
    cache = router._authorization_cache
    if type(cache) is not authorization.DecisionCache:
        return None
    return cache.lookup((session._realm, authrole, uri, action, "exact"))


def _error(call: Any, uri: str, reason: str) -> Any:
    reply = message.Error(_CALL, call.request, uri, [reason])
    reply.correlation_id = call.correlation_id
    reply.correlation_uri = call.procedure
    reply.correlation_is_anchor = False
    reply.correlation_is_last = True
    return reply


def _make_process_call(original: Any) -> Any:
    def processCall(self: Any, session: Any, call: Any) -> Any:
        router = self._router
        if router.is_traced or self.log.debug is not _NO_OP:
            return original(self, session, call)
        procedure = call.procedure
        if not (_STRICT if self._option_uri_strict else _LOOSE).match(procedure):
            return original(self, session, call)
        decision = cached_decision(router, session, procedure, "call")
        if decision is None:
            return original(self, session, call)
        taken.calls += 1
        if taken.calls == 1:
            _log.info("fast path: first CALL decided from the authorization cache")
        try:
            _authorized(self, router, session, call, decision)
        except BaseException:
            # Crossbar's callback would have failed inside its Deferred: the same unhandled failure, logged
            # when the Deferred is collected.
            defer.fail()
        return None

    processCall._switchboard = True  # type: ignore[attr-defined]
    return processCall


def _authorized(dealer: Any, router: Any, session: Any, call: Any, authorization: dict[str, Any]) -> None:
    """Crossbar 26.10.1's ``Dealer.processCall.on_authorize_success`` (its debug log aside: not at ``debug``)."""
    procedure = call.procedure
    if not authorization["allow"]:
        reason = (
            f'session (session_id={session._session_id}, authid="{session._authid}", authrole="{session._authrole}")'
            f' is not authorized to call procedure "{procedure}" on realm "{session._realm}"'
        )
        router.send(session, _error(call, ApplicationError.NOT_AUTHORIZED, reason))
        return
    if call.payload is None:
        try:
            router.validate("call", procedure, call.args, call.kwargs, validate=authorization.get("validate"))
        except Exception as e:
            reason = f"call of procedure '{procedure}' with invalid application payload: {e}"
            router.send(session, _error(call, ApplicationError.INVALID_ARGUMENT, reason))
            return
    registration = dealer._registration_map.best_matching_observation(procedure)
    if registration:
        dealer._call(session, call, registration, authorization)
    else:
        reason = f"no callee registered for procedure <{procedure}>"
        router.send(session, _error(call, ApplicationError.NO_SUCH_PROCEDURE, reason))


def _make_router_send(original: Any) -> Any:
    names: dict[type, str] = {}

    def send(self: Any, session: Any, msg: Any) -> None:
        if self._trace_traffic or self._is_traced:
            return original(self, session, msg)  # type: ignore[no-any-return]
        transport = session._transport
        if transport:
            transport.send(msg)
        else:
            self.log.debug("skip sending msg - transport already closed")
        cls = msg.__class__
        name = names.get(cls)
        if name is None:
            name = names[cls] = cls.__name__.lower()
        sent = self._message_stats["sent"]
        sent[name] = sent.get(name, 0) + 1
        return None

    send._switchboard = True  # type: ignore[attr-defined]
    return send


_OPEN = WebSocketProtocol.STATE_OPEN
_plain_senders: dict[type, bool] = {}


def _plain_sender(cls: type) -> bool:
    """Whether ``cls`` sends with autobahn's ``sendMessage``/``sendData`` and framing's ``sendFrame``."""
    plain = _plain_senders.get(cls)
    if plain is None:
        plain = (
            getattr(cls, "sendMessage", None) is WebSocketProtocol.__dict__["sendMessage"]
            and getattr(cls, "sendData", None) is WebSocketProtocol.__dict__["sendData"]
            and getattr(cls, "sendFrame", None) is framing._send_frame
        )
        _plain_senders[cls] = plain
    return plain


def _make_websocket_send(original: Any) -> Any:
    plain_serialize = wamp_serializer.Serializer.__dict__["serialize"]

    def send(self: Any, msg: Any) -> None:
        if self.state != _OPEN or self._session is None or self.log.trace is not _NO_OP:
            return original(self, msg)  # type: ignore[no-any-return]
        ser = self._serializer
        try:
            if type(ser).serialize is not plain_serialize or ser._autoreset_callback:
                payload, binary = ser.serialize(msg)
            else:  # autobahn's Serializer.serialize without its statistics' auto-reset
                payload, binary = msg.serialize(ser._serializer), ser._serializer.BINARY
                ser._serialized_bytes += len(payload)
                ser._serialized_messages += 1
                ser._serialized_rated_messages += math.ceil(float(len(payload)) / ser.RATED_MESSAGE_SIZE)
        except Exception as e:
            self.log.error(f"WAMP message serialization error: {e}")
            raise SerializationError(f"WAMP message serialization error: {e}")  # noqa: B904 - as autobahn raises it
        length = len(payload)
        if (
            self.trackedTimings
            or self._perMessageCompress is not None
            or self.logFrames
            or self.logOctets
            or self.send_queue
            or (0 < self.maxMessagePayloadSize < length)
            or (0 < self.autoFragmentSize < length)
            or self.maskServerFrames
            or not self.factory.isServer
            or self.log.debug is not _NO_OP
            or not _plain_sender(type(self))
        ):
            self.sendMessage(payload, binary)
            return None
        taken.sends += 1
        if taken.sends == 1:
            _log.info("fast path: first message sent in one function")
        raw = framing._build_frame(2 if binary else 1, payload, True, 0, None)
        stats = self.trafficStats
        stats.outgoingWebSocketMessages += 1
        stats.outgoingOctetsAppLevel += length
        stats.outgoingOctetsWebSocketLevel += length
        stats.outgoingWebSocketFrames += 1
        self.transport.write(raw)
        if self.state == _OPEN:
            stats.outgoingOctetsWireLevel += len(raw)
        return None

    send._switchboard = True  # type: ignore[attr-defined]
    return send


_installed_authorize: Any = None


def installed() -> bool:
    """Whether :func:`install` has put the fast paths in this process."""
    return bool(_patches)


def install() -> bool:
    """Put the fast paths into Crossbar's dealer (idempotent); False when switched off (``SWITCHBOARD_FASTPATH=0``
    or ``SWITCHBOARD_SPEEDUPS=0``), when :mod:`router.seam.authorization` is not installed (no cache to read),
    or when skipped by the seam's version policy (:func:`router.seam.allowed`)."""
    global _installed_authorize
    if _patches:
        return True
    if "0" in (os.environ.get(SWITCH_ENV, "1"), os.environ.get("SWITCHBOARD_SPEEDUPS", "1")):
        _log.info("fast paths not installed: switched off")
        return False
    if not getattr(Router.authorize, "_switchboard", False):
        _log.warn("fast paths not installed: router.seam.authorization is not")
        return False
    from router.seam import allowed

    if not allowed("fastpath"):
        return False
    _installed_authorize = Router.authorize
    _patches.wrap(Dealer, "processCall", _make_process_call)
    _patches.wrap(Router, "send", _make_router_send)
    if framing.installed():
        # In front of router.seam.parsing's quiet send (which only acts on connections not open).
        _patches.wrap(crossbar_protocol.WampWebSocketServerProtocol, "send", _make_websocket_send)
    return True


def uninstall() -> None:
    """Undo :func:`install` (for tests)."""
    global _installed_authorize
    _patches.undo()
    _installed_authorize = None
