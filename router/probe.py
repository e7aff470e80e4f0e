"""
Readiness probe: a real WAMP session joining the node over its control socket.

Crossbar opens transports after it has started realms, roles and router components, and the control
transport is the last one in the compiled config; so a probe session joined through it means the node
is serving every realm on every public transport.
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.serializer import MsgPackSerializer
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer, task
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.error import ConnectError

__all__ = ["ProbeTimeout", "join_once", "wait_until_joined"]


class ProbeTimeout(Exception):
    """No probe session could join before the deadline."""


class _ProbeSession(ApplicationSession):
    def __init__(self, config: ComponentConfig, joined: defer.Deferred[str]) -> None:
        super().__init__(config)
        self._joined = joined

    def onJoin(self, details: Any) -> None:
        if not self._joined.called:
            self._joined.callback(details.authrole)
        self.leave()

    def onDisconnect(self) -> None:
        if not self._joined.called:
            self._joined.errback(ConnectError("disconnected before joining"))


async def join_once(reactor: Any, socket_path: str, realm: str, timeout: float = 5.0) -> str:
    """Join ``realm`` once over the unix socket at ``socket_path``; return the role granted."""
    joined: defer.Deferred[str] = defer.Deferred()
    factory = WampRawSocketClientFactory(
        lambda: _ProbeSession(ComponentConfig(realm=realm), joined), serializer=MsgPackSerializer()
    )
    endpoint = UNIXClientEndpoint(reactor, socket_path, timeout=timeout)
    connecting = endpoint.connect(factory)
    connecting.addTimeout(timeout, reactor)
    proto = await connecting
    joined.addTimeout(timeout, reactor)
    try:
        return await joined
    finally:
        proto.transport.loseConnection()


async def wait_until_joined(
    reactor: Any,
    socket_path: str,
    realm: str,
    deadline: float,
    gave_up: defer.Deferred[Any] | None = None,
    interval: float = 0.1,
) -> str:
    """Retry :func:`join_once` every ``interval`` seconds until it succeeds or ``deadline`` (reactor time).

    Stops early, raising :class:`ProbeTimeout`, if ``gave_up`` has fired (e.g. the node exited).
    """
    last_error: Exception | None = None
    while reactor.seconds() < deadline:
        if gave_up is not None and gave_up.called:
            raise ProbeTimeout("the node exited before it was ready")
        try:
            remaining = max(0.5, deadline - reactor.seconds())
            return await join_once(reactor, socket_path, realm, timeout=min(5.0, remaining))
        except (ConnectError, defer.TimeoutError, OSError) as e:
            last_error = e
        await task.deferLater(reactor, interval, lambda: None)
    raise ProbeTimeout(f"no session could join realm {realm!r} in time (last error: {last_error})")
