"""WAMP glue for the chat rooms: registers ``chat.*`` procedures, publishes to ``chat.room.<room>`` and reads
the messages back from that channel's history (``switchboard.history.*``)."""

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
    DEFAULT_ROOM_TTL,
    DEFAULT_ROOMS_LIMIT,
    ActiveRooms,
    InvalidArgument,
    check_limit,
    check_room,
    message_from_event,
    new_message,
)
from router.component import ComponentSession, invalid_argument, procedure

__all__ = ["ChatComponent"]


class ChatComponent(ComponentSession):
    """The chat on its realm. Its role must be allowed to publish and subscribe to ``chat.room.<room>``, a
    channel with history (the history numbers and keeps the messages).

    ``extra``: ``max_rooms`` (rooms ``chat.rooms`` knows, default 1000; a new room beyond it evicts the
    least recently active one) and ``room_ttl`` (seconds without a message after which ``chat.rooms``
    forgets a room, default 86400). Other keys are ignored.
    """

    #: Where message timestamps come from; tests may replace it.
    clock: Callable[[], float] = time.time

    async def onJoin(self, details: Any) -> None:
        extra = self.config.extra or {}
        self.rooms = ActiveRooms(
            max_rooms=int(extra.get("max_rooms", DEFAULT_MAX_ROOMS)),
            room_ttl=float(extra.get("room_ttl", DEFAULT_ROOM_TTL)),
        )
        await self.register(self)
        self.log.info("chat ready on realm {realm}", realm=details.realm)

    @procedure(uris.CHAT_SEND)
    async def send(self, room: object, text: object, *, details: CallDetails) -> dict[str, Any]:
        """``chat.send(room, text)``: publish a message to the room; return it with its ``seq`` in the
        channel history (null if the history did not keep it)."""
        if details.caller_authid is None:
            raise ApplicationError(
                uris.CALLER_NOT_DISCLOSED,
                f'{uris.CHAT_SEND} needs the caller\'s identity: give its rule "disclose": true',
            )
        now = self.clock()
        try:
            message = new_message(room, text, author=details.caller_authid, now=now)
        except InvalidArgument as e:
            raise invalid_argument(uris.CHAT_SEND, str(e)) from None
        topic = uris.room_topic(message.room)
        payload = message.to_dict()
        publication = await self.publish(topic, payload, options=PublishOptions(acknowledge=True))
        self.rooms.touch(message.room, now)
        event = await self.call(uris.HISTORY_LOOKUP, topic, publication.id)
        return payload | {"seq": event["seq"] if event else None}

    @procedure(uris.CHAT_HISTORY)
    async def history(self, room: object, limit: object = DEFAULT_HISTORY_LIMIT) -> list[dict[str, Any]]:
        """``chat.history(room, limit=50)``: the room's last messages, oldest first, each with its ``seq``."""
        try:
            topic, count = uris.room_topic(check_room(room)), check_limit(limit)
        except InvalidArgument as e:
            raise invalid_argument(uris.CHAT_HISTORY, str(e)) from None
        answer = await self.call(uris.HISTORY_GET, topic, limit=count)
        messages = (message_from_event(event) for event in answer["events"])
        return [m for m in messages if m is not None]

    @procedure(uris.CHAT_ROOMS)
    async def list_rooms(self, limit: object = DEFAULT_ROOMS_LIMIT, after: object = None) -> list[str]:
        """``chat.rooms(limit=100, after=None)``: sorted names of rooms with a recent message, one page."""
        self.rooms.expire(self.clock())
        try:
            return self.rooms.names(limit, after)
        except InvalidArgument as e:
            raise invalid_argument(uris.CHAT_ROOMS, str(e)) from None
