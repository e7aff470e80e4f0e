"""Channel history (router.channels.history) on a real SQLite file, with an injected clock and the database
"thread" run inline: sequence numbers, limits, recovery answers, clean and unclean stops."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer, task

from router.channels import history as history_module
from router.channels.history import RESERVE, History
from router.channels.index import ChannelIndex
from router.config import Channel

ROOMS = Channel(topic="chat.room", match="prefix", history_size=5, history_ttl=100.0, max_topics=3)
FEED = Channel(topic="feed", history_size=10, presence=True)


def result(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The result of a coroutine that never waits (the runner is inline)."""
    d = defer.Deferred.fromCoroutine(coroutine)
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "the coroutine waited"
    if isinstance(out[0], Exception) or hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


class Node:
    """A History over ``path`` as a router would hold it."""

    def __init__(self, path: Path, clock: task.Clock, epochs: Any = None) -> None:
        self.clock = clock
        counter = itertools.count(1)
        self.history = History(
            ChannelIndex([ROOMS, FEED]),
            clock=clock,
            run=lambda f, *a: defer.maybeDeferred(f, *a),
            flush_interval=0.05,
            new_epoch=epochs or (lambda: f"e{next(counter)}"),
        )
        result(self.history.open(path))

    def publish(self, topic: str, n: int, first_publication: int = 1000) -> list[int]:
        """Record ``n`` publications; their publication ids."""
        ids = list(range(first_publication, first_publication + n))
        for i in ids:
            self.history.record(topic, i, [i], {"k": i}, "alice", "user")
        return ids


@pytest.fixture
def clock() -> task.Clock:
    c = task.Clock()
    c.advance(1_000_000)
    return c


def test_sequence_numbers_start_at_one_per_topic_and_events_read_back(tmp_path: Path, clock: task.Clock) -> None:
    """Each topic counts 1, 2, 3...; get returns the events oldest first with every documented field."""
    node = Node(tmp_path / "h.db", clock)
    assert node.history.record("chat.room.a", 11, ["x"], None, "alice", "user") == 1
    assert node.history.record("chat.room.a", 12, [], {"y": 1}, None, None) == 2
    assert node.history.record("chat.room.b", 13, [], None, None, None) == 1
    assert node.history.record("chat.roomy", 14, [], None, None, None) is None  # whole components only
    got = result(node.history.get("chat.room.a", None, 100))
    assert got["topic"] == "chat.room.a"
    assert got["epoch"] == "e1"
    assert got["recovered"] is False
    assert got["events"] == [
        {"publication": 11, "seq": 1, "ts": clock.seconds(), "args": ["x"], "kwargs": {},
         "publisher_authid": "alice", "publisher_authrole": "user"},
        {"publication": 12, "seq": 2, "ts": clock.seconds(), "args": [], "kwargs": {"y": 1},
         "publisher_authid": None, "publisher_authrole": None},
    ]  # fmt: skip


def test_after_a_kept_publication_recovers_exactly_what_followed(tmp_path: Path, clock: task.Clock) -> None:
    """get(after=p) gives the events after p (written or not yet), recovered; limit pages with `more`."""
    node = Node(tmp_path / "h.db", clock)
    ids = node.publish("feed", 4)
    clock.advance(1)  # the first four are written
    ids += node.publish("feed", 3, first_publication=2000)  # these three are not yet
    got = result(node.history.get("feed", ids[1], 3))
    assert (got["recovered"], got["more"]) == (True, True)
    assert [e["publication"] for e in got["events"]] == ids[2:5]
    rest = result(node.history.get("feed", ids[4], 3))
    assert (rest["recovered"], rest["more"]) == (True, False)
    assert [e["seq"] for e in rest["events"]] == [6, 7]
    assert result(node.history.get("feed", ids[-1], 3))["events"] == []


