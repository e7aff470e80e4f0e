"""
What ``switchboard run`` logs: the records the Crossbar controller sends, which are shown at each level, how
they look in ``node.log`` and on stderr (``text`` or ``json``), and the rotation of ``node.log``.

**Records.** The controller, started through :func:`router.seam.logging.controller_main`, writes each log
event it shows as one line: :data:`RECORD_MARK` and a JSON object (:func:`encode_record`). Anything else the
node prints (output before logging starts, a process writing to its file descriptors directly) is a *raw*
line: :func:`decode_line` makes it a record whose level and source are unknown (None).

**Levels** (:data:`LEVELS`, ``--log-level``): ``error``, ``warn``, ``info`` (the default) and ``debug``, passed
to Crossbar as its own level. At ``info`` Crossbar and the libraries under it (:data:`LIBRARY_NAMESPACES`)
log every session attached and detached, every anonymous HELLO, each role's permissions at start: that
chatter is dropped (:func:`shown`), except the few lines in :data:`USEFUL_LIBRARY_LINES`. Everything of
Switchboard (``router.*``, the event lines of ``switchboard.events``), of hosted components, and every warning
and error is shown. ``debug`` shows everything Crossbar logs.

**Formats.** ``text``: ``2026-11-30T13:55:51.123Z info  [router 20208] message``; a message of several lines
(a traceback) continues on lines indented by two spaces, and control characters are escaped, so every line
that starts with a timestamp is a record, whatever a client put in an authid. ``json``: one object per line
with ``time`` (ISO 8601, UTC), ``level``, ``source`` (``controller``, ``router``, ``container``, ``guest``),
``pid``, ``namespace`` and ``message``; an event line (namespace :data:`EVENTS_NAMESPACE`, a logfmt message)
adds its fields (``event``, ``realm``, ``authid``, ...) unless the name is one of those keys.

**Volume** (:class:`LineBudget`): the controller writes at most ``limits.max_log_events`` records per second
of each kind (a kind is a log call of the code: its source and message format), and then one warning saying
how many it left out. Whatever a client makes Crossbar log again and again (a warning per message, say) can
then not fill the disk or rotate the last login failures out of ``node.log``. Switchboard's event lines have
their own budget per event name, in the router worker (:mod:`router.events`).

**Rotation** (:class:`RotatingFile`): ``node.log`` grows to ``max_size`` bytes, then becomes ``node.log.1``
(``.1`` becomes ``.2`` and so on; beyond ``keep`` files the oldest goes). Runs and restarts append.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from router.datadir import open_private

__all__ = [
    "DEFAULT_FORMAT",
    "DEFAULT_KEEP",
    "DEFAULT_LEVEL",
    "DEFAULT_MAX_SIZE",
    "EVENTS_NAMESPACE",
    "FORMATS",
    "LEVELS",
    "LIBRARY_NAMESPACES",
    "MAX_LINES_ENV",
    "RECORD_MARK",
    "USEFUL_LIBRARY_LINES",
    "LineBudget",
    "Record",
    "RotatingFile",
    "decode_line",
    "encode_record",
    "format_json",
    "format_text",
    "parse_logfmt",
    "parse_size",
    "rank",
    "rotated_path",
    "shown",
    "source_of",
]

#: ``--log-level`` choices, least verbose first (also Crossbar's names for them).
LEVELS = ("error", "warn", "info", "debug")
#: ``--log-format`` choices.
FORMATS = ("text", "json")
DEFAULT_LEVEL = "info"
DEFAULT_FORMAT = "text"
#: ``--log-max-size``: the size at which node.log is rotated, in bytes.
DEFAULT_MAX_SIZE = 10 * 1024 * 1024
#: ``--log-keep``: how many rotated files (node.log.1 ... node.log.N) are kept.
DEFAULT_KEEP = 5

#: The namespace of the event lines (see :mod:`router.events`), whose logfmt fields JSON output spreads out.
EVENTS_NAMESPACE = "switchboard.events"
#: What starts a record line (ASCII record separator): raw output never does.
RECORD_MARK = "\x1e"

#: Namespaces (and their children) of the libraries whose ``info`` lines are chatter. ``log_legacy`` is
#: Twisted's old ``log.msg``; ``__main__`` is Crossbar's worker and controller entry points.
LIBRARY_NAMESPACES = ("crossbar", "autobahn", "twisted", "txaio", "zlmdb", "cfxdb", "log_legacy", "__main__")
#: Library ``info`` lines shown at ``info`` all the same: the node is up, what it listens on, a signal.
USEFUL_LIBRARY_LINES = (
    re.compile(r"^Ok, local node configuration ran successfully"),
    re.compile(r"transport started as transport .* listening on "),
    re.compile(r"^Received SIG[A-Z]+, shutting down"),
)
# Twisted's per-factory lines: their namespace is the factory's class, ours included.
_CHATTER = re.compile(r"^(Starting|Stopping) factory ")

_RANK = {"critical": 0, "error": 1, "warn": 2, "info": 3, "debug": 4, "trace": 5}
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_SIZE = re.compile(r"(\d+)([KMG]?)B?", re.IGNORECASE)
_SYSTEM = re.compile(r"([A-Za-z]+)\s+(\d+)")
_LOGFMT_PAIR = re.compile(r'([a-z_]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?:\s+|$)')
#: Escaped in text: C0 and C1 controls (C1 includes CSI, U+009B) and the Unicode line and paragraph separators,
#: which some viewers break lines at.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_RESERVED = ("time", "level", "source", "pid", "namespace", "message")


@dataclass(frozen=True)
class Record:
    """One log event: a record line of the controller, or a raw line (level and source None)."""

    time: float
    message: str
    level: str | None = None
    source: str | None = None
    pid: int | None = None
    namespace: str | None = None


def rank(level: str) -> int:
    """How verbose ``level`` is: ``critical`` 0 ... ``trace`` 5; an unknown name counts as ``info``."""
    return _RANK.get(level, _RANK["info"])


def parse_size(text: str) -> int:
    """Bytes in ``text``: a number with an optional suffix ``K``, ``M`` or ``G`` (powers of 1024, case and a
    trailing ``B`` ignored); ValueError otherwise."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a size: {text!r} (bytes, or a number with K, M or G)")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def source_of(system: str, own_pid: int) -> tuple[str, int]:
    """``(source, pid)`` from a Twisted ``log_system`` as Crossbar sets it (``"Router      20208"``); ``"-"``
    (or anything else) is the controller itself, ``own_pid``."""
    match = _SYSTEM.fullmatch(system.strip())
    if match is None:
        return "controller", own_pid
    return match.group(1).lower(), int(match.group(2))


