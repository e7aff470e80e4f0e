"""WAMP glue for ``sys.info`` (the Switchboard version and the caller's realm, authid and authrole) and the
``sys.stats`` topic (a small live picture of the node, once a second, for the demo's dashboard)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, SubscribeOptions
from twisted.internet import task

from components import uris
from router.component import ComponentSession, procedure

__all__ = ["STATS_INTERVAL", "SystemComponent", "switchboard_version"]

#: Seconds between two ``sys.stats`` events.
STATS_INTERVAL = 1.0


def switchboard_version() -> str:
    """The installed Switchboard version."""
    try:
        return version("switchboard")
    except PackageNotFoundError:
        return "0.0.0+unknown"


class SystemComponent(ComponentSession):
    """Registers ``sys.info`` and publishes ``sys.stats`` every second: ``{"sessions": <sessions joined to
    the realm>, "messages_per_second": <chat messages in the last second>, "ts": <time>}``.

    ``sessions`` comes from the WAMP meta API (``wamp.session.count``, which the component's role must be
    allowed to call), messages from a prefix subscription to the chat rooms.
    """

    #: The reactor (the stats timer); the global one unless a test sets it.
    reactor: Any = None

    async def onJoin(self, details: Any) -> None:
        if self.reactor is None:
            from twisted.internet import reactor

            self.reactor = reactor
        self._version = switchboard_version()
        self._joined_realm: str = details.realm
        self._messages = 0
        await self.register(self)
        await self.subscribe(self._count, uris.CHAT_ROOM_TOPIC_PREFIX, options=SubscribeOptions(match="prefix"))
        self._stats = task.LoopingCall(self._publish_stats)
        self._stats.clock = self.reactor
        self._stats.start(STATS_INTERVAL, now=False).addErrback(self._stats_failed)

    def onLeave(self, details: Any) -> None:
        if getattr(self, "_stats", None) is not None and self._stats.running:
            self._stats.stop()
        super().onLeave(details)

    def _count(self, *args: Any, **kwargs: Any) -> None:
        self._messages += 1

    async def _publish_stats(self) -> None:
        sessions = await self.call("wamp.session.count")
        messages, self._messages = self._messages, 0
        self.publish(
            uris.SYS_STATS,
            {"sessions": sessions, "messages_per_second": messages / STATS_INTERVAL, "ts": self.reactor.seconds()},
        )

    def _stats_failed(self, failure: Any) -> None:
        self.log.failure("sys.stats stopped", failure=failure)

    @procedure(uris.SYS_INFO)
    async def info(self, *, details: CallDetails) -> dict[str, Any]:
        """``sys.info()``: the version, and the caller's realm, authid and authrole."""
        if details.caller_authid is None:
            raise ApplicationError(
                uris.CALLER_NOT_DISCLOSED,
                f'{uris.SYS_INFO} needs the caller\'s identity: give its rule "disclose": true',
            )
        return {
            "version": self._version,
            "realm": self._joined_realm,
            "authid": details.caller_authid,
            "authrole": details.caller_authrole,
        }
