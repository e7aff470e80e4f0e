"""
Chat rooms: the demo application's domain logic.

Pure Python with no autobahn import and no clock: time and identity come in as arguments, so every rule
here is unit-tested without a router. :mod:`components.chat.session` exposes it over WAMP.

Memory is bounded whatever clients send: at most ``max_rooms`` rooms of at most ``history_size`` messages.
A room idle (no message) for ``room_ttl`` seconds is forgotten; when a message opens a new room while
``max_rooms`` rooms exist, the least recently active room is forgotten to make space (evicting rather than
refusing, so that one client creating rooms cannot keep everyone else from opening one; an active room is
never the least recently active). A forgotten room starts again at ``seq`` 1.
"""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "DEFAULT_MAX_ROOMS",
    "DEFAULT_MAX_TEXT_KEPT",
    "DEFAULT_ROOMS_LIMIT",
    "DEFAULT_ROOM_TTL",
    "MAX_HISTORY_LIMIT",
    "MAX_ROOMS_LIMIT",
    "MAX_TEXT_LENGTH",
    "ROOM_PATTERN",
    "ChatRooms",
    "InvalidArgument",
    "Message",
]

ROOM_PATTERN = re.compile(r"^[a-z0-9_]{1,64}$")
MAX_TEXT_LENGTH = 4096
DEFAULT_HISTORY_LIMIT = 50
MAX_HISTORY_LIMIT = 500
#: Rooms kept at most (component ``extra.max_rooms``).
DEFAULT_MAX_ROOMS = 1000
#: Characters of message text kept in memory across all rooms (oldest messages of the least recently
#: active rooms go first): bounds the history at tens of MB whatever the room count and history size.
DEFAULT_MAX_TEXT_KEPT = 8 * 1024 * 1024
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
    """One chat message, as published to the room's topic and returned by ``chat.history``."""

    id: str
    room: str
    seq: int
    author: str
    text: str
    ts: float

    def to_dict(self) -> dict[str, Any]:
        """The message as a plain, serializable mapping."""
        return asdict(self)


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


class ChatRooms:
    """Messages per room: numbered from 1 per room, the last ``history_size`` of each kept in memory.

    At most ``max_rooms`` rooms; a room without a message for ``room_ttl`` seconds is forgotten; at most
    ``max_text_kept`` characters of text are kept in all (the oldest messages of the least recently active
    rooms are dropped first; a room keeps its numbering).
    """

    def __init__(
        self,
        history_size: int = MAX_HISTORY_LIMIT,
        new_id: Callable[[], str] = _new_id,
        max_rooms: int = DEFAULT_MAX_ROOMS,
        room_ttl: float = DEFAULT_ROOM_TTL,
        max_text_kept: int = DEFAULT_MAX_TEXT_KEPT,
    ) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        if max_rooms < 1:
            raise ValueError("max_rooms must be at least 1")
        if room_ttl <= 0:
            raise ValueError("room_ttl must be positive")
        if max_text_kept < MAX_TEXT_LENGTH:
            raise ValueError(f"max_text_kept must be at least {MAX_TEXT_LENGTH} (one message)")
        self._max_text_kept = max_text_kept
        self._text_kept = 0
        self._history_size = history_size
        self._max_rooms = max_rooms
        self._room_ttl = room_ttl
        self._new_id = new_id
        self._messages: dict[str, deque[Message]] = {}
        self._last_seq: dict[str, int] = {}
        # Room -> time of its last message, least recently active first.
        self._active: OrderedDict[str, float] = OrderedDict()

    def post(self, room: object, text: object, author: str, now: float) -> Message:
        """Validate and record a message by ``author`` at time ``now``; return it with its ``seq``.

        Opening a new room when ``max_rooms`` exist forgets the least recently active one.
        """
        room = check_room(room)
        text = check_text(text)
        self.expire(now)
        if room not in self._active:
            while len(self._active) >= self._max_rooms:
                self._forget(next(iter(self._active)))
        seq = self._last_seq.get(room, 0) + 1
        message = Message(id=self._new_id(), room=room, seq=seq, author=author, text=text, ts=now)
        self._last_seq[room] = seq
        kept = self._messages.setdefault(room, deque())
        if len(kept) == self._history_size:
            self._text_kept -= len(kept.popleft().text)
        kept.append(message)
        self._text_kept += len(text)
        self._active[room] = now
        self._active.move_to_end(room)
        self._trim_text()
        return message

    def _trim_text(self) -> None:
        """Drop the oldest messages of the least recently active rooms until the text fits the budget."""
        rooms = iter(list(self._active))
        while self._text_kept > self._max_text_kept:
            kept = self._messages[next(rooms)]  # the newest message alone always fits: this ends
            while kept and self._text_kept > self._max_text_kept:
                self._text_kept -= len(kept.popleft().text)

    def expire(self, now: float) -> list[str]:
        """Forget every room without a message since ``now - room_ttl``; return their names."""
        expired = []
        for room, last in self._active.items():
            if now - last < self._room_ttl:
                break  # ordered by activity: every later room is more recent
            expired.append(room)
        for room in expired:
            self._forget(room)
        return expired

    def _forget(self, room: str) -> None:
        del self._active[room]
        self._text_kept -= sum(len(m.text) for m in self._messages.pop(room))
        del self._last_seq[room]

    def history(self, room: object, limit: object = DEFAULT_HISTORY_LIMIT) -> list[Message]:
        """The last ``limit`` messages of ``room``, oldest first (empty for a room without messages)."""
        room = check_room(room)
        limit = check_limit(limit)
        messages = self._messages.get(room, ())
        return list(messages)[-limit:]

    def rooms(self, limit: object = DEFAULT_ROOMS_LIMIT, after: object = None) -> list[str]:
        """Names of the rooms that have messages, sorted: the first ``limit`` after the name ``after``.

        Page through every room by passing the last name of one answer as ``after`` of the next.
        """
        limit = check_limit(limit, MAX_ROOMS_LIMIT)
        if after is not None:
            if not isinstance(after, str):
                raise InvalidArgument("after", f"must be a string or null, not {type(after).__name__}")
            return sorted(r for r in self._messages if r > after)[:limit]
        return sorted(self._messages)[:limit]