def shown(record: Record, level: str) -> bool:
    """Whether ``record`` is shown at ``level`` (one of :data:`LEVELS`): see the module docstring."""
    if record.level is None:
        return True  # raw output: nothing says what it is
    if not record.message.strip() or rank(record.level) > rank(level):
        return False
    if level != "info" or record.level != "info":
        return True
    if _CHATTER.match(record.message):
        return False
    namespace = record.namespace or ""
    if namespace.split(".", 1)[0] in LIBRARY_NAMESPACES:
        return any(pattern.search(record.message) for pattern in USEFUL_LIBRARY_LINES)
    return True


def encode_record(record: Record) -> str:
    """The line (without its newline) that carries ``record`` from the controller: ASCII only."""
    fields = {
        "time": record.time,
        "level": record.level,
        "source": record.source,
        "pid": record.pid,
        "namespace": record.namespace,
        "message": record.message,
    }
    return RECORD_MARK + json.dumps(fields, ensure_ascii=True, separators=(",", ":"))


def decode_line(line: str, now: float) -> Record:
    """The record a line of the node's output carries (see :func:`encode_record`), or a raw record of the line
    received at ``now``."""
    if line.startswith(RECORD_MARK):
        with contextlib.suppress(ValueError):
            fields = json.loads(line[len(RECORD_MARK) :])
            if isinstance(fields, dict):
                return Record(
                    time=_typed(fields.get("time"), (int, float), now),
                    message=_typed(fields.get("message"), str, ""),
                    level=_typed(fields.get("level"), str, None),
                    source=_typed(fields.get("source"), str, None),
                    pid=_typed(fields.get("pid"), int, None),
                    namespace=_typed(fields.get("namespace"), str, None),
                )
    return Record(time=now, message=line)


def _typed(value: Any, kind: Any, default: Any) -> Any:
    return value if isinstance(value, kind) and not isinstance(value, bool) else default


def parse_logfmt(message: str) -> dict[str, str] | None:
    """The fields of a logfmt line as :mod:`router.events` writes it (``key=bare`` or ``key="JSON string"``),
    or None if ``message`` is not one."""
    fields: dict[str, str] = {}
    position = 0
    text = message.strip()
    while position < len(text):
        match = _LOGFMT_PAIR.match(text, position)
        if match is None:
            return None
        key, value = match.group(1), match.group(2)
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        fields[key] = value
        position = match.end()
    return fields or None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _escape_controls(text: str) -> str:
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if m.group() < "\u0100" else f"\\u{ord(m.group()):04x}", text
    )


