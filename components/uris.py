"""
The public WAMP contract of the demo application: every procedure, topic and error URI it uses.

Clients and tests import these instead of spelling URIs out; ``docs/uris.md`` documents each one.
"""

from typing import Final

__all__ = [
    "CALLER_NOT_DISCLOSED",
    "CHAT_HISTORY",
    "CHAT_ROOMS",
    "CHAT_ROOM_TOPIC_PREFIX",
    "CHAT_SEND",
    "INVALID_ARGUMENT",
    "NOT_AUTHORIZED",
    "SYS_INFO",
    "room_topic",
]

CHAT_SEND: Final = "chat.send"
CHAT_HISTORY: Final = "chat.history"
CHAT_ROOMS: Final = "chat.rooms"
SYS_INFO: Final = "sys.info"

#: Messages of room ``r`` are published to ``chat.room.r``.
CHAT_ROOM_TOPIC_PREFIX: Final = "chat.room."

#: A procedure was called with a bad argument; the message names the argument and the reason.
INVALID_ARGUMENT: Final = "wamp.error.invalid_argument"
#: The role's rule for this procedure lacks ``"disclose": true``, so the component cannot tell who called.
CALLER_NOT_DISCLOSED: Final = "switchboard.error.caller_not_disclosed"
#: The router refused an action (or a login): raised by the router, never by a component.
NOT_AUTHORIZED: Final = "wamp.error.not_authorized"


def room_topic(room: str) -> str:
    """The topic messages of ``room`` are published to."""
    return CHAT_ROOM_TOPIC_PREFIX + room
