"""
Login throttling: after too many failures for one authid or one peer address within a window, refuse
further attempts at once (without running a KDF) until the window has passed.

Pure logic with an injected clock. A success resets the counter of that authid (not of the peer: one
user's success says nothing about the other names a peer tried).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LoginThrottle", "ThrottleLimits"]


@dataclass(frozen=True)
class ThrottleLimits:
    """Failures allowed within ``window`` seconds, per authid and per peer address."""

    per_authid: int = 5
    per_peer: int = 50
    window: float = 60.0


class LoginThrottle:
    """Counts recent failures per key; at most ``max_keys`` keys are tracked (oldest forgotten first)."""

    def __init__(self, clock: Callable[[], float], limits: ThrottleLimits, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._limits = limits
        self._max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def blocked(self, realm: str, authid: str | None, peer: str | None) -> bool:
        """Whether a login attempt for ``authid`` from ``peer`` must be refused now."""
        now = self._clock()
        if authid is not None and self._count(_authid_key(realm, authid), now) >= self._limits.per_authid:
            return True
        return peer is not None and self._count(_peer_key(peer), now) >= self._limits.per_peer

    def failed(self, realm: str, authid: str | None, peer: str | None) -> None:
        """Record a failed attempt."""
        now = self._clock()
        if authid is not None:
            self._record(_authid_key(realm, authid), now)
        if peer is not None:
            self._record(_peer_key(peer), now)

    def succeeded(self, realm: str, authid: str | None) -> None:
        """Forget the failures of ``authid``."""
        if authid is not None:
            self._failures.pop(_authid_key(realm, authid), None)

    def _count(self, key: str, now: float) -> int:
        times = self._failures.get(key)
        if times is None:
            return 0
        horizon = now - self._limits.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        return len(times)

    def _record(self, key: str, now: float) -> None:
        self._count(key, now)  # prune what has expired
        times = self._failures.setdefault(key, deque())
        times.append(now)
        self._failures.move_to_end(key)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)


def _authid_key(realm: str, authid: str) -> str:
    return f"authid\0{realm}\0{authid}"


def _peer_key(peer: str) -> str:
    return f"peer\0{peer}"


def peer_host(peer: object) -> str | None:
    """The address part of a Crossbar peer string (``tcp4:1.2.3.4:5678`` -> ``1.2.3.4``)."""
    if not isinstance(peer, str):
        return None
    kind, _, rest = peer.partition(":")
    if kind in ("tcp4", "tcp6"):
        host, _, _port = rest.rpartition(":")
        return host or None
    return peer  # unix sockets and others: the whole string
