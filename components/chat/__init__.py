"""The demo chat application: ``chat.send``, ``chat.history``, ``chat.rooms`` and ``chat.room.<room>``."""

from components.chat.session import ChatComponent

__all__ = ["ChatComponent"]
