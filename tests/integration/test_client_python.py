"""router.client on the real demo node: a follower recovers the chat messages sent while it was away, once
each and in order, and is told of a gap; a presence list follows two sessions; autobahn's Component
reconnecting after its connection is cut rejoins and recovers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import pytest_twisted
from autobahn.twisted.component import Component
from twisted.internet import defer

from components import uris
from router.client import EventInfo, PresenceList, RecoveringSubscription
from router.testkit import Inbox, session, wait

pytestmark = pytest.mark.integration


def new_room() -> tuple[str, str]:
    """A fresh room and its topic."""
    room = f"r_{uuid.uuid4().hex[:12]}"
    return room, uris.room_topic(room)


def following(where: str, inbox: Inbox, **kw: Any) -> RecoveringSubscription:
    """Follows ``where``, putting (text, seq) of each message in ``inbox``: seq is None for a live one."""

    def handle(message: dict[str, Any], *, details: EventInfo) -> None:
        inbox((message["text"], details.seq))

    return RecoveringSubscription(where, handle, **kw)


@pytest_twisted.ensureDeferred
async def test_messages_sent_while_away_are_handled_once_in_order(reactor: Any, demo_node: Any) -> None:
    """A follower whose session closed gets, at its next attach, exactly the 10 messages sent meanwhile,
    in order and from history (with their seq), then live messages again."""
    room, where = new_room()
    inbox = Inbox(reactor)
    sub = following(where, inbox)
    async with session(reactor, demo_node.url) as sender:
        async with session(reactor, demo_node.url) as follower:
            await sub.attach(follower)
            await sender.call(uris.CHAT_SEND, room, "before")
            assert await inbox.next() == ("before", None)
        for i in range(10):
            await sender.call(uris.CHAT_SEND, room, f"m{i}")
        async with session(reactor, demo_node.url) as follower:
            await sub.attach(follower)
            assert [await inbox.next() for _ in range(10)] == [(f"m{i}", i + 2) for i in range(10)]
            await sender.call(uris.CHAT_SEND, room, "after")
            assert await inbox.next() == ("after", None)
    assert inbox.received == 12


@pytest_twisted.ensureDeferred
async def test_an_unknown_last_seen_is_reported_as_a_gap(reactor: Any, demo_node: Any) -> None:
    """With a last_seen the room's history does not have, ongap(topic, epoch) is called, then the latest
    events are handled; a first attach (no last_seen) reports no gap."""
    room, where = new_room()
    inbox, gaps = Inbox(reactor), []
    async with session(reactor, demo_node.url) as s:
        for i in range(3):
            await s.call(uris.CHAT_SEND, room, f"m{i}")
        sub = following(where, inbox, ongap=lambda *gap: gaps.append(gap))
        sub.last_seen = 1
        await sub.attach(s)
        epoch = (await s.call("switchboard.history.get", where, limit=1))["epoch"]
        assert gaps == [(where, epoch)]
        assert [await inbox.next() for _ in range(3)] == [("m0", 1), ("m1", 2), ("m2", 3)]
        fresh = following(where, Inbox(reactor), ongap=lambda *gap: gaps.append(gap))
        await fresh.attach(s)
        assert len(gaps) == 1


@pytest_twisted.ensureDeferred
async def test_presence_list_follows_join_update_and_leave(reactor: Any, demo_node: Any) -> None:
    """A watcher's presence list shows two sessions joining the room, one's data changing through
    PresenceList.update, and the other leaving; onchange is called for the snapshot and each change."""
    _, where = new_room()
    changes = Inbox(reactor)
    async with session(reactor, demo_node.url) as watcher, session(reactor, demo_node.url) as bob:
        watching = PresenceList(where, onchange=lambda presence, event: changes(event and event["event"]))
        await watching.attach(watcher)
        assert (await changes.next(), watching.members, watching.sessions) == (None, {}, 0)
        async with session(reactor, demo_node.url) as ann:
            await ann.subscribe(lambda *a: None, where)
            assert await changes.next() == "join"
            await bob.subscribe(lambda *a: None, where)
            assert await changes.next() == "join"
            assert set(watching.members) == {ann._session_id, bob._session_id}
            assert (watching.sessions, watching.users) == (2, 2)
            own = PresenceList(where)
            await own.attach(bob)
            await own.update({"status": "away"})
            assert await changes.next() == "update"
            assert watching.members[bob._session_id]["data"] == {"status": "away"}
        assert await changes.next() == "leave"
        assert (list(watching.members), watching.sessions, watching.users) == ([bob._session_id], 1, 1)


@pytest_twisted.ensureDeferred
async def test_a_component_that_reconnects_recovers_what_it_missed(reactor: Any, demo_node: Any) -> None:
    """autobahn's Component whose connection is cut reconnects; its on_join attaches the same follower,
    which handles the 10 messages sent while it was away from history, once each and in order."""
    room, where = new_room()
    inbox, joins = Inbox(reactor), Inbox(reactor)
    sub = following(where, inbox)
    gate: list[defer.Deferred[None]] = [defer.succeed(None)]
    transport = {"type": "websocket", "url": demo_node.url, "max_retries": 5, "initial_retry_delay": 0.2}
    component = Component(transports=[transport], realm="demo")

    @component.on_join
    async def joined(session: Any, details: Any) -> None:
        await gate[0]  # holds the rejoin until the test has sent the messages it must recover
        await sub.attach(session)
        joins(session)

    done = component.start(reactor)
    try:
        first = await joins.next()
        async with session(reactor, demo_node.url) as sender:
            await sender.call(uris.CHAT_SEND, room, "before")
            assert await inbox.next() == ("before", None)
            gate[0] = defer.Deferred()
            first._transport.transport.abortConnection()
            for i in range(10):
                await sender.call(uris.CHAT_SEND, room, f"m{i}")
            gate[0].callback(None)
            assert await joins.next() is not first
            assert [await inbox.next() for _ in range(10)] == [(f"m{i}", i + 2) for i in range(10)]
            await sender.call(uris.CHAT_SEND, room, "after")
            assert await inbox.next() == ("after", None)
        assert inbox.received == 12
    finally:
        await component.stop()
        await wait(done, reactor)
