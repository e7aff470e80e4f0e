"""
Load and validate ``switchboard.json`` into a typed, immutable model.

Validation happens in two passes: the JSON Schema (``switchboard.schema.json``) checks shape and types,
then :func:`_check_references` checks what a schema cannot express (names that must refer to each other,
duplicates). Both passes report *every* problem as a :class:`Problem` whose ``pointer`` is the RFC 6901
JSON pointer of the offending key, so ``switchboard check`` can print ``/realms/0/roles/x: ...`` lines.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator, ValidationError

from router.authz.model import Role, Rule, build_roles, role_problems

__all__ = [
    "ACTIONS",
    "STORE_METHODS",
    "Channel",
    "Cluster",
    "Component",
    "Config",
    "ConfigError",
    "Limits",
    "Operations",
    "Peer",
    "Problem",
    "Realm",
    "Role",
    "Rule",
    "Throttle",
    "Tls",
    "Transport",
    "load_config",
    "parse_config",
    "schema",
]

ACTIONS = ("call", "register", "publish", "subscribe")
#: Auth methods that check credentials in the user store.
STORE_METHODS = ("ticket", "wampcra", "cryptosign", "scram")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration, located by a JSON pointer (``""`` is the whole document)."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists every reason, in document order."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        super().__init__(f"{source}: {len(problems)} problem(s)")
        self.source = source
        self.problems = problems


@dataclass(frozen=True)
class Channel:
    """Topics whose events are kept and whose subscribers are listed (see :mod:`router.channels`).

    ``history_size`` is 0 without history; ``presence`` False without presence.
    """

    topic: str
    match: Literal["exact", "prefix"] = "exact"
    history_size: int = 0
    history_ttl: float = 86400.0
    max_topics: int = 10000
    presence: bool = False
    presence_members: bool = True
    presence_grace: float = 0.0

    def covers(self, topic: str) -> bool:
        """Whether ``topic`` is one of the channel's topics (prefixes match whole components)."""
        if self.match == "exact":
            return topic == self.topic
        return topic == self.topic or topic.startswith(self.topic + ".")


@dataclass(frozen=True)
class Realm:
    """A WAMP realm and its roles (``role_definitions``: the roles as written in the file)."""

    name: str
    roles: Mapping[str, Role]
    role_definitions: Mapping[str, Any] = field(default_factory=dict)
    channels: tuple[Channel, ...] = ()


@dataclass(frozen=True)
class Tls:
    """A listener's TLS files (absolute paths)."""

    cert: str
    key: str
    ca: str | None = None


@dataclass(frozen=True)
class Transport:
    """A listening endpoint clients connect to."""

    name: str
    type: Literal["websocket", "rawsocket"]
    host: str
    port: int
    path: str
    serializers: tuple[str, ...]
    max_message_size: int
    open_handshake_timeout: float
    ping_interval: float
    ping_timeout: float
    anonymous_role: str | None
    #: Store-backed auth methods enabled on this transport, in the order of :data:`STORE_METHODS`.
    store_methods: tuple[str, ...] = ()
    #: Static files: ``(URL path, absolute directory)`` pairs (see :mod:`router.web`).
    web: tuple[tuple[str, str], ...] = ()
    #: Origins whose pages may connect (None: any).
    allowed_origins: tuple[str, ...] | None = None
    tls: Tls | None = None

    @property
    def url(self) -> str:
        """The URL a client uses to reach this transport."""
        if self.type == "websocket":
            return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}/{self.path}"
        return f"{'rss' if self.tls else 'rs'}://{self.host}:{self.port}"

    @property
    def web_url(self) -> str | None:
        """The URL of the static files mounted at ``/``, if any."""
        if not any(mount == "/" for mount, _ in self.web):
            return None
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/"


@dataclass(frozen=True)
class Component:
    """An application component hosted inside the router process."""

    class_path: str
    realm: str
    role: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Throttle:
    """Login throttling limits (see :mod:`router.auth.throttle`)."""

    per_authid: int
    per_peer: int
    window: float
    delay_after: int
    max_delay: float
    max_entries: int


