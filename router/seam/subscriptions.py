"""
Subscriptions and registrations per session: at most ``limits.max_subscriptions`` and
``limits.max_registrations``.

Crossbar 26.10.1 lets one session subscribe to, and register, any number of URIs of its choosing: each
costs the broker or dealer an observation keyed by that URI and, on a presence channel
(:mod:`router.channels.presence`), a member with up to ``limits.max_presence_data`` bytes of data. Here
``Broker.processSubscribe`` and ``Dealer.processRegister`` answer a SUBSCRIBE or REGISTER that would take a
session beyond its cap with ERROR :data:`~router.uris.TOO_MANY_SUBSCRIPTIONS` or
:data:`~router.uris.TOO_MANY_REGISTRATIONS`, before authorization (so the answer tells nothing about the
URI). The router's own components (authrole ``trusted``) are exempt. Subscribing again to a URI the session
already subscribes to is counted like any other SUBSCRIBE: a session at its cap unsubscribes first.
"""

from __future__ import annotations

from typing import Any

from autobahn.wamp import message
from crossbar.router.broker import Broker
from crossbar.router.dealer import Dealer

from router.config import Limits
from router.uris import TOO_MANY_REGISTRATIONS, TOO_MANY_SUBSCRIPTIONS
from router.workers import LINK_ROLE

__all__ = ["RELIED_ON", "SIGNATURES", "install"]

RELIED_ON = [
    "crossbar.router.broker.Broker.processSubscribe",
    "crossbar.router.broker.Broker._session_to_subscriptions",
    "crossbar.router.broker.Broker._router",
    "crossbar.router.dealer.Dealer.processRegister",
    "crossbar.router.dealer.Dealer._session_to_registrations",
    "crossbar.router.dealer.Dealer._router",
    "crossbar.router.router.Router.send",
    "crossbar.router.session.RouterSession._authrole",
    "autobahn.wamp.message.Subscribe.request",
    "autobahn.wamp.message.Register.request",
]

SIGNATURES = {
    "crossbar.router.broker.Broker.processSubscribe": ("self", "session", "subscribe"),
    "crossbar.router.dealer.Dealer.processRegister": ("self", "session", "register"),
}

#: Sessions exempt from the caps: the router's own components, and the links between router workers and
#: nodes, which hold every subscription and registration mirrored from the other side (router.workers).
EXEMPT_ROLES = frozenset({"trusted", LINK_ROLE})


def _capped(original: Any, held: str, cap: int, kind: int, error: str, what: str) -> Any:
    def process(self: Any, session: Any, request: Any) -> Any:
        if session._authrole not in EXEMPT_ROLES and len(getattr(self, held).get(session, ())) >= cap:
            reply = message.Error(kind, request.request, error, [f"at most {cap} {what} per session"])
            self._router.send(session, reply)
            return None
        return original(self, session, request)

    process._switchboard = True  # type: ignore[attr-defined]
    return process


def install(limits: Limits) -> None:
    """Cap ``Broker.processSubscribe`` and ``Dealer.processRegister`` (idempotent)."""
    if getattr(Broker.processSubscribe, "_switchboard", False):
        return
    Broker.processSubscribe = _capped(  # type: ignore[method-assign]
        Broker.processSubscribe,
        "_session_to_subscriptions",
        limits.max_subscriptions,
        message.Subscribe.MESSAGE_TYPE,
        TOO_MANY_SUBSCRIPTIONS,
        "subscriptions",
    )
    Dealer.processRegister = _capped(  # type: ignore[method-assign]
        Dealer.processRegister,
        "_session_to_registrations",
        limits.max_registrations,
        message.Register.MESSAGE_TYPE,
        TOO_MANY_REGISTRATIONS,
        "registrations",
    )
