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

Only when asked (``test_login_socket``: the pytest plugin, :mod:`router.testkit`, never ``switchboard run``)
there is one more private transport: the *test-login* transport, RawSocket on a unix socket in the same
owner-only directory, whose ``ticket`` method is :func:`router.testkit.logins.create`: it lets a test join
with any role of a realm and any authid, without users or passwords.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from router.authz.static import compile_permissions
from router.config import Config, Realm, Transport
from router.datadir import history_path
from router.workers import (
    HOME_WORKER_ID,
    cluster_listener,
    cluster_rlinks,
    link_listener,
    link_role,
    rlinks,
    worker_id,
    worker_share,
)

__all__ = ["KIT_LOGIN_AUTHENTICATOR", "KIT_LOGIN_TRANSPORT_ID", "ROUTER_WORKER_ID", "compile_node"]

ROUTER_WORKER_ID = HOME_WORKER_ID
#: The id of the test-login transport, and the function authenticator behind it (see :mod:`router.testkit`).
KIT_LOGIN_TRANSPORT_ID = "transport_kit_login"
KIT_LOGIN_AUTHENTICATOR = "router.testkit.logins.create"


def compile_node(
    config: Config,
    control_socket: str,
    store_path: str,
    *,
    test_login_socket: str | None = None,
    node_key: str | None = None,
) -> dict[str, Any]:
    """Return the Crossbar node config (``"version": 2``) for ``config``.

    Every transport port in ``config`` must already be concrete (non-zero): Crossbar rejects port 0.
    Store-backed auth methods read the user store at ``store_path``. With ``test_login_socket`` (a unix
    socket path: tests only) the node also gets the test-login transport there. With more than one router
    worker (:mod:`router.workers`), ``node_key`` is the node's public key (hex), the one login of the links.
    """
    if config.workers > 1 and node_key is None:
        raise ValueError("more than one router worker needs the node key")
    key = node_key or ""
    # With several router workers each applies its share of what clients can drive up (router.workers).
    throttle = worker_share(config.throttle, config.limits, config.workers)[0]
    auth_config = {
        "store": store_path,
        "throttle": dataclasses.asdict(throttle),
        "trusted_proxies": list(config.trusted_proxies),
    }
    components: list[dict[str, Any]] = [
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
    components.insert(0, _bootstrap(config, auth_config if config.uses_store else None, store_path))
    # Channels next: attached to their realm's router before any client can publish or subscribe.
    channels = [
        _channels(index, realm, config, store_path) for index, realm in enumerate(config.realms) if realm.channels
    ]
    components[1:1] = channels
    for index, realm in enumerate(config.realms):
        components.insert(1 + len(channels) + index, _admin(index, realm, store_path, config.workers))
    # Whose start the bootstrap reports to the readiness probe (router.component): every component after it.
    hosted = [{"class": c["classname"], "realm": c["realm"]} for c in components[1:]]
    components[0]["extra"]["components"] = hosted
    operations = _operations(config, control_socket, store_path, hosted)
    ops = config.operations
    shared = config.workers > 1
    largest = max(t.max_message_size for t in config.transports)  # what a link may have to carry
    transports = [
        _transport(t, auth_config, operations if ops is not None and ops.listener == t.name else {}, shared)
        for t in config.transports
    ]
    public = list(transports)
    if ops is not None and ops.listener is None:
        transports.append(_operations_transport(ops.host, ops.port, operations))
    if test_login_socket is not None:
        transports.append(_kit_login_transport(config, test_login_socket, store_path))
    # Last: a probe session joined through it proves every other transport is open (router.probe).
    transports.append(_control_transport(control_socket))
    if not shared:
        realms = [_realm(i, realm) for i, realm in enumerate(config.realms)]
        if config.cluster is not None:  # links to other nodes (router.workers), before the control socket
            transports.insert(len(transports) - 1, cluster_listener(config.cluster, largest))
            for compiled in realms:
                compiled["roles"].append(link_role())
                compiled["rlinks"] = cluster_rlinks(config.cluster, compiled["name"])
        worker: dict[str, Any] = {
            "type": "router",
            "id": ROUTER_WORKER_ID,
            "options": {"title": "switchboard router", "pythonpath": list(config.pythonpath)},
            "realms": realms,
            "components": components,
            "transports": transports,
        }
        return {"version": 2, "controller": {}, "workers": [worker]}
    # The home worker hosts every component, and its readiness report (router.component) waits for the links of
    # every other worker; the others host their bootstrap and agents (router.workers).
    components[0]["extra"]["workers"] = config.workers
    workers: list[dict[str, Any]] = []
    for k in range(config.workers):
        hosted_here = (
            components
            if k == 0
            else [
                _bootstrap(config, auth_config if config.uses_store else None, store_path, worker=k),
                *_agents(config, k, store_path),
            ]
        )
        workers.append(
            {
                "type": "router",
                "id": worker_id(k),
                "options": {
                    "title": "switchboard router" if k == 0 else f"switchboard router {k}",
                    "pythonpath": list(config.pythonpath),
                },
                "realms": [_realm(i, realm, k, control_socket) for i, realm in enumerate(config.realms)],
                "components": hosted_here,
                # The link socket first; in the home worker the control socket stays last (router.probe).
                "transports": [link_listener(k, control_socket, config.workers, key, largest)]
                + (transports if k == 0 else public),
            }
        )
    return {"version": 2, "controller": {}, "workers": workers}


def _realm(index: int, realm: Realm, worker: int = 0, control_socket: str = "") -> dict[str, Any]:
    compiled: dict[str, Any] = {
        "id": f"realm_{index:03d}",
        "name": realm.name,
        "roles": [{"name": role.name, "permissions": compile_permissions(role)} for role in realm.roles.values()],
    }
    if control_socket:  # more than one router worker: the links' role, and this worker's links
        compiled["roles"].append(link_role())
        compiled["rlinks"] = rlinks(worker, realm.name, control_socket)
    return compiled


def _agents(config: Config, worker: int, store_path: str) -> list[dict[str, Any]]:
    """What the home worker's admin API asks of worker ``worker`` (router.workers_agent), one per realm."""
    return [
        {
            "type": "class",
            "id": f"switchboard_agent_{index:03d}",
            "classname": "router.workers_agent.WorkerAgent",
            "realm": realm.name,
            "role": "trusted",
            "extra": {
                "worker": worker,
                "store": store_path,
                "roles": dict(realm.role_definitions),
                "channels": [dataclasses.asdict(c) for c in realm.channels],
            },
        }
        for index, realm in enumerate(config.realms)
    ]


def _admin(index: int, realm: Realm, store_path: str, workers: int = 1) -> dict[str, Any]:
    """The runtime admin API of ``realm`` (see router.admin); the roles decide who may call it. It reaches the
    other router workers through their agents (router.workers_agent)."""
    return {
        "type": "class",
        "id": f"switchboard_admin_{index:03d}",
        "classname": "router.admin.AdminComponent",
        "realm": realm.name,
        "role": "trusted",
        "extra": {"store": store_path, "roles": dict(realm.role_definitions), "workers": workers},
    }


def _channels(index: int, realm: Realm, config: Config, store_path: str) -> dict[str, Any]:
    """The channels of ``realm`` (see router.channels.service), history next to the user store."""
    return {
        "type": "class",
        "id": f"switchboard_channels_{index:03d}",
        "classname": "router.channels.service.ChannelComponent",
        "realm": realm.name,
        "role": "trusted",
        "extra": {
            "channels": [dataclasses.asdict(c) for c in realm.channels],
            "history": str(history_path(Path(store_path).parent, realm.name)),
            "flush": config.limits.history_flush,
            "max_presence_data": config.limits.max_presence_data,
        },
    }


def _bootstrap(config: Config, auth_config: dict[str, Any] | None, store_path: str, worker: int = 0) -> dict[str, Any]:
    """The worker's first component (see router.worker): installs the overrides and every realm's roles."""
    return {
        "type": "class",
        "id": "switchboard_bootstrap",
        "classname": "router.worker.WorkerBootstrap",
        "realm": config.realms[0].name,
        "role": "trusted",
        "extra": {
            "auth": auth_config,
            "store": store_path,
            "realms": {realm.name: dict(realm.role_definitions) for realm in config.realms},
            "limits": dataclasses.asdict(worker_share(config.throttle, config.limits, config.workers)[1]),
            "trusted_proxies": list(config.trusted_proxies),
            "worker": worker,
            # Counting for /metrics costs a little per message: only when it is served.
            "metrics": (
                {"max_procedures": config.operations.max_procedure_labels}
                if config.operations is not None and config.operations.metrics is not None
                else None
            ),
        },
    }


def _operations(
    config: Config, control_socket: str, store_path: str, hosted: list[dict[str, str]]
) -> dict[str, dict[str, Any]]:
    """The operations endpoints as Crossbar ``resource`` path services (see router.operations), by path
    segment; empty without ``operations``."""
    ops = config.operations
    if ops is None:
        return {}
    extra: dict[str, dict[str, Any]] = {
        "health": {},
        "ready": {
            "control_socket": control_socket,
            "realm": config.realms[0].name,
            "store": store_path,
            "components": hosted,
        },
        "metrics": {"token_sha256": ops.metrics_token_sha256},
    }
    if config.workers > 1:  # the first worker's /metrics sums every worker's (router.operations.node_exposition)
        extra["metrics"].update(workers=config.workers, control_socket=control_socket, realm=config.realms[0].name)
        extra["ready"]["workers"] = config.workers  # and /ready checks that every worker is linked
    return {
        path.strip("/"): {
            "type": "resource",
            "classname": "router.operations.endpoint",
            "extra": {"endpoint": name, **extra[name]},
        }
        for name, path in ops.paths.items()
    }


def _operations_transport(host: str, port: int, paths: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The operations endpoints on a listener of their own: HTTP, no WAMP."""
    return {
        "type": "web",
        "id": "transport_operations",
        "endpoint": {"type": "tcp", "interface": host, "port": port},
        "paths": dict(paths),
    }


def _transport(
    t: Transport, auth_config: dict[str, Any], operations: dict[str, dict[str, Any]], shared: bool = False
) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"type": "tcp", "interface": t.host, "port": t.port}
    if shared:  # every router worker listens on the port (SO_REUSEPORT): router.workers
        endpoint["shared"] = True
    if t.tls is not None:
        endpoint["tls"] = {"certificate": t.tls.cert, "key": t.tls.key}
        if t.tls.ca is not None:
            endpoint["tls"]["ca_certificates"] = [t.tls.ca]
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
    websocket: dict[str, Any] = {
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
    if t.allowed_origins is not None:
        origins = [origin_pattern(o) for o in t.allowed_origins]
        websocket["options"].update(allowed_origins=origins, allow_null_origin=False)
    paths: dict[str, Any] = {t.path: websocket}
    for mount, directory in t.web:
        # Static files (router.web): Crossbar mounts a resource per first path segment, "/" at the root.
        paths[mount.strip("/") or "/"] = {
            "type": "resource",
            "classname": "router.web.static_directory",
            "extra": {"directory": directory},
        }
    paths.update(operations)  # the operations endpoints, when this listener serves them
    return {"type": "web", "id": f"transport_{t.name}", "endpoint": endpoint, "paths": paths}


_DEFAULT_PORTS = {"http": "80", "https": "443"}


def origin_pattern(origin: str) -> str:
    """An ``allowed_origins`` entry as autobahn matches it: against ``scheme://host:port`` with the port always
    written out, so ``https://app.example.com`` becomes ``https://app.example.com:443`` (a pattern with a
    port, or ending in ``*``, is kept)."""
    if origin.endswith("*") or re.search(r":\d+$", origin.split("//", 1)[-1]):
        return origin
    scheme = origin.split(":", 1)[0]
    return f"{origin}:{_DEFAULT_PORTS[scheme]}" if scheme in _DEFAULT_PORTS else origin


def _control_transport(path: str) -> dict[str, Any]:
    return {
        "type": "rawsocket",
        "id": "transport_control",
        "endpoint": {"type": "unix", "path": path},
        "serializers": ["msgpack"],
        "auth": {"anonymous": {"type": "static", "role": "trusted"}},
    }


def _kit_login_transport(config: Config, path: str, store_path: str) -> dict[str, Any]:
    """Tests only: a ticket login whose ticket names the role (see router.testkit.logins)."""
    realms = {realm.name: dict(realm.role_definitions) for realm in config.realms}
    return {
        "type": "rawsocket",
        "id": KIT_LOGIN_TRANSPORT_ID,
        "endpoint": {"type": "unix", "path": path},
        "serializers": ["json", "msgpack", "cbor"],
        "auth": {
            "ticket": {
                "type": "function",
                "create": KIT_LOGIN_AUTHENTICATOR,
                "config": {"store": store_path, "realms": realms},
            }
        },
    }


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