def test_an_unknown_or_trimmed_after_is_not_recovered_and_gives_the_latest(tmp_path: Path, clock: task.Clock) -> None:
    """An `after` not in history (never seen, or trimmed by size) is recovered: false with the latest events."""
    node = Node(tmp_path / "h.db", clock)
    ids = node.publish("chat.room.a", 8)
    clock.advance(1)
    for after in (ids[0], 999_999):
        got = result(node.history.get("chat.room.a", after, 100))
        assert got["recovered"] is False
        assert [e["seq"] for e in got["events"]] == [4, 5, 6, 7, 8]  # size 5
    assert result(node.history.lookup("chat.room.a", ids[0])) is None
    assert result(node.history.lookup("chat.room.a", ids[-1]))["seq"] == 8


def test_events_expire_after_the_ttl(tmp_path: Path, clock: task.Clock) -> None:
    """An event older than the channel's ttl is neither returned nor recoverable; sequence numbers go on."""
    node = Node(tmp_path / "h.db", clock)
    old = node.publish("chat.room.a", 2)
    clock.advance(101)
    node.publish("chat.room.a", 1, first_publication=5000)
    clock.advance(1)
    got = result(node.history.get("chat.room.a", old[-1], 100))
    assert got["recovered"] is False
    assert [e["seq"] for e in got["events"]] == [3]


def test_a_topic_beyond_max_topics_forgets_the_least_recently_published(tmp_path: Path, clock: task.Clock) -> None:
    """With max_topics 3, a fourth topic forgets the oldest one, which restarts in a new epoch."""
    node = Node(tmp_path / "h.db", clock)
    for room in ("a", "b", "c"):
        node.publish(f"chat.room.{room}", 2)
        clock.advance(1)
    node.publish("chat.room.a", 1, first_publication=3000)  # a is now the most recent
    node.publish("chat.room.d", 1, first_publication=4000)  # b goes
    clock.advance(1)
    assert node.history.stats()["topics"] == 3
    assert result(node.history.get("chat.room.b", None, 10)) == {
        "topic": "chat.room.b", "epoch": None, "recovered": False, "more": False, "events": []
    }  # fmt: skip
    assert [e["seq"] for e in result(node.history.get("chat.room.a", None, 10))["events"]] == [1, 2, 3]
    assert node.history.record("chat.room.b", 9000, [], None, None, None) == 1


def test_a_clean_stop_keeps_everything_and_the_numbering(tmp_path: Path, clock: task.Clock) -> None:
    """close() writes what is pending; the next start has the same epoch, events and next seq."""
    node = Node(tmp_path / "h.db", clock)
    ids = node.publish("feed", 3)  # never flushed by the clock: close writes them
    result(node.history.close())
    again = Node(tmp_path / "h.db", clock)
    got = result(again.history.get("feed", ids[0], 10))
    assert (got["epoch"], got["recovered"]) == ("e1", True)
    assert [e["seq"] for e in got["events"]] == [2, 3]
    assert again.history.record("feed", 77, [], None, None, None) == 4


def test_after_a_kill_no_number_is_reused_and_recovery_says_so(tmp_path: Path, clock: task.Clock) -> None:
    """Without close(), the unwritten events are lost; the next start gives the topic a new epoch, numbers
    above anything handed out, and recovered: false for an `after` from before."""
    node = Node(tmp_path / "h.db", clock)
    written = node.publish("feed", 2)
    clock.advance(1)
    node.publish("feed", 3, first_publication=2000)  # handed out 3..5, never written: "kill -9" now
    node.history._conn.close()
    again = Node(tmp_path / "h.db", clock, epochs=lambda: "after-crash")
    seq = again.history.record("feed", 3000, [], None, None, None)
    assert seq == 2 + RESERVE + 1  # above 5, the last number handed out
    got = result(again.history.get("feed", written[0], 10))
    assert (got["epoch"], got["recovered"]) == ("after-crash", False)
    assert [e["seq"] for e in got["events"]] == [1, 2, seq]


