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
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from components import uris as app
from router import uris
from router.cli_node import inspect_node
from router.control import control_session
from router.launch import RunningNode
from router.testkit import Inbox, session, start_node, wait
from tests.conftest import demo_document, running, write_config
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
    """The readiness report has the second worker, ready: its agent reaches the first worker over the link."""
    async with control_session(reactor, two_workers.control_socket, "demo") as s:
        report = await s.call(uris.NODE_COMPONENTS)
    assert {"class": "router worker 1", "realm": "demo", "state": "ready", "reason": None} in report


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
        components = 3  # chat, system and the admin API: sessions of the first worker, not trusted
        assert listed >= components + 3


@pytest_twisted.ensureDeferred
async def test_channel_history_records_publications_of_every_worker(reactor: Any, two_workers: RunningNode) -> None:
    """Publications to a history channel from a session on either worker reach subscribers on both with one
    publication id, and the history (kept by the first worker) numbers them in order under that id, so a
    recovery by publication id works whichever worker the client is on."""
    admin = add_user(two_workers, role="admin")
    topic = f"{CHANNEL}.t{uuid.uuid4().hex[:8]}"
    async with (
        ticket(reactor, two_workers, admin) as a,
        on_each_worker(a, lambda: session(reactor, two_workers.url)) as sessions,
    ):
        inboxes = {worker: Inbox(reactor) for worker in sessions}
        for worker, s in sessions.items():
            await s.subscribe(inboxes[worker], topic, options=SubscribeOptions(details=True))
        published = []
        for worker in (1, 0, 1):
            pub = await sessions[worker].publish(topic, f"from {worker}", options=PublishOptions(acknowledge=True))
            published.append(pub.id)
        for inbox in inboxes.values():
            received = [await inbox.next() for _ in published]
            assert [r[1]["details"].publication for r in received] == published
        kept = await sessions[1].call(uris.HISTORY_GET, topic)
        assert [(e["publication"], e["seq"], e["args"]) for e in kept["events"]] == [
            (pub, seq, [f"from {worker}"])
            for seq, (pub, worker) in enumerate(zip(published, (1, 0, 1), strict=True), 1)
        ]
        after_first = await sessions[0].call(uris.HISTORY_GET, topic, after=published[0])
        assert [e["publication"] for e in after_first["events"]] == published[1:]
        assert after_first["recovered"] is True
