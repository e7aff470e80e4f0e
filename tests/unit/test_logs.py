"""router.logs without a node: records, the level policy, text and JSON formats, logfmt fields, sizes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router import logs
from router.logs import Record

# 2026-11-30T13:55:51.123Z
T = 1796046951.123


@pytest.mark.parametrize(
    ("text", "size"),
    [("1", 1), ("2048", 2048), ("2K", 2048), ("2k", 2048), ("10M", 10 * 1048576), ("1G", 1073741824), ("5MB", 5242880)],
)
def test_sizes(text: str, size: int) -> None:
    """A size is bytes, or a number with a K/M/G suffix (powers of 1024)."""
    assert logs.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "1.5M", "-1", "10T", "ten"])
def test_bad_sizes(text: str) -> None:
    """Anything else is refused with ValueError."""
    with pytest.raises(ValueError, match="not a size"):
        logs.parse_size(text)


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("Router      20208", ("router", 20208)),
        ("Container    301", ("container", 301)),
        ("Guest 7", ("guest", 7)),
        ("-", ("controller", 99)),
        ("", ("controller", 99)),
        ("something else", ("controller", 99)),
    ],
)
def test_source_of_a_log_system(system: str, expected: tuple[str, int]) -> None:
    """Crossbar's log_system names the worker type and PID; anything else is the controller itself."""
    assert logs.source_of(system, 99) == expected


def record(level: str | None, namespace: str | None, message: str = "something happened") -> Record:
    return Record(time=T, message=message, level=level, source="router", pid=1, namespace=namespace)


# (record level, namespace, message, {chosen level: shown?}) written by hand from the module's contract.
POLICY: list[tuple[str | None, str | None, str, dict[str, bool]]] = [
    ("info", "switchboard.events", "event=login_failed", {"error": False, "warn": False, "info": True, "debug": True}),
    ("info", "router.seam.parsing", "protocol error on x", {"warn": False, "info": True, "debug": True}),
    ("info", "components.chat.session.ChatComponent", "chat ready", {"info": True}),
    ("info", "stdout", "printed by a component", {"info": True}),
    ("info", "crossbar.router.router.Router", "new session attached", {"info": False, "debug": True}),
    ("info", "autobahn.wamp.protocol", "chatter", {"info": False, "debug": True}),
    ("info", "log_legacy", "(TCP Port 1 Closed)", {"info": False, "debug": True}),
    ("info", "__main__._run_command_exec_worker", "Running as PID 3", {"info": False, "debug": True}),
    ("info", "router.seam.transport.GuardFactory", "Starting factory <x>", {"info": False, "debug": True}),
    ("info", "crossbar.node.node.Node", "Ok, local node configuration ran successfully.", {"info": True}),
    (
        "info",
        "crossbar.worker.router.RouterController",
        'Router TCP/8080 transport started as transport "main" and listening on TCP port 8080',
        {"warn": False, "info": True},
    ),
    ("info", "twisted.internet.base", "Received SIGTERM, shutting down.", {"info": True}),
    ("warn", "crossbar.router.session.RouterSession", "a warning", {"error": False, "warn": True, "info": True}),
    ("error", "crossbar.worker.router", "an error", {"error": True, "warn": True, "info": True}),
    ("critical", "crossbar", "critical", {"error": True}),
    ("debug", "crossbar.router.session", "details", {"info": False, "debug": True}),
    ("debug", "switchboard.events", "details", {"info": False, "debug": True}),
    ("info", "switchboard.events", "   ", {"info": False, "debug": False}),
    (None, None, "raw output", {"error": True, "warn": True, "info": True, "debug": True}),
]


@pytest.mark.parametrize(("level", "namespace", "message", "expected"), POLICY)
def test_what_each_level_shows(
    level: str | None, namespace: str | None, message: str, expected: dict[str, bool]
) -> None:
    """At info, library chatter is dropped but for a few lifecycle lines; warnings, errors, Switchboard's
    lines, components' and raw output are shown; debug shows everything; nothing empty is shown."""
    for chosen, is_shown in expected.items():
        assert logs.shown(record(level, namespace, message), chosen) is is_shown, chosen


def test_a_record_line_round_trips_as_ascii() -> None:
    """encode_record writes one ASCII line starting with the mark; decode_line reads the same record back,
    whatever the message holds."""
    original = Record(
        time=T, message='a\nb "c" \u00e9\U0001f600 \x1b[31m', level="warn", source="router", pid=7, namespace="x"
    )
    line = logs.encode_record(original)
    assert line.startswith(logs.RECORD_MARK)
    assert "\n" not in line
    assert line.isascii()
    assert logs.decode_line(line, now=0) == original


@pytest.mark.parametrize(
    "line",
    ["plain output", "", "{not json", logs.RECORD_MARK + "{broken", logs.RECORD_MARK + "[1, 2]", "  Traceback"],
)
def test_anything_else_is_a_raw_record(line: str) -> None:
    """A line that is not a record line is a raw record: the line, received now, level and source unknown."""
    assert logs.decode_line(line, now=5.0) == Record(time=5.0, message=line)


def test_fields_of_the_wrong_type_are_unknown() -> None:
    """A record line with fields of the wrong type keeps what it can (a bad time is the time received)."""
    line = logs.RECORD_MARK + json.dumps({"time": "x", "level": 3, "pid": "1", "message": "m", "source": True})
    assert logs.decode_line(line, now=5.0) == Record(time=5.0, message="m")


