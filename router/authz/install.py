"""
Putting a realm's roles into the running router: at start-up for every realm, and on every admin change.

:func:`install_roles` builds the role models (:mod:`router.authz.model`) from definitions and hands them to
the Crossbar seam, which keeps Crossbar's static role where its compiled permissions decide exactly like the
rules (:func:`router.authz.static.static_is_exact`) and installs an in-router role deciding with
:func:`router.authz.rules.decide` for every other, and records the models for pattern decisions
(:func:`router.seam.authorization.record_roles`). :func:`install_realm_roles` does that for every realm of
the worker at start-up (called by :class:`router.worker.WorkerBootstrap`, before any transport opens),
with the roles of :func:`router.authz.effective.effective_roles`.

Every reach into Crossbar goes through the seam helpers of :mod:`router.seam.roles`, imported here only.
Each realm has its own ``crossbar.router.router.Router``; a router component is attached to one of them
(:func:`router.seam.roles.realm_router`), and the others are found through that router's factory
(``Router._factory``, listed in ``router.seam.roles.RELIED_ON``) with ``RouterFactory.get(realm)``:
autobahn's public ``IRouterFactory`` interface, which Crossbar's own ``start_router_component`` uses to
attach a component to its realm. (The worker's ``RouterController.realms`` registry holds the same routers,
but is one more private hop away.)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.logger import Logger

from router.authz.effective import effective_roles, ignored_changes, removed_roles
from router.authz.model import Role, build_roles
from router.config import schema
from router.seam.roles import realm_router, replace_roles
from router.store import UserStore

__all__ = ["install_realm_roles", "install_roles", "realm_routers"]

log = Logger()


def install_roles(router: Any, definitions: Mapping[str, Any], removed: set[str]) -> dict[str, Role]:
    """Make ``definitions`` the roles of ``router``'s realm and drop ``removed`` ones; the models installed.

    The definitions must be valid (:func:`router.authz.model.role_problems`); open sessions holding a changed
    role get the new decisions at their next action.
    """
    roles = build_roles(definitions, schema())
    replace_roles(router, roles, removed)
    return roles


def realm_routers(session: Any, realms: list[str]) -> dict[str, Any]:
    """The router of each realm in ``realms``, from a router component ``session`` of the same worker."""
    factory = realm_router(session)._factory
    found = {name: factory.get(name) for name in realms}
    missing = sorted(name for name, router in found.items() if router is None)
    if missing:
        raise RuntimeError(f"no router for realm(s) {', '.join(missing)} in this worker")
    return found


def install_realm_roles(session: Any, realms: Mapping[str, Mapping[str, Any]], store_path: str) -> None:
    """Install every realm's effective roles: ``realms`` maps a realm name to its roles in the config file,
    the store at ``store_path`` holds the changes made at run time."""
    routers = realm_routers(session, list(realms))
    store = UserStore(Path(store_path))
    try:
        for name, file_roles in realms.items():
            stored = store.role_definitions(name)
            for ignored in ignored_changes(stored):
                log.warn(
                    "ignoring stored role {role!r} of realm {realm!r}: the name is reserved by the router",
                    role=ignored,
                    realm=name,
                )
            install_roles(routers[name], effective_roles(file_roles, stored), removed_roles(stored))
    finally:
        store.close()
