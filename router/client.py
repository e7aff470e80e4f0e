"""
Client helpers for channels (docs/channels.md, docs/client-python.md), for autobahn-python on Twisted.

- :class:`RecoveringSubscription` hands every event of a history topic to a handler once each and in
  order, across reconnects, and says when some were lost (a gap);
- :class:`PresenceList` keeps the members of a presence topic up to date.

Both outlive sessions: make one per topic, and ``await it.attach(session)`` in every ``onJoin`` (with
autobahn's ``Component``: in the ``@component.on_join`` function). ``session`` is any joined autobahn
session (an ``ApplicationSession`` or a ``Component``'s); attach each object once per session.
"""

from __future__ import annotations

import functools
import inspect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autobahn.wamp.types import EventDetails, SubscribeOptions
from twisted.internet import defer
from twisted.logger import Logger

from router import uris

__all__ = ["EventInfo", "PresenceList", "RecoveringSubscription"]

_log = Logger()


@dataclass(frozen=True)
class EventInfo:
    """What a :class:`RecoveringSubscription` handler gets as ``details``: the attributes of autobahn's
    ``EventDetails`` that a handler uses (so a handler written for ``details=True`` works), plus ``seq``."""

    topic: str
    #: The router's id of the publication: identifies the event (the same live and in history).
    publication: int
    #: The channel's sequence number of the event when it came from history; ``None`` for a live event.
    seq: int | None
    #: The publisher's authid and authrole when its rule discloses them, else ``None``.
    publisher_authid: str | None
    publisher_authrole: str | None


class RecoveringSubscription:
    """Follows ``topic`` (a topic of a history channel): ``handler(*args, details=EventInfo, **kwargs)``
    is called for every event, once each and in order, across sessions.

    At each :meth:`attach` it subscribes, reads the history after :attr:`last_seen` page by page
    (``limit`` events a page), hands over those events, then the live ones that arrived meanwhile and
    history did not already give (same publication id), then live events as they come. When the router
    no longer has :attr:`last_seen` (too old, or from before a crash), ``ongap(topic, epoch)`` is called
    first: events were lost, so what was built from the topic is incomplete; the latest ``limit`` events
    follow. With no :attr:`last_seen` yet there is no gap: it starts from the latest ``limit`` events.

    ``handler`` and ``ongap`` may be plain functions or ``async``: each call is awaited before the next,
    so the order holds either way. An exception from either is logged, and the event counts as handled.
    """

    def __init__(
        self,
        topic: str,
        handler: Callable[..., object],
        *,
        ongap: Callable[[str, str], object] | None = None,
        limit: int = 100,
    ) -> None:
        self.topic = topic
        self.limit = limit
        #: The publication id of the last event taken for handling (handled, or queued to be), or ``None``.
        self.last_seen: int | None = None
        self._handler = handler
        self._ongap = ongap
        self._steps: deque[Callable[[], object]] = deque()
        self._running = False
        self._idle: list[defer.Deferred[None]] = []

    async def attach(self, session: Any) -> None:
        """Subscribe on ``session`` and catch up; returns once every missed event has been handled."""
        buffer: list[tuple[tuple[Any, ...], dict[str, Any], EventInfo]] = []
        live = False

        def on_event(*args: Any, details: EventDetails, **kwargs: Any) -> None:
            info = EventInfo(
                self.topic, details.publication, None, details.publisher_authid, details.publisher_authrole
            )
            if live:
                self._deliver(args, kwargs, info)
            else:
                buffer.append((args, kwargs, info))

        subscription = await session.subscribe(on_event, self.topic, options=SubscribeOptions(details=True))
        seen: set[int] = set()
        try:
            page = await self._page(session)
            if self.last_seen is not None and not page["recovered"] and self._ongap is not None:
                self._enqueue(functools.partial(self._ongap, self.topic, page["epoch"]))
            while True:
                for e in page["events"]:
                    seen.add(e["publication"])
                    info = EventInfo(
                        self.topic, e["publication"], e["seq"], e["publisher_authid"], e["publisher_authrole"]
                    )
                    self._deliver(tuple(e["args"]), e["kwargs"], info)
                if not page["more"]:
                    break
                page = await self._page(session)
        except Exception:
            if session.is_attached():  # keep it from buffering for ever
                subscription.unsubscribe().addErrback(lambda _: None)
            raise
        # No await from here to going live, so no event can slip between the buffer and the live ones.
        for args, kwargs, info in buffer:
            if info.publication not in seen:
                self._deliver(args, kwargs, info)
        live = True
        if self._running:
            idle: defer.Deferred[None] = defer.Deferred()
            self._idle.append(idle)
            await idle

    async def _page(self, session: Any) -> dict[str, Any]:
        page: dict[str, Any] = await session.call(uris.HISTORY_GET, self.topic, after=self.last_seen, limit=self.limit)
        return page

    def _deliver(self, args: tuple[Any, ...], kwargs: dict[str, Any], info: EventInfo) -> None:
        self.last_seen = info.publication
        self._enqueue(lambda: self._handler(*args, details=info, **kwargs))

    def _enqueue(self, step: Callable[[], object]) -> None:
        self._steps.append(step)
        if not self._running:
            self._running = True
            defer.ensureDeferred(self._run())

    async def _run(self) -> None:
        # One runner at a time works through the steps, so async handlers never overlap or reorder.
        while self._steps:
            step = self._steps.popleft()
            try:
                result = step()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _log.failure("{topic}: the event handler failed; going on with the next event", topic=self.topic)
        self._running = False
        idle, self._idle = self._idle, []
        for d in idle:
            d.callback(None)