# logfmt lines as router.events writes them, and their fields, by hand.
LOGFMT = [
    ("event=login_failed realm=demo authid=alice", {"event": "login_failed", "realm": "demo", "authid": "alice"}),
    ('event=x authid="a b"', {"event": "x", "authid": "a b"}),
    ('event=x authid="say \\"hi\\""', {"event": "x", "authid": 'say "hi"'}),
    ('event=x authid="l1\\nl2\\r\\u0007"', {"event": "x", "authid": "l1\nl2\r\x07"}),
    ('event=x authid="\\u00e9\\ud83d\\ude00"', {"event": "x", "authid": "\u00e9\U0001f600"}),
    ("event=x peer=tcp4:127.0.0.1:50312 n=3", {"event": "x", "peer": "tcp4:127.0.0.1:50312", "n": "3"}),
    ('event=x a="" b=', {"event": "x", "a": "", "b": ""}),
]


@pytest.mark.parametrize(("line", "fields"), LOGFMT)
def test_logfmt_fields(line: str, fields: dict[str, str]) -> None:
    """Bare values and JSON string literals are read back as the values written."""
    assert logs.parse_logfmt(line) == fields


@pytest.mark.parametrize("line", ["", "not logfmt at all", 'event="unterminated', "Key=upper", 'a="\\x"', "a=b c"])
def test_not_logfmt(line: str) -> None:
    """Text that is not a logfmt line has no fields."""
    assert logs.parse_logfmt(line) is None


def test_text_format() -> None:
    """One line: ISO time in UTC with milliseconds, level, source and PID, message."""
    text = logs.format_text(Record(time=T, message="it works", level="warn", source="router", pid=20208, namespace="n"))
    assert text == "2026-11-30T13:55:51.123Z warn  [router 20208] it works"


def test_text_format_of_a_message_of_several_lines_and_control_characters() -> None:
    """Continuation lines are indented and control characters escaped: no line of a record can pass for
    the start of another, nor reach the terminal as an escape sequence."""
    message = "Traceback:\n  File x\nValueError: 2026-11-30T00:00:00.000Z error [router 1] forged\x1b[2J\r"
    text = logs.format_text(Record(time=T, message=message, level="error", source="controller", pid=5))
    assert text.splitlines() == [
        "2026-11-30T13:55:51.123Z error [controller 5] Traceback:",
        "    File x",
        "  ValueError: 2026-11-30T00:00:00.000Z error [router 1] forged\\x1b[2J\\x0d",
    ]


def test_text_format_of_a_raw_record_is_its_line() -> None:
    """Raw output is shown as it came, control characters escaped."""
    assert logs.format_text(Record(time=T, message="NumPy says\x07 hi")) == "NumPy says\\x07 hi"


def test_json_format() -> None:
    """One ASCII line of JSON with time, level, source, pid, namespace and message."""
    line = logs.format_json(
        Record(time=T, message="caf\u00e9\nbar", level="info", source="router", pid=3, namespace="n")
    )
    assert "\n" not in line
    assert line.isascii()
    assert json.loads(line) == {
        "time": "2026-11-30T13:55:51.123Z",
        "level": "info",
        "source": "router",
        "pid": 3,
        "namespace": "n",
        "message": "caf\u00e9\nbar",
    }


def test_json_format_of_a_raw_record() -> None:
    """Raw output: level, source, pid and namespace are null."""
    assert json.loads(logs.format_json(Record(time=T, message="raw"))) == {
        "time": "2026-11-30T13:55:51.123Z",
        "level": None,
        "source": None,
        "pid": None,
        "namespace": None,
        "message": "raw",
    }


def test_json_format_spreads_the_fields_of_an_event_line() -> None:
    """An event line's logfmt fields become JSON fields; a field named like a record key does not replace it."""
    message = 'event=login_failed realm=demo authid="evil\\"\\n\\u00e9" method=ticket level=debug time=0'
    fields: dict[str, Any] = json.loads(
        logs.format_json(
            Record(time=T, message=message, level="info", source="router", pid=3, namespace="switchboard.events")
        )
    )
    assert fields["event"] == "login_failed"
    assert fields["authid"] == 'evil"\n\u00e9'
    assert fields["method"] == "ticket"
    assert (fields["level"], fields["time"]) == ("info", "2026-11-30T13:55:51.123Z")
    assert fields["message"] == message


def test_json_format_of_a_huge_message_is_one_line() -> None:
    """A megabyte of hostile text is still one line of valid JSON."""
    message = ('"\n\\\u2028\x00' * 200_000)[:1_000_000]
    line = logs.format_json(Record(time=T, message=message, level="info", source="router", pid=1))
    assert "\n" not in line
    assert json.loads(line)["message"] == message


def test_c1_controls_and_unicode_line_separators_are_escaped_in_text() -> None:
    """CSI (U+009B) starts a terminal escape like ESC [; U+2028/U+2029 break lines in some viewers: in text
    they are escaped like C0 controls, so a client's authid cannot forge a record or colour a terminal."""
    record = logs.Record(time=0.0, message="a\x9b2Jb\u2028c\u2029d\x85e", level="info", source="router", pid=1)
    line = logs.format_text(record)
    assert line.endswith("a\\x9b2Jb\\u2028c\\u2029d\\x85e")
