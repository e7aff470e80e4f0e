"""
Roles in a running router: the role objects a realm's router decides with, installed, swapped and removed.

A router component reaches its realm's router through the session wrapper Crossbar gives it
(:func:`realm_router`); :func:`replace_roles` swaps role objects there, registers new role names with the
router worker's realm registry (which login checks consult) and purges the router's authorization cache for
the changed roles, so a changed role applies to the very next action of every session holding it, without
a restart. Which role object a role becomes is :func:`router.authz.static.static_is_exact`'s call: a
Crossbar static role, or one deciding each action with :func:`router.authz.rules.decide`
(:func:`decided_role`).
"""

from __future__ import annotations

from typing import Any

from router.authz.model import Role
from router.authz.rules import decide, discloses

__all__ = ["RELIED_ON", "SIGNATURES", "decided_role", "realm_router", "replace_roles"]

#: Crossbar/autobahn names this module relies on (checked by tests/unit/test_seam_canary.py and, on
#: unverified versions, before use).
RELIED_ON = [
    "autobahn.wamp.protocol.ApplicationSession._transport",
    "crossbar.router.session.RouterApplicationSession._router",
    "crossbar.router.router.Router._realm",
    "crossbar.router.router.Router._factory",
    "crossbar.router.router.Router._roles",
    "crossbar.router.router.Router._authorization_cache",
    "crossbar.router.router.Router.add_role",
    "crossbar.router.router.Router.drop_role",
    "crossbar.router.router.RouterFactory._worker",
    "crossbar.worker.types.RouterRealm.id",
    "crossbar.worker.types.RouterRealm.roles",
    "crossbar.worker.types.RouterRealm.role_to_id",
    "crossbar.worker.router.RouterController.realms",
    "crossbar.worker.router.RouterController.start_router_realm_role",
    "crossbar.worker.router.RouterController.stop_router_realm_role",
    "crossbar.router.role.RouterRole.authorize",
    "crossbar.router.role.RouterRoleStaticAuth",
    "crossbar.router.role.RouterRole.__init__",
    "crossbar.router.role.RouterRoleStaticAuth.__init__",
]

#: Called or overridden here with positional arguments: the parameters they are expected to take.
SIGNATURES = {
    "crossbar.router.role.RouterRole.__init__": ("self", "router", "uri", "allow_by_default"),
    "crossbar.router.role.RouterRole.authorize": ("self", "session", "uri", "action", "options"),
    "crossbar.router.role.RouterRoleStaticAuth.__init__": (
        "self",
        "router",
        "uri",
        "permissions",
        "default_permissions",
    ),
    "crossbar.router.router.Router.add_role": ("self", "role"),
    "crossbar.router.router.Router.drop_role": ("self", "role"),
    "crossbar.worker.router.RouterController.start_router_realm_role": (
        "self",
        "realm_id",
        "role_id",
        "role_config",
        "details",
    ),
    "crossbar.worker.router.RouterController.stop_router_realm_role": ("self", "realm_id", "role_id", "details"),
}


def _require() -> None:
    from router.seam import UnverifiedVersion, allowed

    if not allowed("roles"):
        raise UnverifiedVersion("router.seam.roles is skipped on these library versions: roles cannot change")


def realm_router(session: Any) -> Any:
    """The ``crossbar.router.router.Router`` a router component ``session`` is attached to."""
    _require()
    return session._transport._router


def decided_role(router: Any, name: str, role: Role) -> Any:
    """A Crossbar role object deciding each action with :func:`router.authz.rules.decide` (exact semantics)."""
    from crossbar.router.role import RouterRole

    class _Decided(RouterRole):
        def authorize(self, session: Any, uri: str, action: str, options: Any) -> dict[str, Any]:
            authorization: dict[str, Any] = {"allow": decide(role.allow, role.deny, uri, action), "cache": True}
            if action in ("call", "publish"):
                authorization["disclose"] = discloses(role, uri, action)
            return authorization

    return _Decided(router, name)


def replace_roles(router: Any, roles: dict[str, Role], removed: set[str]) -> None:
    """Install ``roles`` in the running router, drop ``removed`` ones, purge the router's cached decisions.

    A role whose compiled static permissions are exact becomes a Crossbar static role; any other is decided
    by :func:`decided_role`. A role also has to be known to the router worker's realm registry, which login
    checks consult (``has_role``): new names are started there as Crossbar's own
    ``start_router_realm_role`` does.
    """
    _require()
    from crossbar.router.role import RouterRoleStaticAuth

    from router.authz.static import compile_permissions, static_is_exact
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
