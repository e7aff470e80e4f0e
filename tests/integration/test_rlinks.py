"""
Across Crossbar's rlinks, with :mod:`router.seam.rlinks`: a node of three router workers (the full mesh of
:mod:`router.workers`) behaves for its clients like one router, and so do two nodes linked over TCP.

Each test joins its sessions on chosen workers (``mesh.session(worker, role, authid)``, a test-login socket
per worker, :mod:`tests.integration.rlink_node`) and compares what a client sees across a link with what it
sees inside one worker, written out by hand. Role ``shown`` discloses its calls and publications, ``hidden``
does not. URIs are unique per test (the node is shared by the module). Each test fails with Crossbar's own
rlinks (``SWITCHBOARD_RLINKS=0``): see ``docs/scaling.md``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, PublishOptions, RegisterOptions, SubscribeOptions
from twisted.internet import defer, task

from router.testkit import wait
from router.uris import HISTORY_GET
from tests.integration.rlink_node import CHANNEL, LinkedNode, linked_node, linked_pair

WORKERS = 3
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def mesh(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinkedNode]:
    """A node with three router workers linked by rlinks, for the whole module."""
    context = linked_node(reactor, tmp_path_factory.mktemp("rlinks") / "data", workers=WORKERS)
    node = pytest_twisted.blockon(defer.ensureDeferred(context.__aenter__()))
    try:
        yield node
    finally:
        pytest_twisted.blockon(defer.ensureDeferred(context.__aexit__(None, None, None)))


class Received:
    """Events of one subscription (with details), taken in arrival order with a bounded wait."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._queue: defer.DeferredQueue[Any] = defer.DeferredQueue()
        self.all: list[Any] = []

    def __call__(self, *args: Any, details: Any = None, **kwargs: Any) -> None:
        event = (args, kwargs, details)
        self.all.append(event)
        self._queue.put(event)

    async def next(self, timeout: float = TIMEOUT) -> Any:
        """The next ``(args, kwargs, details)``."""
        return await wait(self._queue.get(), self._reactor, timeout)


def unique(prefix: str = "rl") -> str:
    """A topic or procedure URI no other test uses."""
    return f"{prefix}.t{uuid.uuid4().hex[:10]}"


