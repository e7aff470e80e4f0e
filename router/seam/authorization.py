"""
Authorization overrides: pattern options honoured, ``forward_for`` only from links, a bounded cache.

Crossbar 26.10.1 decides every action with ``Router.authorize(session, uri, action, options)``, asking the
session's role object and caching the answer per (realm, role, URI, action). Three things there let a
client past its role or grow the router's memory:

1. **Patterns.** A SUBSCRIBE or REGISTER with ``match: prefix|wildcard`` is authorized on the pattern
   string alone, and the cache key ignores ``match``: a role allowed exact ``a.b`` subscribes to the prefix
   ``a.b`` and receives ``a.b.secret`` and ``a.bc``, or registers it and answers calls to
   ``a.b.admin.reset``. Here a pattern is decided by :func:`router.authz.rules.pattern_allowed` from the role's
   rules (every URI the pattern can match must be allowed), and ``match`` is part of the cache key.
2. **The cache** is a plain dict keyed by client-chosen URIs and never evicted (100k denied calls to
   distinct URIs: +62 MB; 1 MB URIs: +1 MB each). Here it is an LRU of ``limits.authorization_cache``
   entries, and URIs longer than :data:`MAX_CACHED_URI` bytes are decided but never cached.
3. **Identity.** The dealer and broker take a client's own ``forward_for`` (CALL, PUBLISH, YIELD, ...) as
   the true originator, so any client could call or publish as ``admin`` in the eyes of callees and
   subscribers. Only router-to-router links may set it: ``forward_for`` is dropped from every message a
   session sends unless its role is in :data:`LINK_ROLES` (the links between router workers,
   :mod:`router.workers`).

4. **Channel URIs** (:mod:`router.channels.access`): on a realm with channels, the channel procedures are
   open to every role, ``switchboard.presence.<topic>`` is decided as a subscription to ``<topic>``, and
   pattern subscriptions reaching into it by the role's right to subscribe to the topics they reach.

5. **The node's own procedures** (``switchboard.node.*``: the readiness report, the agents of the router
   workers, :mod:`router.workers`): no session but the node's own may register anything that could receive
   their calls (:func:`router.workers.reaches_node_uris`), whatever its role allows.

The role *models* (:class:`router.authz.model.Role`) a router decides patterns with are recorded by
:func:`record_roles`, which the live role installation calls for every role of the realm at start and on
every change.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from crossbar.router.router import Router
from twisted.internet import defer

from router.authz.model import Role
from router.authz.rules import pattern_allowed
from router.channels.access import exact_decision, pattern_reaches_channels, presence_pattern
from router.config import Limits
from router.workers import LINK_ROLE, reaches_node_uris

__all__ = [
    "CHANNELS_ATTRIBUTE",
    "LINK_ROLES",
    "MAX_CACHED_URI",
    "RELIED_ON",
    "SIGNATURES",
    "DecisionCache",
    "install",
    "record_roles",
    "role_model",
]

#: Private names of Crossbar this module relies on (checked by tests/unit/test_seam_canary.py).
RELIED_ON = [
    ("crossbar.router.router", "Router.authorize"),
    ("crossbar.router.router", "Router.process"),
    ("crossbar.router.role", "RouterRole.authorize"),
    ("crossbar.router.router", "Router._roles"),
    ("crossbar.router.router", "Router._authorization_cache"),
    ("crossbar.router.session", "RouterSession._realm"),
    ("crossbar.router.session", "RouterSession._authrole"),
    ("autobahn.wamp.message", "Call.forward_for"),
    ("autobahn.wamp.message", "Publish.forward_for"),
    ("autobahn.wamp.message", "Yield.forward_for"),
]

#: Methods replaced or called here with positional arguments: the parameters they are expected to take.
SIGNATURES = {
    "crossbar.router.router.Router.authorize": ("self", "session", "uri", "action", "options"),
    "crossbar.router.router.Router.process": ("self", "session", "msg"),
    "crossbar.router.role.RouterRole.authorize": ("self", "session", "uri", "action", "options"),
}

#: Roles of router-to-router link sessions, the only ones whose ``forward_for`` is believed.
LINK_ROLES: frozenset[str] = frozenset({LINK_ROLE})

#: Longest URI (in characters) whose decision is cached.
MAX_CACHED_URI = 256

_ROLES_ATTRIBUTE = "_switchboard_role_models"
#: Set on a realm's router by :func:`router.seam.channels.attach`: its channels (decides channel URIs).
CHANNELS_ATTRIBUTE = "_switchboard_channels"


class DecisionCache(OrderedDict[tuple[str, str, str, str, str], dict[str, Any]]):
    """Authorization decisions, least recently used evicted first, at most ``size`` of them.

    Keys are ``(realm, role, uri, action, match)``: the role stays at index 1, as in Crossbar's own cache,
    which role changes purge by it.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def lookup(self, key: tuple[str, str, str, str, str]) -> dict[str, Any] | None:
        """The cached decision (now the most recently used), or None."""
        found = self.get(key)
        if found is not None:
            self.move_to_end(key)
        return found

    def remember(self, key: tuple[str, str, str, str, str], decision: dict[str, Any]) -> None:
        """Cache ``decision`` unless the URI is too long to be worth the bytes; evict the oldest."""
        if self.size == 0 or len(key[2]) > MAX_CACHED_URI:
            return
        self[key] = decision
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