def test_a_removed_channel_and_a_smaller_size_apply_at_the_next_start(tmp_path: Path, clock: task.Clock) -> None:
    """Topics of channels no longer configured are deleted at start; a smaller size trims at start."""
    node = Node(tmp_path / "h.db", clock)
    node.publish("feed", 10)
    node.publish("chat.room.a", 2, first_publication=5000)
    result(node.history.close())
    smaller = Channel(topic="feed", history_size=4)
    history = History(ChannelIndex([smaller]), clock=clock, run=lambda f, *a: defer.maybeDeferred(f, *a),
                      flush_interval=0.05)  # fmt: skip
    result(history.open(tmp_path / "h.db"))
    assert [e["seq"] for e in result(history.get("feed", None, 100))["events"]] == [7, 8, 9, 10]
    result(history.close())
    rows = sqlite3.connect(tmp_path / "h.db").execute("SELECT DISTINCT topic FROM events").fetchall()
    assert rows == [("feed",)]


def test_writes_are_batched_by_the_flush_interval(tmp_path: Path, clock: task.Clock) -> None:
    """Nothing reaches the file before the interval; everything recorded in it goes in one write. (A topic's
    first event is written at once: no number of it is reserved in the file yet.)"""
    node = Node(tmp_path / "h.db", clock)
    node.publish("feed", 1)
    clock.advance(0)
    assert node.history.stats()["pending"] == 0
    node.publish("feed", 5, first_publication=2000)
    assert node.history.stats()["pending"] == 5
    clock.advance(0.04)
    assert node.history.stats()["pending"] == 5
    clock.advance(0.02)
    assert node.history.stats()["pending"] == 0
    count = sqlite3.connect(tmp_path / "h.db").execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert count == 6


def test_beyond_its_reservation_a_topic_is_written_at_once(tmp_path: Path, clock: task.Clock) -> None:
    """More events in one interval than the file reserves: the write starts at once, not after the interval."""
    node = Node(tmp_path / "h.db", clock)
    node.publish("feed", 1)
    clock.advance(0)
    node.publish("feed", RESERVE + 1, first_publication=10_000)
    clock.advance(0)
    assert node.history.stats()["pending"] == 0


def test_when_the_disk_does_not_keep_up_events_are_dropped_and_the_epoch_changes(
    tmp_path: Path, clock: task.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With MAX_UNWRITTEN events waiting, one more is not kept and its topic starts a new epoch after it, so
    a recovery from before the hole is not `recovered`; the change is written with the next batch."""
    monkeypatch.setattr(history_module, "MAX_UNWRITTEN", 3)
    node = Node(tmp_path / "h.db", clock, epochs=iter(["first", "after-hole"]).__next__)
    ids = node.publish("feed", 3)
    assert node.history.record("feed", 99, [], None, None, None) is None
    clock.advance(1)
    got = result(node.history.get("feed", ids[0], 10))
    assert (got["epoch"], got["recovered"]) == ("after-hole", False)
    assert node.history.record("feed", 100, [], None, None, None) == 5
    result(node.history.close())
    again = Node(tmp_path / "h.db", clock)
    assert result(again.history.get("feed", None, 10))["epoch"] == "after-hole"


def test_an_answer_holds_at_most_max_answer_bytes_and_pages_the_rest(
    tmp_path: Path, clock: task.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large events: a recovered answer stops at the byte budget with `more`; the latest events keep the
    newest that fit; one event is always given."""
    monkeypatch.setattr(history_module, "MAX_ANSWER_BYTES", 2500)
    node = Node(tmp_path / "h.db", clock)
    ids = [1000 + i for i in range(6)]
    for i in ids:
        node.history.record("feed", i, ["x" * 1000], None, None, None)
    clock.advance(1)
    page = result(node.history.get("feed", ids[0], 100))
    assert ([e["seq"] for e in page["events"]], page["more"]) == ([2, 3], True)
    assert [e["seq"] for e in result(node.history.get("feed", None, 100))["events"]] == [5, 6]
    node.history.record("feed", 5000, ["y" * 5000], None, None, None)
    assert [e["seq"] for e in result(node.history.get("feed", ids[-1], 100))["events"]] == [7]
