"""Real autobahn-python client sessions for integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlparse

from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}
TIMEOUT = 10.0


class _Session(ApplicationSession):
    def __init__(self, config: ComponentConfig, joined: defer.Deferred[Any]) -> None:
        super().__init__(config)
        self._joined = joined
        self.left: defer.Deferred[Any] = defer.Deferred()

    def onJoin(self, details: Any) -> None:
        self.details = details
        self._joined.callback(self)

    def onLeave(self, details: Any) -> None:
        if not self._joined.called:
            self._joined.errback(RuntimeError(f"left before joining: {details.reason} {details.message}"))
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
async def session(reactor: Any, url: str, realm: str = "demo", serializer: str = "json") -> AsyncIterator[Any]:
    """A joined session over WebSocket; it leaves and disconnects on exit."""
    joined: defer.Deferred[Any] = defer.Deferred()
    factory = WampWebSocketClientFactory(
        lambda: _Session(ComponentConfig(realm=realm), joined),
        url=url,
        serializers=[SERIALIZERS[serializer]()],
    )
    parsed = urlparse(url)
    proto = await wait(TCP4ClientEndpoint(reactor, parsed.hostname, parsed.port).connect(factory), reactor)
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
        return await wait(self._queue.get(), self._reactor, timeout)

    @property
    def pending(self) -> int:
        return len(self._queue.pending)
