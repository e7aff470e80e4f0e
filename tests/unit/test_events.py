"""Event lines (router.events): the logfmt contract, clipping, and the per-event-name rate limit."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.logger import LogEvent, globalLogPublisher

from router import events
from router.events import EventLog, clip, format_event

# Written by hand: (fields, the expected text after "event=x ").
FORMATTED = [
    ({"realm": "demo", "authid": "alice", "method": "ticket"}, "realm=demo authid=alice method=ticket"),
    ({"peer": "tcp4:127.0.0.1:50312"}, "peer=tcp4:127.0.0.1:50312"),
    ({"authid": "a b"}, 'authid="a b"'),
    ({"authid": 'say "hi"'}, 'authid="say \\"hi\\""'),
    ({"authid": "two\nlines"}, 'authid="two\\nlines"'),
    ({"authid": "tab\there\\"}, 'authid="tab\\there\\\\"'),
    ({"authid": "caf\u00e9"}, 'authid="caf\\u00e9"'),
    ({"authid": ""}, 'authid=""'),
    ({"authid": "x=y"}, 'authid="x=y"'),
    ({"session": 123456, "ok": True}, "session=123456 ok=True"),
    ({"reason": None, "realm": "demo"}, "realm=demo"),
    ({"mail": "a.b+c@example.org/x-y_z"}, "mail=a.b+c@example.org/x-y_z"),
]


@pytest.mark.parametrize(("fields", "expected"), FORMATTED)
def test_values_are_bare_or_json_strings(fields: dict[str, Any], expected: str) -> None:
    """A value is bare when it is made of [A-Za-z0-9_.:/@+-] only, otherwise a JSON string literal (ASCII);
    None is left out."""
    assert format_event("x", **fields) == f"event=x {expected}"


def test_keys_are_checked() -> None:
    """A key outside [a-z_]+ is a programming error, refused."""
    with pytest.raises(ValueError, match="not an event key"):
        format_event("x", **{"Bad-Key": 1})


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.text(max_size=80), max_size=5))
def test_every_line_parses_back(fields: dict[str, str]) -> None:
    """Whatever the values, a line is one line of ASCII that a logfmt reader gives back exactly."""
    line = format_event("login_failed", **fields)
    assert "\n" not in line
    assert "\r" not in line
    assert line.isascii()
    pairs = re.findall(r'([a-z_]+)=("(?:[^"\\]|\\.)*"|[A-Za-z0-9_.:/@+-]+)(?: |$)', line)
    parsed = {key: json.loads(value) if value.startswith('"') else value for key, value in pairs}
    assert parsed == {"event": "login_failed", **fields}


def test_clip_cuts_long_values_and_marks_them() -> None:
    """At most 64 characters of a client's value, then '...'; short values and None unchanged."""
    assert clip("a" * 64) == "a" * 64
    assert clip("a" * 65) == "a" * 64 + "..."
    assert clip(None) is None
    assert clip(b"raw") == "b'raw'"


def test_at_most_n_lines_per_second_then_one_suppressed_line() -> None:
    """Over the limit, lines of that event name are counted, and when its second ends one line says how
    many were left out; other event names are not affected; the next second starts afresh."""
    clock, lines = Clock(), []
    log = EventLog(clock, 3, lines.append)
    for i in range(10):
        log.emit("login_failed", n=i)
    log.emit("session_joined", n=0)
    assert lines == [
        "event=login_failed n=0",
        "event=login_failed n=1",
        "event=login_failed n=2",
        "event=session_joined n=0",
    ]
    clock.advance(0.5)
    log.emit("login_failed", n=10)
    assert len(lines) == 4
    clock.advance(0.5)
    assert lines[4:] == ["event=events_suppressed name=login_failed count=8 seconds=1"]
    log.emit("login_failed", n=11)
    assert lines[5:] == ["event=login_failed n=11"]
    clock.advance(5)
    assert len(lines) == 6  # nothing suppressed in that second: no report


def test_the_window_starts_with_the_first_line() -> None:
    """The second is counted from the first line of a quiet period, so a burst right after it is limited."""
    clock, lines = Clock(), []
    log = EventLog(clock, 2, lines.append)
    clock.advance(100.9)
    log.emit("a")
    clock.advance(0.2)  # across a whole-second boundary of the clock: still the same window
    log.emit("a")
    log.emit("a")
    assert lines == ["event=a", "event=a"]
    clock.advance(0.8)
    assert lines[-1] == "event=events_suppressed name=a count=1 seconds=1"


def test_lines_go_to_the_events_namespace_at_info(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared log writes INFO events of namespace switchboard.events whose text is the line."""
    from twisted.logger import formatEvent

    seen: list[LogEvent] = []
    monkeypatch.setattr(events, "_shared", None)
    globalLogPublisher.addObserver(seen.append)
    try:
        events.configure(1, Clock())
        events.emit("session_left", realm="demo", session=7)
        events.emit("session_left", realm="demo", session=8)
    finally:
        globalLogPublisher.removeObserver(seen.append)
    mine = [e for e in seen if e.get("log_namespace") == events.NAMESPACE]
    assert [formatEvent(e) for e in mine] == ["event=session_left realm=demo session=7"]
    assert mine[0]["log_level"].name == "info"
