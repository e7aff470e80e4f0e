"""
Presence: who is subscribed to each topic of a presence channel, with the data each member set.

A session is a *member* of a topic while it has an exact subscription to it (a pattern subscription, which
watches many topics, makes no member). The broker tells :class:`Presence` of every subscription and of every
unsubscription (through :mod:`router.seam.channels`); members are kept per topic and each change is
announced by ``announce(topic, kwargs)`` (the router component publishes it on
``switchboard.presence.<topic>``).

**Grace.** With a channel ``grace`` > 0, a member whose connection dropped (no GOODBYE) stays listed for
``grace`` seconds. If in that time a session with the same authid and authrole subscribes to the same
topic, it takes the member over: same ``since`` and ``data``, the new session id, one ``update`` event
whose member names the session it ``replaces``; no leave, no join. An explicit unsubscribe or a clean leave
is announced at once.

Memory is bounded by the broker's own subscriptions (one member per exact subscription) and
``max_data`` bytes of data per member.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from router.channels.index import ChannelIndex
from router.config import Channel

__all__ = ["Member", "NotMember", "Presence", "TooLarge"]


class NotMember(LookupError):
    """The session is not subscribed to the topic."""


class TooLarge(ValueError):
    """Presence data larger than allowed (or not JSON)."""


@dataclass(slots=True)
class Member:
    """One subscribed session of a topic."""

    session: int
    authid: str | None
    authrole: str | None
    since: float
    data: Any = None
    #: While a dropped member waits out its grace period: the call that will announce its leave.
    leaving: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "authid": self.authid,
            "authrole": self.authrole,
            "since": self.since,
            "data": self.data,
        }


@dataclass(slots=True)
class _Topic:
    channel: Channel
    members: dict[int, Member] = field(default_factory=dict)
    users: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)
    #: Members waiting out their grace period, by (authid, authrole), the earliest first.
    leaving: dict[tuple[str | None, str | None], list[Member]] = field(default_factory=dict)


class Presence:
    """The members of every topic of the presence channels in ``channels``."""

    def __init__(
        self,
        channels: ChannelIndex,
        *,
        clock: Any,
        announce: Callable[[str, dict[str, Any]], None],
        max_data: int = 1024,
        now: Callable[[], float] | None = None,
    ) -> None:
        self._channels = channels
        self._clock = clock
        self._announce = announce
        self._max_data = max_data
        self._now = now or clock.seconds
        self._topics: dict[str, _Topic] = {}

    def tracks(self, topic: str) -> Channel | None:
        """The presence channel of ``topic``, or None."""
        channel = self._channels.find(topic)
        return channel if channel is not None and channel.presence else None

    # -- changes (from the broker) -------------------------------------------------------------------------

    def joined(self, topic: str, session: int, authid: str | None, authrole: str | None) -> None:
        """``session`` subscribed (exact) to ``topic``."""
        channel = self.tracks(topic)
        if channel is None:
            return
        state = self._topics.setdefault(topic, _Topic(channel))
        if session in state.members:
            return
        heir = self._take_leaving(state, authid, authrole)
        if heir is not None and heir.leaving is not None:
            heir.leaving.cancel()
            del state.members[heir.session]
            member = Member(session, authid, authrole, heir.since, heir.data)
            state.members[session] = member
            self._emit(topic, state, "update", member, replaces=heir.session)
            return
        member = Member(session, authid, authrole, self._now())
        state.members[session] = member
        state.users[(authid, authrole)] += 1
        self._emit(topic, state, "join", member)

    def left(self, topic: str, session: int, dropped: bool = False) -> None:
        """``session`` is no longer subscribed to ``topic``; ``dropped``: its connection was lost."""
        state = self._topics.get(topic)
        member = state.members.get(session) if state else None
        if state is None or member is None or member.leaving is not None:
            return
        if dropped and state.channel.presence_grace > 0:
            member.leaving = self._clock.callLater(state.channel.presence_grace, self._gone, topic, session)
            state.leaving.setdefault((member.authid, member.authrole), []).append(member)
            return
        self._gone(topic, session)

    def _gone(self, topic: str, session: int) -> None:
        state = self._topics[topic]
        member = state.members.pop(session)
        key = (member.authid, member.authrole)
        if member.leaving is not None:
            self._take_leaving(state, *key, member)
        state.users[key] -= 1
        if not state.users[key]:
            del state.users[key]
        self._emit(topic, state, "leave", member)
        if not state.members:
            del self._topics[topic]

    @staticmethod
    def _take_leaving(
        state: _Topic, authid: str | None, authrole: str | None, member: Member | None = None
    ) -> Member | None:
        """Remove ``member`` (default: the earliest) from the members of (authid, authrole) waiting out their
        grace; the one removed, or None."""
        key = (authid, authrole)
        waiting = state.leaving.get(key)
        if not waiting:
            return None
        taken = waiting.pop(0 if member is None else waiting.index(member))
        if not waiting:
            del state.leaving[key]
        return taken

    # -- the API -------------------------------------------------------------------------------------------

    def update(self, topic: str, session: int, data: Any) -> dict[str, Any]:
        """Set the data of ``session``'s membership of ``topic``; the member. :class:`NotMember` if it is
        not subscribed, :class:`TooLarge` if ``data`` is not JSON of at most ``max_data`` bytes."""
        state = self._topics.get(topic)
        member = state.members.get(session) if state else None
        if state is None or member is None or member.leaving is not None:
            raise NotMember(topic)
        try:
            size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
        except (TypeError, ValueError) as e:
            raise TooLarge(f"must be JSON ({e})") from None
        if size > self._max_data:
            raise TooLarge(f"must be at most {self._max_data} bytes as JSON (got {size})")
        member.data = data
        self._emit(topic, state, "update", member)
        return member.to_dict()

    def get(self, topic: str, limit: int) -> dict[str, Any]:
        """``switchboard.presence.get``: the counts and (unless hidden) the first ``limit`` members."""
        state = self._topics.get(topic)
        # In the order they joined (a member taken over keeps its place): members are kept in insertion order,
        # and a takeover is the only insertion out of order.
        members = sorted(state.members.values(), key=lambda m: m.since) if state else []
        shown = state is not None and state.channel.presence_members
        return {
            "topic": topic,
            "sessions": len(members),
            "users": len(state.users) if state else 0,
            "members": [m.to_dict() for m in members[:limit]] if shown else [],
            "more": shown and len(members) > limit,
        }

    def member_count(self) -> int:
        """Members of all topics (for tests and metrics)."""
        return sum(len(t.members) for t in self._topics.values())

    def _emit(self, topic: str, state: _Topic, event: str, member: Member, replaces: int | None = None) -> None:
        kwargs: dict[str, Any] = {
            "event": event,
            "topic": topic,
            "sessions": len(state.members),
            "users": len(state.users),
        }
        if state.channel.presence_members:
            kwargs["member"] = member.to_dict()
            if replaces is not None:
                kwargs["member"]["replaces"] = replaces
        self._announce(topic, kwargs)
