"""
Test helpers for Switchboard nodes and components: a real node, real client sessions, event inboxes.

Use them from pytest with pytest-twisted (see ``docs/components.md``)::

    @pytest_twisted.ensureDeferred
    async def test_hello(reactor, my_node):
        async with session(reactor, my_node.url) as s:
            assert await s.call("com.example.hello", "Ann") == "Hello, Ann"

Nothing here imports the global reactor: pass the one pytest-twisted runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.auth import create_authenticator
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint

from router.config import Config, load_config
from router.launch import RunningNode, launch, with_port

__all__ = ["SERIALIZERS", "Inbox", "JoinRefused", "session", "start_node", "wait"]

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}
TIMEOUT = 10.0


async def start_node(reactor: Any, config: Config | Path, data_dir: Path, ready_timeout: float = 90) -> RunningNode:
    """Start a real node for ``config`` (a model or a JSON file) on a free port; ``await node.stop()`` after."""
    if isinstance(config, Path):
        config = load_config(config)
    return await launch(reactor, with_port(config, 0), data_dir, ready_timeout=ready_timeout)


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
            self.join(self.config.realm)
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
    """Await ``d`` for at most ``timeout`` seconds."""
    d.addTimeout(timeout, reactor)
    return await d


@asynccontextmanager
async def session(
    reactor: Any,
    url: str,
    realm: str = "demo",
    serializer: str = "json",
    authmethod: str | None = None,
    authid: str | None = None,
    **credentials: Any,
) -> AsyncIterator[Any]:
    """A joined session over WebSocket; it leaves and disconnects on exit.

    Without ``authmethod`` it joins anonymously. Otherwise ``credentials`` configure autobahn's own client
    authenticator for that method: ``ticket=`` (ticket), ``secret=`` (wampcra: the password),
    ``privkey=`` (cryptosign: hex seed), ``password=`` and ``kdf="argon2id13"`` (scram).
    Raises :class:`JoinRefused` if the router aborts the join.
    """
    joined: defer.Deferred[Any] = defer.Deferred()
    authenticator = None
    if authmethod is not None:
        if authid is not None and authmethod != "ticket":
            credentials["authid"] = authid
        authenticator = create_authenticator(authmethod, **credentials)
    factory: Any = WampWebSocketClientFactory(
        lambda: _Session(ComponentConfig(realm=realm), joined, authenticator, authid),
        url=url,
        serializers=[SERIALIZERS[serializer]()],
    )
    parsed = urlparse(url)
    endpoint = TCP4ClientEndpoint(reactor, parsed.hostname or "127.0.0.1", parsed.port or 80)
    proto = await wait(endpoint.connect(factory), reactor)
    try:
        s = await wait(joined, reactor)
        try:
            yield s
        finally:
            if s.is_attached():
                s.leave()
            await wait(s.left, reactor)
    finally:
        proto.transport.loseConnection()


class Inbox:
    """Collects events of a subscription; ``next()`` awaits the next one with a deadline."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._queue: defer.DeferredQueue[Any] = defer.DeferredQueue()

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self._queue.put(args[0] if len(args) == 1 and not kwargs else (args, kwargs))

    async def next(self, timeout: float = TIMEOUT) -> Any:
        """The next event (its single argument, else ``(args, kwargs)``), within ``timeout`` seconds."""
        return await wait(self._queue.get(), self._reactor, timeout)
