"""
``ChannelComponent``: the channels of one realm, hosted in the router worker (``trusted``).

It starts right after :class:`router.worker.WorkerBootstrap`, before any transport opens: it opens the
realm's history (``history.<realm>.sqlite`` in the data directory), attaches history and presence to the realm's
router (:func:`router.seam.channels.attach`), and serves the channel procedures
(:data:`router.uris.CHANNEL_PROCEDURES`). Each procedure answers only for a topic the caller may subscribe
to (the router's own decision for the caller's role), otherwise ``wamp.error.not_authorized``, the same
whether or not the topic has history or members. The router stops it cleanly on SIGINT/SIGTERM: every
recorded event is written first.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from router import uris
from router.authz.install import realm_routers
from router.channels.history import History
from router.channels.index import ChannelIndex
from router.channels.presence import NotMember, Presence, TooLarge
from router.component import ComponentSession, invalid_argument, procedure
from router.config import Channel
from router.metrics import watch_channels
from router.seam.channels import attach, may_subscribe, publish_kwargs

__all__ = ["MAX_HISTORY_LIMIT", "MAX_MEMBERS_LIMIT", "MAX_TOPIC_LENGTH", "ChannelComponent"]

#: ``limit`` of ``switchboard.history.get`` at most.
MAX_HISTORY_LIMIT = 1000
#: ``limit`` of ``switchboard.presence.get`` at most (and its default).
MAX_MEMBERS_LIMIT = 1000
#: Longest topic the channel procedures accept.
MAX_TOPIC_LENGTH = 512
#: Publication ids are WAMP ids: integers in [1, 2**53].
_MAX_ID = 2**53
# Crossbar's loose URI rule (what a SUBSCRIBE may name): non-empty components without whitespace or '#'.
_TOPIC = re.compile(r"^([^\s.#]+\.)*[^\s.#]+$")


class ChannelComponent(ComponentSession):
    """``extra``: ``channels`` (the realm's :class:`~router.config.Channel` fields), ``history`` (the file),
    ``flush`` (seconds between writes), ``max_presence_data`` (bytes)."""

    #: The reactor (timers, the database thread's results); the global one unless a test sets it.
    reactor: Any = None

    async def onJoin(self, details: Any) -> None:
        if self.reactor is None:
            from twisted.internet import reactor

            self.reactor = reactor
        extra = self.config.extra
        self._realm_name: str = details.realm
        channels = ChannelIndex(Channel(**c) for c in extra["channels"])
        self._router = realm_routers(self, [self._realm_name])[self._realm_name]
        self._history: History | None = None
        self._presence: Presence | None = None
        if any(c.history_size for c in channels.channels):
            self._history = await self._open_history(channels, Path(extra["history"]), float(extra["flush"]))
        if any(c.presence for c in channels.channels):
            self._presence = Presence(
                channels,
                clock=self.reactor,
                announce=self._announce,
                max_data=int(extra["max_presence_data"]),
                now=time.time,
            )
        attach(self._router, channels, self._history, self._presence)
        watch_channels(self._realm_name, self._history, self._presence)  # for /metrics
        await self.register(self)

    async def _open_history(self, channels: ChannelIndex, path: Path, flush: float) -> History:
        pool = ThreadPool(minthreads=1, maxthreads=1, name="switchboard-history")
        pool.start()

        def run(function: Any, *args: Any) -> Any:
            return deferToThreadPool(self.reactor, pool, function, *args)

        history = History(channels, clock=self.reactor, run=run, flush_interval=flush, now=time.time)
        await history.open(path)

        async def close() -> None:
            try:
                await history.close()
            finally:
                pool.stop()

        # Before the reactor stops, so a clean stop (SIGINT/SIGTERM of the node) writes every event.
        self.reactor.addSystemEventTrigger("before", "shutdown", lambda: _deferred(close()))
        return history

    def _announce(self, topic: str, kwargs: dict[str, Any]) -> None:
        # Later, not inside the broker's bookkeeping that told us (as Crossbar does with its meta events).
        self.reactor.callLater(0, self._publish, uris.PRESENCE_PREFIX + topic, kwargs)

    def _publish(self, topic: str, kwargs: dict[str, Any]) -> None:
        if self.is_attached():
            publish_kwargs(self, topic, kwargs)

    # -- the procedures ------------------------------------------------------------------------------------

    async def _authorized_topic(self, name: str, topic: object, details: CallDetails) -> str:
        """``topic`` if it is a topic URI the caller may subscribe to; else the procedure's error."""
        if not isinstance(topic, str):
            raise invalid_argument(name, f"topic: must be a string, not {type(topic).__name__}")
        if len(topic) > MAX_TOPIC_LENGTH or not _TOPIC.match(topic):
            raise invalid_argument(name, f"topic: must be a topic URI of at most {MAX_TOPIC_LENGTH} characters")
        role = details.caller_authrole
        if role is None or not await may_subscribe(self._router, self._realm_name, role, topic):
            raise ApplicationError(uris.NOT_AUTHORIZED, f"{name}: not authorized to subscribe to this topic")
        return topic

    def _history_of(self, name: str, topic: str) -> History:
        if self._history is None or not self._history.keeps(topic):
            raise invalid_argument(name, "topic: not a topic of a channel with history")
        return self._history

    def _presence_of(self, name: str, topic: str) -> Presence:
        if self._presence is None or self._presence.tracks(topic) is None:
            raise invalid_argument(name, "topic: not a topic of a channel with presence")
        return self._presence

    @procedure(uris.HISTORY_GET)
    async def history_get(
        self, topic: object, after: object = None, limit: object = 100, *, details: CallDetails
    ) -> dict[str, Any]:
        """``switchboard.history.get(topic, after=None, limit=100)``: see docs/channels.md."""
        topic = await self._authorized_topic(uris.HISTORY_GET, topic, details)
        count = _integer(uris.HISTORY_GET, "limit", limit, 1, MAX_HISTORY_LIMIT)
        if after is not None:
            after = _integer(uris.HISTORY_GET, "after", after, 1, _MAX_ID)
        return await self._history_of(uris.HISTORY_GET, topic).get(topic, after, count)

    @procedure(uris.HISTORY_LOOKUP)
    async def history_lookup(self, topic: object, publication: object, *, details: CallDetails) -> Any:
        """``switchboard.history.lookup(topic, publication)``: the event of that publication, or null."""
        topic = await self._authorized_topic(uris.HISTORY_LOOKUP, topic, details)
        wanted = _integer(uris.HISTORY_LOOKUP, "publication", publication, 1, _MAX_ID)
        return await self._history_of(uris.HISTORY_LOOKUP, topic).lookup(topic, wanted)

    @procedure(uris.PRESENCE_GET)
    async def presence_get(
        self, topic: object, limit: object = MAX_MEMBERS_LIMIT, *, details: CallDetails
    ) -> dict[str, Any]:
        """``switchboard.presence.get(topic, limit=1000)``: counts and members of the topic."""
        topic = await self._authorized_topic(uris.PRESENCE_GET, topic, details)
        count = _integer(uris.PRESENCE_GET, "limit", limit, 1, MAX_MEMBERS_LIMIT)
        return self._presence_of(uris.PRESENCE_GET, topic).get(topic, count)

    @procedure(uris.PRESENCE_UPDATE)
    async def presence_update(self, topic: object, data: object, *, details: CallDetails) -> dict[str, Any]:
        """``switchboard.presence.update(topic, data)``: set the caller's member data; the member."""
        topic = await self._authorized_topic(uris.PRESENCE_UPDATE, topic, details)
        presence = self._presence_of(uris.PRESENCE_UPDATE, topic)
        try:
            return presence.update(topic, details.caller or 0, data)
        except NotMember:
            raise invalid_argument(uris.PRESENCE_UPDATE, "topic: subscribe to the topic first") from None
        except TooLarge as e:
            raise invalid_argument(uris.PRESENCE_UPDATE, f"data: {e}") from None


def _integer(name: str, argument: str, value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid_argument(name, f"{argument}: must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise invalid_argument(name, f"{argument}: must be between {low} and {high} (got {value})")
    return value


def _deferred(coroutine: Any) -> Any:
    from twisted.internet.defer import Deferred

    return Deferred.fromCoroutine(coroutine)
