"""
Channel history: every publication to a channel topic, numbered per topic, kept in SQLite across restarts.

:meth:`History.record` runs on the reactor for each publication (from the broker, through
:mod:`router.seam.channels`): it hands out the topic's next sequence number and keeps the event in memory.
Every ``flush_interval`` seconds the events recorded since are written in one transaction by the one
database thread (``run``), with the topics' state; reads (:meth:`History.get`, :meth:`History.lookup`) run
on the same thread and add the events not written yet, so a reader sees every recorded event at once.

**Sequence numbers are never handed out twice.** Each write also stores, per topic, a *reservation*: the
last sequence number plus a headroom (:data:`RESERVE`, or twice the topic's events in that write if more).
If the router is killed, the events recorded since the last write are lost; at the next start the file is
found not closed cleanly, and every topic gets a new ``epoch`` and continues above its reservation. So a
client recovering with a publication from before the crash gets ``recovered: false``, and no sequence
number is reused. A topic going beyond its reservation, or recording its first event, is written at once
(not at the end of the interval): only a kill during that one write can see its numbers given again, in the
new epoch. A clean stop (:meth:`History.close`) writes everything and marks the file clean: nothing is
lost, nothing changes.

Memory: per topic, a small state (at most ``max_topics`` topics per channel: a new topic beyond it makes
the least recently published one of its channel forget its history) and the events of at most two write
intervals (never more than :data:`MAX_UNWRITTEN`: beyond, an event is not kept and its topic starts a new
epoch). Events older than the channel's ``ttl`` are never returned and are deleted every
:data:`EXPIRE_EVERY` seconds; each topic keeps its last ``size`` events.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from twisted.internet import defer
from twisted.logger import Logger

from router.channels import db
from router.channels.index import ChannelIndex
from router.config import Channel

__all__ = ["EXPIRE_EVERY", "MAX_ANSWER_BYTES", "MAX_UNWRITTEN", "RESERVE", "History", "Runner"]

#: Sequence numbers reserved ahead of the last one written, per topic (at least).
RESERVE = 1000
#: Seconds between deletions of expired events.
EXPIRE_EVERY = 60.0
#: Events recorded and not yet written, at most: beyond it (a disk that does not keep up) events are not
#: kept, and their topic starts a new epoch.
MAX_UNWRITTEN = 100_000
#: Bytes of event payload (CBOR) one ``get`` answer holds at most (it always holds one event): the rest
#: is for the next page. Well under the smallest ``max_message_size`` a listener is likely to have.
MAX_ANSWER_BYTES = 256 * 1024

#: Runs a blocking function with its arguments on the database thread; the Deferred fires with its result.
Runner = Callable[..., "defer.Deferred[Any]"]

_log = Logger(namespace="switchboard.channels")


def _new_epoch() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True, slots=True)
class _Event:
    seq: int
    publication: int
    ts: float
    payload: bytes
    authid: str | None
    authrole: str | None


@dataclass(slots=True)
class _Topic:
    name: str
    channel: Channel
    epoch: str
    epoch_start: int
    last_seq: int
    reserved: int
    last_ts: float
    #: Recorded and not written yet (waiting or being written), oldest first.
    unwritten: deque[_Event] = field(default_factory=deque)
    #: Forgotten to make room (``max_topics``): its events still waiting are never written.
    forgotten: bool = False

    def stored(self, reserved: int) -> db.StoredTopic:
        return db.StoredTopic(self.name, self.epoch, self.epoch_start, self.last_seq, reserved, self.last_ts)


class History:
    """The history of every topic of ``channels`` with ``history_size`` > 0, in the file given to
    :meth:`open`."""

    def __init__(
        self,
        channels: ChannelIndex,
        *,
        clock: Any,
        run: Runner,
        flush_interval: float,
        now: Callable[[], float] | None = None,
        new_epoch: Callable[[], str] = _new_epoch,
    ) -> None:
        self._channels = channels
        self._clock = clock
        self._run = run
        self._flush_interval = flush_interval
        self._now = now or clock.seconds
        self._new_epoch = new_epoch
        self._conn: Any = None
        #: Per channel, its topics, least recently published first.
        self._topics: dict[Channel, OrderedDict[str, _Topic]] = {c: OrderedDict() for c in channels.channels}
        self._pending: list[tuple[_Topic, _Event]] = []
        self._timer: Any = None
        self._writing: defer.Deferred[None] | None = None
        self._last_expiry = 0.0
        #: Set once the final write is done: nothing is recorded after it.
        self._closed = False
        #: Topics whose state changed without an event to write (a gap opened): written with the next batch.
        self._changed: dict[str, _Topic] = {}
        # Topics forgotten (max_topics) and not yet deleted from the file: one deletion job at a time,
        # queued when the first of them is forgotten (so before any later read or write).
        self._forget_lock = threading.Lock()
        self._forgetting: list[str] = []
        self._forget_queued = False

    # -- start and stop ------------------------------------------------------------------------------------

    async def open(self, path: Path) -> None:
        """Open ``path`` and load the topics; after an unclean stop give every topic a new epoch above its
        reservation (written before this returns); apply the channels' current limits."""
        conn, clean, stored = await self._run(db.open_history, path)
        self._conn = conn
        keep, forget, limits = [], [], []
        for row in sorted(stored, key=lambda r: r.last_ts):
            channel = self._channels.find(row.topic)
            if channel is None or not channel.history_size:
                forget.append(row.topic)
                continue
            topic = _Topic(row.topic, channel, row.epoch, row.epoch_start, row.last_seq, row.reserved, row.last_ts)
            if not clean:
                topic.epoch, topic.epoch_start, topic.last_seq = self._new_epoch(), row.reserved + 1, row.reserved
            self._topics[channel][row.topic] = topic
            limits.append((row.topic, channel.history_size, channel.history_ttl))
            keep.append(topic)
        for channel, topics in self._topics.items():
            while len(topics) > channel.max_topics:
                forget.append(topics.popitem(last=False)[0])
        await self._run(db.delete_topics, conn, forget)
        await self._run(db.apply_limits, conn, limits)
        batch = db.Write(
            events=(),
            topics=[t.stored(self._reservation(t, 0)) for t in keep],
            sizes=(),
            expire_before=self._now(),
        )
        await self._run(db.write, conn, batch)
        for topic in keep:
            topic.reserved = self._reservation(topic, 0)
        if not clean:
            _log.warn(
                "{path} was not closed cleanly (the router was killed): events of the last write interval may be"
                " lost; every topic ({count}) continues in a new epoch",
                path=str(path),
                count=len(keep),
            )

    async def close(self) -> None:
        """Write every recorded event, mark the file clean and close it. Idempotent."""
        if self._closed or self._conn is None:
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        # Events recorded meanwhile are written too: the loop ends when nothing waits.
        while self._writing is not None or self._pending or self._changed:
            if self._writing is not None:
                await self._writing
            else:
                await self._write()
        self._closed = True
        await self._run(db.close, self._conn)

    # -- recording -----------------------------------------------------------------------------------------

    def record(
        self, topic: str, publication: int, args: Any, kwargs: Any, authid: str | None, authrole: str | None
    ) -> int | None:
        """Record a publication to ``topic``; its sequence number, or None if ``topic`` keeps no history."""
        channel = self._channels.find(topic)
        if channel is None or not channel.history_size or self._closed:
            return None
        now = self._now()
        topics = self._topics[channel]
        state = topics.get(topic)
        if state is None:
            state = self._new_topic(channel, topic, now)
        else:
            topics.move_to_end(topic)
        state.last_seq += 1
        state.last_ts = now
        if len(self._pending) >= MAX_UNWRITTEN:
            # The disk does not keep up: rather than hold more, this event is not kept and the topic starts a
            # new epoch after it, so no recovery can step over the hole.
            self._gap(state)
            return None
        event = _Event(state.last_seq, publication, now, cbor2.dumps([args, kwargs]), authid, authrole)
        state.unwritten.append(event)
        self._pending.append((state, event))
        if self._writing is None:
            if state.last_seq > state.reserved:  # beyond what the file reserves: write at once
                if self._timer is not None and self._timer.active():
                    self._timer.cancel()
                self._timer = self._clock.callLater(0, self._flush)
            elif self._timer is None:
                self._timer = self._clock.callLater(self._flush_interval, self._flush)
        return event.seq

    def _gap(self, state: _Topic) -> None:
        if state.epoch_start <= state.last_seq:
            _log.warn(
                "channel history: {count} events wait to be written; not recording {topic} until they are",
                count=len(self._pending),
                topic=state.name,
            )
        state.epoch, state.epoch_start = self._new_epoch(), state.last_seq + 1
        self._changed[state.name] = state

    def _new_topic(self, channel: Channel, name: str, now: float) -> _Topic:
        topics = self._topics[channel]
        if len(topics) >= channel.max_topics:
            old, forgotten = topics.popitem(last=False)
            forgotten.forgotten = True  # O(1): its waiting events are dropped when the batch is written
            self._changed.pop(old, None)
            with self._forget_lock:
                self._forgetting.append(old)
                queued, self._forget_queued = self._forget_queued, True
            if not queued:
                self._run(self._delete_forgotten).addErrback(self._failed, "forgetting topics")
        state = _Topic(name, channel, self._new_epoch(), 1, 0, 0, now)
        topics[name] = state
        return state

    def _delete_forgotten(self) -> None:
        """On the database thread: delete the topics forgotten so far."""
        with self._forget_lock:
            names, self._forgetting, self._forget_queued = self._forgetting, [], False
        db.delete_topics(self._conn, names)

    @staticmethod
    def _reservation(topic: _Topic, written: int) -> int:
        return topic.last_seq + max(RESERVE, 2 * written)

    def _flush(self) -> None:
        self._timer = None
        self._write().addErrback(self._failed, "writing channel history")

    def _write(self) -> defer.Deferred[None]:
        """Write the pending events; the Deferred fires when they are durable (one write at a time)."""
        batch = [(topic, event) for topic, event in self._pending if not topic.forgotten]
        self._pending = []
        counts: dict[str, int] = dict.fromkeys(self._changed, 0)
        topics: dict[str, _Topic] = dict(self._changed)
        self._changed = {}
        for topic, _ in batch:
            counts[topic.name] = counts.get(topic.name, 0) + 1
            topics[topic.name] = topic
        reserved = {name: self._reservation(t, counts[name]) for name, t in topics.items()}
        now = self._now()
        expire = now if now - self._last_expiry >= EXPIRE_EVERY else None
        if expire is not None:
            self._last_expiry = now
        write = db.Write(
            events=[
                (t.name, e.seq, e.publication, e.ts, e.ts + t.channel.history_ttl, e.payload, e.authid, e.authrole)
                for t, e in batch
            ],
            topics=[t.stored(reserved[name]) for name, t in topics.items()],
            sizes=[(name, t.channel.history_size) for name, t in topics.items()],
            expire_before=expire,
        )

        def written(_: object) -> None:
            for name, topic in topics.items():
                for _ in range(counts[name]):
                    topic.unwritten.popleft()
                topic.reserved = reserved[name]

        def done(result: object) -> object:
            self._writing = None
            if self._pending and self._timer is None and not self._closed:
                self._timer = self._clock.callLater(self._flush_interval, self._flush)
            return result

        writing: defer.Deferred[None] = self._run(db.write, self._conn, write)
        self._writing = writing  # before the callbacks: with an inline runner they run at once
        writing.addCallback(written)
        writing.addBoth(done)
        return writing

    def _failed(self, failure: Any, what: str) -> None:
        _log.failure("channel history: {what} failed", failure=failure, what=what)

    # -- reading -------------------------------------------------------------------------------------------

    def keeps(self, topic: str) -> bool:
        """Whether ``topic`` belongs to a channel with history."""
        channel = self._channels.find(topic)
        return channel is not None and channel.history_size > 0

    async def get(self, topic: str, after: int | None, limit: int) -> dict[str, Any]:
        """``switchboard.history.get``: see docs/channels.md."""
        state = self._state(topic)
        now = self._now()
        memory = list(state.unwritten) if state else []
        recovered, more = False, False
        events: list[_Event] = []
        after_seq: int | None = None
        if after is not None:
            after_seq = next((e.seq for e in memory if e.publication == after), None)
            if after_seq is None and state is not None:
                after_seq, rows = await self._run(db.read_after, self._conn, topic, after, limit + 1, now)
                events = [_Event(*row) for row in rows]
            # An event of an earlier epoch: what followed it may be lost.
            recovered = after_seq is not None and state is not None and after_seq >= state.epoch_start
        if recovered and after_seq is not None:
            events = _merge(events, [e for e in memory if e.seq > after_seq])
            fitting = _fit(events[:limit])
            more = len(events) > fitting
            events = events[:fitting]
        else:
            rows = await self._run(db.read_latest, self._conn, topic, limit, now) if state else []
            kept = min(limit, state.channel.history_size) if state else limit
            events = _merge([_Event(*row) for row in rows], memory)[-kept:]
            events = events[len(events) - _fit(events[::-1]) :]
        state = self._state(topic)  # the epoch once the events were read
        return {
            "topic": topic,
            "epoch": state.epoch if state else None,
            "recovered": recovered,
            "more": more,
            "events": [_event_dict(e) for e in events],
        }

    async def lookup(self, topic: str, publication: int) -> dict[str, Any] | None:
        """``switchboard.history.lookup``: the event of ``publication`` in ``topic``, or None."""
        state = self._state(topic)
        if state is None:
            return None
        found = next((e for e in state.unwritten if e.publication == publication), None)
        if found is None:
            row = await self._run(db.read_one, self._conn, topic, publication, self._now())
            found = _Event(*row) if row else None
        return _event_dict(found) if found else None

    def _state(self, topic: str) -> _Topic | None:
        channel = self._channels.find(topic)
        return self._topics[channel].get(topic) if channel is not None and channel.history_size else None

    def stats(self) -> dict[str, int]:
        """Topics kept and events waiting to be written (for tests and metrics)."""
        return {"topics": sum(len(t) for t in self._topics.values()), "pending": len(self._pending)}


def _fit(events: list[_Event]) -> int:
    """How many of ``events``, from the first, fit in :data:`MAX_ANSWER_BYTES` (at least one)."""
    total = 0
    for count, event in enumerate(events):
        total += len(event.payload)
        if total > MAX_ANSWER_BYTES and count:
            return count
    return len(events)


def _merge(stored: list[_Event], memory: list[_Event]) -> list[_Event]:
    """``stored`` then the ``memory`` events not among them, by sequence number."""
    seen = {e.seq for e in stored}
    return sorted(stored + [e for e in memory if e.seq not in seen], key=lambda e: e.seq)


def _event_dict(event: _Event) -> dict[str, Any]:
    args, kwargs = cbor2.loads(event.payload)
    return {
        "publication": event.publication,
        "seq": event.seq,
        "ts": event.ts,
        "args": args or [],
        "kwargs": kwargs or {},
        "publisher_authid": event.authid,
        "publisher_authrole": event.authrole,
    }
