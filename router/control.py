"""
Sessions over the node's control socket (RawSocket/msgpack on a unix socket in the data directory).

The control transport grants the router's built-in ``trusted`` role, so these sessions may use the WAMP
meta API: the readiness probe joins through it, and the CLI ends a user's sessions through it when the user
is disabled or removed.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.serializer import MsgPackSerializer
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.error import ConnectError

from router.uris import CREDENTIALS_REVOKED

__all__ = ["RevocationFailed", "control_session", "kill_user_sessions", "node_workers"]


class _ControlSession(ApplicationSession):
    def __init__(self, config: ComponentConfig, joined: defer.Deferred[Any]) -> None:
        super().__init__(config)
        self._joined = joined
        self.disconnected: defer.Deferred[None] = defer.Deferred()

    def onJoin(self, details: Any) -> None:
        if not self._joined.called:
            self._joined.callback(self)

    def onDisconnect(self) -> None:
        if not self._joined.called:
            self._joined.errback(ConnectError("disconnected before joining"))
        if not self.disconnected.called:
            self.disconnected.callback(None)


@asynccontextmanager
async def control_session(reactor: Any, socket_path: str, realm: str, timeout: float = 5.0) -> AsyncIterator[Any]:
    """A trusted session on ``realm``; it leaves and disconnects on exit. Every step is bounded."""
    joined: defer.Deferred[Any] = defer.Deferred()
    factory = WampRawSocketClientFactory(
        lambda: _ControlSession(ComponentConfig(realm=realm), joined), serializer=MsgPackSerializer()
    )
    connecting = UNIXClientEndpoint(reactor, socket_path, timeout=timeout).connect(factory)
    connecting.addTimeout(timeout, reactor)
    proto = await connecting
    try:
        joined.addTimeout(timeout, reactor)
        session = await joined
        try:
            yield session
        finally:
            if session.is_attached():
                session.leave()
                done = session.disconnected
                done.addTimeout(timeout, reactor)
                with suppress(defer.TimeoutError):
                    await done
    finally:
        proto.transport.loseConnection()


def node_workers(data_dir: Path) -> int:
    """The router workers of the node compiled in ``data_dir`` (its ``.crossbar/config.json``; 1 if unreadable)."""
    import json

    from router.datadir import node_dir

    try:
        compiled = json.loads((node_dir(data_dir) / "config.json").read_text())
        return max(1, sum(1 for worker in compiled["workers"] if worker.get("type") == "router"))
    except (OSError, ValueError, KeyError, TypeError):
        return 1


class RevocationFailed(Exception):
    """A node runs on the data directory but the user's sessions could not be closed; the message says why."""


async def kill_user_sessions(reactor: Any, data_dir: Path, realm: str, authid: str, why: str) -> list[int] | None:
    """End every session of ``authid`` on ``realm`` of the node running in ``data_dir``.

    Returns the ids of the sessions ended, or None when no node is running there (no control socket, or one
    nothing listens on any more). Raises :class:`RevocationFailed` when something listens but the sessions
    could not be closed (the node does not answer in time, refuses, or fails): they may still be open.
    """
    from router.datadir import control_socket_path
    from router.workers_agent import each_worker

    socket_path = control_socket_path(data_dir)
    if not socket_path.exists():
        return None
    try:
        async with control_session(reactor, str(socket_path), realm) as session:
            answers = await each_worker(
                session,
                node_workers(data_dir),
                "wamp.session.kill_by_authid",
                authid,
                reason=CREDENTIALS_REVOKED,
                message=why,
            )
    except (ConnectError, OSError) as e:
        code = e.osError if isinstance(e, ConnectError) else e.errno
        if code in (errno.ECONNREFUSED, errno.ENOENT):
            return None  # a socket left behind by a node that is gone: nothing to close
        raise RevocationFailed(_why(e)) from None
    except Exception as e:
        raise RevocationFailed(_why(e)) from None
    return [killed for answer in answers for killed in answer]


def _why(e: Exception) -> str:
    if isinstance(e, defer.TimeoutError):
        return "the node did not answer in time"
    return f"{type(e).__name__}: {e}"
