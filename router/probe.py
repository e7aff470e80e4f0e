"""
Readiness probe: a real WAMP session joining the node over its control socket.

Crossbar opens transports after it has started realms, roles and router components, and the control
transport is the last one in the compiled config; so a probe session joined through it means the node
is serving every realm on every public transport.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task
from twisted.internet.error import ConnectError

from router.control import control_session

__all__ = ["ProbeTimeout", "join_once", "wait_until_joined"]


class ProbeTimeout(Exception):
    """No probe session could join before the deadline."""


async def join_once(reactor: Any, socket_path: str, realm: str, timeout: float = 5.0) -> str:
    """Join ``realm`` once over the control socket; return the role granted."""
    async with control_session(reactor, socket_path, realm, timeout) as session:
        role: str = session.authrole
        return role


async def wait_until_joined(
    reactor: Any,
    socket_path: str,
    realm: str,
    deadline: float,
    gave_up: defer.Deferred[Any] | None = None,
    interval: float = 0.05,
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
