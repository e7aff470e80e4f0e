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
        self._longest = max((len(topic) for topic in self._prefix), default=0)

    def find(self, topic: str) -> Channel | None:
        """The channel ``topic`` belongs to, or None. Looks at most at the first characters of ``topic`` as long
        as the longest prefix channel (at most 255), one lookup per component there, whatever its length."""
        found = self._exact.get(topic)
        if found is not None or not self._prefix:
            return found
        cut = len(topic) if len(topic) <= self._longest else topic.rfind(".", 0, self._longest + 1)
        while cut > 0:
            found = self._prefix.get(topic[:cut])
            if found is not None:
                return found
            cut = topic.rfind(".", 0, cut)
        return None

    def __bool__(self) -> bool:
        return bool(self.channels)