@dataclass(frozen=True)
class Operations:
    """The operators' HTTP endpoints (the ``operations`` object; see :mod:`router.operations`).

    Served on the port of the listener named ``listener``, or, when ``listener`` is None, on a listener of
    their own at ``host``:``port``. A path of None is not served.
    """

    listener: str | None
    host: str = "127.0.0.1"
    port: int = 0
    health: str | None = "/health"
    ready: str | None = "/ready"
    metrics: str | None = "/metrics"
    #: Absolute path of the file holding the bearer token ``/metrics`` requires (None: no token).
    metrics_token_file: str | None = None
    #: SHA-256 (hex) of that token, read when the config is loaded: what checks a request's token.
    metrics_token_sha256: str | None = None
    max_procedure_labels: int = 200

    @property
    def paths(self) -> dict[str, str]:
        """The endpoints served: ``{"health": "/health", ...}`` without those turned off."""
        named = {"health": self.health, "ready": self.ready, "metrics": self.metrics}
        return {name: path for name, path in named.items() if path is not None}

    @property
    def url(self) -> str | None:
        """``http://host:port`` of the endpoints' own listener (None when they share a WAMP listener)."""
        return None if self.listener is not None else f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class Peer:
    """Another node of the cluster (``cluster.peers``): its name, node key and, when this node dials it, its
    link listener ``host``:``port``."""

    name: str
    key: str
    host: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class Cluster:
    """This node's links to other nodes (the ``cluster`` object; see :mod:`router.workers`)."""

    name: str
    host: str
    port: int
    peers: tuple[Peer, ...]


@dataclass(frozen=True)
class Limits:
    """Bounds on what clients can make the router hold or wait for (the ``limits`` object)."""

    max_nesting: int
    max_connections: int
    max_connections_per_peer: int
    http_timeout: float
    max_send_buffer: int
    max_pending_calls: int
    call_timeout: float
    authorization_cache: int
    history_flush: float = 0.05
    max_presence_data: int = 1024
    max_subscriptions: int = 1000
    max_registrations: int = 1000
    join_timeout: float = 30.0
    max_log_events: int = 100


@dataclass(frozen=True)
class Config:
    """A validated Switchboard configuration with every default filled in."""

    transports: tuple[Transport, ...]
    realms: tuple[Realm, ...]
    components: tuple[Component, ...]
    pythonpath: tuple[str, ...]
    throttle: Throttle
    limits: Limits
    #: Reverse proxies whose ``X-Forwarded-For``/``X-Real-IP`` headers name the client (IPs or CIDRs).
    trusted_proxies: tuple[str, ...] = ()
    #: The operators' HTTP endpoints (None: not served).
    operations: Operations | None = None
    #: Router worker processes (router.workers).
    workers: int = 1
    #: Links to other nodes (None: a node of its own).
    cluster: Cluster | None = None

    @property
    def operations_url(self) -> str | None:
        """Where the operations endpoints are: ``http://host:port`` (with the real port once the node runs)."""
        ops = self.operations
        if ops is None:
            return None
        if ops.url is not None:
            return ops.url
        served_by = next(t for t in self.transports if t.name == ops.listener)
        return f"{'https' if served_by.tls else 'http'}://{served_by.host}:{served_by.port}"

    @property
    def uses_store(self) -> bool:
        """Whether any transport authenticates against the user store."""
        return any(t.store_methods for t in self.transports)

    @property
    def main_transport(self) -> Transport:
        """The transport ``--port`` overrides: the first WebSocket one, else the first of all."""
        for transport in self.transports:
            if transport.type == "websocket":
                return transport
        return self.transports[0]


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``switchboard.json``."""
    text = resources.files("router").joinpath("switchboard.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def load_config(path: Path) -> Config:
    """Read, validate and model the configuration at ``path``; raise :class:`ConfigError` if unusable."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, [Problem("", f"no such file: {source}")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(source, [Problem("", f"cannot read {source}: {e}")]) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        where = f"line {e.lineno}, column {e.colno}"
        raise ConfigError(source, [Problem("", f"invalid JSON at {where}: {e.msg}")]) from None
    return parse_config(document, base_dir=path.resolve().parent, source=source)


def parse_config(document: Any, base_dir: Path, source: str = "<config>") -> Config:
    """Validate an already-parsed JSON document; relative paths resolve against ``base_dir``."""
    the_schema = schema()
    problems = sorted(_schema_problems(document, the_schema), key=_document_order)
    if problems:
        raise ConfigError(source, problems)
    problems = list(_check_references(document))
    if problems:
        raise ConfigError(source, problems)
    problems = list(_check_files(document, base_dir))
    if problems:
        raise ConfigError(source, problems)
    return _build(document, the_schema, base_dir)


