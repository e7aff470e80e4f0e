"""
Compile a validated :class:`~router.config.Config` into a Crossbar.io node configuration.

This is a pure function of its inputs: no file, socket or clock is touched here, so every output can be
unit-tested and checked by Crossbar's own config checker.

The node has one router worker. It hosts the realms with their roles (as Crossbar static permissions),
the application components (as router components: in-process, no extra worker to start or to hop through),
the public transports, and a private *control* transport: RawSocket/msgpack on a unix socket inside the
data directory. The control transport grants the router's built-in ``trusted`` role to whoever can open
the socket, so only processes of the user owning the data directory can; ``switchboard run`` uses it to
probe readiness. It is started last, so a session joined through it proves the whole node is up.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from router.config import Config, Realm, Role, Rule, Transport
from router.rules import covers, is_meta

__all__ = ["ROUTER_WORKER_ID", "compile_node", "compile_permissions", "static_is_exact"]

ROUTER_WORKER_ID = "router_main"


def compile_node(config: Config, control_socket: str, store_path: str) -> dict[str, Any]:
    """Return the Crossbar node config (``"version": 2``) for ``config``.

    Every transport port in ``config`` must already be concrete (non-zero): Crossbar rejects port 0.
    Store-backed auth methods read the user store at ``store_path``.
    """
    auth_config = {
        "store": store_path,
        "throttle": dataclasses.asdict(config.throttle),
        "trusted_proxies": list(config.trusted_proxies),
    }
    transports = [_transport(t, auth_config) for t in config.transports]
    transports.append(_control_transport(control_socket))
    components = [
        {
            "type": "class",
            "id": f"component_{i:03d}",
            "classname": c.class_path,
            "realm": c.realm,
            "role": c.role,
            "extra": dict(c.extra),
        }
        for i, c in enumerate(config.components)
    ]
    # First, so it runs before any transport opens (router components start in order, transports after).
    components.insert(0, _bootstrap(config, auth_config if config.uses_store else None))
    for index, realm in enumerate(config.realms):
        components.insert(1 + index, _admin(index, realm, store_path))
    worker: dict[str, Any] = {
        "type": "router",
        "id": ROUTER_WORKER_ID,
        "options": {"title": "switchboard router", "pythonpath": list(config.pythonpath)},
        "realms": [_realm(i, realm) for i, realm in enumerate(config.realms)],
        "components": components,
        "transports": transports,
    }
    return {"version": 2, "controller": {}, "workers": [worker]}


def _realm(index: int, realm: Realm) -> dict[str, Any]:
    return {
        "id": f"realm_{index:03d}",
        "name": realm.name,
        "roles": [{"name": role.name, "permissions": compile_permissions(role)} for role in realm.roles.values()],
    }


def compile_permissions(role: Role) -> list[dict[str, Any]]:
    """Translate a role's effective rules into Crossbar static permissions.

    Crossbar looks a URI up by longest string prefix among the permission URIs and uses that one entry
    alone (an ``exact`` entry that is only a prefix of the URI counts as no match, and it does not fall back
    to a shorter entry). So entries are not translated rule by rule: each entry holds the decision, allow
    minus deny, for the URIs it will be chosen for.

    - An ``exact`` entry for the URI of each exact rule and of each prefix rule (allow or deny), deciding
      that URI from every rule covering it.
    - A ``prefix`` entry ``u.`` for each prefix rule on ``u`` (``""`` for the empty prefix), and for each
      exact entry ``u`` lying under a prefix rule (so it does not hide that rule from ``u.x``), deciding
      from the prefix rules covering everything below ``u``: below ``u``, other rules have entries of
      their own.
    - ``wamp`` exact and ``wamp.`` prefix entries when the role has the empty prefix, which does not reach
      the meta API (only rules naming ``wamp`` do).
    - A ``wildcard`` entry per allow wildcard pattern.

    The result never allows what the rules do not (``tests/unit/test_rules.py`` checks Crossbar's own
    decisions). Where it is not exact (:func:`static_is_exact`), the role is decided in the router
    instead; the permissions still register the role with Crossbar.
    """
    rules = role.allow + role.deny
    prefixes = [r for r in rules if r.match == "prefix"]
    exact_uris = {r.uri for r in rules if r.match == "exact" or (r.match == "prefix" and r.uri != "")}
    roots = {r.uri for r in prefixes}
    if "" in roots:
        # The empty prefix does not reach the meta API: give "wamp" entries of its own.
        exact_uris.add("wamp")
        roots.add("wamp")
    roots |= {u for u in exact_uris if any(p.uri != u and _covers_below(p, u) for p in prefixes)}

    def below(rules: tuple[Rule, ...], root: str) -> list[Rule]:
        return [r for r in rules if r.match == "prefix" and _covers_below(r, root)]

    entries: dict[str, dict[str, Any]] = {}
    for uri in exact_uris:
        at = [r for r in role.allow if covers(r, uri)], [r for r in role.deny if covers(r, uri)]
        entries[uri] = _entry(uri, "exact", *at)
    for root in roots:
        key = "" if root == "" else root + "."
        entries[key] = _entry(key, "prefix", below(role.allow, root), below(role.deny, root))
    for r in role.allow:
        if r.match == "wildcard":
            same = [w for w in role.allow if w.match == "wildcard" and w.uri == r.uri]
            entries[r.uri] = _entry(r.uri, "wildcard", same, [])
    return [entries[key] for key in sorted(entries)]


def static_is_exact(role: Role) -> bool:
    """Whether Crossbar's static permissions compiled for ``role`` decide exactly like its rules.

    They do unless the role has a gap (see :func:`compile_permissions`): an exact entry strictly under a
    broader prefix rule, a wildcard rule next to prefix rules, a wildcard deny rule, or a wildcard whose
    last component is the empty one. Such roles are decided in the router by
    :func:`router.rules.decide` instead (still in-process, and cached by the router).
    """
    rules = role.allow + role.deny
    prefixes = [r for r in rules if r.match == "prefix"]
    wildcards = [r for r in rules if r.match == "wildcard"]
    if wildcards and prefixes:
        return False
    if any(r.match == "wildcard" for r in role.deny):
        return False  # deny wildcards have no static form
    if any(".." not in r.uri for r in wildcards):
        return False  # Crossbar files a pattern without ".." (empty last component) as a plain URI

    keys = {r.uri for r in rules if r.match == "exact" or (r.match == "prefix" and r.uri != "")}
    return not any(p.uri != k and _covers_below(p, k) for k in keys for p in prefixes)


def _covers_below(prefix_rule: Rule, root: str) -> bool:
    """Whether a prefix rule covers every URI strictly below ``root``."""
    if prefix_rule.uri == "":
        return not is_meta(root)
    return root == prefix_rule.uri or root.startswith(prefix_rule.uri + ".")


def _entry(uri: str, match: str, allow: list[Rule], deny: list[Rule]) -> dict[str, Any]:
    denied = {a for r in deny for a in r.actions}
    actions = {a for r in allow for a in r.actions} - denied
    return {
        "uri": uri,
        "match": match,
        "allow": {a: a in actions for a in ("call", "register", "publish", "subscribe")},
        "disclose": {
            "caller": "call" in actions and any(r.disclose and "call" in r.actions for r in allow),
            "publisher": "publish" in actions and any(r.disclose and "publish" in r.actions for r in allow),
        },
        "cache": True,
    }


def _admin(index: int, realm: Realm, store_path: str) -> dict[str, Any]:
    """The runtime admin API of ``realm`` (see router.admin); the roles decide who may call it."""
    return {
        "type": "class",
        "id": f"switchboard_admin_{index:03d}",
        "classname": "router.admin.AdminComponent",
        "realm": realm.name,
        "role": "trusted",
        "extra": {"store": store_path, "roles": dict(realm.role_definitions)},
    }


def _bootstrap(config: Config, auth_config: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "type": "class",
        "id": "switchboard_bootstrap",
        "classname": "router.worker.WorkerBootstrap",
        "realm": config.realms[0].name,
        "role": "trusted",
        "extra": {
            "auth": auth_config,
            "limits": dataclasses.asdict(config.limits),
            "trusted_proxies": list(config.trusted_proxies),
        },
    }


def _transport(t: Transport, auth_config: dict[str, Any]) -> dict[str, Any]:
    endpoint = {"type": "tcp", "interface": t.host, "port": t.port}
    auth: dict[str, Any] = {}
    if t.anonymous_role is not None:
        auth["anonymous"] = {"type": "static", "role": t.anonymous_role}
    for method in t.store_methods:
        auth[method] = {"type": "function", "create": f"router.auth.service.create_{method}", "config": auth_config}
    if t.type == "rawsocket":
        return {
            "type": "rawsocket",
            "id": f"transport_{t.name}",
            "endpoint": endpoint,
            "serializers": list(t.serializers),
            # RawSocket announces its limit as a power of two; Crossbar takes bytes.
            "options": {"max_message_size": t.max_message_size},
            "auth": auth,
        }
    websocket = {
        "type": "websocket",
        "serializers": list(t.serializers),
        "options": {
            "max_message_size": t.max_message_size,
            "open_handshake_timeout": _ms(t.open_handshake_timeout),
            "auto_ping_interval": _ms(t.ping_interval),
            "auto_ping_timeout": _ms(t.ping_timeout),
            "enable_webstatus": False,
        },
        "auth": auth,
    }
    return {
        "type": "web",
        "id": f"transport_{t.name}",
        "endpoint": endpoint,
        "paths": {t.path: websocket},
    }


def _control_transport(path: str) -> dict[str, Any]:
    return {
        "type": "rawsocket",
        "id": "transport_control",
        "endpoint": {"type": "unix", "path": path},
        "serializers": ["msgpack"],
        "auth": {"anonymous": {"type": "static", "role": "trusted"}},
    }


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