def record_roles(router: Any, roles: Mapping[str, Role], removed: set[str]) -> None:
    """Tell ``router`` the rules of its realm's roles (for pattern decisions); forget ``removed`` ones."""
    models: dict[str, Role] = getattr(router, _ROLES_ATTRIBUTE, {})
    models.update(roles)
    for name in removed:
        models.pop(name, None)
    setattr(router, _ROLES_ATTRIBUTE, models)


def role_model(router: Any, authrole: str) -> Role | None:
    """The rules of ``authrole`` in ``router``'s realm, as last recorded by :func:`record_roles`."""
    models: dict[str, Role] = getattr(router, _ROLES_ATTRIBUTE, {})
    return models.get(authrole)


def _denied(action: str) -> dict[str, Any]:
    decision: dict[str, Any] = {"allow": False, "cache": False}
    if action in ("call", "publish"):
        decision["disclose"] = False
    return decision


def _make_authorize(cache_size: int) -> Any:
    def authorize(self: Any, session: Any, uri: str, action: str, options: dict[str, Any] | None) -> Any:
        realm, authrole = session._realm, session._authrole
        role = self._roles.get(authrole)
        if role is None:
            return defer.succeed(_denied(action))  # the role is gone: deny, as Crossbar does
        match = (options or {}).get("match") or "exact"
        channels = getattr(self, CHANNELS_ATTRIBUTE, None)
        unrestricted = authrole == "trusted" or authrole in LINK_ROLES  # the node's own sessions
        if action == "register" and not unrestricted and reaches_node_uris(uri, match):
            return defer.succeed(_denied(action))  # the node's own procedures (router.workers)
        if match != "exact" and not unrestricted:
            model = role_model(self, authrole)
            allowed = model is not None and pattern_allowed(model.allow, model.deny, uri, match, action)
            reach = presence_pattern(uri, match) if channels and action == "subscribe" else None
            if reach is not None and model is not None:
                inside = pattern_allowed(model.allow, model.deny, reach[0], match, action)
                allowed = inside if reach[1] else allowed and inside
            if channels and action == "register" and pattern_reaches_channels(uri, match):
                allowed = False
            return defer.succeed({"allow": allowed, "cache": False})
        if channels and not unrestricted:
            derived = exact_decision(uri, action)
            if derived == "allow":
                return defer.succeed({"allow": True, "disclose": True, "cache": False})
            if derived == "deny":
                return defer.succeed(_denied(action))
            if derived is not None:
                return self.authorize(session, derived[1], "subscribe", {"match": "exact"})

        cache = self._authorization_cache
        if not isinstance(cache, DecisionCache):
            cache = self._authorization_cache = DecisionCache(cache_size)
        key = (realm, authrole, uri, action, match)
        cached = cache.lookup(key)
        if cached is not None:
            return defer.succeed(cached)

        def decided(authorization: Any) -> dict[str, Any]:
            if isinstance(authorization, bool):
                authorization = _denied(action) if not authorization else {"allow": True, "cache": False}
                if action in ("call", "publish"):
                    authorization.setdefault("disclose", False)
            if authrole == "trusted" and action in ("call", "publish"):
                authorization["disclose"] = True
            if authorization.get("cache", False):
                cache.remember(key, authorization)
            result: dict[str, Any] = authorization
            return result

        return defer.maybeDeferred(role.authorize, session, uri, action, options).addCallback(decided)

    authorize._switchboard = True  # type: ignore[attr-defined]
    return authorize


def _make_process(original: Any) -> Any:
    def process(self: Any, session: Any, msg: Any) -> Any:
        if getattr(msg, "forward_for", None) is not None and session._authrole not in LINK_ROLES:
            msg.forward_for = None  # a client may not speak for someone else
        return original(self, session, msg)

    process._switchboard = True  # type: ignore[attr-defined]
    return process


def install(limits: Limits) -> None:
    """Replace ``Router.authorize`` and wrap ``Router.process`` (idempotent)."""
    if getattr(Router.process, "_switchboard", False):
        return
    Router.authorize = _make_authorize(limits.authorization_cache)  # type: ignore[method-assign]
    Router.process = _make_process(Router.process)  # type: ignore[method-assign]
