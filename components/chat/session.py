"""WAMP glue for the chat rooms: registers ``chat.*`` procedures and publishes to ``chat.room.<room>``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, PublishOptions

from components import uris
from components.chat.core import (
    DEFAULT_HISTORY_LIMIT,
    DEFAULT_MAX_ROOMS,
    DEFAULT_MAX_TEXT_KEPT,
    DEFAULT_ROOM_TTL,
    DEFAULT_ROOMS_LIMIT,
    MAX_HISTORY_LIMIT,
    ChatRooms,
    InvalidArgument,
)
from router.component import ComponentSession, invalid_argument, procedure

__all__ = ["ChatComponent"]


class ChatComponent(ComponentSession):
    """Hosts :class:`~components.chat.core.ChatRooms` on its realm.

    ``extra``: ``history_size`` (messages kept per room, default 500), ``max_rooms`` (rooms kept, default
    1000; a new room beyond it evicts the least recently active one), ``room_ttl`` (seconds without a
    message after which a room is forgotten, default 86400) and ``max_text_kept`` (characters of text kept
    in all rooms, default 8 Mi; the oldest messages of the least recently active rooms go first).
    """

    #: Where message timestamps come from; tests may replace it.
    clock: Callable[[], float] = time.time

    async def onJoin(self, details: Any) -> None:
        extra = self.config.extra or {}
        self.rooms = ChatRooms(
            history_size=int(extra.get("history_size", MAX_HISTORY_LIMIT)),
            max_rooms=int(extra.get("max_rooms", DEFAULT_MAX_ROOMS)),
            room_ttl=float(extra.get("room_ttl", DEFAULT_ROOM_TTL)),
            max_text_kept=int(extra.get("max_text_kept", DEFAULT_MAX_TEXT_KEPT)),
        )
        await self.register(self)
        self.log.info("chat ready on realm {realm}", realm=details.realm)

    @procedure(uris.CHAT_SEND)
    async def send(self, room: object, text: object, *, details: CallDetails) -> dict[str, Any]:
        """``chat.send(room, text)``: publish a message to the room and return it."""
        if details.caller_authid is None:
            raise ApplicationError(
                uris.CALLER_NOT_DISCLOSED,
                f'{uris.CHAT_SEND} needs the caller\'s identity: give its rule "disclose": true',
            )
        try:
            message = self.rooms.post(room, text, author=details.caller_authid, now=self.clock())
        except InvalidArgument as e:
            raise invalid_argument(uris.CHAT_SEND, str(e)) from None
        payload = message.to_dict()
        await self.publish(uris.room_topic(message.room), payload, options=PublishOptions(acknowledge=True))
        return payload

    @procedure(uris.CHAT_HISTORY)
    async def history(self, room: object, limit: object = DEFAULT_HISTORY_LIMIT) -> list[dict[str, Any]]:
        """``chat.history(room, limit=50)``: the room's last messages, oldest first."""
        self.rooms.expire(self.clock())
        try:
            return [m.to_dict() for m in self.rooms.history(room, limit)]
        except InvalidArgument as e:
            raise invalid_argument(uris.CHAT_HISTORY, str(e)) from None

    @procedure(uris.CHAT_ROOMS)
    async def list_rooms(self, limit: object = DEFAULT_ROOMS_LIMIT, after: object = None) -> list[str]:
        """``chat.rooms(limit=100, after=None)``: sorted names of rooms that have messages, one page."""
        self.rooms.expire(self.clock())
        try:
            return self.rooms.rooms(limit, after)
        except InvalidArgument as e:
            raise invalid_argument(uris.CHAT_ROOMS, str(e)) from None
