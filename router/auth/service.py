"""
Crossbar ``function`` authenticators backed by the user store, one entry point per auth method.

Crossbar calls ``create_<method>(config, controller)`` once in the router worker and then the returned
``authenticate(realm, authid, details)`` for each login (in-process: no WAMP round trip). All methods share
one :class:`Authenticator` per worker: one store, one throttle, one thread pool for the store reads and the
KDFs, so the reactor never runs argon2 or PBKDF2.

Every refusal is ``wamp.error.not_authorized`` / ``authentication failed`` (see
:mod:`router.seam.auth`). For challenge-response methods an unknown or disabled user gets a *decoy*
principal: Crossbar sends a challenge as for a real user and the login fails at the signature check,
exactly like a wrong password. What a client can see of a decoy (the WAMP-CRA and SCRAM salts and
parameters) is derived from a secret of the node and the authid, so asking twice gives the same answer, as
for a real user. A throttled attempt for a real user gets the user's own challenge, marked as a decoy: no
answer will do, and nothing shows that it was throttled. A throttled ``ticket`` refusal waits about as
long as a real verification takes instead of answering at once.

Every attempt counts toward the throttle when it starts (see :mod:`router.auth.throttle`); an authid the
store could never hold (:func:`router.store.valid_authid`, e.g. 1 MB long) is refused without a look-up and
counts only toward its client address. The client address is the peer's, or the one a trusted proxy names
(:func:`router.peers.client_address`).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autobahn.wamp.exception import ApplicationError
from nacl.signing import SigningKey
from twisted.internet import defer, task
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from router import events, metrics
from router.auth.throttle import LoginThrottle, ThrottleLimits
from router.authz.model import reserved_role_problem
from router.credentials import decoy_scram, decoy_wampcra, verify_ticket
from router.peers import Networks, client_address, networks
from router.seam.auth import DECOY, DERIVED, FAILED, install_auth
from router.store import MAX_AUTHID_LENGTH, User, UserStore, valid_authid

__all__ = [
    "THROTTLED",
    "Authenticator",
    "create_cryptosign",
    "create_scram",
    "create_ticket",
    "create_wampcra",
    "load_node_secret",
    "shared_authenticator",
]

#: Internal message of a refusal decided without checking the secret (throttled, or an impossible authid);
#: the client sees the uniform ``authentication failed``.
THROTTLED = "switchboard: throttled"

#: What a ticket verification is assumed to take before one has been measured (argon2id here: 25-90 ms).
INITIAL_VERIFICATION_TIME = 0.05
#: Attempts kept waiting for their verdict to tell whether they locked a client out (a client that never
#: answers its challenge leaves one behind: the oldest are forgotten first).
MAX_LOCKING = 1024
#: How many recent KDF timings a throttled refusal draws its wait from.
KDF_SAMPLES = 64

_PUBKEY = re.compile(r"[0-9a-f]{64}")
_NODE_SECRET_BYTES = 32
_JITTER = secrets.SystemRandom()


def may_log_in(user: User) -> bool:
    """Whether ``user`` may log in at all: enabled, and not holding a role the router keeps for itself.

    A stored ``trusted`` user (written by a version before such roles were refused) would otherwise join
    with the router's own unlimited role.
    """
    return user.enabled and reserved_role_problem(user.role) is None


class Authenticator:
    """Decides logins from the store; the blocking parts run on ``pool``."""

    def __init__(
        self,
        reactor: Any,
        store: UserStore,
        throttle: LoginThrottle,
        pool: ThreadPool,
        node_secret: bytes,
        trusted_proxies: Networks = (),
    ) -> None:
        self._reactor = reactor
        self.store = store
        self.throttle = throttle
        self._pool = pool
        self._secret = node_secret
        self._trusted = trusted_proxies
        #: Seconds the KDF took in the latest real ticket verifications (measured in the pool's thread): a
        #: throttled refusal queues for the pool like a verification, then waits one of these at random.
        self.kdf_times: deque[float] = deque([INITIAL_VERIFICATION_TIME], maxlen=KDF_SAMPLES)
        #: Attempts that filled a throttle count, waiting for their verdict: (realm, authid, address) -> limits.
        self._locking: OrderedDict[tuple[str, str | None, str | None], list[str]] = OrderedDict()

    def address(self, transport: dict[str, Any]) -> str | None:
        """The client address of a login: the peer's, or the one a trusted proxy names."""
        return client_address(transport.get("peer"), transport.get("http_headers_received"), self._trusted)

    def verdict(self, realm: str, authid: str | None, method: str, transport: dict[str, Any], ok: bool) -> None:
        """Crossbar's verdict on an authentication (see the adapter): a success takes its attempt back; log."""
        address = self.address(transport)
        name = authid if valid_authid(authid) else None
        locked = self._locking.pop((realm, name, address), ())
        metrics.note_login(method, ok)
        if ok:
            self.throttle.succeeded(realm, name, address)
            return
        shown = events.clip(authid)
        events.emit("login_failed", realm=realm, authid=shown, method=method, peer=address)
        for scope in locked:
            events.emit("login_locked", realm=realm, authid=shown, method=method, peer=address, scope=scope)

    async def _admit(self, realm: str, name: str | None, details: dict[str, Any]) -> bool:
        """Count an attempt for ``name`` (a valid authid, or None); wait its delay; whether it is refused."""
        address = self.address(details.get("transport") or {})
        admission = self.throttle.admit(realm, name, address)
        if admission.refused:
            metrics.note_throttle_refusal()
        else:
            locked = self.throttle.attempted(realm, name, address)
            if locked:
                # This attempt fills a count: if it fails, the client is locked out (logged once, by verdict).
                self._locking[(realm, name, address)] = locked
                while len(self._locking) > MAX_LOCKING:
                    self._locking.popitem(last=False)
        if admission.delay > 0:
            await task.deferLater(self._reactor, admission.delay, lambda: None)
        return admission.refused

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await deferToThreadPool(self._reactor, self._pool, fn, *args)

    # -- ticket: we verify ---------------------------------------------------------------------------

    async def ticket(self, realm: str, authid: str | None, details: dict[str, Any]) -> dict[str, Any]:
        """Verify the ticket (password) against its argon2id hash."""
        valid = valid_authid(authid)
        refused = await self._admit(realm, authid if valid else None, details)
        if refused or not valid:
            # As long as a verification, without one: the same queue for the pool, then the time the KDF
            # itself took in a recent real verification. The answer's timing says nothing about the state.
            await self._run(_nothing)
            await task.deferLater(self._reactor, _JITTER.choice(self.kdf_times), lambda: None)
            raise ApplicationError(ApplicationError.NOT_AUTHORIZED, THROTTLED)
        user: User | None = await self._run(self._check_ticket, realm, authid, details.get("ticket"))
        if user is None:
            raise ApplicationError(ApplicationError.NOT_AUTHORIZED, FAILED)
        return {"authid": user.authid, "role": user.role}

    def _check_ticket(self, realm: str, authid: str, ticket: object) -> User | None:
        found = self.store.credential(realm, authid, "ticket")
        user, credential = found if found else (None, None)
        started = time.perf_counter()
        ok = verify_ticket(credential, ticket)  # runs the KDF even for unknown users: same cost
        self.kdf_times.append(time.perf_counter() - started)  # deque.append is thread-safe
        return user if ok and user is not None and may_log_in(user) else None

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
        decoy: Callable[[bytes, str, str], dict[str, Any]],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The user's verifier data for ``method`` and the start of its principal; a decoy if there is none.

        A throttled attempt, or one for a disabled user, gets the user's own data marked as a decoy: the same
        challenge as ever, refused whatever the answer.
        """
        valid = valid_authid(authid)
        refused = await self._admit(realm, authid if valid else None, details)
        found = await self._run(self._credential, realm, authid if valid else None, method)
        if found is None:
            # An impossible authid is cut short: what it may cost is bounded, and it can never be a user.
            shown = (authid or "")[: MAX_AUTHID_LENGTH + 1]
            return decoy(self._secret, realm, shown), {"authid": authid, "role": "anonymous", DECOY: True}
        user, data = found
        if refused or not may_log_in(user):
            # The user's own parameters (a disabled user's salt does not change either), no answer accepted.
            return data, {"authid": authid, "role": "anonymous", DECOY: True}
        return data, {"authid": authid, "role": user.role}

    async def cryptosign(self, realm: str, authid: str | None, details: dict[str, Any]) -> dict[str, Any]:
        """The stored public key of the user the client's key belongs to (or a decoy); authid optional."""
        pubkey = (details.get("authextra") or {}).get("pubkey")
        valid = authid is None or valid_authid(authid)
        owner: User | None = None
        if valid and isinstance(pubkey, str) and _PUBKEY.fullmatch(pubkey):
            owner = await self._run(self.store.key_owner, realm, pubkey)
        else:
            await self._run(_nothing)  # the same thread hop as a look-up
        # Counted under the authid the login is for: the one asked for, else the key's owner.
        name: str | None = owner.authid if owner is not None else None
        if authid is not None:
            name = authid if valid_authid(authid) else None
        refused = await self._admit(realm, name, details)
        if refused or owner is None or not may_log_in(owner) or (authid is not None and owner.authid != authid):
            decoy_key = SigningKey(os.urandom(32)).verify_key.encode().hex()
            return {
                "authid": authid or f"decoy-{os.urandom(8).hex()}",
                "role": "anonymous",
                "pubkey": decoy_key,
                DECOY: True,
            }
        return {"authid": owner.authid, "role": owner.role, "pubkey": pubkey}

    def _credential(self, realm: str, authid: str | None, method: str) -> tuple[User, dict[str, Any]] | None:
        return self.store.credential(realm, authid, method) if authid else None


def _nothing() -> None:
    return None


def load_node_secret(path: Path) -> bytes:
    """The node's decoy secret at ``path``: created once (random, owner-only), then read at every start."""
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        secret = b""
    if len(secret) == _NODE_SECRET_BYTES:
        return secret
    secret = os.urandom(_NODE_SECRET_BYTES)
    partial = path.with_name(path.name + ".new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)  # whole or not at all
    return secret


def node_secret_path(store: Path) -> Path:
    """Where the decoy secret lives: next to the user store, in the owner-only data directory."""
    return store.with_name("decoy.key")


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
        store_path = Path(config["store"])
        store = UserStore(store_path)
        secret = load_node_secret(node_secret_path(store_path))
        trusted = networks(config.get("trusted_proxies", []))
        _instance = Authenticator(reactor, store, LoginThrottle(reactor.seconds, limits), pool, secret, trusted)
        install_auth(_instance.verdict)
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
