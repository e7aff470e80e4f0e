"""Channels on a real node, with autobahn-python clients: history recorded and recovered, presence, who may
use the channel URIs, bad input, restarts (SIGTERM and kill -9)."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions, SubscribeOptions
from twisted.internet import defer, task

from router import uris
from router.launch import RunningNode
from router.testkit import Inbox, NoEvent, assert_denied, assert_invalid, start_node
from router.testkit.sessions import SessionFactory
from tests.conftest import demo_document, running, write_config
from tests.integration.processes import children, router_worker

pytestmark = pytest.mark.integration

ACK = PublishOptions(acknowledge=True)


def channel_document() -> dict[str, Any]:
    """The demo config (chat.room: history and presence with a 5 s grace) plus a small exact channel
    ``feed`` whose members are hidden, a role ``writer`` that may publish to both (disclosed) and
    subscribe to and register anything, and a role ``outsider`` that may subscribe only to ``other``."""
    doc = demo_document()
    realm = doc["realms"][0]
    realm["channels"].append({"topic": "feed", "history": {"size": 5}, "presence": {"members": False}})
    realm["roles"]["writer"] = {
        "allow": [
            {"uri": "chat.room", "match": "prefix", "actions": ["publish"], "disclose": True},
            {"uri": "feed", "actions": ["publish"]},
            {"uri": "", "match": "prefix", "actions": ["subscribe", "register"]},
        ]
    }
    realm["roles"]["outsider"] = {"allow": [{"uri": "other", "match": "prefix", "actions": ["subscribe", "publish"]}]}
    return doc


@pytest.fixture(scope="module")
def node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    tmp = tmp_path_factory.mktemp("channels")
    with running(start_node(reactor, write_config(tmp, channel_document()), tmp / "data", test_logins=True)) as n:
        yield n


def topic() -> str:
    return f"chat.room.t{uuid.uuid4().hex[:10]}"


async def history(s: Any, where: str, **kw: Any) -> dict[str, Any]:
    got: dict[str, Any] = await s.call(uris.HISTORY_GET, where, **kw)
    return got


@pytest_twisted.ensureDeferred
async def test_every_publication_is_recorded_once_with_the_id_subscribers_receive(
    reactor: Any, node: RunningNode
) -> None:
    """A publication with no subscriber is recorded; with an exact and a pattern subscriber it is recorded
    once, under the publication id both receive, with the disclosed publisher."""
    sessions = SessionFactory(reactor, node)
    where = topic()
    async with sessions(role="writer", authid="wendy") as w, sessions(role="anonymous") as a:
        first = await w.publish(where, "alone", options=ACK)
        exact, pattern = Inbox(reactor), Inbox(reactor)
        await a.subscribe(exact, where, options=SubscribeOptions(details=True))
        await w.subscribe(pattern, "chat.room.", options=SubscribeOptions(match="prefix", details=True))
        second = await w.publish(where, "seen", options=PublishOptions(acknowledge=True, exclude_me=False))
        (args, kwargs) = await exact.next()
        assert args == ("seen",)
        assert kwargs["details"].publication == second.id
        assert (await pattern.next())[1]["details"].publication == second.id
        got = await history(a, where)
    assert [(e["seq"], e["publication"], e["args"]) for e in got["events"]] == [
        (1, first.id, ["alone"]),
        (2, second.id, ["seen"]),
    ]
    assert {(e["publisher_authid"], e["publisher_authrole"]) for e in got["events"]} == {("wendy", "writer")}
    assert isinstance(got["epoch"], str)


@pytest_twisted.ensureDeferred
async def test_refused_and_addressed_publications_are_not_recorded(reactor: Any, node: RunningNode) -> None:
    """A denied publish and one addressed to some sessions only (eligible/exclude) leave no trace; an
    undisclosed publisher is recorded without identity."""
    sessions = SessionFactory(reactor, node)
    where = topic()
    async with sessions(role="writer") as w, sessions(role="outsider") as o, sessions(role="writer") as reader:
        await assert_denied(o.publish(where, "intruder", options=ACK))
        await w.publish(where, "private", options=PublishOptions(acknowledge=True, eligible=[reader._session_id]))
        await w.publish(where, "not you", options=PublishOptions(acknowledge=True, exclude=[reader._session_id]))
        kept = await w.publish("feed", "undisclosed", options=ACK)
        assert (await history(reader, where))["events"] == []
        feed = await history(reader, "feed")
    last = feed["events"][-1]
    assert (last["publication"], last["publisher_authid"], last["publisher_authrole"]) == (kept.id, None, None)


@pytest_twisted.ensureDeferred
async def test_concurrent_publishers_get_distinct_increasing_numbers(reactor: Any, node: RunningNode) -> None:
    """Four sessions publishing 50 events each at once: sequence numbers 1..200, each once, and each
    publisher's events in the order it sent them."""
    sessions = SessionFactory(reactor, node)
    where = topic()
    async with (
        sessions(role="writer", authid="p0") as p0,
        sessions(role="writer", authid="p1") as p1,
        sessions(role="writer", authid="p2") as p2,
        sessions(role="writer", authid="p3") as p3,
    ):
        publishers = [p0, p1, p2, p3]
        await defer.gatherResults(
            [
                defer.ensureDeferred(p.publish(where, i, n, options=ACK))
                for n in range(50)
                for i, p in enumerate(publishers)
            ]
        )
        events = (await history(p0, where, limit=1000))["events"]
        assert len(events) == 200
    assert [e["seq"] for e in events] == list(range(1, 201))
    for i in range(4):
        assert [e["args"][1] for e in events if e["args"][0] == i] == list(range(50))


