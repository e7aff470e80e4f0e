"""
Chat rooms: the demo application's domain logic.

Pure Python with no autobahn import and no clock: time and identity come in as arguments, so every rule
here is unit-tested without a router. :mod:`components.chat.session` exposes it over WAMP.

Messages live in the router's channel history (topic ``chat.room.<room>``), which numbers them (``seq``)
and keeps them across restarts; this module builds them, reads them back from history events, and
remembers which rooms had a message lately (for ``chat.rooms``). That memory is bounded whatever clients
send: at most ``max_rooms`` rooms. A room idle (no message) for ``room_ttl`` seconds is forgotten; when a
message opens a new room while ``max_rooms`` rooms are known, the least recently active room is forgotten
to make space (evicting rather than refusing, so that one client creating rooms cannot keep everyone else
from opening one; an active room is never the least recently active). Forgetting a room only drops it from
``chat.rooms``: its history stays in the channel.
"""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "DEFAULT_MAX_ROOMS",
    "DEFAULT_ROOMS_LIMIT",
    "DEFAULT_ROOM_TTL",
    "MAX_HISTORY_LIMIT",
    "MAX_ROOMS_LIMIT",
    "MAX_TEXT_LENGTH",
    "MESSAGE_KEYS",
    "ROOM_PATTERN",
    "ActiveRooms",
    "InvalidArgument",
    "Message",
    "check_limit",
    "check_room",
    "message_from_event",
    "new_message",
]

ROOM_PATTERN = re.compile(r"^[a-z0-9_]{1,64}$")
MAX_TEXT_LENGTH = 4096
DEFAULT_HISTORY_LIMIT = 50
MAX_HISTORY_LIMIT = 500
#: Rooms known at most (component ``extra.max_rooms``).
DEFAULT_MAX_ROOMS = 1000
#: Seconds without a message after which a room is forgotten (component ``extra.room_ttl``).
DEFAULT_ROOM_TTL = 86400.0
#: Room names one ``chat.rooms`` answer holds by default, and at most (``limit``).
DEFAULT_ROOMS_LIMIT = 100
MAX_ROOMS_LIMIT = 1000


class InvalidArgument(ValueError):
    """A caller passed a bad value for ``argument``; ``reason`` says why, for the caller to read."""

    def __init__(self, argument: str, reason: str) -> None:
        super().__init__(f"{argument}: {reason}")
        self.argument = argument
        self.reason = reason


@dataclass(frozen=True)
class Message:
    """One chat message, as published to the room's topic (its ``seq`` comes from the channel history)."""

    id: str
    room: str
    author: str
    text: str
    ts: float

    def to_dict(self) -> dict[str, Any]:
        """The message as a plain, serializable mapping."""
        return asdict(self)


#: The keys of a published message, in order.
MESSAGE_KEYS = tuple(f.name for f in fields(Message))


def check_room(room: object) -> str:
    """Return ``room`` if it is a valid room name, else raise :class:`InvalidArgument`."""
    if not isinstance(room, str):
        raise InvalidArgument("room", f"must be a string, not {type(room).__name__}")
    if not ROOM_PATTERN.match(room):
        raise InvalidArgument("room", f"must match {ROOM_PATTERN.pattern} (got {room[:80]!r})")
    return room


def check_text(text: object) -> str:
    """Return ``text`` if it is a valid message text, else raise :class:`InvalidArgument`."""
    if not isinstance(text, str):
        raise InvalidArgument("text", f"must be a string, not {type(text).__name__}")
    if not text:
        raise InvalidArgument("text", "must not be empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidArgument("text", f"must be at most {MAX_TEXT_LENGTH} characters (got {len(text)})")
    return text


def check_limit(limit: object, maximum: int = MAX_HISTORY_LIMIT) -> int:
    """Return ``limit`` if it is an integer in 1..``maximum``, else raise :class:`InvalidArgument`."""
    # bool is an int subclass; True is not a sensible limit.
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise InvalidArgument("limit", f"must be an integer, not {type(limit).__name__}")
    if not 1 <= limit <= maximum:
        raise InvalidArgument("limit", f"must be between 1 and {maximum} (got {limit})")
    return limit


def _new_id() -> str:
    return uuid.uuid4().hex


def new_message(room: object, text: object, author: str, now: float, new_id: Callable[[], str] = _new_id) -> Message:
    """A new message by ``author`` at time ``now``, after checking ``room`` and ``text``."""
    return Message(id=new_id(), room=check_room(room), author=author, text=check_text(text), ts=now)


def message_from_event(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The message a channel history event carries, with the event's ``seq``; None if its first argument
    is not a message (a mapping with every message key)."""
    args = event.get("args")
    payload = args[0] if isinstance(args, list) and args else None
    if not isinstance(payload, Mapping) or not all(key in payload for key in MESSAGE_KEYS):
        return None
    return {key: payload[key] for key in MESSAGE_KEYS} | {"seq": event["seq"]}


class ActiveRooms:
    """The rooms that had a message lately, by time of their last message.

    At most ``max_rooms`` rooms; a room without a message for ``room_ttl`` seconds is forgotten.
    """

    def __init__(self, max_rooms: int = DEFAULT_MAX_ROOMS, room_ttl: float = DEFAULT_ROOM_TTL) -> None:
        if max_rooms < 1:
            raise ValueError("max_rooms must be at least 1")
        if room_ttl <= 0:
            raise ValueError("room_ttl must be positive")
        self._max_rooms = max_rooms
        self._room_ttl = room_ttl
        # Room -> time of its last message, least recently active first.
        self._active: OrderedDict[str, float] = OrderedDict()

    def touch(self, room: str, now: float) -> None:
        """Note a message to ``room`` at time ``now``.

        A room new to it when ``max_rooms`` are known makes it forget the least recently active one.
        """
        self.expire(now)
        if room not in self._active:
            while len(self._active) >= self._max_rooms:
                self._active.popitem(last=False)
        self._active[room] = now
        self._active.move_to_end(room)

    def expire(self, now: float) -> list[str]:
        """Forget every room without a message since ``now - room_ttl``; return their names."""
        expired = []
        for room, last in self._active.items():
            if now - last < self._room_ttl:
                break  # ordered by activity: every later room is more recent
            expired.append(room)
        for room in expired:
            del self._active[room]
        return expired

    def names(self, limit: object = DEFAULT_ROOMS_LIMIT, after: object = None) -> list[str]:
        """Names of the known rooms, sorted: the first ``limit`` after the name ``after``.

        Page through every room by passing the last name of one answer as ``after`` of the next.
        """
        limit = check_limit(limit, MAX_ROOMS_LIMIT)
        if after is None:
            return sorted(self._active)[:limit]
        if not isinstance(after, str):
            raise InvalidArgument("after", f"must be a string or null, not {type(after).__name__}")
        return sorted(r for r in self._active if r > after)[:limit]