async def until(reactor: Any, check: Callable[[], Awaitable[Any]], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll ``check`` every 50 ms until it returns something true; fail naming ``what`` after ``timeout``."""
    deadline = reactor.seconds() + timeout
    while True:
        found = await check()
        if found:
            return found
        if reactor.seconds() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await task.deferLater(reactor, 0.05, lambda: None)


async def observed(node: LinkedNode, worker: int, kind: str, uri: str, match: str = "exact") -> Any:
    """The id of the subscription (``kind="subscription"``) or registration on ``worker`` for ``uri``, or None."""
    async with node.session(worker, "meta", f"meta-{uuid.uuid4().hex[:6]}") as meta:
        return await meta.call(f"wamp.{kind}.lookup", uri, {"match": match})


async def callees(node: LinkedNode, worker: int, procedure: str, count: int) -> bool:
    """Whether the registration of ``procedure`` on ``worker`` has ``count`` callees."""
    async with node.session(worker, "meta", f"meta-{uuid.uuid4().hex[:6]}") as meta:
        registration = await meta.call("wamp.registration.lookup", procedure)
        return registration is not None and await meta.call("wamp.registration.count_callees", registration) == count


async def everywhere(
    node: LinkedNode, kind: str, uri: str, match: str = "exact", workers: int = WORKERS, present: bool = True
) -> None:
    """Wait until every worker has (``present``) or none has a ``kind`` for ``uri``."""
    for worker in range(workers):

        async def check(w: int = worker) -> bool:
            return (await observed(node, w, kind, uri, match) is not None) == present

        await until(node.reactor, check, f"{kind} {uri} ({match}) {'on' if present else 'gone from'} worker {worker}")


# --- 1. errors ------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_callee_error_reaches_the_caller_as_raised(mesh: LinkedNode) -> None:
    """A callee's ApplicationError crosses the link with its URI, args and kwargs (not as a null result)."""
    procedure = unique()

    def fail(*args: Any, **kwargs: Any) -> None:
        raise ApplicationError("rl.error.refused", "no", 7, reason="because")

    async with mesh.session(0, "shown", "callee") as callee, mesh.session(1, "shown", "caller") as caller:
        await callee.register(fail, procedure)
        await everywhere(mesh, "registration", procedure)
        with pytest.raises(ApplicationError) as raised:
            await wait(caller.call(procedure), mesh.reactor)
    assert (raised.value.error, raised.value.args, raised.value.kwargs) == (
        "rl.error.refused",
        ("no", 7),
        {"reason": "because"},
    )


async def test_keyword_arguments_cross_whole_and_stay_whole_in_the_publishers_worker(mesh: LinkedNode) -> None:
    """Keyword arguments, one of them named ``details`` (autobahn's own name for its details object), reach a
    callee across the link and subscribers in the publisher's worker (1) and across it, unchanged."""
    procedure, topic = unique(), unique()
    payload = {"other": 2, "details": {"x": 1}}
    async with (
        mesh.session(0, "shown", "callee") as callee,
        mesh.session(1, "shown", "caller") as caller,
        mesh.session(1, "shown", "near") as near,
        mesh.session(0, "shown", "far") as far,
    ):
        await callee.register(lambda *args, **kwargs: [list(args), kwargs], procedure)
        inboxes = []
        for s in (near, far):
            inbox: defer.DeferredQueue[Any] = defer.DeferredQueue()
            await s.subscribe(lambda *args, inbox=inbox, **kwargs: inbox.put((args, kwargs)), topic)
            inboxes.append(inbox)
        await everywhere(mesh, "registration", procedure)
        await everywhere(mesh, "subscription", topic)
        assert await wait(caller.call(procedure, 1, **payload), mesh.reactor) == [[1], payload]
        await caller.publish(topic, 1, options=PublishOptions(acknowledge=True), **payload)
        for inbox in inboxes:
            assert await wait(inbox.get(), mesh.reactor) == ((1,), payload)


# --- 2. caller identity ---------------------------------------------------------------------------------


async def _caller_seen(mesh: LinkedNode, role: str, caller_worker: int) -> tuple[Any, ...]:
    procedure = unique()
    seen: list[tuple[Any, ...]] = []

    def who(details: Any) -> str:
        seen.append((details.caller, details.caller_authid, details.caller_authrole))
        return "ok"

    async with mesh.session(0, "shown", "callee") as callee, mesh.session(caller_worker, role, "carol") as caller:
        await callee.register(who, procedure, options=RegisterOptions(details=True))
        await everywhere(mesh, "registration", procedure)
        assert await wait(caller.call(procedure), mesh.reactor) == "ok"
        caller_id = caller._session_id
    return seen[0], caller_id


@pytest_twisted.ensureDeferred
async def test_a_disclosed_caller_is_seen_as_on_its_own_worker(mesh: LinkedNode) -> None:
    """A callee on worker 0 sees a disclosed caller of worker 1 with its own session id, authid and role,
    exactly as it sees a caller on worker 0."""
    (remote, remote_id), (local, local_id) = await _caller_seen(mesh, "shown", 1), await _caller_seen(mesh, "shown", 0)
    assert remote == (remote_id, "carol", "shown")
    assert local == (local_id, "carol", "shown")


@pytest_twisted.ensureDeferred
async def test_an_undisclosed_caller_is_forwarded_and_stays_hidden(mesh: LinkedNode) -> None:
    """A caller whose role does not disclose can call across the link; the callee sees no caller, as locally."""
    (remote, _), (local, _) = await _caller_seen(mesh, "hidden", 2), await _caller_seen(mesh, "hidden", 0)
    assert remote == (None, None, None) == local


# --- 3. publisher identity, 10. publication id ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_events_keep_the_publisher_and_the_publication_id(mesh: LinkedNode) -> None:
    """Events of a disclosed and of an undisclosed publisher on worker 0 reach subscribers on every worker
    with the same publisher fields and the publication id the publisher was acknowledged."""
    topic = unique()
    inboxes: list[Received] = []
    async with (
        mesh.session(0, "shown", "sub0") as s0,
        mesh.session(1, "shown", "sub1") as s1,
        mesh.session(2, "hidden", "sub2") as s2,
        mesh.session(0, "shown", "pat") as shown,
        mesh.session(0, "hidden", "hugo") as hidden,
    ):
        for s in (s0, s1, s2):
            inbox = Received(mesh.reactor)
            inboxes.append(inbox)
            await s.subscribe(inbox, topic, options=SubscribeOptions(details=True))
        await everywhere(mesh, "subscription", topic)
        ack = PublishOptions(acknowledge=True)
        first = await shown.publish(topic, "a", options=ack)
        second = await hidden.publish(topic, "b", options=ack)
        for inbox in inboxes:
            got = [await inbox.next(), await inbox.next()]
            assert [(e[0], e[2].publication) for e in got] == [(("a",), first.id), (("b",), second.id)]
            d0, d1 = got[0][2], got[1][2]
            assert (d0.publisher, d0.publisher_authid, d0.publisher_authrole) == (shown._session_id, "pat", "shown")
            assert (d1.publisher, d1.publisher_authid, d1.publisher_authrole) == (None, None, None)
            assert d0.forward_for is None
            assert d1.forward_for is None


@pytest_twisted.ensureDeferred
async def test_channel_history_records_every_worker_under_the_delivered_publication_id(mesh: LinkedNode) -> None:
    """Publications on workers 1 and 2 to a history channel reach the first worker's history with no
    subscriber anywhere, each under the publication id its publisher was acknowledged, with its publisher
    when disclosed; a subscriber on worker 1 then sees the same ids."""
    topic = f"{CHANNEL}.t{uuid.uuid4().hex[:8]}"
    box = Received(mesh.reactor)
    async with (
        mesh.session(1, "shown", "one") as one,
        mesh.session(2, "hidden", "two") as two,
        mesh.session(0, "shown", "reader") as reader,
        mesh.session(1, "shown", "listener") as listener,
    ):
        ack = PublishOptions(acknowledge=True)
        published = [(await one.publish(topic, "a", options=ack)).id, (await two.publish(topic, "b", options=ack)).id]

        async def recorded() -> list[Any]:
            events: list[Any] = (await reader.call(HISTORY_GET, topic))["events"]
            return events if len(events) == 2 else []

        events = await until(mesh.reactor, recorded, "both publications in the history")
        assert sorted((e["publication"], e["args"], e["publisher_authid"]) for e in events) == sorted(
            [(published[0], ["a"], "one"), (published[1], ["b"], None)]
        )
        await listener.subscribe(box, topic, options=SubscribeOptions(details=True))
        await everywhere(mesh, "subscription", topic)
        third = await two.publish(topic, "c", options=ack)
        args, _, details = await box.next()
        assert (args, details.publication) == (("c",), third.id)


# --- 4. patterns ----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_pattern_subscriptions_match_across_the_link_as_locally(mesh: LinkedNode) -> None:
    """Prefix and wildcard subscriptions on worker 1 get the events published on worker 0 that they match
    (with the concrete topic), and only those."""
    base = unique()
    prefix, wildcard = Received(mesh.reactor), Received(mesh.reactor)
    async with mesh.session(1, "shown", "sub") as sub, mesh.session(0, "shown", "pub") as pub:
        await sub.subscribe(prefix, f"{base}.p", options=SubscribeOptions(match="prefix", details=True))
        await sub.subscribe(wildcard, f"{base}..w", options=SubscribeOptions(match="wildcard", details=True))
        await everywhere(mesh, "subscription", f"{base}.p", "prefix")
        await everywhere(mesh, "subscription", f"{base}..w", "wildcard")
        for topic in (f"{base}.p.one", f"{base}.q.w", f"{base}.pz", f"{base}.q.x", f"{base}.p.two"):
            await pub.publish(topic, topic, options=PublishOptions(acknowledge=True))
        # A marker both see, published last: everything before it has been delivered.
        await pub.publish(f"{base}.p.w", "end", options=PublishOptions(acknowledge=True))
        assert (await prefix.next())[2].topic == f"{base}.p.one"
        assert (await prefix.next())[2].topic == f"{base}.pz"  # a raw string prefix, as in one router
        assert (await prefix.next())[2].topic == f"{base}.p.two"
        assert (await prefix.next())[0] == ("end",)
        assert (await wildcard.next())[2].topic == f"{base}.q.w"
        assert (await wildcard.next())[0] == ("end",)
        assert len(prefix.all) == 4
        assert len(wildcard.all) == 2


@pytest_twisted.ensureDeferred
async def test_overlapping_subscriptions_get_each_event_once_per_subscription(mesh: LinkedNode) -> None:
    """A session on worker 2 subscribed exactly and by prefix gets an event published on worker 0 once on
    each subscription, as locally (the event crosses the link once, not once per subscription)."""
    base = unique()
    exact, prefix = Received(mesh.reactor), Received(mesh.reactor)
    async with mesh.session(2, "shown", "sub") as sub, mesh.session(0, "shown", "pub") as pub:
        await sub.subscribe(exact, f"{base}.a", options=SubscribeOptions(details=True))
        await sub.subscribe(prefix, base, options=SubscribeOptions(match="prefix", details=True))
        await everywhere(mesh, "subscription", f"{base}.a")
        await everywhere(mesh, "subscription", base, "prefix")
        await pub.publish(f"{base}.a", "one", options=PublishOptions(acknowledge=True))
        await pub.publish(f"{base}.b", "end", options=PublishOptions(acknowledge=True))
        assert [(await prefix.next())[0] for _ in range(2)] == [("one",), ("end",)]
        assert exact.all[0][0] == ("one",)
        assert len(exact.all) == 1
        assert exact.all[0][2].publication == prefix.all[0][2].publication


@pytest_twisted.ensureDeferred
async def test_pattern_registrations_are_reachable_across_the_link(mesh: LinkedNode) -> None:
    """A prefix and a wildcard registration on worker 0 answer calls from worker 2 to the URIs they match,
    with the called procedure in the details; the link stays up."""
    base = unique()

    def answer(*args: Any, details: Any) -> str:
        return f"{details.procedure}"

    async with mesh.session(0, "shown", "callee") as callee, mesh.session(2, "shown", "caller") as caller:
        await callee.register(answer, f"{base}.p", options=RegisterOptions(match="prefix", details=True))
        await callee.register(answer, f"{base}..w", options=RegisterOptions(match="wildcard", details=True))
        await everywhere(mesh, "registration", f"{base}.p", "prefix")
        await everywhere(mesh, "registration", f"{base}..w", "wildcard")
        assert await wait(caller.call(f"{base}.p.deep.er"), mesh.reactor) == f"{base}.p.deep.er"
        assert await wait(caller.call(f"{base}.x.w"), mesh.reactor) == f"{base}.x.w"
        with pytest.raises(ApplicationError) as raised:
            await wait(caller.call(f"{base}.x.y"), mesh.reactor)
        assert raised.value.error == ApplicationError.NO_SUCH_PROCEDURE


# --- 5. progressive results -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_progressive_results_stream_across_the_link(mesh: LinkedNode) -> None:
    """A caller on worker 1 asking for progress gets each progressive result of a callee on worker 0, in
    order, then the final one; without asking it gets the final one only, as locally."""
    procedure = unique()

    def count(n: int, details: Any) -> str:
        for i in range(n):
            if details.progress is not None:
                details.progress(i, of=n)
        return "done"

    progress: list[Any] = []
    async with mesh.session(0, "shown", "callee") as callee, mesh.session(1, "shown", "caller") as caller:
        await callee.register(count, procedure, options=RegisterOptions(details=True))
        await everywhere(mesh, "registration", procedure)
        on_progress = CallOptions(on_progress=lambda i, of: progress.append((i, of)))
        assert await wait(caller.call(procedure, 3, options=on_progress), mesh.reactor) == "done"
        assert progress == [(0, 3), (1, 3), (2, 3)]
        assert await wait(caller.call(procedure, 2), mesh.reactor) == "done"
        assert len(progress) == 3


# --- 6. exclude / eligible --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_exclude_and_eligible_apply_on_every_worker(mesh: LinkedNode) -> None:
    """``exclude``, ``eligible`` and their ``_authid``/``_authrole`` forms published on worker 0 select
    subscribers on workers 1 and 2 exactly as they would on worker 0."""
    topic = unique()
    boxes = {name: Received(mesh.reactor) for name in ("x1", "y1", "x2", "h2")}
    async with (
        mesh.session(1, "shown", "x") as x1,
        mesh.session(1, "shown", "y") as y1,
        mesh.session(2, "shown", "x") as x2,
        mesh.session(2, "hidden", "h") as h2,
        mesh.session(0, "shown", "pub") as pub,
    ):
        sessions = {"x1": x1, "y1": y1, "x2": x2, "h2": h2}
        for name, s in sessions.items():
            await s.subscribe(boxes[name], topic, options=SubscribeOptions(details=True))
        await everywhere(mesh, "subscription", topic)
        cases = [
            ({"exclude": [x1._session_id]}, {"y1", "x2", "h2"}),
            ({"eligible": [y1._session_id, h2._session_id]}, {"y1", "h2"}),
            ({"exclude_authid": ["x"]}, {"y1", "h2"}),
            ({"eligible_authid": ["x"]}, {"x1", "x2"}),
            ({"exclude_authrole": ["hidden"]}, {"x1", "y1", "x2"}),
            ({"eligible_authrole": ["hidden"]}, {"h2"}),
        ]
        for index, (options, _expected) in enumerate(cases):
            await pub.publish(topic, index, options=PublishOptions(acknowledge=True, **options))
        await pub.publish(topic, "end", options=PublishOptions(acknowledge=True))
        for name, box in boxes.items():
            while (await box.next())[0] != ("end",):
                pass
            got = [e[0][0] for e in box.all[:-1]]
            assert got == [i for i, (_, expected) in enumerate(cases) if name in expected], name


# --- 7. nothing left behind -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_nothing_of_a_subscriber_or_callee_remains_after_it_leaves(mesh: LinkedNode) -> None:
    """When the last subscriber and callee of a URI on worker 1 leave, no subscription or registration for
    it remains on any worker (the links do not keep each other's alive)."""
    topic, procedure = unique(), unique()
    async with mesh.session(1, "shown", "sub") as sub, mesh.session(2, "shown", "sub") as other:
        subscription = await sub.subscribe(lambda *a: None, topic)
        second = await other.subscribe(lambda *a: None, topic)
        await sub.register(lambda: None, procedure)
        await everywhere(mesh, "subscription", topic)
        await everywhere(mesh, "registration", procedure)
        await second.unsubscribe()
        await subscription.unsubscribe()
        await everywhere(mesh, "subscription", topic, present=False)
    await everywhere(mesh, "registration", procedure, present=False)


@pytest_twisted.ensureDeferred
async def test_subscribing_and_unsubscribing_fast_leaves_exactly_what_is_subscribed(mesh: LinkedNode) -> None:
    """Twenty subscribe/unsubscribe rounds on workers 1 and 2 without waiting (mirroring still under way
    when it is undone) end with what the last round left: one subscriber on worker 2, reached once per event
    from worker 0, and after it leaves nothing anywhere."""
    topic = unique()
    box = Received(mesh.reactor)
    async with mesh.session(1, "shown", "a") as a, mesh.session(2, "shown", "b") as b:
        for _ in range(20):
            first = await a.subscribe(lambda *args: None, topic)
            second = await b.subscribe(lambda *args: None, topic)
            await first.unsubscribe()
            await second.unsubscribe()
        last = await b.subscribe(box, topic, options=SubscribeOptions(details=True))
        await everywhere(mesh, "subscription", topic)
        async with mesh.session(0, "shown", "pub") as pub:
            for i in range(3):
                await pub.publish(topic, i, options=PublishOptions(acknowledge=True))
            await pub.publish(topic, "end", options=PublishOptions(acknowledge=True))
            while (await box.next())[0] != ("end",):
                pass
        assert [e[0] for e in box.all] == [(0,), (1,), (2,), ("end",)]
        await last.unsubscribe()
        await everywhere(mesh, "subscription", topic, present=False)


@pytest_twisted.ensureDeferred
async def test_meta_events_stay_in_their_worker(mesh: LinkedNode) -> None:
    """A ``wamp.session.on_join`` subscriber on worker 1 hears of sessions joining worker 1 only, as on a
    node of one worker: the links do not forward the meta API's events."""
    joins = Received(mesh.reactor)
    async with mesh.session(1, "meta", "watcher") as watcher:
        await watcher.subscribe(joins, "wamp.session.on_join", options=SubscribeOptions(details=True))
        # Joined in this order: the last one on the watcher's worker.
        async with (
            mesh.session(0, "shown", "elsewhere"),
            mesh.session(2, "shown", "far"),
            mesh.session(1, "shown", "here"),
        ):
            while (await joins.next())[0][0]["authid"] != "here":
                pass
        authids = {args[0]["authid"] for args, _, _ in joins.all}
        assert "here" in authids
        assert not {"elsewhere", "far"} & authids
        # Nothing was mirrored for it: the other workers have no such subscription at all.
        assert await observed(mesh, 0, "subscription", "wamp.session.on_join") is None
        assert await observed(mesh, 2, "subscription", "wamp.session.on_join") is None


# --- 8. shared registrations, no loops ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_shared_registration_spans_workers_without_loops(mesh: LinkedNode) -> None:
    """Round-robin callees on workers 0 and 1 both get calls made on every worker; each call is answered
    exactly once (a forwarded call never goes back over a link)."""
    procedure = unique()
    answered: dict[str, int] = {"c0": 0, "c1": 0}

    def callee_of(name: str) -> Callable[[], str]:
        def answer() -> str:
            answered[name] += 1
            return name

        return answer

    shared = RegisterOptions(invoke="roundrobin")
    async with (
        mesh.session(0, "shown", "c0") as c0,
        mesh.session(1, "shown", "c1") as c1,
        mesh.session(2, "shown", "caller") as caller2,
        mesh.session(0, "shown", "caller") as caller0,
    ):
        await c0.register(callee_of("c0"), procedure, options=shared)
        await c1.register(callee_of("c1"), procedure, options=shared)
        # Two callees everywhere: the local one and a link, or the two links of worker 2.
        for worker in range(WORKERS):
            await until(mesh.reactor, lambda w=worker: callees(mesh, w, procedure, 2), f"2 callees on worker {worker}")
        for caller in (caller0, caller2):
            before = dict(answered)
            results = [await wait(caller.call(procedure), mesh.reactor) for _ in range(12)]
            assert sorted(results) == ["c0"] * 6 + ["c1"] * 6
            assert {name: answered[name] - before[name] for name in answered} == {"c0": 6, "c1": 6}


# --- 9. order, no duplicates ----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_events_arrive_once_and_in_order_on_every_worker(mesh: LinkedNode) -> None:
    """200 events published on worker 0 (by a publisher not disclosed) arrive exactly once each, in order,
    at subscribers on every worker (the mesh forwards each once; no event comes back)."""
    topic = unique()
    boxes = [Received(mesh.reactor) for _ in range(WORKERS + 1)]
    async with (
        mesh.session(0, "shown", "s0") as s0,
        mesh.session(1, "hidden", "s1") as s1,
        mesh.session(2, "shown", "s2") as s2,
        mesh.session(2, "shown", "s2b") as s2b,
        mesh.session(0, "hidden", "pub") as pub,
    ):
        for s, box in zip((s0, s1, s2, s2b), boxes, strict=True):
            await s.subscribe(box, topic, options=SubscribeOptions(details=True))
        await everywhere(mesh, "subscription", topic)
        for i in range(200):
            pub.publish(topic, i)
        await pub.publish(topic, "end", options=PublishOptions(acknowledge=True))
        for box in boxes:
            while (await box.next())[0] != ("end",):
                pass
            assert [e[0][0] for e in box.all[:-1]] == list(range(200))


# --- two nodes over TCP ---------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_two_nodes_linked_over_tcp_behave_as_one(reactor: Any, tmp_path: Path) -> None:
    """Two one-worker nodes linked over TCP: an error, an undisclosed caller, a disclosed publisher and
    the publication id cross as inside one node."""
    async with linked_pair(reactor, tmp_path) as (a, b):
        procedure, topic = unique(), unique()
        seen: list[Any] = []

        def answer(fail: bool, details: Any) -> str:
            seen.append((details.caller, details.caller_authid, details.caller_authrole))
            if fail:
                raise ApplicationError("rl.error.tcp", "x", n=1)
            return "ok"

        box = Received(reactor)
        async with a.session(0, "shown", "on-a") as on_a, b.session(0, "hidden", "on-b") as on_b:
            await on_a.register(answer, procedure, options=RegisterOptions(details=True))
            await on_a.subscribe(box, topic, options=SubscribeOptions(details=True))
            await everywhere(b, "registration", procedure, workers=1)
            await everywhere(b, "subscription", topic, workers=1)
            assert await wait(on_b.call(procedure, False), reactor) == "ok"
            with pytest.raises(ApplicationError) as raised:
                await wait(on_b.call(procedure, True), reactor)
            assert (raised.value.error, raised.value.args, raised.value.kwargs) == ("rl.error.tcp", ("x",), {"n": 1})
            assert seen == [(None, None, None)] * 2
            async with b.session(0, "shown", "shown-b") as publisher:
                ack = await publisher.publish(topic, 1, options=PublishOptions(acknowledge=True))
                args, _, details = await box.next()
                assert args == (1,)
                assert details.publication == ack.id
                assert (details.publisher, details.publisher_authid, details.publisher_authrole) == (
                    publisher._session_id,
                    "shown-b",
                    "shown",
                )
