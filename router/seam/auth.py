"""
Logins: uniform refusals, verdicts for the throttle, decoys, stored WAMP-CRA keys.

Crossbar picks the class handling a login from ``crossbar.router.auth.AUTHMETHOD_MAP``; :func:`install_auth`
puts thin subclasses there for ticket, wampcra, cryptosign and scram that

1. report every verdict (realm, authid, method, transport details, success) to an observer, so the login
   throttle learns of successes and the failures that Crossbar itself decides (a wrong WAMP-CRA or
   cryptosign signature, a wrong SCRAM proof);
2. turn every refusal into the same ABORT, ``wamp.error.not_authorized`` / :data:`FAILED`, so nothing tells
   an unknown user from a wrong secret, a disabled user or a throttled attempt (bare Crossbar says
   ``no principal with authid "x" exists``);
3. refuse a *decoy* principal (:data:`DECOY`, see :mod:`router.auth.service`) whatever the client signs;
4. leave the role out of the WAMP-CRA challenge (Crossbar puts ``authrole`` in it, which would tell a real
   user's ``user``/``admin`` from a decoy's ``anonymous``): it is ``null`` for everyone;
5. let WAMP-CRA use a stored PBKDF2-derived key as is: Crossbar 26.10.1 derives the key again from the
   ``secret`` it is handed, which would force us to store the password. For a principal marked
   :data:`DERIVED`, the challenge is signed with the stored key and the salt parameters are added to the
   challenge afterwards, so the client derives the same key from its password.

Everything else is Crossbar's own code path.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import Accept, Deny
from crossbar.router import auth as crossbar_auth
from crossbar.router.auth.cryptosign import PendingAuthCryptosign
from crossbar.router.auth.scram import PendingAuthScram
from crossbar.router.auth.ticket import PendingAuthTicket
from crossbar.router.auth.wampcra import PendingAuthWampCra
from twisted.internet import defer

__all__ = ["DECOY", "DERIVED", "FAILED", "RELIED_ON", "SIGNATURES", "Verdict", "install_auth"]

#: The message of every login refusal (with ``wamp.error.not_authorized``).
FAILED = "authentication failed"
#: Principal key marking a stand-in for a user that does not exist (or may not log in).
DECOY = "x_switchboard_decoy"
#: Principal key marking a WAMP-CRA secret that is already the derived key.
DERIVED = "x_switchboard_derived"

#: Crossbar names this module relies on (checked by tests/unit/test_seam_canary.py and, on unverified
#: versions, before installing).
RELIED_ON = [
    "crossbar.router.auth.AUTHMETHOD_MAP",
    "crossbar.router.auth.pending.PendingAuth._assign_principal",
    "crossbar.router.auth.pending.PendingAuth._realm",
    "crossbar.router.auth.pending.PendingAuth._authid",
    "crossbar.router.auth.pending.PendingAuth._authrole",
    "crossbar.router.auth.pending.PendingAuth._session_details",
    "crossbar.router.auth.pending.PendingAuth.AUTHMETHOD",
    "crossbar.router.auth.ticket.PendingAuthTicket.hello",
    "crossbar.router.auth.ticket.PendingAuthTicket.authenticate",
    "crossbar.router.auth.cryptosign.PendingAuthCryptosign.hello",
    "crossbar.router.auth.cryptosign.PendingAuthCryptosign.authenticate",
    "crossbar.router.auth.scram.PendingAuthScram.hello",
    "crossbar.router.auth.scram.PendingAuthScram.authenticate",
    "crossbar.router.auth.wampcra.PendingAuthWampCra.hello",
    "crossbar.router.auth.wampcra.PendingAuthWampCra.authenticate",
    "crossbar.router.auth.wampcra.PendingAuthWampCra._compute_challenge",
    "crossbar.router.auth.wampcra.PendingAuthWampCra._signature",
]

#: Methods overridden here that call the original passing arguments by position: expected parameters.
SIGNATURES = {
    "crossbar.router.auth.pending.PendingAuth._assign_principal": ("self", "principal"),
    "crossbar.router.auth.ticket.PendingAuthTicket.hello": ("self", "realm", "details"),
    "crossbar.router.auth.ticket.PendingAuthTicket.authenticate": ("self", "signature"),
    "crossbar.router.auth.cryptosign.PendingAuthCryptosign.hello": ("self", "realm", "details"),
    "crossbar.router.auth.cryptosign.PendingAuthCryptosign.authenticate": ("self", "signature"),
    "crossbar.router.auth.scram.PendingAuthScram.hello": ("self", "realm", "details"),
    "crossbar.router.auth.scram.PendingAuthScram.authenticate": ("self", "signature"),
    "crossbar.router.auth.wampcra.PendingAuthWampCra.hello": ("self", "realm", "details"),
    "crossbar.router.auth.wampcra.PendingAuthWampCra.authenticate": ("self", "signature"),
    "crossbar.router.auth.wampcra.PendingAuthWampCra._compute_challenge": ("self", "user"),
}

#: Called as ``verdict(realm, authid, authmethod, transport, ok)`` after each AUTHENTICATE; ``transport`` is
#: Crossbar's marshalled transport details (``peer``, ``http_headers_received``, ...).
Verdict = Callable[[str, "str | None", str, dict[str, Any], bool], None]

_verdict: Verdict | None = None


def install_auth(verdict: Verdict) -> bool:
    """Register the subclasses with Crossbar; ``verdict`` hears every authentication outcome.

    False (nothing installed) where the version policy skips this module (:func:`router.seam.allowed`).
    """
    from router.seam import allowed

    if not allowed("auth"):
        return False
    global _verdict
    _verdict = verdict
    crossbar_auth.AUTHMETHOD_MAP.update(
        {"ticket": _Ticket, "wampcra": _WampCra, "cryptosign": _Cryptosign, "scram": _Scram}
    )
    return True


def _uniform(result: Any) -> Any:
    if isinstance(result, Deny) and result.reason == ApplicationError.NOT_AUTHORIZED:
        return Deny(ApplicationError.NOT_AUTHORIZED, FAILED)
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
            # Unreachable with a random key, but never let a decoy in.
            result = Deny(ApplicationError.NOT_AUTHORIZED, FAILED)
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
    def authenticate(self, signature: Any) -> Any:
        # A wrong signature is refused here: Crossbar would log, at warn, the expected one (an HMAC of the
        # user's key under a challenge the client knows: an offline oracle for the password) and the
        # client's, whatever its length.
        expected: Any = getattr(self, "_signature", None)
        valid = isinstance(signature, str) and isinstance(expected, str)
        if not valid or not hmac.compare_digest(signature.encode(), expected.encode()):
            return defer.succeed(self._judge(Deny(ApplicationError.NOT_AUTHORIZED, FAILED)))
        return super().authenticate(signature)

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