class PresenceList:
    """The members of ``topic`` (a topic of a presence channel), kept up to date from its presence events.

    :attr:`members` maps each member's session id to its member (``session``, ``authid``, ``authrole``,
    ``since``, ``data``; empty when the channel hides members); :attr:`sessions` and :attr:`users` are the
    router's counts. At each :meth:`attach` the list is read anew (``limit``, at most 1000, members listed
    at most). ``onchange(presence, event)`` is called after each change: ``event`` is the presence
    event's keyword arguments, or ``None`` when a fresh list was read. Watching makes no member: the
    session is a member while it subscribes to ``topic`` itself (a :class:`RecoveringSubscription` does).
    """

    def __init__(
        self,
        topic: str,
        *,
        onchange: Callable[[PresenceList, dict[str, Any] | None], object] | None = None,
        limit: int = 1000,
    ) -> None:
        self.topic = topic
        self.limit = limit
        self.members: dict[int, dict[str, Any]] = {}
        self.sessions = 0
        self.users = 0
        self._onchange = onchange
        self._session: Any = None

    async def attach(self, session: Any) -> None:
        """Watch the presence topic on ``session`` (subscribed first, so no change is missed), then read
        the list and apply the changes that crossed it."""
        buffer: list[dict[str, Any]] = []
        live = False

        def on_event(*args: Any, **event: Any) -> None:
            if live:
                self._apply(event)
            else:
                buffer.append(event)

        subscription = await session.subscribe(on_event, uris.PRESENCE_PREFIX + self.topic)
        try:
            listed = await session.call(uris.PRESENCE_GET, self.topic, limit=self.limit)
        except Exception:
            await subscription.unsubscribe()  # nothing would ever read what it buffers
            raise
        self._session = session
        self.members = {m["session"]: m for m in listed["members"]}
        self.sessions, self.users = listed["sessions"], listed["users"]
        self._changed(None)
        # Applying a change the list already shows changes nothing: join and update set, leave removes.
        for event in buffer:
            self._apply(event)
        live = True

    async def update(self, data: Any) -> dict[str, Any]:
        """Set this session's member data (any JSON value); the session must be a member. Returns the member."""
        if self._session is None:
            raise RuntimeError("attach the presence list to a session first")
        member: dict[str, Any] = await self._session.call(uris.PRESENCE_UPDATE, self.topic, data)
        return member

    def _apply(self, event: dict[str, Any]) -> None:
        member = event.get("member")
        if member is not None:
            if "replaces" in member:  # a reconnect took this member over
                self.members.pop(member["replaces"], None)
            if event["event"] == "leave":
                self.members.pop(member["session"], None)
            else:
                self.members[member["session"]] = member
        self.sessions, self.users = event["sessions"], event["users"]
        self._changed(event)

    def _changed(self, event: dict[str, Any] | None) -> None:
        if self._onchange is not None:
            self._onchange(self, event)
