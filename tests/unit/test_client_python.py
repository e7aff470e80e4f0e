"""router.client against a fake session whose calls the test answers by hand: the order of history, buffered
and live events, paging, gaps, async handlers, and the presence list's changes crossing its snapshot."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from twisted.internet import defer

from router import uris
from router.client import EventInfo, PresenceList, RecoveringSubscription

TOPIC = "chat.room.lobby"


class FakeSession:
    """Keeps each subscription's handler; every call waits until the test answers it with :meth:`answer`."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any], defer.Deferred[Any]]] = []

    def subscribe(self, handler: Any, topic: str, options: Any = None) -> defer.Deferred[Any]:
        self.handlers[topic] = handler
        return defer.succeed(SimpleNamespace(unsubscribe=lambda: defer.succeed(None)))

    def call(self, procedure: str, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.calls.append((procedure, args, kwargs, d))
        return d

    def is_attached(self) -> bool:
        return True

    def live(self, publication: int, *args: Any, **kwargs: Any) -> None:
        """A live event of TOPIC, as autobahn hands it to a details=True handler."""
        self.handlers[TOPIC](
            *args,
            details=SimpleNamespace(publication=publication, publisher_authid=None, publisher_authrole=None),
            **kwargs,
        )

    def answer(self, result: Any) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        """Answer the oldest pending call with ``result``; what it was called with."""
        procedure, args, kwargs, d = self.calls.pop(0)
        d.callback(result)
        return procedure, args, kwargs


def page(*publications: int, more: bool = False, recovered: bool = True) -> dict[str, Any]:
    events = [
        {
            "publication": p,
            "seq": p % 100,
            "args": [f"m{p}"],
            "kwargs": {},
            "publisher_authid": None,
            "publisher_authrole": None,
        }
        for p in publications
    ]
    return {"topic": TOPIC, "epoch": "e1", "recovered": recovered, "more": more, "events": events}


class Seen:
    """A handler that records (text, publication, seq)."""

    def __init__(self) -> None:
        self.got: list[tuple[str, int, int | None]] = []

    def __call__(self, text: str, *, details: EventInfo) -> None:
        self.got.append((text, details.publication, details.seq))


def test_history_then_buffered_then_live_each_once() -> None:
    """Events arriving while history is read wait; those history also gave are skipped; later ones are live."""
    s, seen = FakeSession(), Seen()
    sub = RecoveringSubscription(TOPIC, seen)
    sub.last_seen = 100
    attached = defer.ensureDeferred(sub.attach(s))
    s.live(102, "m102")
    s.live(103, "m103")
    assert seen.got == []
    assert s.answer(page(101, 102)) == (uris.HISTORY_GET, (TOPIC,), {"after": 100, "limit": 100})
    assert attached.called
    s.live(104, "m104")
    assert seen.got == [("m101", 101, 1), ("m102", 102, 2), ("m103", 103, None), ("m104", 104, None)]
    assert sub.last_seen == 104


def test_pages_are_read_while_more_and_a_gap_is_reported_first() -> None:
    """With more, history is read again after the last event; recovered false with an after calls ongap first."""
    s, seen = FakeSession(), Seen()
    order: list[Any] = []
    sub = RecoveringSubscription(TOPIC, lambda t, details: order.append(t), ongap=lambda *a: order.append(a), limit=2)
    sub.last_seen = 1
    attached = defer.ensureDeferred(sub.attach(s))
    s.answer(page(7, 8, recovered=False, more=True))
    assert s.answer(page(9))[2] == {"after": 8, "limit": 2}
    assert attached.called
    assert order == [(TOPIC, "e1"), "m7", "m8", "m9"]
    assert seen.got == []


def test_no_gap_without_an_after() -> None:
    """A first attach (no last_seen) takes the latest events and reports no gap."""
    s, gaps = FakeSession(), []
    sub = RecoveringSubscription(TOPIC, Seen(), ongap=lambda *a: gaps.append(a))
    defer.ensureDeferred(sub.attach(s))
    assert s.answer(page(5, recovered=False))[2]["after"] is None
    assert gaps == []


def test_async_handlers_run_one_at_a_time_in_order_and_failures_do_not_stop_delivery() -> None:
    """An async handler is awaited before the next event; attach ends when the missed events are handled;
    a handler that raises is logged and the next event is handled."""
    s = FakeSession()
    started: list[str] = []
    gates: list[defer.Deferred[None]] = []

    async def handler(text: str, *, details: EventInfo) -> None:
        started.append(text)
        if text == "m2":
            raise ValueError("bad event")
        gate: defer.Deferred[None] = defer.Deferred()
        gates.append(gate)
        await gate

    sub = RecoveringSubscription(TOPIC, handler)
    attached = defer.ensureDeferred(sub.attach(s))
    s.answer(page(1, 2, 3))
    s.live(4, "m4")
    assert started == ["m1"]
    assert not attached.called
    gates[0].callback(None)
    assert started == ["m1", "m2", "m3"]
    gates[1].callback(None)
    gates[2].callback(None)
    assert started == ["m1", "m2", "m3", "m4"]
    assert attached.called


def test_presence_applies_changes_that_crossed_the_snapshot() -> None:
    """Events before the snapshot's answer are applied after it (idempotently); replaces removes the old
    session; leave removes; counts follow the router; onchange sees each change."""
    s = FakeSession()
    changes: list[str | None] = []
    presence = PresenceList(TOPIC, onchange=lambda p, e: changes.append(e and e["event"]))
    attached = defer.ensureDeferred(presence.attach(s))
    watch = s.handlers[uris.PRESENCE_PREFIX + TOPIC]
    ann = {"session": 1, "authid": "ann", "data": None}
    watch(event="join", topic=TOPIC, member=ann, sessions=1, users=1)
    bob = {"session": 2, "authid": "bob", "data": None}
    watch(event="join", topic=TOPIC, member=bob, sessions=2, users=2)
    assert s.answer({"topic": TOPIC, "sessions": 1, "users": 1, "members": [ann], "more": False})[0] == (
        uris.PRESENCE_GET
    )
    assert attached.called
    assert (set(presence.members), presence.sessions, presence.users) == ({1, 2}, 2, 2)
    watch(event="update", topic=TOPIC, member={**bob, "session": 3, "replaces": 2, "data": "away"}, sessions=2, users=2)
    watch(event="leave", topic=TOPIC, member=ann, sessions=1, users=1)
    watch(event="leave", topic=TOPIC, member={"session": 9}, sessions=1, users=1)
    assert {k: m["data"] for k, m in presence.members.items()} == {3: "away"}
    assert changes == [None, "join", "join", "update", "leave", "leave"]
    watch(event="join", topic=TOPIC, sessions=2, users=2)  # hidden members: counts only
    assert (len(presence.members), presence.sessions) == (1, 2)


def test_presence_update_calls_the_router_for_the_topic() -> None:
    """update(data) calls switchboard.presence.update(topic, data) on the attached session."""
    s = FakeSession()
    presence = PresenceList(TOPIC)
    defer.ensureDeferred(presence.attach(s))
    s.answer({"topic": TOPIC, "sessions": 0, "users": 0, "members": [], "more": False})
    updated = defer.ensureDeferred(presence.update({"typing": True}))
    assert s.answer({"session": 1}) == (uris.PRESENCE_UPDATE, (TOPIC, {"typing": True}), {})
    assert updated.result == {"session": 1}
