"""
Login throttling: who may try to log in now, and how long to make them wait.

Three decaying counts of login attempts (a *leaky bucket*: each attempt adds 1, the count drains at
``limit / window`` per second, so at most ``limit`` attempts per window get through in the long run):

| counted per                     | over its limit                                   | config key            |
|---------------------------------|--------------------------------------------------|-----------------------|
| (realm, authid, client address) | refused from that address (that user only)       | ``per_authid``        |
| client address                  | refused from that address (every user)           | ``per_peer``          |
| (realm, authid), all addresses  | every attempt delayed, doubling up to a maximum   | ``delay_after``, ``max_delay`` |

So an attacker guessing a victim's password from one address locks only that address out for that user,
and one spraying many names from one address locks only that address out; the victim still logs in from
anywhere else. Guessing from many addresses at once only slows the victim's logins down (by at most
``max_delay``), it never refuses them.

Every attempt counts when it starts (a challenge request that is never answered counts too); a success
takes its own attempt back and clears the (authid, address) count.

Memory is bounded in bytes: a key is a 16-byte BLAKE2b digest (whatever the authid's length), a value one
float (the time its count drains to zero), and each table holds at most ``max_entries`` keys (the least
recently updated go first). Drained entries are removed when looked at, and from the old end of each table
on every update, so nothing stale outlives its table's drain time by more than that.

Pure logic with an injected clock.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Admission", "LoginThrottle", "ThrottleLimits"]

_EPSILON = 1e-9

#: The first delay once ``delay_after`` is exceeded; each further attempt doubles it.
BASE_DELAY = 0.25


@dataclass(frozen=True)
class ThrottleLimits:
    """The ``throttle`` section of the config (defaults: see ``config/switchboard.schema.json``)."""

    per_authid: int = 5
    per_peer: int = 50
    window: float = 60.0
    delay_after: int = 10
    max_delay: float = 8.0
    max_entries: int = 50_000


@dataclass(frozen=True)
class Admission:
    """The throttle's answer for one attempt: refuse it, and how long to wait before answering."""

    refused: bool
    delay: float


class _DrainingCounts:
    """Counts per 16-byte key that drain at ``limit / window`` per second, capped at ``cap``."""

    def __init__(self, limit: int, window: float, cap: float, max_entries: int) -> None:
        self._rate = limit / window
        self._cap = cap
        self._max_entries = max_entries
        #: key -> the time its count reaches zero; ordered from least to most recently updated.
        self._empty_at: OrderedDict[bytes, float] = OrderedDict()

    def count(self, key: bytes, now: float) -> float:
        empty_at = self._empty_at.get(key)
        if empty_at is None:
            return 0.0
        if empty_at <= now:
            del self._empty_at[key]
            return 0.0
        return (empty_at - now) * self._rate

    def add(self, key: bytes, now: float, amount: float) -> None:
        count = min(self._cap, max(0.0, self.count(key, now) + amount))
        self._empty_at.pop(key, None)
        if count > 0:
            self._empty_at[key] = now + count / self._rate
        self._prune(now)

    def clear(self, key: bytes) -> None:
        self._empty_at.pop(key, None)

    def _prune(self, now: float) -> None:
        table = self._empty_at
        while len(table) > self._max_entries:
            table.popitem(last=False)
        while table:
            key, empty_at = next(iter(table.items()))
            if empty_at > now:
                break
            del table[key]

    def keys(self) -> list[bytes]:
        return list(self._empty_at)


class LoginThrottle:
    """The three counts of the module docstring, keyed by BLAKE2b digests (never by the authid itself)."""

    def __init__(self, clock: Callable[[], float], limits: ThrottleLimits) -> None:
        self._clock = clock
        self._limits = limits
        n, window = limits.max_entries, limits.window
        self._pairs = _DrainingCounts(limits.per_authid, window, limits.per_authid, n)
        self._peers = _DrainingCounts(limits.per_peer, window, limits.per_peer, n)
        # Room for the delay to reach max_delay (and a few attempts more) before the count stops growing.
        doublings = int(limits.max_delay / BASE_DELAY).bit_length()
        self._authids = _DrainingCounts(limits.delay_after, window, limits.delay_after + doublings + 2, n)

    def admit(self, realm: str, authid: str | None, peer: str | None) -> Admission:
        """Whether an attempt for ``authid`` from ``peer`` is refused now, and the delay it gets."""
        now = self._clock()
        refused = peer is not None and _full(self._peers.count(_key("peer", peer), now), self._limits.per_peer)
        delay = 0.0
        if authid is not None:
            pair = _key("pair", realm, authid, peer or "")
            refused = refused or _full(self._pairs.count(pair, now), self._limits.per_authid)
            recent = math.ceil(self._authids.count(_key("authid", realm, authid), now) - _EPSILON)
            excess = recent - self._limits.delay_after
            if excess >= 0:
                delay = min(self._limits.max_delay, BASE_DELAY * 2.0**excess)
        return Admission(refused, delay)

    def attempted(self, realm: str, authid: str | None, peer: str | None) -> list[str]:
        """Count an attempt as a failure until :meth:`succeeded` takes it back; the limits this attempt
        reached (``"per_authid"``, ``"per_peer"``): from now on the client is refused until its count drains."""
        now = self._clock()
        locked = []
        if peer is not None:
            key = _key("peer", peer)
            self._peers.add(key, now, 1)
            if _full(self._peers.count(key, now), self._limits.per_peer):
                locked.append("per_peer")
        if authid is not None:
            pair = _key("pair", realm, authid, peer or "")
            self._pairs.add(pair, now, 1)
            if _full(self._pairs.count(pair, now), self._limits.per_authid):
                locked.append("per_authid")
            self._authids.add(_key("authid", realm, authid), now, 1)
        return locked

    def succeeded(self, realm: str, authid: str | None, peer: str | None) -> None:
        """Take back the attempt that succeeded; forget the failures of ``authid`` from ``peer``."""
        now = self._clock()
        if peer is not None:
            self._peers.add(_key("peer", peer), now, -1)
        if authid is not None:
            self._pairs.clear(_key("pair", realm, authid, peer or ""))
            self._authids.add(_key("authid", realm, authid), now, -1)

    def held_keys(self) -> list[bytes]:
        """Every key held (for tests and diagnostics): each is a 16-byte digest."""
        return self._pairs.keys() + self._peers.keys() + self._authids.keys()


def _full(count: float, limit: int) -> bool:
    """Whether one more attempt would take ``count`` over ``limit`` (a count drains continuously)."""
    return count > limit - 1 + _EPSILON


def _key(kind: str, *parts: str) -> bytes:
    digest = hashlib.blake2b(kind.encode(), digest_size=16, person=b"sb-throttle")
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()
