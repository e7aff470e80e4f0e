"""
Denials that tell nothing: REGISTER, and PUBLISH in the reserved ``wamp.*`` namespace, authorized first.

Crossbar 26.10.1 builds a ``not_authorized`` reply for a REGISTER the role does not allow, but then checks
for an existing registration and answers ``procedure_already_exists`` if there is one, so any session can
find out which procedures exist (crossbar#1463); and it answers ``invalid_uri`` for REGISTER and PUBLISH in
the reserved ``wamp.*`` namespace before asking the role. :func:`install` authorizes those first, so a
denied action is always ``wamp.error.not_authorized``. When the role does allow the action, Crossbar's own
path runs unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from crossbar.router.broker import Broker
from crossbar.router.dealer import Dealer
from twisted.internet import defer

__all__ = ["RELIED_ON", "SIGNATURES", "install"]

#: Crossbar/autobahn names this module relies on (checked by tests/unit/test_seam_canary.py and, on
#: unverified versions, before installing).
RELIED_ON = [
    "crossbar.router.dealer.Dealer.processRegister",
    "crossbar.router.dealer.Dealer._router",
    "crossbar.router.broker.Broker.processPublish",
    "crossbar.router.broker.Broker._router",
    "crossbar.router.router.Router.authorize",
    "crossbar.router.router.Router.send",
    "crossbar.router.session.RouterSession._authrole",
    "autobahn.wamp.message.Register.marshal_options",
    "autobahn.wamp.message.Publish.marshal_options",
    "autobahn.wamp.message.Publish.acknowledge",
]

#: Methods wrapped or called here with positional arguments: the parameters they are expected to take.
SIGNATURES = {
    "crossbar.router.dealer.Dealer.processRegister": ("self", "session", "register"),
    "crossbar.router.broker.Broker.processPublish": ("self", "session", "publish"),
    "crossbar.router.router.Router.authorize": ("self", "session", "uri", "action", "options"),
    "crossbar.router.router.Router.send": ("self", "session", "msg"),
}


def install() -> None:
    """Authorize first where Crossbar would otherwise answer something other than ``not_authorized``
    (idempotent).

    - every REGISTER of a session not ``trusted``: Crossbar answers ``procedure_already_exists`` for an
      already registered procedure, ``invalid_uri`` in the reserved ``wamp.*`` namespace, and its own
      denial names the session, so denials would differ by URI;
    - acknowledged PUBLISH in the reserved ``wamp.*`` namespace (Crossbar: ``invalid_uri``).
    """
    if getattr(Dealer.processRegister, "_switchboard", False):
        return

    def leaks_register(dealer: Any, session: Any, register: Any) -> bool:
        # Always, for every role but the router's own: Crossbar's denial names the session and differs
        # from this one, and its checks before authorizing tell registered procedures apart.
        return bool(session._authrole != "trusted")

    def leaks_publish(broker: Any, session: Any, publish: Any) -> bool:
        return _reserved(session, publish.topic)

    Dealer.processRegister = _authorize_first(  # type: ignore[method-assign]
        Dealer.processRegister, leaks_register, "register", lambda m: m.procedure, message.Register.MESSAGE_TYPE
    )
    Broker.processPublish = _authorize_first(  # type: ignore[method-assign]
        Broker.processPublish, leaks_publish, "publish", lambda m: m.topic, message.Publish.MESSAGE_TYPE
    )


def _reserved(session: Any, uri: str) -> bool:
    return session._authrole != "trusted" and uri.startswith("wamp.")


def _authorize_first(
    original: Callable[..., Any],
    would_leak: Callable[[Any, Any, Any], bool],
    action: str,
    uri_of: Callable[[Any], str],
    request_type: int,
) -> Callable[..., Any]:
    def process(self: Any, session: Any, msg: Any) -> Any:
        if not would_leak(self, session, msg):
            return original(self, session, msg)
        uri = uri_of(msg)
        deciding = defer.maybeDeferred(self._router.authorize, session, uri, action, msg.marshal_options())

        def decided(authorization: Any) -> Any:
            if authorization["allow"]:
                return original(self, session, msg)
            if action == "register" or msg.acknowledge:
                reason = f"not authorized to {action} '{uri}'"
                error = message.Error(request_type, msg.request, ApplicationError.NOT_AUTHORIZED, [reason])
                self._router.send(session, error)
            return None

        def failed(failure: Any) -> None:
            if action == "register" or msg.acknowledge:
                error = message.Error(
                    request_type, msg.request, ApplicationError.AUTHORIZATION_FAILED, [str(failure.value)]
                )
                self._router.send(session, error)

        return deciding.addCallbacks(decided, failed)

    process._switchboard = True  # type: ignore[attr-defined]
    return process