@pytest_twisted.ensureDeferred
async def test_a_client_back_after_a_dropped_connection_recovers_the_gap(reactor: Any, node: RunningNode) -> None:
    """A subscriber loses its connection for 5 s while 20 events are published; back, history.get(after=the
    last publication it saw) gives exactly those 20, once each, in order, recovered, paged by `more`."""
    sessions = SessionFactory(reactor, node)
    where = topic()
    async with sessions(role="writer") as w:
        async with sessions(role="anonymous") as a:
            inbox = Inbox(reactor)
            await a.subscribe(inbox, where, options=SubscribeOptions(details=True))
            await w.publish(where, -1, options=ACK)
            last_seen = (await inbox.next())[1]["details"].publication
            a._transport.transport.abortConnection()
        sent = []
        for n in range(20):  # while it is away for 5 s
            sent.append((await w.publish(where, n, options=ACK)).id)
            await task.deferLater(reactor, 0.25, lambda: None)
        async with sessions(role="anonymous") as back:
            got, after, more = [], last_seen, True
            for _ in range(5):
                page = await history(back, where, after=after, limit=8)
                assert page["recovered"] is True
                got += page["events"]
                after, more = got[-1]["publication"], page["more"]
                if not more:
                    break
    assert not more
    assert [e["publication"] for e in got] == sent
    assert [e["args"] for e in got] == [[n] for n in range(20)]


@pytest_twisted.ensureDeferred
async def test_presence_join_update_leave_and_hidden_members(reactor: Any, node: RunningNode) -> None:
    """An exact subscriber is a member (a pattern subscriber is not): join, update with data, leave on
    unsubscribe; on `feed` only counts are given."""
    sessions = SessionFactory(reactor, node)
    where = topic()
    async with sessions(role="anonymous", authid="amy") as amy, sessions(role="writer") as watcher:
        changes = Inbox(reactor)
        await watcher.subscribe(changes, uris.PRESENCE_PREFIX + where)
        await watcher.subscribe(lambda *a: None, "chat.room.", options=SubscribeOptions(match="prefix"))
        sub = await amy.subscribe(lambda *a: None, where)
        joined = (await changes.next())[1]
        assert joined["event"] == "join"
        assert joined["member"]["authid"] == "amy"
        assert (joined["sessions"], joined["users"]) == (1, 1)
        listed = await amy.call(uris.PRESENCE_GET, where)
        assert [m["session"] for m in listed["members"]] == [amy._session_id]
        await amy.call(uris.PRESENCE_UPDATE, where, {"typing": True})
        updated = (await changes.next())[1]
        assert (updated["event"], updated["member"]["data"]) == ("update", {"typing": True})
        await sub.unsubscribe()
        left = (await changes.next())[1]
        assert (left["event"], left["sessions"]) == ("leave", 0)

        feed_changes = Inbox(reactor)
        await watcher.subscribe(feed_changes, uris.PRESENCE_PREFIX + "feed")
        await watcher.subscribe(lambda *a: None, "feed")
        assert (await feed_changes.next())[1] == {"event": "join", "topic": "feed", "sessions": 1, "users": 1}
        counts = await watcher.call(uris.PRESENCE_GET, "feed")
        assert (counts["sessions"], counts["members"]) == (1, [])