def format_text(record: Record) -> str:
    """``record`` as text (no final newline); a raw record is its line, control characters escaped."""
    lines = _escape_controls(record.message.replace("\r\n", "\n")).split("\n")
    body = "\n  ".join(lines)
    if record.level is None and record.source is None:
        return body
    where = record.source or "-"
    if record.pid is not None:
        where += f" {record.pid}"
    return f"{_iso(record.time)} {record.level or '-':<5} [{where}] {body}"


def format_json(record: Record) -> str:
    """``record`` as one line of JSON (ASCII only; no final newline)."""
    fields: dict[str, Any] = {
        "time": _iso(record.time),
        "level": record.level,
        "source": record.source,
        "pid": record.pid,
        "namespace": record.namespace,
        "message": record.message,
    }
    if record.namespace == EVENTS_NAMESPACE:
        for key, value in (parse_logfmt(record.message) or {}).items():
            fields.setdefault(key, value)
    return json.dumps(fields, ensure_ascii=True)


#: The environment variable :mod:`router.process` gives the controller ``limits.max_log_events`` in.
MAX_LINES_ENV = "SWITCHBOARD_MAX_LOG_LINES"


class LineBudget:
    """At most ``per_second`` records of each kind per second of ``clock``; :meth:`admit` says whether one more
    may be written, :meth:`overflow` what was left out in the seconds that have ended. At most ``max_kinds``
    kinds are told apart (beyond, they share one budget), so the table is bounded whatever is logged."""

    OTHER = "(other)"

    def __init__(self, per_second: int, clock: Any, max_kinds: int = 1000) -> None:
        self.per_second = per_second
        self._clock = clock
        self._max_kinds = max_kinds
        self._second = -1
        self._used: dict[str, int] = {}
        self._left_out: dict[str, int] = {}  # this second
        self._ended: dict[str, int] = {}  # seconds that have ended, not yet reported

    def admit(self, kind: str) -> bool:
        """Count one record of ``kind``; False when its budget for this second is spent."""
        self._roll()
        if kind not in self._used and len(self._used) >= self._max_kinds:
            kind = self.OTHER
        used = self._used.get(kind, 0) + 1
        self._used[kind] = used
        if used <= self.per_second:
            return True
        self._left_out[kind] = self._left_out.get(kind, 0) + 1
        return False

    def overflow(self) -> dict[str, int]:
        """Records left out, by kind, in the seconds that ended since the last call (then forgotten)."""
        self._roll()
        ended, self._ended = self._ended, {}
        return ended

    def _roll(self) -> None:
        second = int(self._clock())
        if second == self._second:
            return
        self._second, self._used = second, {}
        for kind, n in self._left_out.items():
            self._ended[kind] = self._ended.get(kind, 0) + n
        self._left_out = {}


def rotated_path(path: Path, number: int) -> Path:
    """The ``number``-th rotated file of ``path`` (1 is the newest): ``node.log.1``."""
    return path.with_name(f"{path.name}.{number}")


class RotatingFile:
    """An owner-only log file that is rotated when it would grow past ``max_size`` bytes, keeping ``keep``
    rotated files (see the module docstring). It is opened at its end: earlier runs stay."""

    def __init__(self, path: Path, max_size: int, keep: int) -> None:
        if max_size < 1 or keep < 0:
            raise ValueError("max_size must be positive and keep not negative")
        self.path = path
        self.max_size = max_size
        self.keep = keep
        self._file: IO[bytes] = self._open()

    def _open(self) -> IO[bytes]:
        file = open(open_private(self.path, append=True), "ab")  # noqa: SIM115 (closed by close/rotate)
        self._size = os.fstat(file.fileno()).st_size
        return file

    def write(self, text: str) -> None:
        """Append ``text`` (whole: one record is never split over two files), rotating first if needed."""
        data = text.encode("utf-8", "backslashreplace")
        if self._size > 0 and self._size + len(data) > self.max_size:
            self.rotate()
        self._file.write(data)
        self._size += len(data)

    def flush(self) -> None:
        """Hand what was written to the operating system."""
        self._file.flush()

    def rotate(self) -> None:
        """Shift ``node.log.N-1`` to ``.N`` ... ``node.log`` to ``.1``, drop the oldest, start an empty file."""
        self._file.close()
        number = self.keep + 1
        while rotated_path(self.path, number).exists():  # beyond keep (a smaller --log-keep than before)
            rotated_path(self.path, number).unlink()
            number += 1
        for number in range(self.keep, 0, -1):
            older = self.path if number == 1 else rotated_path(self.path, number - 1)
            with contextlib.suppress(FileNotFoundError):
                os.replace(older, rotated_path(self.path, number))
        self.path.unlink(missing_ok=True)  # keep == 0: no history at all
        self._file = self._open()

    def close(self) -> None:
        """Close the file (writing after this is an error)."""
        self._file.close()
