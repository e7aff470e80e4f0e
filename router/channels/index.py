"""Which channel a topic belongs to: exact topics by dictionary, prefixes by their whole components."""

from __future__ import annotations

from collections.abc import Iterable

from router.config import Channel

__all__ = ["ChannelIndex"]


class ChannelIndex:
    """The channels of one realm (which do not overlap: the configuration refuses that)."""

    def __init__(self, channels: Iterable[Channel]) -> None:
        self.channels = tuple(channels)
        self._exact = {c.topic: c for c in self.channels if c.match == "exact"}
        self._prefix = {c.topic: c for c in self.channels if c.match == "prefix"}

    def find(self, topic: str) -> Channel | None:
        """The channel ``topic`` belongs to, or None. Costs one lookup per component of ``topic``."""
        found = self._exact.get(topic)
        if found is not None or not self._prefix:
            return found
        cut = len(topic)
        while cut > 0:
            found = self._prefix.get(topic[:cut])
            if found is not None:
                return found
            cut = topic.rfind(".", 0, cut)
        return None

    def __bool__(self) -> bool:
        return bool(self.channels)
