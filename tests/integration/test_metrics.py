"""``/metrics`` of a real node moves with what clients do (docs/operations.md#metrics): sessions, joins,
messages, calls and call errors by procedure (bounded), publishes and deliveries, logins, channel history
and presence, the worker process."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, task, threads

from router.config import load_config
from router.launch import RunningNode, launch, with_port
from router.operations import METRICS_MAX_AGE
from router.testkit.sessions import JoinRefused, session
from tests.conftest import demo_document, running, write_config
from tests.integration.users import add_user

pytestmark = pytest.mark.integration

TIMEOUT = 15.0
#: operations.max_procedure_labels of the node.
MAX_PROCEDURES = 4

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def metrics_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """The demo config (chat, channels with history and presence), /metrics on its listener, 4 procedure
    labels at most, a role ``tester`` that may register and call ``mt.*``."""
    doc = demo_document()
    doc["operations"] = {"max_procedure_labels": MAX_PROCEDURES}
    doc["realms"][0]["roles"]["tester"] = {"allow": [{"uri": "mt", "match": "prefix", "actions": ["register", "call"]}]}
    tmp = tmp_path_factory.mktemp("metrics-node")
    config = with_port(load_config(write_config(tmp, doc)), 0)
    with running(launch(reactor, config, tmp / "data")) as node:
        yield node


def get_metrics(node: RunningNode) -> tuple[int, str | None, bytes]:
    """GET /metrics of ``node`` (blocking): status, content type, body."""
    parsed = urlparse(node.config.operations_url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=TIMEOUT)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        return response.status, response.getheader("content-type"), response.read()
    finally:
        connection.close()


async def scrape(reactor: Any, node: RunningNode) -> Samples:
    """Every sample of GET /metrics, keyed by (name, labels), parsed with prometheus_client's own parser."""
    status, content_type, body = await threads.deferToThread(get_metrics, node)
    assert status == 200
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


async def scrape_until(reactor: Any, node: RunningNode, done: Callable[[Samples], bool]) -> Samples:
    """Scrape until ``done`` holds (the endpoint renders at most once per METRICS_MAX_AGE), within TIMEOUT."""
    deadline = reactor.seconds() + TIMEOUT
    while True:
        samples = await scrape(reactor, node)
        if done(samples) or reactor.seconds() > deadline:
            return samples
        await task.deferLater(reactor, METRICS_MAX_AGE / 4, lambda: None)


async def fresh_scrape(reactor: Any, node: RunningNode) -> Samples:
    """A scrape rendered after everything done so far: the endpoint serves one rendering for up to
    METRICS_MAX_AGE seconds (router.operations), so this waits that long first (a known timer, not a race)."""
    await task.deferLater(reactor, METRICS_MAX_AGE, lambda: None)
    return await scrape(reactor, node)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    """The sum of every sample of ``name``."""
    return sum(v for (n, _), v in samples.items() if n == name)


