"""
Crossbar ``function`` authenticators backed by the user store, one entry point per auth method.

Crossbar calls ``create_<method>(config, controller)`` once in the router worker and then the returned
``authenticate(realm, authid, details)`` for each login (in-process: no WAMP round trip). All methods share
one :class:`Authenticator` per worker: one store, one throttle, one thread pool for the store reads and the
KDFs, so the reactor never runs argon2 or PBKDF2.

Every refusal is ``wamp.error.not_authorized`` / ``authentication failed`` (see
:mod:`router.auth.crossbar_adapter`). For challenge-response methods an unknown or disabled user gets a
*decoy* principal with random keys: Crossbar sends a challenge as for a real user and the login fails at
the signature check, exactly like a wrong password.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autobahn.wamp.exception import ApplicationError
from nacl.signing import SigningKey
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from router import crossbar_adapter
from router.auth.throttle import LoginThrottle, ThrottleLimits, peer_host
from router.credentials import decoy_scram, decoy_wampcra, verify_ticket
from router.crossbar_adapter import DECOY, DERIVED, FAILED, NOT_AUTHORIZED
from router.store import User, UserStore

__all__ = [
    "THROTTLED",
    "Authenticator",
    "create_cryptosign",
    "create_scram",
    "create_ticket",
    "create_wampcra",
    "shared_authenticator",
]

log = Logger()

#: Internal message of a throttled refusal; the client sees the uniform ``authentication failed``.
THROTTLED = "switchboard: throttled"

_PUBKEY = re.compile(r"^[0-9a-f]{64}$")


class Authenticator:
    """Decides logins from the store; the blocking parts run on ``pool``."""

    def __init__(self, reactor: Any, store: UserStore, throttle: LoginThrottle, pool: ThreadPool) -> None:
        self._reactor = reactor
        self.store = store
        self.throttle = throttle
        self._pool = pool

    def verdict(self, realm: str, authid: str | None, peer: str | None, ok: bool) -> None:
        """Crossbar's verdict on an authentication (see the adapter): feed the throttle, log."""
        host = peer_host(peer)
        if ok:
            self.throttle.succeeded(realm, authid)
        else:
            self.throttle.failed(realm, authid, host)
            log.info("login failed: realm={realm} authid={authid} peer={peer}", realm=realm, authid=authid, peer=peer)

    def _refuse_if_throttled(self, realm: str, authid: str | None, details: dict[str, Any]) -> None:
        if self.throttle.blocked(realm, authid, peer_host(details.get("transport", {}).get("peer"))):
            raise ApplicationError(NOT_AUTHORIZED, THROTTLED)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await deferToThreadPool(self._reactor, self._pool, fn, *args)

    # -- ticket: we verify ---------------------------------------------------------------------------

    async def ticket(self, realm: str, authid: str | None, details: dict[str, Any]) -> dict[str, Any]:
        """Verify the ticket (password) against its argon2id hash."""
        self._refuse_if_throttled(realm, authid, details)
        user: User | None = await self._run(self._check_ticket, realm, authid, details.get("ticket"))
        if user is None:
            raise ApplicationError(NOT_AUTHORIZED, FAILED)
        return {"authid": user.authid, "role": user.role}

    def _check_ticket(self, realm: str, authid: str | None, ticket: object) -> User | None:
        found = self.store.credential(realm, authid, "ticket") if authid else None
        user, credential = found if found else (None, None)
        ok = verify_ticket(credential, ticket)  # runs the KDF even for unknown users: same cost
        return user if ok and user is not None and user.enabled else None

    # -- challenge-response: Crossbar verifies against what we return ---------------------------------

    async def wampcra(self, realm: str, authid: str | None, details: dict[str, Any]) -> dict[str, Any]:
        """The stored derived key and its salt parameters (or a decoy)."""
        data, principal = await self._verifier(realm, authid, details, "wampcra", decoy_wampcra)
        principal.update(secret=data["key"], salt=data["salt"], iterations=data["iterations"], keylen=data["keylen"])
        principal[DERIVED] = True
        return principal

    async def scram(self, realm: str, authid: str | None, details: dict[str, Any]) -> dict[str, Any]:
        """The SCRAM verifier (or a decoy)."""
        data, principal = await self._verifier(realm, authid, details, "scram", decoy_scram)
        principal.update(kdf=data["kdf"], salt=data["salt"], iterations=data["iterations"], memory=data["memory"])
        principal.update({"stored-key": data["stored_key"], "server-key": data["server_key"]})
        return principal

    async def _verifier(
        self,
        realm: str,
        authid: str | None,
        details: dict[str, Any],
        method: str,
        decoy: Callable[[], dict[str, Any]],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The user's verifier data for ``method`` and the start of its principal; a decoy if there is none."""
        self._refuse_if_throttled(realm, authid, details)
        found = await self._run(self._enabled_credential, realm, authid, method)
        if found is None:
            return decoy(), {"authid": authid, "role": "anonymous", DECOY: True}
        user, data = found
        return data, {"authid": authid, "role": user.role}

    async def cryptosign(self, realm: str, authid: str | None, details: dict[str, Any]) -> dict[str, Any]:
        """The stored public key of the user the client's key belongs to (or a decoy); authid optional."""
        self._refuse_if_throttled(realm, authid, details)
        pubkey = (details.get("authextra") or {}).get("pubkey")
        owner: User | None = None
        if isinstance(pubkey, str) and _PUBKEY.match(pubkey):
            owner = await self._run(self.store.key_owner, realm, pubkey)
        if owner is None or not owner.enabled or (authid is not None and owner.authid != authid):
            decoy_key = SigningKey(os.urandom(32)).verify_key.encode().hex()
            return {
                "authid": authid or f"decoy-{os.urandom(8).hex()}",
                "role": "anonymous",
                "pubkey": decoy_key,
                DECOY: True,
            }
        return {"authid": owner.authid, "role": owner.role, "pubkey": pubkey}

    def _enabled_credential(self, realm: str, authid: str | None, method: str) -> tuple[User, dict[str, Any]] | None:
        found = self.store.credential(realm, authid, method) if authid else None
        if found is None or not found[0].enabled:
            return None
        return found


_instance: Authenticator | None = None


def shared_authenticator(config: dict[str, Any]) -> Authenticator:
    """The worker's shared :class:`Authenticator` (created by :class:`router.worker.WorkerBootstrap`)."""
    global _instance
    if _instance is None:
        from twisted.internet import reactor as running  # the router worker's reactor: this is an entry point

        reactor: Any = running
        limits = ThrottleLimits(**config.get("throttle", {}))
        pool = ThreadPool(minthreads=0, maxthreads=int(config.get("threads", 4)), name="switchboard-auth")
        pool.start()
        reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
        store = UserStore(Path(config["store"]))
        _instance = Authenticator(reactor, store, LoginThrottle(reactor.seconds, limits), pool)
        crossbar_adapter.install_auth(_instance.verdict)
    return _instance


def _entry(method: str) -> Callable[[dict[str, Any], Any], Callable[..., Any]]:
    def create(config: dict[str, Any], controller: Any) -> Callable[..., Any]:
        handler = getattr(shared_authenticator(config), method)

        def authenticate(realm: str, authid: str | None, details: dict[str, Any]) -> Any:
            return defer.ensureDeferred(handler(realm, authid, details))

        return authenticate

    create.__name__ = f"create_{method}"
    create.__doc__ = f"Crossbar ``function`` authenticator factory for WAMP-{method}."
    return create


create_ticket = _entry("ticket")
create_wampcra = _entry("wampcra")
create_cryptosign = _entry("cryptosign")
create_scram = _entry("scram")