def _pointer(parts: Iterator[Any] | list[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _document_order(problem: Problem) -> tuple[Any, ...]:
    # Numeric components sort as numbers so /listen/10 comes after /listen/2.
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in problem.pointer.split("/"))


def _schema_problems(document: Any, the_schema: dict[str, Any]) -> Iterator[Problem]:
    validator = Draft202012Validator(the_schema)
    for error in validator.iter_errors(document):
        yield from _explain(error)


def _explain(error: ValidationError) -> Iterator[Problem]:
    """Turn one jsonschema error into user-facing problems pointing at the offending key."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        known = set(allowed)
        for key in sorted(k for k in error.instance if k not in known):
            hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
            yield Problem(_pointer([*path, key]), f"unknown key{hint}")
        return
    if "propertyNames" in error.absolute_schema_path:
        # The error is about a key itself, reported at the object holding it: point at the key.
        yield Problem(_pointer([*path, error.instance]), f"invalid name: {error.message}")
        return
    if error.validator == "not":
        yield Problem(_pointer(path), f"{error.instance!r} is a reserved name")
        return
    if error.validator == "required":
        # Point at the missing key itself: "/listen/0/port: is required".
        missing = error.message.split("'")[1] if "'" in error.message else ""
        yield Problem(_pointer([*path, missing]) if missing else _pointer(path), "is required")
        return
    yield Problem(_pointer(path), error.message)


def _check_references(doc: dict[str, Any]) -> Iterator[Problem]:
    """Checks the schema cannot express: uniqueness and names that must refer to something."""
    realm_roles: dict[str, set[str]] = {}
    for i, realm in enumerate(doc["realms"]):
        if realm["name"] in realm_roles:
            yield Problem(f"/realms/{i}/name", f"duplicate realm {realm['name']!r}")
        realm_roles[realm["name"]] = set(realm["roles"])
        for pointer, message in role_problems(realm["roles"]):
            yield Problem(f"/realms/{i}/roles{pointer}", message)
        yield from _channel_problems(i, realm.get("channels", []))

    names: set[str] = set()
    bound: set[tuple[str, int]] = set()
    for i, transport in enumerate(doc["listen"]):
        if transport["name"] in names:
            yield Problem(f"/listen/{i}/name", f"duplicate transport name {transport['name']!r}")
        names.add(transport["name"])
        address = (transport.get("host", "127.0.0.1"), transport["port"])
        if transport["port"] and address in bound:
            yield Problem(f"/listen/{i}/port", f"{address[0]}:{address[1]} is already used by another transport")
        bound.add(address)
        if transport["type"] == "websocket":
            for mount in transport.get("web", {}):
                if mount.strip("/") == transport.get("path", "ws"):
                    yield Problem(_pointer(["listen", i, "web", mount]), "is the listener's WebSocket path")
        for j, origin in enumerate(transport.get("allowed_origins", [])):
            if origin != "*" and not _ORIGIN.match(origin):
                yield Problem(
                    f"/listen/{i}/allowed_origins/{j}",
                    f"{origin!r} is not an origin: scheme://host[:port] in lower case, http or https, no path "
                    "(`*` matches anything)",
                )
        if transport["type"] != "websocket":
            for key in ("path", "open_handshake_timeout", "ping_interval", "ping_timeout", "web", "allowed_origins"):
                if key in transport:
                    yield Problem(f"/listen/{i}/{key}", "only valid for websocket transports")
        anonymous = transport.get("auth", {}).get("anonymous")
        if anonymous:
            for realm_name, roles in realm_roles.items():
                if anonymous["role"] not in roles:
                    yield Problem(
                        f"/listen/{i}/auth/anonymous/role",
                        f"role {anonymous['role']!r} is not defined in realm {realm_name!r}",
                    )

    yield from _operations_problems(doc)
    yield from _worker_problems(doc)

    for i, proxy in enumerate(doc.get("trusted_proxies", [])):
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            yield Problem(f"/trusted_proxies/{i}", f"{proxy!r} is not an IP address or network (e.g. 10.0.0.0/8)")

    limits, throttle = doc.get("limits", {}), doc.get("throttle", {})
    join = limits.get("join_timeout", schema()["properties"]["limits"]["properties"]["join_timeout"]["default"])
    http = limits.get("http_timeout", schema()["properties"]["limits"]["properties"]["http_timeout"]["default"])
    delay = throttle.get("max_delay", schema()["properties"]["throttle"]["properties"]["max_delay"]["default"])
    if join <= max(http, delay):
        yield Problem(
            "/limits/join_timeout",
            f"{join} must exceed http_timeout ({http}) and throttle.max_delay ({delay}): a login must fit in it",
        )
    send_buffer = doc.get("limits", {}).get("max_send_buffer")
    if send_buffer is not None:
        for i, transport in enumerate(doc["listen"]):
            size = transport.get(
                "max_message_size", schema()["$defs"]["transport"]["properties"]["max_message_size"]["default"]
            )
            if size > send_buffer:
                yield Problem(
                    "/limits/max_send_buffer",
                    f"{send_buffer} is less than /listen/{i}/max_message_size ({size}): one message must fit",
                )

    for i, component in enumerate(doc.get("components", [])):
        realm_name = component["realm"]
        if realm_name not in realm_roles:
            known = ", ".join(sorted(realm_roles))
            yield Problem(f"/components/{i}/realm", f"no realm named {realm_name!r} (defined: {known})")
            continue
        role = component.get("role", "backend")
        if role not in realm_roles[realm_name]:
            yield Problem(f"/components/{i}/role", f"no role {role!r} in realm {realm_name!r}")


def _operations_problems(doc: dict[str, Any]) -> Iterator[Problem]:
    """The ``operations`` endpoints name a WebSocket listener (or have a port of their own) and no path twice."""
    ops = doc.get("operations")
    if ops is None:
        return
    listeners = doc["listen"]
    if "port" in ops:
        if "listener" in ops:
            yield Problem("/operations/port", "either `listener` or `port`, not both")
            return
        address = (ops.get("host", "127.0.0.1"), ops["port"])
        for i, t in enumerate(listeners):
            if ops["port"] and (t.get("host", "127.0.0.1"), t["port"]) == address:
                yield Problem("/operations/port", f"{address[0]}:{address[1]} is already used by /listen/{i}")
        served: dict[str, Any] = {}
    else:
        websockets = [t for t in listeners if t["type"] == "websocket"]
        name = ops.get("listener", websockets[0]["name"] if websockets else None)
        if name is None:
            yield Problem("/operations", "no `websocket` listener to serve the endpoints on: add one or give a `port`")
            return
        served = next((t for t in listeners if t["name"] == name), {})
        if served.get("type") != "websocket":
            known = ", ".join(repr(t["name"]) for t in websockets) or "none"
            yield Problem("/operations/listener", f"no `websocket` listener named {name!r} (there are: {known})")
            return
    taken = {"/" + served.get("path", "ws"): "the listener's WebSocket path"} if served else {}
    taken.update({mount: "a `web` mount of the listener" for mount in served.get("web", {})})
    for key in ("health", "ready", "metrics"):
        path = ops.get(key, schema()["properties"]["operations"]["properties"][key]["default"])
        if path is None:
            continue
        if path in taken:
            yield Problem(f"/operations/{key}", f"{path!r} is already {taken[path]}")
        taken[path] = f"the `{key}` endpoint"


#: An ``allowed_origins`` entry: lower-case http(s), a host of letters, digits, dots, dashes and ``*``, an
#: optional port (digits or ``*``), no path: what autobahn compares with ``scheme://host:port``.
_ORIGIN = re.compile(r"^https?://[a-z0-9.*-]+(:(\d+|\*))?$")


def _cluster_problems(doc: dict[str, Any]) -> Iterator[Problem]:
    """A cluster node has one router worker, no channels, and names each peer once, never itself."""
    cluster = doc.get("cluster")
    if cluster is None:
        return
    if doc.get("workers", 1) != 1:
        yield Problem("/cluster", "a node linked to other nodes has `workers: 1` (the links join one worker)")
    for i, realm in enumerate(doc["realms"]):
        if realm.get("channels"):
            yield Problem(
                f"/realms/{i}/channels",
                "channels need a single node: their history and presence are kept by one router (not with `cluster`)",
            )
    address = (cluster.get("host", "127.0.0.1"), cluster["port"])
    for i, listener in enumerate(doc["listen"]):
        if cluster["port"] and (listener.get("host", "127.0.0.1"), listener["port"]) == address:
            yield Problem("/cluster/port", f"{cluster['port']} is already used by /listen/{i}")
    seen = {cluster["name"]}
    for j, peer in enumerate(cluster["peers"]):
        if peer["name"] in seen:
            yield Problem(f"/cluster/peers/{j}/name", f"{peer['name']!r} is named twice (or is this node)")
        seen.add(peer["name"])
        port = int(peer["url"].rsplit(":", 1)[1]) if "url" in peer else 1
        if not 1 <= port <= 65535:
            yield Problem(f"/cluster/peers/{j}/url", f"port {port} is not a TCP port")


def _worker_problems(doc: dict[str, Any]) -> Iterator[Problem]:
    """What more than one router worker cannot serve (router.workers)."""
    yield from _cluster_problems(doc)
    if doc.get("workers", 1) == 1:
        return
    ops = doc.get("operations")
    if ops is not None and "port" not in ops:
        yield Problem(
            "/operations",
            "with more than one router worker the endpoints need a `port` of their own (served by the first "
            "worker): a shared listener would answer from any worker",
        )
    for i, realm in enumerate(doc["realms"]):
        for j, channel in enumerate(realm.get("channels", [])):
            if channel.get("presence", False) is not False:
                yield Problem(
                    f"/realms/{i}/channels/{j}/presence",
                    "presence needs `workers: 1`: members are known only to the worker they subscribed on",
                )


def _check_files(doc: dict[str, Any], base_dir: Path) -> Iterator[Problem]:
    """The files a listener names: web directories exist, TLS files are usable (:mod:`router.tls`); the
    metrics token file holds a token."""
    from router.tls import certificate_problems

    token_file = doc.get("operations", {}).get("metrics_token_file")
    if token_file is not None:
        try:
            token = (base_dir / token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            yield Problem("/operations/metrics_token_file", f"cannot read {base_dir / token_file}: {e}")
        else:
            if not token:
                yield Problem("/operations/metrics_token_file", f"{base_dir / token_file} is empty")

    for i, transport in enumerate(doc["listen"]):
        for mount, directory in transport.get("web", {}).items():
            if not (base_dir / directory).is_dir():
                yield Problem(_pointer(["listen", i, "web", mount]), f"no such directory: {base_dir / directory}")
        tls = transport.get("tls")
        if tls:
            ca = base_dir / tls["ca"] if "ca" in tls else None
            for which, message in certificate_problems(base_dir / tls["cert"], base_dir / tls["key"], ca):
                yield Problem(_pointer(["listen", i, "tls", which]), message)


def _channel_problems(realm_index: int, channels: list[dict[str, Any]]) -> Iterator[Problem]:
    """Channels of one realm may not overlap: each topic belongs to at most one channel."""
    built = [_channel(c) for c in channels]
    for i, channel in enumerate(built):
        for j, other in enumerate(built[:i]):
            if channel.covers(other.topic) or other.covers(channel.topic):
                yield Problem(
                    f"/realms/{realm_index}/channels/{i}/topic",
                    f"{channel.topic!r} overlaps channel {j} ({other.topic!r}): a topic belongs to one channel",
                )
                break


def _channel(c: dict[str, Any]) -> Channel:
    """The :class:`Channel` a valid channel object of the file stands for, the schema's defaults filled in."""
    props = schema()["$defs"]["channel"]["properties"]
    history_defaults = {k: v["default"] for k, v in props["history"]["properties"].items()}
    presence_defaults = {k: v["default"] for k, v in props["presence"]["properties"].items()}
    history = {**history_defaults, **c["history"]} if "history" in c else None
    presence = c.get("presence", props["presence"]["default"])
    options = {**presence_defaults, **(presence if isinstance(presence, dict) else {})}
    return Channel(
        topic=c["topic"],
        match=c.get("match", props["match"]["default"]),
        history_size=history["size"] if history else 0,
        history_ttl=float(history["ttl"] if history else history_defaults["ttl"]),
        max_topics=history["max_topics"] if history else history_defaults["max_topics"],
        presence=presence is not False,
        presence_members=options["members"],
        presence_grace=float(options["grace"]),
    )


def _build(doc: dict[str, Any], the_schema: dict[str, Any], base_dir: Path) -> Config:
    defs = the_schema["$defs"]

    def default(definition: str, key: str) -> Any:
        return defs[definition]["properties"][key]["default"]

    def opt(obj: dict[str, Any], definition: str, key: str) -> Any:
        return obj.get(key, default(definition, key))

    transports = tuple(
        Transport(
            name=t["name"],
            type=t["type"],
            host=opt(t, "transport", "host"),
            port=t["port"],
            path=opt(t, "transport", "path"),
            serializers=tuple(opt(t, "transport", "serializers")),
            max_message_size=opt(t, "transport", "max_message_size"),
            open_handshake_timeout=opt(t, "transport", "open_handshake_timeout"),
            ping_interval=opt(t, "transport", "ping_interval"),
            ping_timeout=opt(t, "transport", "ping_timeout"),
            anonymous_role=t.get("auth", {}).get("anonymous", {}).get("role"),
            store_methods=tuple(m for m in STORE_METHODS if m in t.get("auth", {})),
            web=tuple((mount, str((base_dir / d).resolve())) for mount, d in t.get("web", {}).items()),
            allowed_origins=tuple(t["allowed_origins"]) if "allowed_origins" in t else None,
            tls=_tls(t["tls"], base_dir) if "tls" in t else None,
        )
        for t in doc["listen"]
    )
    realms = tuple(
        Realm(
            name=r["name"],
            roles=build_roles(r["roles"], the_schema),
            role_definitions=r["roles"],
            channels=tuple(_channel(c) for c in r.get("channels", [])),
        )
        for r in doc["realms"]
    )
    components = tuple(
        Component(
            class_path=c["class"],
            realm=c["realm"],
            role=opt(c, "component", "role"),
            extra=opt(c, "component", "extra"),
        )
        for c in doc.get("components", [])
    )
    pythonpath = tuple(str((base_dir / p).resolve()) for p in doc.get("pythonpath", []))
    return Config(
        transports=transports,
        realms=realms,
        components=components,
        pythonpath=pythonpath,
        throttle=Throttle(**_section(doc, the_schema, "throttle")),
        limits=Limits(**_section(doc, the_schema, "limits")),
        trusted_proxies=tuple(doc.get("trusted_proxies", [])),
        operations=_operations(doc, the_schema, base_dir),
        workers=doc.get("workers", 1),
        cluster=_cluster(doc.get("cluster")),
    )


def _cluster(cluster: dict[str, Any] | None) -> Cluster | None:
    if cluster is None:
        return None
    peers = []
    for peer in cluster["peers"]:
        host, port = peer["url"].removeprefix("tcp://").rsplit(":", 1) if "url" in peer else (None, None)
        peers.append(Peer(peer["name"], peer["key"], host, int(port) if port is not None else None))
    return Cluster(cluster["name"], cluster.get("host", "127.0.0.1"), cluster["port"], tuple(peers))


def _operations(doc: dict[str, Any], the_schema: dict[str, Any], base_dir: Path) -> Operations | None:
    if "operations" not in doc:
        return None
    ops = _section(doc, the_schema, "operations")
    own = "port" in doc["operations"]
    websockets = (t["name"] for t in doc["listen"] if t["type"] == "websocket")
    token_file = ops["metrics_token_file"]
    return Operations(
        listener=None if own else ops["listener"] or next(websockets),
        host=ops["host"],
        port=ops["port"] if own else 0,
        health=ops["health"],
        ready=ops["ready"],
        metrics=ops["metrics"],
        metrics_token_file=str((base_dir / token_file).resolve()) if token_file else None,
        metrics_token_sha256=_token_digest(base_dir / token_file) if token_file else None,
        max_procedure_labels=ops["max_procedure_labels"],
    )


def _token_digest(path: Path) -> str:
    """SHA-256 (hex) of the token in ``path`` (surrounding whitespace ignored; checked by _check_files)."""
    return hashlib.sha256(path.read_text(encoding="utf-8").strip().encode()).hexdigest()


def _tls(tls: dict[str, str], base_dir: Path) -> Tls:
    return Tls(
        cert=str((base_dir / tls["cert"]).resolve()),
        key=str((base_dir / tls["key"]).resolve()),
        ca=str((base_dir / tls["ca"]).resolve()) if "ca" in tls else None,
    )


def _section(doc: dict[str, Any], the_schema: dict[str, Any], key: str) -> dict[str, Any]:
    """A top-level object of the document with every default of the schema filled in."""
    given = doc.get(key, {})
    return {k: given.get(k, v.get("default")) for k, v in the_schema["properties"][key]["properties"].items()}
