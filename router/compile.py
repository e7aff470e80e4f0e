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

from typing import Any

from router.config import Config, Realm, Role, Rule, Transport
from router.rules import covers

__all__ = ["ROUTER_WORKER_ID", "compile_node", "compile_permissions"]

ROUTER_WORKER_ID = "router_main"


def compile_node(config: Config, control_socket: str, store_path: str) -> dict[str, Any]:
    """Return the Crossbar node config (``"version": 2``) for ``config``.

    Every transport port in ``config`` must already be concrete (non-zero): Crossbar rejects port 0.
    Store-backed auth methods read the user store at ``store_path``.
    """
    auth_config = {
        "store": store_path,
        "throttle": {
            "per_authid": config.throttle.per_authid,
            "per_peer": config.throttle.per_peer,
            "window": config.throttle.window,
        },
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
    if config.uses_store:
        # Must start before any login (see router.auth.service.AuthBootstrap); components start in order.
        components.insert(0, _auth_bootstrap(config.realms[0].name, auth_config))
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
    """Translate a role's rules into Crossbar static permissions.

    Crossbar looks a URI up by longest string prefix among the permission URIs and uses that one entry
    alone (an ``exact`` entry that is only a prefix of the URI counts as no match, and it does not fall back
    to a shorter entry). So entries are not translated rule by rule; each entry carries every action that
    any rule allows on the URIs it will be chosen for:

    - an ``exact`` entry for each exact rule's URI and each prefix rule's own URI, with the actions of all
      rules covering that URI;
    - a ``prefix`` entry ``u.`` for each prefix rule on ``u`` (``""`` for the empty prefix), and for each
      exact entry ``u`` lying under a prefix rule (so it does not hide that rule from ``u.x``), with the
      actions of the prefix rules covering everything below ``u``;
    - a ``wildcard`` entry per wildcard pattern.

    The result never allows what the rules do not (``tests/unit/test_rules.py`` checks Crossbar's own
    decisions). Two gaps remain, both on the safe side: below an exact entry ``u``, a URI extending ``u``'s
    last component (``u`` = ``chat.send``, URI ``chat.sendx``) is denied even when a broader prefix rule
    covers it; and where a wildcard pattern matches, Crossbar uses it instead of, not with, a prefix rule.
    """
    rules = role.allow
    prefixes = [r for r in rules if r.match == "prefix"]
    exact_uris = {r.uri for r in rules if r.match == "exact" or (r.match == "prefix" and r.uri != "")}
    roots = {r.uri for r in prefixes}
    roots |= {u for u in exact_uris if any(p.uri != u and _covers_below(p, u) for p in prefixes)}

    entries: dict[str, dict[str, Any]] = {}
    for uri in exact_uris:
        entries[uri] = _entry(uri, "exact", [r for r in rules if covers(r, uri)])
    for root in roots:
        key = "" if root == "" else root + "."
        entries[key] = _entry(key, "prefix", [p for p in prefixes if _covers_below(p, root)])
    for r in rules:
        if r.match == "wildcard":
            entries[r.uri] = _entry(r.uri, "wildcard", [w for w in rules if w.match == "wildcard" and w.uri == r.uri])
    return [entries[key] for key in sorted(entries)]


def _covers_below(prefix_rule: Rule, root: str) -> bool:
    """Whether a prefix rule covers every URI strictly below ``root``."""
    return prefix_rule.uri == "" or root == prefix_rule.uri or root.startswith(prefix_rule.uri + ".")


def _entry(uri: str, match: str, rules: list[Rule]) -> dict[str, Any]:
    actions = {a for r in rules for a in r.actions}
    return {
        "uri": uri,
        "match": match,
        "allow": {a: a in actions for a in ("call", "register", "publish", "subscribe")},
        "disclose": {
            "caller": any(r.disclose and "call" in r.actions for r in rules),
            "publisher": any(r.disclose and "publish" in r.actions for r in rules),
        },
        "cache": True,
    }


def _auth_bootstrap(realm: str, auth_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "class",
        "id": "switchboard_auth",
        "classname": "router.auth.service.AuthBootstrap",
        "realm": realm,
        "role": "trusted",
        "extra": auth_config,
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
            "max_message_size": t.max_message_size,
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
