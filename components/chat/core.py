"""
Chat rooms: the demo application's domain logic.

Pure Python with no autobahn import and no clock: time and identity come in as arguments, so every rule
here is unit-tested without a router. :mod:`components.chat.session` exposes it over WAMP.
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "MAX_HISTORY_LIMIT",
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


def check_limit(limit: object) -> int:
    """Return ``limit`` if it is a valid history length, else raise :class:`InvalidArgument`."""
    # bool is an int subclass; True is not a sensible limit.
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise InvalidArgument("limit", f"must be an integer, not {type(limit).__name__}")
    if not 1 <= limit <= MAX_HISTORY_LIMIT:
        raise InvalidArgument("limit", f"must be between 1 and {MAX_HISTORY_LIMIT} (got {limit})")
    return limit


def _new_id() -> str:
    return uuid.uuid4().hex


class ChatRooms:
    """Messages per room: numbered from 1 per room, the last ``history_size`` of each kept in memory."""

    def __init__(self, history_size: int = MAX_HISTORY_LIMIT, new_id: Callable[[], str] = _new_id) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self._history_size = history_size
        self._new_id = new_id
        self._messages: dict[str, deque[Message]] = {}
        self._last_seq: dict[str, int] = {}

    def post(self, room: object, text: object, author: str, now: float) -> Message:
        """Validate and record a message by ``author`` at time ``now``; return it with its ``seq``."""
        room = check_room(room)
        text = check_text(text)
        seq = self._last_seq.get(room, 0) + 1
        message = Message(id=self._new_id(), room=room, seq=seq, author=author, text=text, ts=now)
        self._last_seq[room] = seq
        self._messages.setdefault(room, deque(maxlen=self._history_size)).append(message)
        return message

    def history(self, room: object, limit: object = DEFAULT_HISTORY_LIMIT) -> list[Message]:
        """The last ``limit`` messages of ``room``, oldest first (empty for a room without messages)."""
        room = check_room(room)
        limit = check_limit(limit)
        messages = self._messages.get(room, ())
        return list(messages)[-limit:]

    def rooms(self) -> list[str]:
        """Names of the rooms that have messages, sorted."""
        return sorted(self._messages)
