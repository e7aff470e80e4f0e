"""
``history.<realm>.sqlite``: the durable copy of channel history. Plain blocking SQLite, called only from the one
database thread of :class:`router.channels.history.History`.

Tables: ``topics`` (one row per topic with history: its epoch, the first sequence number of that epoch, the
last sequence number written and the *reservation*, a number no sequence number handed out before the next
write can exceed), ``events`` (one row per recorded publication, ``payload`` the CBOR of ``[args, kwargs]``)
and ``meta`` (``clean`` is ``"0"`` while a router has the file open: finding it so at start means the last
router was killed).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Row",
    "StoredTopic",
    "Write",
    "apply_limits",
    "close",
    "delete_topics",
    "open_history",
    "read_after",
    "read_latest",
    "read_one",
    "write",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    topic TEXT PRIMARY KEY,
    epoch TEXT NOT NULL,
    epoch_start INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    reserved INTEGER NOT NULL,
    last_ts REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    topic TEXT NOT NULL,
    seq INTEGER NOT NULL,
    publication INTEGER NOT NULL,
    ts REAL NOT NULL,
    expires REAL NOT NULL,
    payload BLOB NOT NULL,
    publisher_authid TEXT,
    publisher_authrole TEXT,
    PRIMARY KEY (topic, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_publication ON events (topic, publication);
CREATE INDEX IF NOT EXISTS events_expires ON events (expires);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

_SELECT = "SELECT seq, publication, ts, payload, publisher_authid, publisher_authrole FROM events "
_AFTER = _SELECT + "WHERE topic = ? AND seq > ? AND expires > ? ORDER BY seq LIMIT ?"
_LATEST = _SELECT + "WHERE topic = ? AND expires > ? ORDER BY seq DESC LIMIT ?"
_ONE = _SELECT + "WHERE topic = ? AND publication = ? AND expires > ?"


@dataclass(frozen=True)
class StoredTopic:
    """A ``topics`` row."""

    topic: str
    epoch: str
    epoch_start: int
    last_seq: int
    reserved: int
    last_ts: float


#: An event as read back: ``(seq, publication, ts, payload, publisher_authid, publisher_authrole)``.
Row = tuple[int, int, float, bytes, str | None, str | None]


@dataclass(frozen=True)
class Write:
    """One batch: ``events`` rows ``(topic, seq, publication, ts, expires, payload, authid, authrole)`` to add,
    ``topics`` to upsert, per-topic sizes to trim to, and the time to expire before."""

    events: Sequence[tuple[str, int, int, float, float, bytes, str | None, str | None]]
    topics: Sequence[StoredTopic]
    sizes: Sequence[tuple[str, int]]
    expire_before: float | None


def open_history(path: Path) -> tuple[sqlite3.Connection, bool, list[StoredTopic]]:
    """Open (creating) the file; return the connection, whether the last router closed it cleanly (a new
    file counts as clean) and every topic row. Marks the file as in use."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    found = conn.execute("SELECT value FROM meta WHERE key = 'clean'").fetchone()
    clean = found is None or found[0] == "1"
    topics = [StoredTopic(*row) for row in conn.execute("SELECT * FROM topics")]
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('clean', '0')")
    return conn, clean, topics


def write(conn: sqlite3.Connection, batch: Write) -> None:
    """Apply ``batch`` in one transaction."""
    with _transaction(conn):
        conn.executemany("INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch.events)
        conn.executemany(
            "INSERT OR REPLACE INTO topics VALUES (?, ?, ?, ?, ?, ?)",
            [(t.topic, t.epoch, t.epoch_start, t.last_seq, t.reserved, t.last_ts) for t in batch.topics],
        )
        for topic, size in batch.sizes:
            _trim(conn, topic, size)
        if batch.expire_before is not None:
            conn.execute("DELETE FROM events WHERE expires <= ?", (batch.expire_before,))


def _trim(conn: sqlite3.Connection, topic: str, size: int) -> None:
    conn.execute(
        "DELETE FROM events WHERE topic = ? AND seq < "
        "(SELECT MIN(seq) FROM (SELECT seq FROM events WHERE topic = ? ORDER BY seq DESC LIMIT ?))",
        (topic, topic, size),
    )


def _forget(conn: sqlite3.Connection, topics: Iterable[str]) -> None:
    for topic in topics:
        conn.execute("DELETE FROM events WHERE topic = ?", (topic,))
        conn.execute("DELETE FROM topics WHERE topic = ?", (topic,))


def delete_topics(conn: sqlite3.Connection, topics: Iterable[str]) -> None:
    """Forget ``topics`` and their events (one transaction)."""
    with _transaction(conn):
        _forget(conn, topics)


def apply_limits(conn: sqlite3.Connection, limits: Iterable[tuple[str, int, float]]) -> None:
    """At start: trim each ``(topic, size, ttl)`` to its channel's current size and re-date its events."""
    with _transaction(conn):
        for topic, size, ttl in limits:
            _trim(conn, topic, size)
            conn.execute("UPDATE events SET expires = ts + ? WHERE topic = ?", (ttl, topic))


def read_after(
    conn: sqlite3.Connection, topic: str, publication: int, limit: int, now: float
) -> tuple[int | None, list[Row]]:
    """The sequence number of ``publication`` in ``topic`` (None if it is not kept) and up to ``limit``
    events after it, oldest first."""
    found = conn.execute(
        "SELECT seq FROM events WHERE topic = ? AND publication = ? AND expires > ?", (topic, publication, now)
    ).fetchone()
    if found is None:
        return None, []
    rows = conn.execute(
        _AFTER,
        (topic, found[0], now, limit),
    ).fetchall()
    return found[0], rows


def read_latest(conn: sqlite3.Connection, topic: str, limit: int, now: float) -> list[Row]:
    """The last ``limit`` events of ``topic``, oldest first."""
    rows = conn.execute(
        _LATEST,
        (topic, now, limit),
    ).fetchall()
    rows.reverse()
    return rows


def read_one(conn: sqlite3.Connection, topic: str, publication: int, now: float) -> Row | None:
    """The event of ``publication`` in ``topic``, if kept."""
    row: Row | None = conn.execute(
        _ONE,
        (topic, publication, now),
    ).fetchone()
    return row


def close(conn: sqlite3.Connection) -> None:
    """Mark the file as closed cleanly and close it."""
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('clean', '1')")
    conn.close()


class _transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN")

    def __exit__(self, kind: object, *_: object) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")
