"""
Readiness probe: a real WAMP session joining the node over its control socket.

Crossbar opens transports after it has started realms, roles and router components, and the control
transport is the last one in the compiled config; so a probe session joined through it means the node
is serving every realm on every public transport. It then asks ``switchboard.node.components`` (served by
:class:`router.worker.WorkerBootstrap`, see :mod:`router.component`) until every hosted component is
ready, or one failed: a component whose ``onJoin`` raised or whose registration was refused makes the
node not ready, with a line naming it.
"""

from __future__ import annotations

from typing import Any

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, task
from twisted.internet.error import ConnectError

from router import uris
from router.control import control_session

__all__ = ["ComponentFailed", "ProbeTimeout", "components_started", "join_once", "wait_until_ready"]


class ProbeTimeout(Exception):
    """No probe session could join before the deadline."""


class ComponentFailed(Exception):
    """A hosted component failed to start (or did not start in time); the message is one line naming it."""


async def join_once(reactor: Any, socket_path: str, realm: str, timeout: float = 5.0) -> str:
    """Join ``realm`` once over the control socket; return the role granted."""
    async with control_session(reactor, socket_path, realm, timeout) as session:
        role: str = session.authrole
        return role


async def wait_until_ready(
    reactor: Any,
    socket_path: str,
    realm: str,
    deadline: float,
    gave_up: defer.Deferred[Any] | None = None,
    interval: float = 0.05,
) -> None:
    """Join ``realm`` over the control socket (retrying every ``interval`` seconds), then wait until every
    hosted component has started, all by ``deadline`` (reactor time); stop early if ``gave_up`` has fired
    (e.g. the node exited).

    Raises :class:`ComponentFailed` naming the first component that failed, or those still starting at
    ``deadline``; :class:`ProbeTimeout` if no session could join.
    """
    last_error: Exception | None = None
    while reactor.seconds() < deadline:
        if gave_up is not None and gave_up.called:
            raise ProbeTimeout("the node exited before it was ready")
        timeout = min(5.0, max(0.5, deadline - reactor.seconds()))
        try:
            async with control_session(reactor, socket_path, realm, timeout) as session:
                await components_started(reactor, session, deadline, gave_up, interval, timeout)
                return
        except (ConnectError, defer.TimeoutError, OSError) as e:
            last_error = e
        await task.deferLater(reactor, interval, lambda: None)
    raise ProbeTimeout(f"no session could join realm {realm!r} in time (last error: {last_error})")


async def components_started(
    reactor: Any, session: Any, deadline: float, gave_up: defer.Deferred[Any] | None, interval: float, timeout: float
) -> None:
    """Ask ``session`` (trusted) for ``switchboard.node.components`` every ``interval`` seconds until no
    component is starting; raise :class:`ComponentFailed` for the first failed one, or for those still
    starting at ``deadline`` or once ``gave_up`` has fired. Each answer is awaited ``timeout`` seconds."""
    while True:
        asked = session.call(uris.NODE_COMPONENTS)
        asked.addTimeout(timeout, reactor)
        try:
            report = await asked
        except ApplicationError as e:
            raise ComponentFailed(f"the node cannot report how its components started: {e.error_message()}") from None
        failed = [c for c in report if c["state"] in ("failed", "left")]
        if failed:
            raise ComponentFailed(f"component {failed[0]['class']}: {failed[0]['reason']}")
        starting = [c["class"] for c in report if c["state"] == "starting"]
        if not starting:
            return
        if reactor.seconds() >= deadline or (gave_up is not None and gave_up.called):
            raise ComponentFailed(f"component {', '.join(starting)}: not ready in time (its onJoin did not finish)")
        await task.deferLater(reactor, interval, lambda: None)
