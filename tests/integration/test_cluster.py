"""Two real nodes linked over TCP by their ``cluster`` config (router.workers): calls, errors, identities and
events cross between them as within one node, and a node whose key the other does not list cannot link."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions
from twisted.internet import task

from router.control import control_session
from router.datadir import node_dir, prepare
from router.launch import RunningNode, node_public_key
from router.testkit import Inbox, session, start_node
from router.testkit.checks import NoEvent
from router.workers import LINK_ROLE
from tests.conftest import running, write_config

pytestmark = pytest.mark.integration

#: Seconds a link has to come up (it dials at once; a refused dial is retried by autobahn).
LINK_TIMEOUT = 20.0


def node_document(cluster: dict[str, Any]) -> dict[str, Any]:
    """One WebSocket listener, anonymous sessions may use everything under `app` (disclosed), and ``cluster``."""
    return {
        "listen": [
            {"name": "main", "type": "websocket", "port": 0, "auth": {"anonymous": {"role": "anonymous"}}},
        ],
        "realms": [
            {
                "name": "demo",
                "roles": {
                    "anonymous": {
                        "allow": [
                            {
                                "uri": "app",
                                "match": "prefix",
                                "actions": ["call", "register", "publish", "subscribe"],
                                "disclose": True,
                            }
                        ]
                    }
                },
            }
        ],
        "cluster": cluster,
    }


def key_of(data_dir: Path) -> str:
    prepare(data_dir)
    return node_public_key(node_dir(data_dir))


@contextlib.contextmanager
def linked_pair(reactor: Any, tmp: Path) -> Iterator[tuple[RunningNode, RunningNode]]:
    """Node ``b`` waits for links; node ``a`` dials it. Both know each other's key."""
    key_a, key_b = key_of(tmp / "a" / "data"), key_of(tmp / "b" / "data")
    doc_b = node_document({"name": "b", "port": 0, "peers": [{"name": "a", "key": key_a}]})
    with running(start_node(reactor, write_config(tmp / "b", doc_b), tmp / "b" / "data")) as b:
        assert b.config.cluster is not None
        url = f"tcp://127.0.0.1:{b.config.cluster.port}"
        doc_a = node_document({"name": "a", "port": 0, "peers": [{"name": "b", "key": key_b, "url": url}]})
        with running(start_node(reactor, write_config(tmp / "a", doc_a), tmp / "a" / "data")) as a:
            yield a, b


@pytest.fixture(scope="module")
def pair(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningNode, RunningNode]]:
    with linked_pair(reactor, tmp_path_factory.mktemp("cluster")) as nodes:
        yield nodes


async def links_joined(reactor: Any, node: RunningNode) -> int:
    """Link sessions joined to ``node``'s realm (the other nodes' dials)."""
    async with control_session(reactor, node.control_socket, "demo") as s:
        return len(await s.call("wamp.session.list", [LINK_ROLE]))


async def until_callable(reactor: Any, caller: Any, procedure: str) -> Any:
    """Call ``procedure`` until it is registered on the other node too (the link forwards registrations)."""
    deadline = reactor.seconds() + LINK_TIMEOUT
    while True:
        try:
            return await caller.call(procedure)
        except ApplicationError as e:
            if e.error != ApplicationError.NO_SUCH_PROCEDURE or reactor.seconds() > deadline:
                raise
        await task.deferLater(reactor, 0.1, lambda: None)


@pytest_twisted.ensureDeferred
async def test_calls_errors_and_identity_cross_the_link(reactor: Any, pair: tuple[RunningNode, RunningNode]) -> None:
    """A procedure of node b is called from node a: its result, its error (URI, args, kwargs) and the caller's
    identity as the callee sees it are those of a call within one node."""
    a, b = pair
    async with session(reactor, b.url) as callee, session(reactor, a.url) as caller:

        def whoami(details: Any = None) -> list[Any]:
            return [details.caller, details.caller_authrole]

        def fail() -> None:
            raise ApplicationError("app.error.refused", "no", code=7)

        await callee.register(whoami, "app.whoami", options=RegisterOptions(details_arg="details"))
        await callee.register(fail, "app.fail")
        assert await until_callable(reactor, caller, "app.whoami") == [caller.details.session, "anonymous"]
        with pytest.raises(ApplicationError) as failed:
            await caller.call("app.fail")
        assert (failed.value.error, failed.value.args, failed.value.kwargs) == (
            "app.error.refused",
            ("no",),
            {"code": 7},
        )


async def until_forwarded(reactor: Any, publisher: Any, inbox: Inbox, topic: str) -> None:
    """Publish ``"probe"`` on ``topic`` until ``inbox`` receives one: the subscription reached the other node."""
    deadline = reactor.seconds() + LINK_TIMEOUT
    while inbox.received == 0:
        assert reactor.seconds() < deadline, "no event crossed the link"
        publisher.publish(topic, "probe")
        await task.deferLater(reactor, 0.1, lambda: None)


async def next_number(inbox: Inbox, timeout: float = 10.0) -> int:
    """The next event of ``inbox`` that is not a probe (:class:`NoEvent` after ``timeout`` without one)."""
    while True:
        event = await inbox.next(timeout=timeout)
        if event != "probe":
            number: int = event
            return number


async def numbers(inbox: Inbox, count: int) -> list[int]:
    """The next ``count`` integer events of ``inbox``, skipping the probes."""
    return [await next_number(inbox) for _ in range(count)]


@pytest_twisted.ensureDeferred
async def test_events_cross_both_ways_once_and_in_order(reactor: Any, pair: tuple[RunningNode, RunningNode]) -> None:
    """A subscriber on each node receives what is published on the other: each event once, in order."""
    a, b = pair
    async with session(reactor, a.url) as on_a, session(reactor, b.url) as on_b:
        for publisher, subscriber in ((on_b, on_a), (on_a, on_b)):
            inbox = Inbox(reactor)
            topic = f"app.ordered{subscriber.details.session}"
            await subscriber.subscribe(inbox, topic)
            await until_forwarded(reactor, publisher, inbox, topic)
            for i in range(20):
                publisher.publish(topic, i)
            assert await numbers(inbox, 20) == list(range(20))
            with pytest.raises(NoEvent):  # no duplicate: nothing but late probes follow
                await next_number(inbox, timeout=0.5)


@pytest_twisted.ensureDeferred
async def test_only_listed_keys_link(reactor: Any, pair: tuple[RunningNode, RunningNode], tmp_path: Path) -> None:
    """A third node dialing b with a key b does not list never joins: b still has only a's link."""
    _, b = pair
    assert b.config.cluster is not None
    url = f"tcp://127.0.0.1:{b.config.cluster.port}"
    stranger = node_document({"name": "a", "port": 0, "peers": [{"name": "b", "key": "00" * 32, "url": url}]})
    node = await start_node(reactor, write_config(tmp_path, stranger), tmp_path / "data")
    try:
        await task.deferLater(reactor, 3.0, lambda: None)  # it dials at once and again after a refusal
        assert await links_joined(reactor, b) == 1
    finally:
        await node.stop()
