"""
The test-login authenticator: join with any role of a realm and any authid, without users or passwords.

It exists only in nodes the pytest plugin starts (:func:`router.launch.launch` with ``test_logins=True``
compiles the transport behind it, see :mod:`router.compile`); ``switchboard run`` never asks for it. The
transport is RawSocket on a unix socket in the data directory's owner-only node directory
(:func:`router.datadir.kit_login_socket_path`), so only processes of the user running the tests can reach
it, like the control socket.

The client logs in with WAMP-ticket: the *ticket is the role* it asks for, the authid is the one of its
HELLO. A role the realm does not have (from the config file or created at run time: the realm's effective
roles, :func:`router.authz.effective.effective_roles`) or a role the router keeps for itself (``trusted``)
is refused with ``wamp.error.not_authorized``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, threads
from twisted.logger import Logger

from router.authz.effective import effective_roles
from router.authz.model import reserved_role_problem
from router.store import UserStore

__all__ = ["create", "realm_roles", "refusal"]

log = Logger()


def refusal(role: object, authid: object, roles: Mapping[str, Any] | None) -> str | None:
    """Why a test login as ``role``/``authid`` is refused, given the realm's effective ``roles`` (None: no
    such realm on this node); None when it is allowed."""
    if roles is None:
        return "no such realm on this node"
    if not isinstance(authid, str) or not authid:
        return "an authid is required"
    if not isinstance(role, str) or not role:
        return "the ticket must name the role"
    reserved = reserved_role_problem(role)
    if reserved:
        return reserved
    if role not in roles:
        return f"the realm has no role {role!r}"
    return None


def realm_roles(store_path: Path, file_roles: Mapping[str, Mapping[str, Any]], realm: str) -> dict[str, Any] | None:
    """The effective roles of ``realm``: its roles in the config file (``file_roles[realm]``) with the changes
    made at run time (the store at ``store_path``); None when the config has no such realm."""
    if realm not in file_roles:
        return None
    store = UserStore(store_path)
    try:
        return effective_roles(file_roles[realm], store.role_definitions(realm))
    finally:
        store.close()


def create(config: dict[str, Any], controller: Any) -> Callable[[str, str | None, dict[str, Any]], Any]:
    """Crossbar ``function`` authenticator factory; ``config``: ``store`` (the user store's path) and
    ``realms`` (each realm's role definitions in the config file)."""
    store_path = Path(config["store"])
    file_roles: dict[str, dict[str, Any]] = config["realms"]

    async def authenticate(realm: str, authid: str | None, details: dict[str, Any]) -> dict[str, Any]:
        role = details.get("ticket")
        # Read at each login (in a thread: it is SQLite): roles created or removed at run time count at once.
        roles = await threads.deferToThread(realm_roles, store_path, file_roles, realm)
        why = refusal(role, authid, roles)
        if why is not None:
            # A warning, so the node log attached to the failing test says why (the client's message may be
            # the router's uniform "authentication failed").
            log.warn(
                "test login refused: realm={realm!r} role={role!r} authid={authid!r}: {why}",
                realm=realm,
                role=role,
                authid=authid,
                why=why,
            )
            raise ApplicationError(ApplicationError.NOT_AUTHORIZED, f"test login refused: {why}")
        return {"role": role, "authid": authid}

    def entry(realm: str, authid: str | None, details: dict[str, Any]) -> Any:
        return defer.ensureDeferred(authenticate(realm, authid, details))

    return entry
