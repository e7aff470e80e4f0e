"""
Event lines: what operators grep for in ``node.log`` (failed logins, lockouts, sessions joining and leaving).

Each event is one INFO line of the twisted logger namespace :data:`NAMESPACE` whose text is *logfmt*::

    event=login_failed realm=demo authid=alice method=ticket peer=127.0.0.1

Keys match ``[a-z_]+``; a value is written bare if it matches ``[A-Za-z0-9_.:/@+-]+``, otherwise as a JSON
string literal (``json.dumps(value, ensure_ascii=True)``: quotes, backslashes, newlines and every
non-ASCII character escaped), so one event is always one line and ``switchboard logs --log-format json``
can parse it back. A value a client chose (an authid, a close reason) is cut to :data:`MAX_VALUE_LENGTH`
characters first (:func:`clip`). Secrets never reach this module.

The events (fields in order):

| event            | fields                                                     |
|------------------|------------------------------------------------------------|
| ``login_failed`` | realm, authid, method, peer                                |
| ``login_locked`` | realm, authid, method, peer, scope (``authid`` or ``peer``) |
| ``session_joined`` | realm, session, authid, authrole, authmethod, peer       |
| ``session_left`` | realm, session, authid, reason (when one was given)        |
| ``events_suppressed`` | name, count, seconds                                  |

**Volume.** A client can cause as many of these as it can open connections, so :class:`EventLog` writes at
most ``limits.max_log_events`` lines per second of each event name; the lines over it are counted and,
when that second ends, one ``event=events_suppressed name=<event> count=<K> seconds=1`` line says how many.

Pure formatting (:func:`format_event`) and a rate limit on an injected clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

__all__ = [
    "MAX_VALUE_LENGTH",
    "NAMESPACE",
    "EventLog",
    "clip",
    "configure",
    "emit",
    "format_event",
]

#: The twisted logger namespace of every event line.
NAMESPACE = "switchboard.events"
#: Characters of a client-chosen value (authid, close reason) a line shows; longer ones end with ``...``.
MAX_VALUE_LENGTH = 64
#: The length of a rate-limit window, in seconds.
WINDOW = 1.0

_KEY = re.compile(r"[a-z_]+")
_BARE = re.compile(r"[A-Za-z0-9_.:/@+-]+")
_log = Logger(namespace=NAMESPACE)


def clip(value: object, length: int = MAX_VALUE_LENGTH) -> str | None:
    """``value`` as a string of at most ``length`` characters (plus ``...`` if cut); None stays None."""
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= length else text[:length] + "..."


def _value(value: object) -> str:
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if _BARE.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=True)


def format_event(event: str, **fields: object) -> str:
    """The logfmt line of ``event`` with ``fields`` in the order given (None values left out)."""
    parts = [f"event={_value(event)}"]
    for key, value in fields.items():
        if not _KEY.fullmatch(key):
            raise ValueError(f"not an event key: {key!r}")
        if value is not None:
            parts.append(f"{key}={_value(value)}")
    return " ".join(parts)


class _Window:
    __slots__ = ("count", "start", "suppressed")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 0
        self.suppressed = 0


class EventLog:
    """Writes event lines, at most ``max_per_second`` per event name per second (see the module docstring).

    ``clock`` provides ``seconds()`` and ``callLater()`` (the reactor, or ``task.Clock`` in tests);
    ``write(line)`` receives each line (default: INFO on the ``switchboard.events`` logger).
    """

    def __init__(self, clock: Any, max_per_second: int, write: Callable[[str], None] | None = None) -> None:
        self._clock = clock
        self._max = max_per_second
        self._write = write if write is not None else _info
        self._windows: dict[str, _Window] = {}

    def emit(self, event: str, **fields: object) -> None:
        """Write ``event`` now, or count it as suppressed if its name has used up this second's lines."""
        now = self._clock.seconds()
        window = self._windows.get(event)
        if window is None or now >= window.start + WINDOW:
            window = self._windows[event] = _Window(now)
        if window.count < self._max:
            window.count += 1
            self._write(format_event(event, **fields))
            return
        window.suppressed += 1
        if window.suppressed == 1:
            self._clock.callLater(max(0.0, window.start + WINDOW - now), self._report, event, window)

    def _report(self, event: str, window: _Window) -> None:
        self._write(format_event("events_suppressed", name=event, count=window.suppressed, seconds=f"{WINDOW:g}"))
        window.suppressed = 0


def _info(line: str) -> None:
    _log.info("{event_line}", event_line=line)


_shared: EventLog | None = None


def configure(max_per_second: int, clock: Any = None) -> EventLog:
    """Set up the worker's shared :class:`EventLog` (``clock``: the running reactor unless given)."""
    global _shared
    if clock is None:
        from twisted.internet import reactor  # the router worker's reactor: called from its entry point

        clock = reactor
    _shared = EventLog(clock, max_per_second)
    return _shared


def emit(event: str, **fields: object) -> None:
    """Write ``event`` through the shared :class:`EventLog` (unlimited before :func:`configure`)."""
    if _shared is None:
        _info(format_event(event, **fields))
    else:
        _shared.emit(event, **fields)
