"""
Sessions joining and leaving (event lines, always), the routers' own message counts, and the per-call counts
of ``/metrics`` (when enabled).

:func:`install` (from :func:`router.seam.install`, always) wraps ``Router._session_joined`` and
``Router._session_left``, which Crossbar calls once for each *client* session (the router's own components
join another way): each writes a ``session_joined`` / ``session_left`` event line (:mod:`router.events`),
counts the join or leave of its realm and remembers the realm's router. At scrape time the routers are read:
their joined client sessions (:func:`client_sessions`) and the WAMP messages each router has processed and
sent, by type, which Crossbar counts anyway (``Router.stats()``; :func:`routed_messages`): so messages,
publishes and deliveries cost nothing more per message.

:func:`install_counters` (from :func:`router.metrics.enable`, only when metrics are served) wraps what
happens once per call, not per message:

- ``Dealer._call`` (a CALL authorized and matched to a registration): calls by the registration's URI;
- ``Dealer.processInvocationError`` (a callee's ERROR for an invocation): call errors by that URI.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from crossbar.router import protocol as crossbar_protocol
from crossbar.router.dealer import Dealer
from crossbar.router.router import Router
from crossbar.router.session import RouterSession

from router import events
from router.config import Limits
from router.metrics import Counts, counts
from router.patches import Patches
from router.peers import Networks, client_address, networks
from router.seam import DEALER_CALL
from router.workers import LINK_ROLE

__all__ = [
    "RELIED_ON",
    "SIGNATURES",
    "client_sessions",
    "install",
    "install_counters",
    "routed_messages",
    "uninstall",
]

#: Crossbar/autobahn names this module relies on (checked by tests/unit/test_seam_canary.py).
RELIED_ON = [
    "crossbar.router.router.Router._session_joined",
    "crossbar.router.router.Router._session_left",
    "crossbar.router.router.Router._session_id_to_session",
    "crossbar.router.router.Router.realm",
    "crossbar.router.router.Router.stats",
    "crossbar.router.session.RouterSession._authrole",
    "crossbar.router.session.RouterSession._transport",
    "crossbar.router.session.RouterSession._session_details",
    "crossbar.router.protocol.WampWebSocketServerProtocol",
    "crossbar.router.protocol.WampRawSocketServerProtocol",
    "crossbar.router.dealer.Dealer._call",
    "crossbar.router.dealer.Dealer.processInvocationError",
    "crossbar.router.dealer.Dealer._invocations",
    "crossbar.router.dealer.InvocationRequest.registration",
    "crossbar.router.dealer.InvocationRequest.caller",
]

#: Methods wrapped or called here (with positional arguments): the parameters they are expected to take.
SIGNATURES = {
    "crossbar.router.router.Router._session_joined": ("self", "session", "session_details"),
    "crossbar.router.router.Router._session_left": ("self", "session", "session_details", "close_details"),
    "crossbar.router.router.Router.stats": ("self", "reset"),
    **DEALER_CALL,
    "crossbar.router.dealer.Dealer.processInvocationError": ("self", "session", "error"),
}

_patches = Patches()
#: The router of each realm a client session joined (read at scrape time).
_routers: dict[str, Any] = {}
#: Per realm, the message counts of its routers that were replaced (Crossbar drops a realm's router when
#: its last session leaves): (received, sent) by message type.
_retired: dict[str, tuple[Counter[str], Counter[str]]] = {}
_trusted: Networks = ()


def _peer(details: Any) -> str | None:
    transport = getattr(details, "transport", None)
    if transport is None:
        return None
    return client_address(transport.peer, transport.http_headers_received, _trusted)


def _remember(realm: str, router: Any) -> None:
    known = _routers.get(realm)
    if known is router:
        return
    if known is not None:
        received, sent = _retired.setdefault(realm, (Counter(), Counter()))
        messages = known.stats()["messages"]
        received.update(messages["received"])
        sent.update(messages["sent"])
    _routers[realm] = router


#: The router's own roles: ``trusted`` (the control socket: the readiness probe, ``switchboard status``) and
#: the links between router workers and nodes (:mod:`router.workers`). Their sessions are not clients: neither
#: logged (every ``/ready`` check would write two lines) nor counted, and a call a link makes on behalf of a
#: client is counted once, by the worker the client called in.
_OWN_ROLES = frozenset({"trusted", LINK_ROLE})


def _joined(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _session_joined(self: Any, session: Any, session_details: Any) -> Any:
        result = original(self, session, session_details)
        realm = self.realm
        _remember(realm, self)
        if session_details.authrole in _OWN_ROLES:
            return result
        counts.joins[realm] = counts.joins.get(realm, 0) + 1
        events.emit(
            "session_joined",
            realm=realm,
            session=session_details.session,
            authid=events.clip(session_details.authid),
            authrole=session_details.authrole,
            authmethod=session_details.authmethod,
            peer=_peer(session_details),
        )
        return result

    return _session_joined


def _left(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _session_left(self: Any, session: Any, session_details: Any, close_details: Any) -> Any:
        if session_details is None:
            # Never joined: an ABORT during the challenge. Crossbar calls this anyway and fails on the missing
            # details (an internal error, a traceback per such client); there is nothing to undo.
            return None
        result = original(self, session, session_details, close_details)
        realm = self.realm
        if session_details.authrole in _OWN_ROLES:
            return result
        counts.leaves[realm] = counts.leaves.get(realm, 0) + 1
        events.emit(
            "session_left",
            realm=realm,
            session=session_details.session,
            authid=events.clip(session_details.authid),
            reason=events.clip(getattr(close_details, "reason", None)),
        )
        return result

    return _session_left


def install(limits: Limits, trusted_proxies: tuple[str, ...] = ()) -> None:
    """Join/leave event lines (their budget, ``limits.max_log_events``, is set by
    :class:`router.worker.WorkerBootstrap` with :func:`router.events.configure`) and counts (idempotent)."""
    global _trusted
    if _patches.done(Router, "_session_joined"):
        return
    _trusted = networks(trusted_proxies)
    _patches.wrap(Router, "_session_joined", _joined)
    _patches.wrap(Router, "_session_left", _left)


def install_counters(c: Counts = counts) -> bool:
    """The per-call counts into ``c`` (idempotent); False where the version policy skips this module."""
    from router.seam import allowed

    if not allowed("metrics"):
        return False

    def dispatched(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def _call(
            self: Any, session: Any, call: Any, registration: Any, authorization: Any, is_queued_call: bool = False
        ) -> Any:
            if not is_queued_call and session._authrole != LINK_ROLE:
                c.call(registration.uri)
            return original(self, session, call, registration, authorization, is_queued_call)

        return _call

    def failed(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def processInvocationError(self: Any, session: Any, error: Any) -> Any:
            invocation = self._invocations.get(error.request)
            if invocation is not None and invocation.caller._authrole != LINK_ROLE:
                c.call_error(invocation.registration.uri)
            return original(self, session, error)

        return processInvocationError

    _patches.wrap(Dealer, "_call", dispatched)
    _patches.wrap(Dealer, "processInvocationError", failed)
    return True


def _transport_type(transport: Any) -> str:
    if isinstance(transport, crossbar_protocol.WampWebSocketServerProtocol):
        return "websocket"
    if isinstance(transport, crossbar_protocol.WampRawSocketServerProtocol):
        return "rawsocket"
    return "other"


def client_sessions() -> Iterator[tuple[str, str, str]]:
    """(realm, authrole, transport type) of every client session joined now, read from the routers."""
    for realm, router in list(_routers.items()):
        for session in list(router._session_id_to_session.values()):
            if (
                isinstance(session, RouterSession)
                and session._session_details is not None
                and session._authrole not in _OWN_ROLES
            ):
                yield realm, str(session._authrole), _transport_type(session._transport)


def routed_messages() -> Iterator[tuple[str, Mapping[str, int], Mapping[str, int]]]:
    """(realm, received, sent) for each realm: the WAMP messages its routers processed and sent, by the
    lower-case name of their type (``call``, ``event``, ...), as Crossbar counts them."""
    for realm, router in list(_routers.items()):
        messages = router.stats()["messages"]
        received, sent = Counter(messages["received"]), Counter(messages["sent"])
        old_received, old_sent = _retired.get(realm, ((), ()))
        received.update(old_received)
        sent.update(old_sent)
        yield realm, received, sent


def uninstall() -> None:
    """Undo :func:`install` and :func:`install_counters`, forget the routers (for tests)."""
    _routers.clear()
    _retired.clear()
    _patches.undo()
