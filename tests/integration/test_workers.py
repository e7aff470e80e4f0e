"""A real node with ``"workers": 2`` (router.workers): sessions spread over both router workers by the kernel
(SO_REUSEPORT) are served alike, the hosted components of the first worker reach the second, and the admin
API's role changes, listings, kills and user revocations reach every worker."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions, SubscribeOptions
from twisted.internet import task, threads

from components import uris as app
from router import uris
from router.cli_node import inspect_node
from router.control import control_session
from router.launch import RunningNode
from router.testkit import Inbox, JoinRefused, session, start_node, wait
from router.workers import LINK_ROLE, meta_uri, roles_uri
from tests.conftest import demo_document, running, write_config
from tests.integration.cli import switchboard
from tests.integration.test_operations import anonymous_sessions, http_base, ready_becomes, scrape, scrape_until
from tests.integration.users import TestUser, add_user

pytestmark = pytest.mark.integration

#: A history channel of the test node.
CHANNEL = "work.chan"
#: Sessions opened at most to find one on each worker (each lands on either with probability 1/2).
MAX_TRIES = 40


@pytest.fixture(scope="module")
def two_workers(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """The demo config with two router workers (operations on a port of their own, channels without presence)."""
    doc = demo_document()
    doc["workers"] = 2
    doc["operations"] = {"port": 0}
    for realm in doc["realms"]:
        for channel in realm.get("channels", []):
            channel.pop("presence", None)
    # A history channel anonymous sessions publish to themselves (the demo's are published by its components).
    doc["realms"][0]["channels"].append({"topic": CHANNEL, "match": "prefix", "history": {}})
    doc["realms"][0]["roles"]["anonymous"]["allow"].append(
        {"uri": CHANNEL, "match": "prefix", "actions": ["publish", "subscribe"], "disclose": True}
    )
    # A role that may call anything, to show the agents answer the node's own sessions only.
    doc["realms"][0]["roles"]["everything"] = {
        "allow": [{"uri": "", "match": "prefix", "actions": ["call", "register"], "disclose": True}]
    }
    tmp = tmp_path_factory.mktemp("two-workers")
    with running(start_node(reactor, write_config(tmp, doc), tmp / "data")) as node:
        yield node


def ticket(reactor: Any, node: RunningNode, user: TestUser) -> Any:
    return session(reactor, node.url, authmethod="ticket", authid=user.authid, ticket=user.password)


async def worker_of(admin: Any, session_id: int) -> int:
    listed = {s["session"]: s for s in (await admin.call(uris.ADMIN_SESSION_LIST))["sessions"]}
    worker: int = listed[session_id]["worker"]
    return worker


@contextlib.asynccontextmanager
async def on_each_worker(admin: Any, opening: Any) -> AsyncIterator[dict[int, Any]]:
    """Sessions opened with ``opening()`` until one is on each of the two workers: {worker: session}."""
    found: dict[int, Any] = {}
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(MAX_TRIES):
            s = await stack.enter_async_context(opening())
            found.setdefault(await worker_of(admin, s.details.session), s)
            if len(found) == 2:
                break
        assert sorted(found) == [0, 1], "the kernel put every session on one worker"
        yield found


@pytest_twisted.ensureDeferred
async def test_the_node_is_ready_only_with_every_worker_linked(reactor: Any, two_workers: RunningNode) -> None:
    """The readiness report has the second worker, ready: its agent reaches the first worker over the link;
    /ready checks it too."""
    async with control_session(reactor, two_workers.control_socket, "demo") as s:
        report = await s.call(uris.NODE_COMPONENTS)
    assert {"class": "router worker 1", "realm": "demo", "state": "ready", "reason": None} in report
    state = await ready_becomes(reactor, http_base(two_workers), 200)
    assert state["checks"]["workers"] == {"ok": True}


@pytest_twisted.ensureDeferred
async def test_both_workers_serve_the_components_and_events(reactor: Any, two_workers: RunningNode) -> None:
    """A session on each worker calls the first worker's components (sys.info, chat.send) and receives the
    chat events published there; the admin listing shows sessions of both workers."""
    admin = add_user(two_workers, role="admin")
    async with ticket(reactor, two_workers, admin) as a:
        opening = lambda: session(reactor, two_workers.url)  # noqa: E731 - anonymous sessions
        async with on_each_worker(a, opening) as sessions:
            inboxes = {}
            for worker, s in sessions.items():
                inboxes[worker] = Inbox(reactor)
                await s.subscribe(inboxes[worker], app.room_topic("workers"))
                info = await s.call(app.SYS_INFO)
                assert (info["realm"], info["authid"], info["authrole"]) == ("demo", s.details.authid, "anonymous")
            sent = await sessions[1].call(app.CHAT_SEND, "workers", "from worker 1")
            assert sent["author"] == sessions[1].details.authid
            for inbox in inboxes.values():
                message = await inbox.next()
                assert (message["text"], message["id"]) == ("from worker 1", sent["id"])


@pytest_twisted.ensureDeferred
async def test_a_role_change_applies_in_every_worker(reactor: Any, two_workers: RunningNode) -> None:
    """role.set taking sys.info away from the anonymous role is refused at once to the anonymous sessions of
    both workers, and given back to both when the role is restored."""
    admin = add_user(two_workers, role="admin")
    async with ticket(reactor, two_workers, admin) as a:
        original = await a.call(uris.ADMIN_ROLE_GET, "anonymous")
        without = {**original, "allow": [r for r in original["allow"] if r["uri"] != app.SYS_INFO]}
        async with on_each_worker(a, lambda: session(reactor, two_workers.url)) as sessions:
            await a.call(uris.ADMIN_ROLE_SET, "anonymous", without)
            try:
                for s in sessions.values():
                    with pytest.raises(ApplicationError) as refused:
                        await s.call(app.SYS_INFO)
                    assert refused.value.error == uris.NOT_AUTHORIZED
            finally:
                await a.call(uris.ADMIN_ROLE_SET, "anonymous", original)
            for s in sessions.values():
                assert (await s.call(app.SYS_INFO))["authrole"] == "anonymous"


@pytest_twisted.ensureDeferred
async def test_kill_and_user_disable_reach_every_worker(reactor: Any, two_workers: RunningNode) -> None:
    """session.kill ends a session of either worker; disabling a user closes its sessions on both workers."""
    admin, user = add_user(two_workers, role="admin"), add_user(two_workers)
    async with ticket(reactor, two_workers, admin) as a:
        async with on_each_worker(a, lambda: session(reactor, two_workers.url)) as anonymous:
            for s in anonymous.values():
                await a.call(uris.ADMIN_SESSION_KILL, s.details.session)
                await wait(s.left, reactor, timeout=5.0)
                assert s.close_reason == uris.ADMIN_SESSION_KILLED
        async with on_each_worker(a, lambda: ticket(reactor, two_workers, user)) as users:
            await a.call(uris.ADMIN_USER_DISABLE, user.authid)
            for s in users.values():
                await wait(s.left, reactor, timeout=5.0)
                assert s.close_reason == uris.CREDENTIALS_REVOKED


@pytest_twisted.ensureDeferred
async def test_status_counts_the_sessions_of_every_worker(reactor: Any, two_workers: RunningNode) -> None:
    """`switchboard status` counts client sessions in both workers, not the links between them."""
    admin = add_user(two_workers, role="admin")
    async with (
        ticket(reactor, two_workers, admin) as a,
        on_each_worker(a, lambda: session(reactor, two_workers.url)),
    ):
        listed = (await a.call(uris.ADMIN_SESSION_LIST))["count"]
        status = await inspect_node(reactor, two_workers.data_dir)
        assert status.sessions["demo"] == listed
        components = 2  # chat and system (the backend role); the admin API and channels are trusted
        assert listed >= components + 3


@pytest_twisted.ensureDeferred
async def test_channel_history_records_publications_of_every_worker(reactor: Any, two_workers: RunningNode) -> None:
    """Publications to a history channel from sessions on both workers reach subscribers on both with one
    publication id each, and the history (kept by the first worker) holds each under that id, numbered in the
    order it recorded them, which keeps each publisher's order; a recovery by publication id works from
    either worker."""
    admin = add_user(two_workers, role="admin")
    topic = f"{CHANNEL}.t{uuid.uuid4().hex[:8]}"
    async with (
        ticket(reactor, two_workers, admin) as a,
        on_each_worker(a, lambda: session(reactor, two_workers.url)) as sessions,
    ):
        inboxes = {worker: Inbox(reactor) for worker in sessions}
        for worker, s in sessions.items():
            await s.subscribe(inboxes[worker], topic, options=SubscribeOptions(details=True))
        by_worker: dict[int, list[int]] = {0: [], 1: []}
        for worker in (1, 0, 1, 0, 1):
            published_by = sessions[worker]  # a subscriber too: it wants its own events
            pub = await published_by.publish(topic, worker, options=PublishOptions(acknowledge=True, exclude_me=False))
            by_worker[worker].append(pub.id)
        everything = sorted(by_worker[0] + by_worker[1])
        for inbox in inboxes.values():
            received = [(await inbox.next())[1]["details"].publication for _ in everything]
            assert sorted(received) == everything
            for published in by_worker.values():  # each publisher's order
                assert [p for p in received if p in published] == published
        kept = (await sessions[1].call(uris.HISTORY_GET, topic))["events"]
        assert [e["seq"] for e in kept] == [1, 2, 3, 4, 5]
        recorded = [e["publication"] for e in kept]
        assert sorted(recorded) == everything
        for worker, published in by_worker.items():
            assert [p for p in recorded if p in published] == published
            assert all(e["args"] == [worker] for e in kept if e["publication"] in published)
        after_first = await sessions[0].call(uris.HISTORY_GET, topic, after=recorded[0])
        assert [e["publication"] for e in after_first["events"]] == recorded[1:]
        assert after_first["recovered"] is True


@pytest_twisted.ensureDeferred
async def test_the_agents_answer_the_node_only(reactor: Any, two_workers: RunningNode) -> None:
    """A client whose role may call every URI still cannot use a worker's agent: not_authorized, and its
    target session stays open."""
    caller, victim = add_user(two_workers, role="everything"), add_user(two_workers)
    async with ticket(reactor, two_workers, caller) as c, ticket(reactor, two_workers, victim) as v:
        for procedure, args in (
            (meta_uri(1), ("wamp.session.kill_by_authid", victim.authid)),
            (roles_uri(1), ({}, [])),
        ):
            with pytest.raises(ApplicationError) as refused:
                await c.call(procedure, *args)
            assert refused.value.error == uris.NOT_AUTHORIZED
        assert v.is_attached()


@pytest_twisted.ensureDeferred
async def test_metrics_sum_every_worker_counting_each_call_once(reactor: Any, two_workers: RunningNode) -> None:
    """/metrics of the first worker sums both workers: the anonymous sessions of both are in the sessions
    gauge (the links are not), and sys.info called from a session on each worker counts once per call, not
    once more for the link that carried it; the exposition says it holds two workers."""
    base = http_base(two_workers)
    admin = add_user(two_workers, role="admin")
    calls = ("switchboard_calls_total", (("procedure", app.SYS_INFO),))
    async with (
        ticket(reactor, two_workers, admin) as a,
        on_each_worker(a, lambda: session(reactor, two_workers.url)) as sessions,
    ):
        listed = (await a.call(uris.ADMIN_SESSION_LIST))["sessions"]
        anonymous = sum(1 for s in listed if s["authrole"] == "anonymous")
        before = await scrape_until(reactor, base, lambda now: anonymous_sessions(now) == anonymous)
        assert before[("switchboard_workers_scraped", ())] == 2
        assert not [
            labels for (name, labels) in before if name == "switchboard_sessions" and ("authrole", LINK_ROLE) in labels
        ]
        for s in sessions.values():
            await s.call(app.SYS_INFO)
        expected = before.get(calls, 0) + len(sessions)
        after = await scrape_until(reactor, base, lambda now: now.get(calls, 0) >= expected)
        await task.deferLater(reactor, 1.2, lambda: None)  # one exposition later: nothing counted twice
        assert (await scrape(base))[calls] == after[calls] == expected


@pytest_twisted.ensureDeferred
async def test_the_login_throttle_holds_for_the_node_not_per_worker(reactor: Any, two_workers: RunningNode) -> None:
    """Twelve wrong passwords for one user from one address, spread over both workers by the kernel: at most
    per_authid (5) rounded up to a multiple of the workers (6) are checked, the rest refused by the throttle
    (with the whole limit in each worker, up to 10 would be checked)."""
    base = http_base(two_workers)
    victim = add_user(two_workers)
    refusals = ("switchboard_login_throttle_refusals_total", ())
    before = (await scrape(base)).get(refusals, 0)
    for _ in range(12):
        with pytest.raises(JoinRefused) as refused:
            async with session(reactor, two_workers.url, authmethod="ticket", authid=victim.authid, ticket="wrong"):
                pass
        assert refused.value.reason == uris.NOT_AUTHORIZED
    # At least 6 refused (more when the kernel gave one worker fewer than its 3: those it checks all).
    after = await scrape_until(reactor, base, lambda now: now.get(refusals, 0) >= before + 12 - 6)
    assert after[refusals] - before >= 12 - 6


@pytest_twisted.ensureDeferred
async def test_no_client_registers_what_could_take_the_agents_calls(reactor: Any, two_workers: RunningNode) -> None:
    """A role allowed to register everything still cannot register the agents' URIs, nor a prefix or
    wildcard that covers them (which would take their calls while a link reconnects): not_authorized; an
    ordinary registration of the same session works."""
    user = add_user(two_workers, role="everything")
    async with ticket(reactor, two_workers, user) as s:
        for uri, match in (
            (meta_uri(1), "exact"),
            ("", "prefix"),
            ("switchboard.no", "prefix"),
            ("switchboard..x", "wildcard"),
        ):
            with pytest.raises(ApplicationError) as refused:
                await s.register(lambda *a: None, uri, options=RegisterOptions(match=match))
            assert refused.value.error == uris.NOT_AUTHORIZED, (uri, match)
        await s.register(lambda: "mine", f"app.own{uuid.uuid4().hex[:8]}")


@pytest_twisted.ensureDeferred
async def test_the_cli_closes_a_disabled_users_sessions_in_every_worker(reactor: Any, two_workers: RunningNode) -> None:
    """`switchboard user disable` on the node's data directory closes the user's sessions on both workers
    before it returns (the control socket reaches the second through its agent)."""
    admin, user = add_user(two_workers, role="admin"), add_user(two_workers)
    config = two_workers.data_dir.parent / "switchboard.json"
    async with (
        ticket(reactor, two_workers, admin) as a,
        on_each_worker(a, lambda: ticket(reactor, two_workers, user)) as sessions,
    ):
        args = ("user", "disable", user.authid, "--config", str(config), "--data-dir", str(two_workers.data_dir))
        result = await threads.deferToThread(switchboard, *args)
        assert result.returncode == 0, result.stderr
        for s in sessions.values():
            await wait(s.left, reactor, timeout=5.0)
            assert s.close_reason == uris.CREDENTIALS_REVOKED