@pytest_twisted.ensureDeferred
async def test_a_dropped_member_is_kept_for_the_grace_period_and_taken_over(reactor: Any, node: RunningNode) -> None:
    """chat.room has a 5 s grace: a member whose connection drops stays listed; the same user back within
    it takes the member over (one update naming the old session, no leave, no join); dropped again and
    not back, it leaves after the grace."""
    sessions = SessionFactory(reactor, node)
    where = topic()
    async with sessions(role="writer") as watcher:
        changes = Inbox(reactor)
        await watcher.subscribe(changes, uris.PRESENCE_PREFIX + where)
        async with sessions(role="anonymous", authid="bo") as first:
            await first.subscribe(lambda *a: None, where)
            await first.call(uris.PRESENCE_UPDATE, where, {"status": "away"})
            old = first._session_id
            first._transport.transport.abortConnection()
        assert [c[1]["event"] for c in [await changes.next(), await changes.next()]] == ["join", "update"]
        with pytest.raises(NoEvent):
            await changes.next(timeout=1)
        assert (await watcher.call(uris.PRESENCE_GET, where))["sessions"] == 1
        async with sessions(role="anonymous", authid="bo") as again:
            await again.subscribe(lambda *a: None, where)
            took = (await changes.next())[1]
            assert took["event"] == "update"
            assert (took["member"]["session"], took["member"]["replaces"]) == (again._session_id, old)
            assert took["member"]["data"] == {"status": "away"}
            again._transport.transport.abortConnection()
        gone = (await changes.next(timeout=8))[1]
        assert (gone["event"], gone["sessions"]) == ("leave", 0)


@pytest_twisted.ensureDeferred
async def test_channel_uris_follow_the_right_to_subscribe(reactor: Any, node: RunningNode) -> None:
    """A role that may not subscribe to a topic gets not_authorized from every channel procedure and for
    its presence topic, the same whether or not the topic has history; nobody but the router publishes
    presence events or serves the procedures; pattern subscriptions into presence follow the topics."""
    sessions = SessionFactory(reactor, node)
    where = topic()
    async with sessions(role="writer") as w, sessions(role="outsider") as o, sessions(role="anonymous") as a:
        await w.publish(where, "x", options=ACK)
        await a.subscribe(lambda *x: None, where)
        refusals = []
        for target in (where, "nothing.here"):
            for call in (
                o.call(uris.HISTORY_GET, target),
                o.call(uris.HISTORY_LOOKUP, target, 1),
                o.call(uris.PRESENCE_GET, target),
                o.call(uris.PRESENCE_UPDATE, target, {}),
            ):
                with pytest.raises(ApplicationError) as refused:
                    await call
                refusals.append((refused.value.error, refused.value.args[0].split(":")[1]))
            await assert_denied(o.subscribe(lambda *x: None, uris.PRESENCE_PREFIX + target))
        assert {r[0] for r in refusals} == {ApplicationError.NOT_AUTHORIZED}
        assert refusals[:4] == refusals[4:]
        await assert_denied(w.publish(uris.PRESENCE_PREFIX + where, event="leave", options=ACK))
        await assert_denied(w.register(lambda: None, uris.HISTORY_GET))
        await assert_denied(w.register(lambda: None, "switchboard.history.other"))
        for pattern, match in (("switchboard.", "prefix"), ("switchboard.presence.", "prefix"), ("..get", "wildcard")):
            await assert_denied(w.register(lambda: None, pattern, options=RegisterOptions(match=match)))
        await w.register(lambda: None, "app.", options=RegisterOptions(match="prefix"))
        await a.subscribe(
            lambda *x: None, uris.PRESENCE_PREFIX + "chat.room.", options=SubscribeOptions(match="prefix")
        )
        await assert_denied(
            o.subscribe(lambda *x: None, uris.PRESENCE_PREFIX + "chat.room.", options=SubscribeOptions(match="prefix"))
        )
        await assert_denied(a.subscribe(lambda *x: None, "switchboard.", options=SubscribeOptions(match="prefix")))
        assert len((await history(a, where))["events"]) == 1


