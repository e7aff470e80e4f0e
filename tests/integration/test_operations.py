"""The operations endpoints on real nodes: /health, /ready and /metrics over HTTP (the standard library's
client, in a thread), WAMP sessions with autobahn."""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import task, threads

from router.launch import RunningNode
from router.testkit import session, start_node
from tests.conftest import demo_document, running, write_config

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "metrics-token-for-the-test"


def get(base: str, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    """One HTTP request (blocking, bounded): status, headers, body."""
    parsed = urlparse(base)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


async def aget(base: str, path: str, **kwargs: Any) -> tuple[int, Any, bytes]:
    """:func:`get` in a thread, so the test's reactor (and its WAMP sessions) keep running."""
    result: tuple[int, Any, bytes] = await threads.deferToThread(get, base, path, **kwargs)
    return result


async def ready_becomes(reactor: Any, base: str, status: int, timeout: float = 15) -> dict[str, Any]:
    """Poll /ready until it answers ``status`` (bounded); its JSON body."""
    deadline = reactor.seconds() + timeout
    while True:
        code, _, body = await aget(base, "/ready")
        if code == status:
            answer: dict[str, Any] = json.loads(body)
            return answer
        assert reactor.seconds() < deadline, f"/ready still {code}: {body!r}"
        await task.deferLater(reactor, 0.2, lambda: None)


def http_base(node: RunningNode) -> str:
    url = node.config.operations_url
    assert url is not None
    return url


def test_the_demo_node_serves_health_ready_and_metrics(demo_node: RunningNode) -> None:
    """On the demo node's own port: /health and /ready answer 200 with JSON, HEAD too, other methods are
    refused, and /metrics answers Prometheus text with the worker's process figures."""
    base = http_base(demo_node)
    assert base.endswith(f":{demo_node.config.main_transport.port}")
    status, headers, body = get(base, "/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    status, _, body = get(base, "/ready")
    assert status == 200, body
    assert json.loads(body) == {
        "ready": True,
        "checks": {"session": {"ok": True}, "store": {"ok": True}, "components": {"ok": True}},
    }
    assert get(base, "/health", method="HEAD")[::2] == (200, b"")
    assert get(base, "/ready", method="POST")[0] == 405
    status, headers, body = get(base, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b"\nswitchboard_process_resident_memory_bytes " in body
    assert b"switchboard_" in body


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


Scraped = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(base: str) -> Scraped:
    status, _, body = await aget(base, "/metrics")
    assert status == 200
    return samples(body)


def anonymous_sessions(scraped: Scraped) -> float:
    return sum(
        value
        for (name, labels), value in scraped.items()
        if name == "switchboard_sessions" and ("authrole", "anonymous") in labels and ("realm", "demo") in labels
    )


async def scrape_until(reactor: Any, base: str, holds: Any, timeout: float = 10) -> Scraped:
    """Scrape until ``holds(samples)`` (an exposition is reused for a second: router.operations), bounded."""
    deadline = reactor.seconds() + timeout
    while True:
        scraped = await scrape(base)
        if holds(scraped):
            return scraped
        assert reactor.seconds() < deadline, "the metrics did not change as expected"
        await task.deferLater(reactor, 0.2, lambda: None)


@pytest_twisted.ensureDeferred
async def test_metrics_move_as_sessions_join_and_calls_are_made(reactor: Any, demo_node: RunningNode) -> None:
    """A session joining raises the sessions gauge of its realm and role and the joins counter; three calls of
    sys.info count three calls of that procedure and at least three CALL messages in; leaving lowers the gauge."""
    base = http_base(demo_node)
    before = await scrape(base)
    calls = ("switchboard_calls_total", (("procedure", "sys.info"),))
    joins = ("switchboard_session_joins_total", (("realm", "demo"),))
    call_messages = ("switchboard_messages_in_total", (("type", "CALL"),))
    async with session(reactor, demo_node.url) as s:
        for _ in range(3):
            await s.call("sys.info")
        during = await scrape_until(reactor, base, lambda now: now.get(calls, 0) > before.get(calls, 0))
    assert anonymous_sessions(during) == anonymous_sessions(before) + 1
    assert during[calls] == before.get(calls, 0) + 3
    assert during[joins] >= before.get(joins, 0) + 1
    assert during[call_messages] >= before.get(call_messages, 0) + 3
    await scrape_until(reactor, base, lambda now: anonymous_sessions(now) == anonymous_sessions(before))


@pytest.fixture(scope="module")
def ops_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """The demo config with a component that leaves when asked, the endpoints on a listener of their own
    (port 0) and /metrics behind a token."""
    tmp = tmp_path_factory.mktemp("ops")
    (tmp / "metrics.token").write_text(TOKEN + "\n")
    doc = demo_document()
    doc["pythonpath"] = [str(FIXTURES)]
    doc["components"].append({"class": "leaving_component.LeavesOnRequest", "realm": "demo", "role": "backend"})
    doc["realms"][0]["roles"]["backend"]["allow"].append({"uri": "test.leave", "actions": ["register"]})
    doc["realms"][0]["roles"]["anonymous"]["allow"].append({"uri": "test.leave", "actions": ["call"]})
    doc["operations"] = {"port": 0, "metrics_token_file": "metrics.token"}
    with running(start_node(reactor, write_config(tmp, doc), tmp / "data")) as node:
        yield node


def test_a_listener_of_their_own_serves_only_them(ops_node: RunningNode) -> None:
    """The endpoints are on their own port, which speaks no WAMP; the main listener no longer has them."""
    base = http_base(ops_node)
    assert urlparse(base).port != ops_node.config.main_transport.port
    assert get(base, "/health")[0] == 200
    assert get(base, "/ws")[0] == 404
    main = f"http://127.0.0.1:{ops_node.config.main_transport.port}"
    assert get(main, "/health")[0] == 404


def test_metrics_need_the_token(ops_node: RunningNode) -> None:
    """With a token file, /metrics answers 401 (asking for a bearer token) without it or with another one,
    and the figures with it; /health and /ready need none."""
    base = http_base(ops_node)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        status, answer_headers, body = get(base, "/metrics", headers=headers)
        assert status == 401, headers
        assert answer_headers["www-authenticate"] == 'Bearer realm="metrics"'
        assert b"switchboard_" not in body
    status, _, body = get(base, "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    assert b"\nswitchboard_process_resident_memory_bytes " in body


@pytest_twisted.ensureDeferred
async def test_ready_fails_when_the_store_cannot_be_read(reactor: Any, ops_node: RunningNode) -> None:
    """With the user store gone, /ready answers 503 naming the store (and only the store); back, 200."""
    base = http_base(ops_node)
    await ready_becomes(reactor, base, 200)
    moved = ops_node.store_path.with_name("moved-away.sqlite3")
    os.rename(ops_node.store_path, moved)
    try:
        answer = await ready_becomes(reactor, base, 503)
    finally:
        os.rename(moved, ops_node.store_path)
    assert answer["ready"] is False
    assert answer["checks"]["session"] == {"ok": True}
    assert answer["checks"]["components"] == {"ok": True}
    assert answer["checks"]["store"]["ok"] is False
    assert answer["checks"]["store"]["reason"].startswith("user store: ")
    await ready_becomes(reactor, base, 200)


@pytest_twisted.ensureDeferred
async def test_ready_fails_when_a_component_stops_serving(reactor: Any, ops_node: RunningNode) -> None:
    """A hosted component that leaves its realm makes /ready answer 503 naming it, while /health stays 200.
    (Last in the module: the component does not come back.)"""
    base = http_base(ops_node)
    await ready_becomes(reactor, base, 200)
    async with session(reactor, ops_node.url) as s:
        assert await s.call("test.leave") == "leaving"
    answer = await ready_becomes(reactor, base, 503)
    assert answer["checks"]["components"] == {"ok": False, "reason": "leaving_component.LeavesOnRequest left"}
    assert answer["checks"]["session"] == {"ok": True}
    assert (await aget(base, "/health"))[0] == 200
