"""WAMP glue for the chat rooms: registers ``chat.*`` procedures and publishes to ``chat.room.<room>``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, PublishOptions, RegisterOptions

from components import uris
from components.arguments import bind, invalid_argument
from components.base import ComponentSession
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

__all__ = ["ChatComponent"]


def _send_shape(room: object, text: object) -> None: ...


def _history_shape(room: object, limit: object = DEFAULT_HISTORY_LIMIT) -> None: ...


def _rooms_shape(limit: object = DEFAULT_ROOMS_LIMIT, after: object = None) -> None: ...


class ChatComponent(ComponentSession):
    """Hosts :class:`~components.chat.core.ChatRooms` on its realm.

    ``extra``: ``history_size`` (messages kept per room, default 500), ``max_rooms`` (rooms kept, default
    1000; a new room beyond it evicts the least recently active one) and ``room_ttl`` (seconds without a
    message after which a room is forgotten, default 86400).
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
        with_details = RegisterOptions(details=True)
        await self.register(self.send, uris.CHAT_SEND, options=with_details)
        await self.register(self.history, uris.CHAT_HISTORY, options=with_details)
        await self.register(self.list_rooms, uris.CHAT_ROOMS, options=with_details)
        self.log.info("chat ready on realm {realm}", realm=details.realm)

    async def send(self, *args: Any, details: CallDetails, **kwargs: Any) -> dict[str, Any]:
        """``chat.send(room, text)``: publish a message to the room and return it."""
        call = bind(uris.CHAT_SEND, _send_shape, args, kwargs)
        if details.caller_authid is None:
            raise ApplicationError(
                uris.CALLER_NOT_DISCLOSED,
                f'{uris.CHAT_SEND} needs the caller\'s identity: give its rule "disclose": true',
            )
        try:
            message = self.rooms.post(call["room"], call["text"], author=details.caller_authid, now=self.clock())
        except InvalidArgument as e:
            raise invalid_argument(uris.CHAT_SEND, str(e)) from None
        payload = message.to_dict()
        await self.publish(uris.room_topic(message.room), payload, options=PublishOptions(acknowledge=True))
        return payload

    async def history(self, *args: Any, details: CallDetails, **kwargs: Any) -> list[dict[str, Any]]:
        """``chat.history(room, limit=50)``: the room's last messages, oldest first."""
        call = bind(uris.CHAT_HISTORY, _history_shape, args, kwargs)
        self.rooms.expire(self.clock())
        try:
            return [m.to_dict() for m in self.rooms.history(call["room"], call["limit"])]
        except InvalidArgument as e:
            raise invalid_argument(uris.CHAT_HISTORY, str(e)) from None

    async def list_rooms(self, *args: Any, details: CallDetails, **kwargs: Any) -> list[str]:
        """``chat.rooms(limit=100, after=None)``: sorted names of rooms that have messages, one page."""
        call = bind(uris.CHAT_ROOMS, _rooms_shape, args, kwargs)
        self.rooms.expire(self.clock())
        try:
            return self.rooms.rooms(call["limit"], call["after"])
        except InvalidArgument as e:
            raise invalid_argument(uris.CHAT_ROOMS, str(e)) from None