@pytest_twisted.ensureDeferred
async def test_bad_arguments_are_invalid_and_name_the_argument(reactor: Any, node: RunningNode) -> None:
    """Non-string or malformed topics, limits out of range, non-integer after/publication, oversize or
    non-member presence data, and a topic that is no channel: invalid_argument naming the argument."""
    sessions = SessionFactory(reactor, node)
    where = topic()
    async with sessions(role="writer") as w:
        await assert_invalid(w.call(uris.HISTORY_GET, 5), argument="topic")
        await assert_invalid(w.call(uris.HISTORY_GET, "a..b"), argument="topic")
        await assert_invalid(w.call(uris.HISTORY_GET, "x" * 600), argument="topic")
        await assert_invalid(w.call(uris.HISTORY_GET, "plain.topic"), argument="topic")
        for limit in (0, 1001, "5", True):
            await assert_invalid(w.call(uris.HISTORY_GET, where, limit=limit), argument="limit")
        await assert_invalid(w.call(uris.HISTORY_GET, where, after="1"), argument="after")
        await assert_invalid(w.call(uris.HISTORY_LOOKUP, where, -1), argument="publication")
        await assert_invalid(w.call(uris.PRESENCE_UPDATE, where, {}), argument="topic")
        await w.subscribe(lambda *x: None, where)
        await assert_invalid(w.call(uris.PRESENCE_UPDATE, where, "x" * 2000), argument="data")
        await assert_invalid(w.call(uris.PRESENCE_GET, where, limit=0), argument="limit")
        unknown = await history(w, where, after=12345)
    assert (unknown["recovered"], unknown["events"]) == (False, [])


@pytest_twisted.ensureDeferred
async def test_a_dropped_tcp_connection_leaves_after_the_grace(reactor: Any, node: RunningNode) -> None:
    """An anonymous member over the public WebSocket whose TCP connection is aborted is still listed for
    the 5 s grace, then a leave is published."""
    sessions = SessionFactory(reactor, node)
    where = topic()
    async with sessions(role="writer") as watcher:
        changes = Inbox(reactor)
        await watcher.subscribe(changes, uris.PRESENCE_PREFIX + where)
        async with sessions(authmethod="anonymous") as member:
            await member.subscribe(lambda *a: None, where)
            assert (await changes.next())[1]["event"] == "join"
            member._transport.transport.abortConnection()
        with pytest.raises(NoEvent):
            await changes.next(timeout=3)
        assert (await watcher.call(uris.PRESENCE_GET, where))["sessions"] == 1
        gone = (await changes.next(timeout=6))[1]
        assert (gone["event"], gone["member"]["authrole"], gone["sessions"]) == ("leave", "anonymous", 0)


class Restarts:
    """A node on ``config`` that a test stops, kills (the router worker, SIGKILL) and starts again on the same
    data directory, and a writer's view of one channel topic."""

    def __init__(self, reactor: Any, config: Path, data: Path) -> None:
        self.reactor, self.config, self.data = reactor, config, data
        self.topic = topic()

    async def start(self) -> None:
        self.node = await start_node(self.reactor, self.config, self.data, test_logins=True)

    async def stop_and_start(self) -> None:
        await self.node.stop()
        await self.start()

    async def kill_and_start(self) -> None:
        pids = children(self.node.process.pid or 0)
        os.kill(router_worker(pids + [p for pid in pids for p in children(pid)]), signal.SIGKILL)
        await task.deferLater(self.reactor, 1, lambda: None)
        await self.stop_and_start()

    async def publish(self, n: int) -> list[int]:
        async with SessionFactory(self.reactor, self.node)(role="writer") as w:
            return [(await w.publish(self.topic, i, options=ACK)).id for i in range(n)]

    async def read(self, after: int | None = None) -> dict[str, Any]:
        async with SessionFactory(self.reactor, self.node)(role="writer") as r:
            return await history(r, self.topic, after=after, limit=1000)


@pytest_twisted.ensureDeferred
async def test_a_clean_stop_writes_what_is_pending_and_a_kill_loses_it_visibly(reactor: Any, tmp_path: Path) -> None:
    """With writes every 10 s: events published just before SIGTERM are all there after the restart (same
    epoch); events published just before a kill -9 of the router worker are lost, and the next start says
    so (new epoch, recovered false) and numbers above them."""
    doc = channel_document()
    doc["limits"] = {"history_flush": 10}
    node = Restarts(reactor, write_config(tmp_path, doc), tmp_path / "data")
    await node.start()
    try:
        ids = await node.publish(10)
        epoch = (await node.read())["epoch"]
        await node.stop_and_start()
        kept = await node.read(ids[0])
        assert (kept["epoch"], kept["recovered"]) == (epoch, True)
        assert [e["publication"] for e in kept["events"]] == ids[1:]
        lost = await node.publish(3)
        await node.kill_and_start()
        after_kill = await node.read(lost[0])
        assert after_kill["epoch"] != epoch
        assert after_kill["recovered"] is False
        assert [e["publication"] for e in after_kill["events"]] == ids
        (newest,) = await node.publish(1)
        latest = (await node.read())["events"][-1]
        assert latest["publication"] == newest
        assert latest["seq"] > 13
    finally:
        await node.node.stop()


