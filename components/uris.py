"""
The public WAMP contract of the demo application: every procedure, topic and error URI it uses.

Clients and tests import these instead of spelling URIs out; ``docs/uris.md`` documents each one. The
error URIs the app shares with the framework are Switchboard's (:mod:`router.uris`), re-exported here as
part of the app's contract, and so are the channel history procedures the chat reads its messages with.
"""

from typing import Final

from router.uris import CALLER_NOT_DISCLOSED, HISTORY_GET, HISTORY_LOOKUP, INVALID_ARGUMENT, NOT_AUTHORIZED

__all__ = [
    "CALLER_NOT_DISCLOSED",
    "CHAT_HISTORY",
    "CHAT_ROOMS",
    "CHAT_ROOM_TOPIC_PREFIX",
    "CHAT_SEND",
    "HISTORY_GET",
    "HISTORY_LOOKUP",
    "INVALID_ARGUMENT",
    "NOT_AUTHORIZED",
    "SYS_INFO",
    "SYS_STATS",
    "room_topic",
]

CHAT_SEND: Final = "chat.send"
CHAT_HISTORY: Final = "chat.history"
CHAT_ROOMS: Final = "chat.rooms"
SYS_INFO: Final = "sys.info"
#: Once a second: ``{"sessions", "messages_per_second", "ts"}`` (components.system).
SYS_STATS: Final = "sys.stats"

#: Messages of room ``r`` are published to ``chat.room.r``, a topic of the ``chat.room`` channel (with history).
CHAT_ROOM_TOPIC_PREFIX: Final = "chat.room."


def room_topic(room: str) -> str:
    """The topic messages of ``room`` are published to."""
    return CHAT_ROOM_TOPIC_PREFIX + room
