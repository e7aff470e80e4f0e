"""
The only place Switchboard reaches into Crossbar's internals (checked against 26.10.1 at install time).

**Denials.** Crossbar 26.10.1 builds a ``not_authorized`` reply for a REGISTER the role does not allow,
but then checks for an existing registration and answers ``procedure_already_exists`` if there is one, so
any session can find out which procedures exist (crossbar#1463); and it answers ``invalid_uri`` for
REGISTER and PUBLISH in the reserved ``wamp.*`` namespace before asking the role.
:func:`install_denial_fixes` authorizes those first, so a denied action is always
``wamp.error.not_authorized``.

**Roles at run time.** A router component reaches its realm's router through the session wrapper
Crossbar gives it (:func:`realm_router`); :func:`replace_roles` swaps role objects there and purges the
router's authorization cache for them, so a changed role applies to the very next action of every session
holding it, without a restart.

**Authentication.** Crossbar picks the class handling a login from ``crossbar.router.auth.AUTHMETHOD_MAP``;
:func:`install_auth` puts thin subclasses there for ticket, wampcra, cryptosign and scram that

1. report every verdict (realm, authid, method, transport details, success) to an observer, so the login
   throttle learns of successes and the failures that Crossbar itself decides (a wrong WAMP-CRA or
   cryptosign signature, a wrong SCRAM proof), and logs them;
2. turn every refusal into the same ABORT, ``wamp.error.not_authorized`` / ``authentication failed``,
   so nothing tells an unknown user from a wrong secret, a disabled user or a throttled attempt (bare
   Crossbar says ``no principal with authid "x" exists``);
3. refuse a *decoy* principal (see :mod:`router.auth.service`) whatever the client signs;
4. leave the role out of the WAMP-CRA challenge (Crossbar puts ``authrole`` in it, which would tell a real
   user's ``user``/``admin`` from a decoy's ``anonymous``): it is ``null`` for everyone;
5. let WAMP-CRA use a stored PBKDF2-derived key as is: Crossbar 26.10.1 derives the key again from the
   ``secret`` it is handed, which would force us to store the password. For a principal marked
   :data:`DERIVED`, the challenge is signed with the stored key and the salt parameters are added to the
   challenge afterwards, so the client derives the same key from its password.

Everything else is Crossbar's own code path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import crossbar
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import Accept, Deny
from crossbar.router import auth as crossbar_auth
from crossbar.router.auth.cryptosign import PendingAuthCryptosign
from crossbar.router.auth.scram import PendingAuthScram
from crossbar.router.auth.ticket import PendingAuthTicket
from crossbar.router.auth.wampcra import PendingAuthWampCra
from crossbar.router.broker import Broker
from crossbar.router.dealer import Dealer
from twisted.internet import defer

from router.roles import Role
from router.rules import covers, decide

__all__ = [
    "DECOY",
    "DERIVED",
    "FAILED",
    "NOT_AUTHORIZED",
    "Verdict",
    "decided_role",
    "install_auth",
    "install_denial_fixes",
    "realm_router",
    "replace_roles",
]

SUPPORTED_CROSSBAR = "26.10.1"

NOT_AUTHORIZED = "wamp.error.not_authorized"
FAILED = "authentication failed"
#: Principal key marking a stand-in for a user that does not exist (or may not log in).
DECOY = "x_switchboard_decoy"
#: Principal key marking a WAMP-CRA secret that is already the derived key.
DERIVED = "x_switchboard_derived"

#: Called as ``verdict(realm, authid, authmethod, transport, ok)`` after each AUTHENTICATE; ``transport`` is
#: Crossbar's marshalled transport details (``peer``, ``http_headers_received``, ...).
Verdict = Callable[[str, "str | None", str, dict[str, Any], bool], None]

_verdict: Verdict | None = None


def _check_version() -> None:
    if crossbar.__version__ != SUPPORTED_CROSSBAR:
        raise RuntimeError(
            f"router.crossbar_adapter supports crossbar {SUPPORTED_CROSSBAR}, not {crossbar.__version__}"
        )


def install_denial_fixes() -> None:
    """Authorize first where Crossbar would otherwise answer something other than ``not_authorized``.

    - every REGISTER of a session not ``trusted``: Crossbar answers ``procedure_already_exists`` for an
      already registered procedure, ``invalid_uri`` in the reserved ``wamp.*`` namespace, and its own
      denial names the session, so denials would differ by URI;
    - acknowledged PUBLISH in the reserved ``wamp.*`` namespace (Crossbar: ``invalid_uri``).

    When the role does allow the action, Crossbar's own path runs unchanged.
    """
    _check_version()
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


def install_auth(verdict: Verdict) -> None:
    """Register the subclasses with Crossbar; ``verdict`` hears every authentication outcome."""
    _check_version()
    global _verdict
    _verdict = verdict
    crossbar_auth.AUTHMETHOD_MAP.update(
        {"ticket": _Ticket, "wampcra": _WampCra, "cryptosign": _Cryptosign, "scram": _Scram}
    )


def _uniform(result: Any) -> Any:
    if isinstance(result, Deny) and result.reason == NOT_AUTHORIZED:
        return Deny(NOT_AUTHORIZED, FAILED)
    return result


# Crossbar's PendingAuth classes are untyped; the mixin's super() calls resolve to them at run time.
_PendingAuth: Any = object


class _Verdicts(_PendingAuth):  # type: ignore[misc]
    """Mixin over a Crossbar ``PendingAuth*`` class."""

    _realm: str | None
    _authid: str | None
    _session_details: dict[str, Any]

    def hello(self, realm: str, details: Any) -> Any:
        # The authenticator counts the attempt itself; a throttled one still gets a (decoy) challenge.
        return defer.maybeDeferred(super().hello, realm, details).addCallback(_uniform)

    def authenticate(self, signature: str) -> Any:
        d = defer.maybeDeferred(super().authenticate, signature)
        d.addCallback(self._judge)
        return d

    def _judge(self, result: Any) -> Any:
        if isinstance(result, Accept) and getattr(self, "_switchboard_decoy", False):
            result = Deny(NOT_AUTHORIZED, FAILED)  # unreachable with a random key, but never let a decoy in
        ok = isinstance(result, Accept)
        if _verdict is not None and (ok or isinstance(result, Deny)):
            transport = self._session_details.get("transport") or {}
            _verdict(self._realm or "", self._authid, self.AUTHMETHOD, transport, ok)
        return _uniform(result)

    def _assign_principal(self, principal: Any) -> Any:
        if isinstance(principal, dict):
            self._switchboard_decoy = bool(principal.get(DECOY))
        return super()._assign_principal(principal)


class _Ticket(_Verdicts, PendingAuthTicket):
    pass


class _Cryptosign(_Verdicts, PendingAuthCryptosign):
    pass


class _Scram(_Verdicts, PendingAuthScram):
    pass


class _WampCra(_Verdicts, PendingAuthWampCra):
    def _compute_challenge(self, user: dict[str, Any]) -> tuple[dict[str, Any], str]:
        # Crossbar writes self._authrole into the challenge text: hide it while the challenge is built.
        role, self._authrole = self._authrole, None
        try:
            if not user.get(DERIVED):
                result: tuple[dict[str, Any], str] = super()._compute_challenge(user)
                return result
            # Sign with the stored key itself (no salt given, so Crossbar does not derive), then tell the
            # client how to derive that key from its password.
            extra, signature = super()._compute_challenge({"secret": user["secret"]})
            extra.update(salt=user["salt"], iterations=user["iterations"], keylen=user["keylen"])
            return extra, signature
        finally:
            self._authrole = role


def realm_router(session: Any) -> Any:
    """The ``crossbar.router.router.Router`` a router component ``session`` is attached to."""
    _check_version()
    return session._transport._router


def decided_role(router: Any, name: str, role: Role) -> Any:
    """A Crossbar role object deciding each action with :func:`router.rules.decide` (exact semantics)."""
    from crossbar.router.role import RouterRole

    class _Decided(RouterRole):
        def authorize(self, session: Any, uri: str, action: str, options: Any) -> dict[str, Any]:
            allowed = decide(role.allow, role.deny, uri, action)
            authorization: dict[str, Any] = {"allow": allowed, "cache": True}
            if action in ("call", "publish"):
                authorization["disclose"] = allowed and any(
                    r.disclose and action in r.actions and covers(r, uri) for r in role.allow
                )
            return authorization

    return _Decided(router, name)


def replace_roles(router: Any, roles: dict[str, Role], removed: set[str]) -> None:
    """Install ``roles`` in the running router, drop ``removed`` ones, purge the router's cached decisions.

    A role whose compiled static permissions are exact becomes a Crossbar static role; any other is decided
    by :func:`decided_role`. A role also has to be known to the router worker's realm registry, which login
    checks consult (``has_role``): new names are started there as Crossbar's own
    ``start_router_realm_role`` does.
    """
    from crossbar.router.role import RouterRoleStaticAuth

    from router.compile import compile_permissions, static_is_exact
    from router.seam.authorization import record_roles

    record_roles(router, roles, removed)
    worker = router._factory._worker
    realm_id = router._realm.id
    registry = worker.realms[realm_id]
    for name, role in roles.items():
        entries = compile_permissions(role)
        if name not in registry.role_to_id:
            worker.start_router_realm_role(realm_id, _role_id(registry, name), {"name": name, "permissions": entries})
        installed = (
            RouterRoleStaticAuth(router, name, entries) if static_is_exact(role) else decided_role(router, name, role)
        )
        router.add_role(installed)
    for name in removed:
        if name in registry.role_to_id:
            worker.stop_router_realm_role(realm_id, registry.role_to_id[name])
        if name in router._roles:
            router.drop_role(router._roles[name])
    changed = set(roles) | removed
    cache = router._authorization_cache
    for key in [k for k in cache if k[1] in changed]:
        del cache[key]


def _role_id(registry: Any, name: str) -> str:
    """A worker-unique role id (Crossbar ids match ``^[a-z][a-z0-9_]{2,63}$``)."""
    number = len(registry.roles)
    while f"role_rt_{number:04d}" in registry.roles:
        number += 1
    return f"role_rt_{number:04d}"