@pytest_twisted.ensureDeferred
async def test_history_survives_a_clean_restart_and_a_kill_changes_the_epoch(reactor: Any, tmp_path: Path) -> None:
    """After SIGTERM and a restart: same epoch, every event, numbering continues. After kill -9 of the
    router worker and a restart: a new epoch, numbers above every one handed out, recovered false."""
    node = Restarts(reactor, write_config(tmp_path, channel_document()), tmp_path / "data")
    await node.start()
    try:
        ids = await node.publish(30)
        before = await node.read()
        await node.stop_and_start()
        after_stop = await node.read(ids[0])
        assert (after_stop["epoch"], after_stop["recovered"]) == (before["epoch"], True)
        assert [e["seq"] for e in after_stop["events"]] == list(range(2, 31))
        more = await node.publish(5)
        await node.kill_and_start()
        crashed = await node.read(more[-1])
        assert crashed["epoch"] != before["epoch"]
        assert crashed["recovered"] is False
        assert [e["seq"] for e in crashed["events"]][:30] == list(range(1, 31))
        newest = (await node.publish(1))[0]
        latest = (await node.read())["events"][-1]
        assert latest["publication"] == newest
        assert latest["seq"] > 35
    finally:
        await node.node.stop()


@pytest_twisted.ensureDeferred
async def test_a_presence_uri_of_presence_uris_is_refused_at_once(reactor: Any, node: RunningNode) -> None:
    """Subscribing to switchboard.presence. repeated ~45,000 times (just under a megabyte) is refused
    like any denied subscription, and the router answers the next call at once (it used to take the
    prefixes off one by one, each a new copy of the rest: minutes and gigabytes)."""
    sessions = SessionFactory(reactor, node)
    async with sessions(authmethod="anonymous") as a:
        await assert_denied(a.subscribe(lambda *x: None, uris.PRESENCE_PREFIX * 45_000 + "chat.room.lobby"))
        assert (await a.call(uris.PRESENCE_GET, topic()))["sessions"] == 0


@pytest_twisted.ensureDeferred
async def test_large_events_come_back_in_pages_that_fit_a_message(reactor: Any, node: RunningNode) -> None:
    """100 events of 20 KB: history.get over the public WebSocket (1 MiB messages) answers the latest that
    fit, and a recovery pages through all of them with `more`."""
    sessions = SessionFactory(reactor, node)
    where = topic()
    async with sessions(role="writer") as w, sessions(authmethod="anonymous") as a:
        ids = [(await w.publish(where, "x" * 20_000, i, options=ACK)).id for i in range(100)]
        latest = await history(a, where)
        assert 1 <= len(latest["events"]) < 100
        assert latest["events"][-1]["publication"] == ids[-1]
        got, after = [], ids[0]
        for _ in range(100):
            page = await history(a, where, after=after, limit=1000)
            assert page["recovered"] is True
            got += page["events"]
            after = got[-1]["publication"]
            if not page["more"]:
                break
    assert [e["args"][1] for e in got] == list(range(1, 100))


@pytest_twisted.ensureDeferred
async def test_each_realm_has_its_own_history(reactor: Any, tmp_path: Path) -> None:
    """Two realms with the same channel topic: each reads only its own events, and both histories (and
    epochs) are there after a clean restart."""
    doc = channel_document()
    second = {**doc["realms"][0], "name": "second"}
    doc["realms"].append(second)
    config = write_config(tmp_path, doc)
    where = topic()

    async def publish_and_read(node: RunningNode, realm: str, text: str | None) -> dict[str, Any]:
        async with SessionFactory(reactor, node)(realm=realm, role="writer") as w:
            if text is not None:
                await w.publish(where, text, options=ACK)
            return await history(w, where)

    node = await start_node(reactor, config, tmp_path / "data", test_logins=True)
    try:
        first = await publish_and_read(node, "demo", "in demo")
        other = await publish_and_read(node, "second", "in second")
        assert [e["args"] for e in (await publish_and_read(node, "demo", None))["events"]] == [["in demo"]]
        assert [e["args"] for e in other["events"]] == [["in second"]]
        await node.stop()
        node = await start_node(reactor, config, tmp_path / "data", test_logins=True)
        again = await publish_and_read(node, "demo", None)
        assert (again["epoch"], [e["args"] for e in again["events"]]) == (first["epoch"], [["in demo"]])
        again = await publish_and_read(node, "second", None)
        assert (again["epoch"], [e["args"] for e in again["events"]]) == (other["epoch"], [["in second"]])
    finally:
        await node.stop()