@pytest_twisted.ensureDeferred
async def test_sessions_calls_and_deliveries_move(reactor: Any, metrics_node: RunningNode) -> None:
    """A subscriber and a caller of chat.send: the sessions gauge counts both while joined, joins and
    leaves count them, chat.send is counted (and its error for a bad argument), the publish reaches the
    subscriber as a delivery, the room gets history and a presence member; all drop back after they leave."""
    live = {"realm": "demo", "authrole": "anonymous", "transport": "websocket"}
    before = await fresh_scrape(reactor, metrics_node)
    room = f"m{uuid.uuid4().hex[:8]}"
    received: defer.Deferred[Any] = defer.Deferred()
    async with session(reactor, metrics_node.url) as listener, session(reactor, metrics_node.url) as caller:
        await listener.subscribe(lambda *a, **kw: received.callback(kw), f"chat.room.{room}")
        await caller.call("chat.send", room, "hello")
        await received.addTimeout(TIMEOUT, reactor)
        with pytest.raises(ApplicationError):
            await caller.call("chat.send", room, 42)
        during = await scrape_until(
            reactor,
            metrics_node,
            lambda s: value(s, "switchboard_sessions", **live) == value(before, "switchboard_sessions", **live) + 2,
        )
    after_leave = await scrape_until(
        reactor,
        metrics_node,
        lambda s: value(s, "switchboard_sessions", **live) == value(before, "switchboard_sessions", **live),
    )

    assert value(during, "switchboard_sessions", **live) == value(before, "switchboard_sessions", **live) + 2
    assert value(after_leave, "switchboard_sessions", **live) == value(before, "switchboard_sessions", **live)
    for name in ("switchboard_session_joins_total", "switchboard_session_leaves_total"):
        assert value(after_leave, name, realm="demo") >= value(before, name, realm="demo") + 2
    calls = "switchboard_calls_total", "switchboard_call_errors_total"
    assert total(during, calls[0]) >= total(before, calls[0]) + 2
    assert total(during, calls[1]) >= total(before, calls[1]) + 1
    assert value(during, "switchboard_messages_in_total", type="CALL") >= (
        value(before, "switchboard_messages_in_total", type="CALL") + 2
    )
    assert value(during, "switchboard_messages_in_total", type="SUBSCRIBE") >= 1
    assert value(during, "switchboard_messages_out_total", type="RESULT") >= 1
    assert value(during, "switchboard_messages_out_total", type="ERROR") >= 1
    assert value(during, "switchboard_deliveries_total", realm="demo") >= (
        value(before, "switchboard_deliveries_total", realm="demo") + 1
    )
    assert value(during, "switchboard_messages_out_total", type="EVENT") >= 1
    assert value(during, "switchboard_channel_history_topics", realm="demo") >= 1
    assert value(during, "switchboard_channel_presence_members", realm="demo") >= 1
    assert value(during, "switchboard_process_resident_memory_bytes") > 10_000_000
    assert value(during, "switchboard_process_open_fds") > 0


@pytest_twisted.ensureDeferred
async def test_procedure_labels_are_bounded(reactor: Any, metrics_node: RunningNode) -> None:
    """A client registers and calls 6 procedures of its own: at most max_procedure_labels procedures ever
    get their own label, the rest are counted under procedure="other"."""
    user = add_user(metrics_node, role="tester")
    prefix = f"mt.m{uuid.uuid4().hex[:8]}"
    before = await fresh_scrape(reactor, metrics_node)
    async with session(reactor, metrics_node.url, authmethod="ticket", authid=user.authid, ticket=user.password) as s:
        for i in range(6):
            await s.register(lambda: None, f"{prefix}.p{i}")
            await s.call(f"{prefix}.p{i}")
        calls = total(before, "switchboard_calls_total")
        samples = await scrape_until(reactor, metrics_node, lambda s: total(s, "switchboard_calls_total") >= calls + 6)
    labels = {dict(labels)["procedure"] for (name, labels) in samples if name == "switchboard_calls_total"}
    assert len(labels - {"other"}) <= MAX_PROCEDURES
    assert value(samples, "switchboard_calls_total", procedure="other") >= 6 - MAX_PROCEDURES
    assert sum(1 for label in labels if label.startswith(prefix)) <= MAX_PROCEDURES


@pytest_twisted.ensureDeferred
async def test_logins_are_counted_by_method_and_result(reactor: Any, metrics_node: RunningNode) -> None:
    """A ticket login that succeeds and one that fails move the two login counters of ticket."""
    user = add_user(metrics_node)
    before = await fresh_scrape(reactor, metrics_node)
    async with session(reactor, metrics_node.url, authmethod="ticket", authid=user.authid, ticket=user.password):
        pass
    with pytest.raises(JoinRefused):
        async with session(reactor, metrics_node.url, authmethod="ticket", authid=user.authid, ticket="wrong"):
            pass
    after = await scrape_until(
        reactor,
        metrics_node,
        lambda s: total(s, "switchboard_logins_total") >= total(before, "switchboard_logins_total") + 2,
    )
    for result in ("success", "failure"):
        labels = {"method": "ticket", "result": result}
        assert value(after, "switchboard_logins_total", **labels) == (
            value(before, "switchboard_logins_total", **labels) + 1
        )
