"""
Real nodes and real client sessions for tests: start a node, join it over its public transport with real
credentials, or over its test-login transport with any role and authid.

Nothing here imports the global reactor: pass the one pytest-twisted runs (the plugin's ``reactor``
fixture). Every wait is bounded (:data:`TIMEOUT` unless told).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.auth import create_authenticator
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.ssl import optionsForClientTLS

from router.config import Config, load_config
from router.launch import RunningNode, launch, with_port

__all__ = [
    "SERIALIZERS",
    "TIMEOUT",
    "JoinRefused",
    "SessionFactory",
    "role_session",
    "session",
    "start_node",
    "wait",
]

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}
#: Seconds a connection, a join, a leave or an event may take unless told otherwise.
TIMEOUT = 10.0


async def start_node(
    reactor: Any, config: Config | Path, data_dir: Path, ready_timeout: float = 90, test_logins: bool = False
) -> RunningNode:
    """Start a real node for ``config`` (a model or a JSON file) on a free port; ``await node.stop()`` after.

    With ``test_logins`` the node also has the test-login transport (:func:`role_session`).
    """
    if isinstance(config, Path):
        config = load_config(config)
    return await launch(reactor, with_port(config, 0), data_dir, ready_timeout=ready_timeout, test_logins=test_logins)


class JoinRefused(Exception):
    """The router refused the session (ABORT): ``reason`` is the error URI, ``message`` its text."""

    def __init__(self, reason: str, message: str | None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class _Session(ApplicationSession):
    def __init__(
        self, config: ComponentConfig, joined: defer.Deferred[Any], authenticator: Any, authid: str | None
    ) -> None:
        super().__init__(config)
        self._joined = joined
        self._authenticator = authenticator
        self._join_authid = authid
        self.left: defer.Deferred[Any] = defer.Deferred()

    def onConnect(self) -> None:
        if self._authenticator is None:
            self.join(self.config.realm, authid=self._join_authid)
        else:
            self.join(
                self.config.realm,
                authmethods=[self._authenticator.name],
                authid=self._join_authid,
                authextra=self._authenticator.authextra,
            )

    def onChallenge(self, challenge: Any) -> Any:
        return self._authenticator.on_challenge(self, challenge)

    def onJoin(self, details: Any) -> None:
        self.details = details
        self._joined.callback(self)

    def onLeave(self, details: Any) -> None:
        self.close_reason = details.reason
        if not self._joined.called:
            self._joined.errback(JoinRefused(details.reason, details.message))
        super().onLeave(details)

    def onDisconnect(self) -> None:
        if not self._joined.called:
            self._joined.errback(RuntimeError("disconnected before joining"))
        if not self.left.called:
            self.left.callback(None)


async def wait(d: defer.Deferred[Any], reactor: Any, timeout: float = TIMEOUT) -> Any:
    """Await ``d`` for at most ``timeout`` seconds (``defer.TimeoutError`` after)."""
    d.addTimeout(timeout, reactor)
    return await d


@asynccontextmanager
async def _joined(
    reactor: Any,
    endpoint: Any,
    make_factory: Callable[[Callable[[], _Session]], Any],
    realm: str,
    authenticator: Any,
    authid: str | None,
    timeout: float,
) -> AsyncIterator[Any]:
    joined: defer.Deferred[Any] = defer.Deferred()
    factory = make_factory(lambda: _Session(ComponentConfig(realm=realm), joined, authenticator, authid))
    proto = await wait(endpoint.connect(factory), reactor, timeout)
    try:
        s = await wait(joined, reactor, timeout)
        try:
            yield s
        finally:
            if s.is_attached():
                s.leave()
            await wait(s.left, reactor, timeout)
    finally:
        proto.transport.loseConnection()


@asynccontextmanager
async def session(
    reactor: Any,
    url: str,
    realm: str = "demo",
    serializer: str = "json",
    authmethod: str | None = None,
    authid: str | None = None,
    timeout: float = TIMEOUT,
    tls: Any = None,
    **credentials: Any,
) -> AsyncIterator[Any]:
    """A session joined over the WebSocket at ``url`` (the real login path); it leaves and disconnects on exit.

    A ``wss://`` URL is reached over TLS with ``tls`` (e.g. ``twisted.internet.ssl.optionsForClientTLS(
    "localhost", trustRoot=Certificate.loadPEM(...))`` for a development certificate), by default the
    system's trust roots for the URL's host.

    Without ``authmethod`` (or with ``"anonymous"``) it joins anonymously. Otherwise ``credentials``
    configure autobahn's own client authenticator for that method: ``ticket=`` (ticket), ``secret=``
    (wampcra: the password), ``privkey=`` (cryptosign: hex seed), ``password=`` and ``kdf="argon2id13"``
    (scram). Raises :class:`JoinRefused` if the router aborts the join; every step takes at most
    ``timeout`` seconds.
    """
    authenticator = None
    if authmethod not in (None, "anonymous"):
        if authid is not None and authmethod != "ticket":
            credentials["authid"] = authid
        authenticator = create_authenticator(authmethod, **credentials)
    parsed = urlparse(url)
    secure = parsed.scheme == "wss"
    host = parsed.hostname or "127.0.0.1"
    endpoint: Any = TCP4ClientEndpoint(reactor, host, parsed.port or (443 if secure else 80), timeout=timeout)
    if secure:
        endpoint = wrapClientTLS(tls if tls is not None else optionsForClientTLS(host), endpoint)

    def factory(make: Callable[[], _Session]) -> Any:
        return WampWebSocketClientFactory(make, url=url, serializers=[SERIALIZERS[serializer]()])

    async with _joined(reactor, endpoint, factory, realm, authenticator, authid, timeout) as s:
        yield s


@asynccontextmanager
async def role_session(
    reactor: Any,
    socket_path: str,
    realm: str,
    role: str,
    authid: str,
    serializer: str = "json",
    timeout: float = TIMEOUT,
) -> AsyncIterator[Any]:
    """A session joined as exactly ``role`` and ``authid`` over a node's test-login socket
    (:attr:`router.launch.RunningNode.test_login_socket`, see :mod:`router.testkit.logins`); it leaves and
    disconnects on exit. Raises :class:`JoinRefused` naming the role when the realm has no such role (or
    it is reserved); every step takes at most ``timeout`` seconds."""
    endpoint = UNIXClientEndpoint(reactor, socket_path, timeout=timeout)

    def factory(make: Callable[[], _Session]) -> Any:
        return WampRawSocketClientFactory(make, serializer=SERIALIZERS[serializer]())

    authenticator = create_authenticator("ticket", ticket=role)
    async with AsyncExitStack() as stack:
        try:
            s = await stack.enter_async_context(
                _joined(reactor, endpoint, factory, realm, authenticator, authid, timeout)
            )
        except JoinRefused as e:
            if e.reason != ApplicationError.NOT_AUTHORIZED:
                raise
            raise JoinRefused(
                e.reason,
                f"{e.message} (test login as role {role!r} on realm {realm!r}: the realm has no such role, or "
                "the router keeps it for itself; the node log says which)",
            ) from None
        yield s


class SessionFactory:
    """Opens sessions on one running node: ``async with factory(realm=..., role=..., authid=...) as s:``.

    Without ``authmethod`` the session joins through the node's test-login transport (the node must have
    been started with ``test_logins``) as exactly ``role`` and ``authid``: any role of the realm, including
    roles created at run time, no user or password needed. ``realm`` defaults to the config's first realm,
    ``role`` to the main transport's anonymous role (required when it has none), ``authid`` to a unique
    one. With ``authmethod`` it joins through the node's public main transport with real credentials
    (the real login path): ``"anonymous"``; ``"ticket"`` and ``"wampcra"`` with ``secret=`` (the password);
    ``"cryptosign"`` with ``privkey=`` (hex seed); ``"scram"`` with ``password=``.
    """

    def __init__(self, reactor: Any, node: RunningNode) -> None:
        self._reactor = reactor
        self.node = node

    def __call__(
        self,
        realm: str | None = None,
        role: str | None = None,
        authid: str | None = None,
        *,
        authmethod: str | None = None,
        secret: str | None = None,
        privkey: str | None = None,
        password: str | None = None,
        serializer: str = "json",
        timeout: float = TIMEOUT,
    ) -> AbstractAsyncContextManager[Any]:
        if serializer not in SERIALIZERS:
            raise ValueError(f"serializer must be one of {', '.join(SERIALIZERS)}, not {serializer!r}")
        realm = realm if realm is not None else self.node.config.realms[0].name
        if authmethod is not None:
            if role is not None:
                raise TypeError("with authmethod the role is the user's: leave role out")
            credentials = _credentials(authmethod, secret, privkey, password)
            return session(self._reactor, self.node.url, realm, serializer, authmethod, authid, timeout, **credentials)
        if secret is not None or privkey is not None or password is not None:
            raise TypeError("credentials need an authmethod (e.g. authmethod='ticket')")
        role = role if role is not None else self.node.config.main_transport.anonymous_role
        if role is None:
            raise TypeError("role is required: the main transport of this config has no anonymous role")
        if self.node.test_login_socket is None:
            raise RuntimeError("this node has no test-login transport: start it with test_logins=True")
        authid = authid if authid is not None else f"test-{uuid.uuid4().hex[:12]}"
        return role_session(self._reactor, self.node.test_login_socket, realm, role, authid, serializer, timeout)


def _credentials(method: str, secret: str | None, privkey: str | None, password: str | None) -> dict[str, str]:
    """autobahn's client authenticator arguments for ``method`` from the factory's credential arguments."""
    given = {"secret": secret, "privkey": privkey, "password": password}
    needs = {"anonymous": None, "ticket": "secret", "wampcra": "secret", "cryptosign": "privkey", "scram": "password"}
    if method not in needs:
        raise ValueError(f"authmethod must be one of {', '.join(needs)}, not {method!r}")
    needed = needs[method]
    extra = sorted(name for name, value in given.items() if value is not None and name != needed)
    if extra:
        raise TypeError(f"authmethod {method!r} takes no {', '.join(extra)}")
    if needed is None:
        return {}
    value = given[needed]
    if value is None:
        raise TypeError(f"authmethod {method!r} needs {needed}=")
    if method == "ticket":
        return {"ticket": value}
    if method == "scram":
        return {"password": value, "kdf": "argon2id13"}
    return {needed: value}
