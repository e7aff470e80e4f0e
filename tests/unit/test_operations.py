"""The operations endpoints' logic: config, compilation, readiness runs and the bearer token (pure; no node)."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.web.server import NOT_DONE_YET

from router.compile import compile_node
from router.config import ConfigError, parse_config
from router.operations import CHECK_TIMEOUT, READY_MAX_AGE, Readiness, bearer_matches
from tests.conftest import demo_document

SOCKET = "/run/sb/.crossbar/control.sock"
STORE = "/run/sb/users.sqlite3"


def parsed(operations: dict[str, Any] | None, tmp_path: Path, **top: Any) -> Any:
    doc = demo_document()
    doc.pop("operations", None)
    if operations is not None:
        doc["operations"] = operations
    doc.update(top)
    return parse_config(doc, base_dir=tmp_path)


def problems(operations: dict[str, Any], tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parsed(operations, tmp_path)
    return [str(p) for p in raised.value.problems]


def transports(config: Any) -> dict[str, Any]:
    compiled = compile_node(config, control_socket=SOCKET, store_path=STORE)
    return {t["id"]: t for t in compiled["workers"][0]["transports"]}


def test_without_the_key_no_endpoint_is_served(tmp_path: Path) -> None:
    """No ``operations``: no endpoint on any listener, and no counting for metrics in the worker."""
    config = parsed(None, tmp_path)
    assert config.operations is None
    assert set(transports(config)["transport_main"]["paths"]) == {"ws", "/"}
    bootstrap = compile_node(config, control_socket=SOCKET, store_path=STORE)["workers"][0]["components"][0]
    assert bootstrap["extra"]["metrics"] is None


def test_defaults_serve_three_endpoints_on_the_first_websocket_listener(tmp_path: Path) -> None:
    """``{}`` serves /health, /ready and /metrics on the main listener's port, beside the WebSocket path."""
    config = parsed({}, tmp_path)
    assert config.operations.listener == "main"
    assert config.operations.paths == {"health": "/health", "ready": "/ready", "metrics": "/metrics"}
    paths = transports(config)["transport_main"]["paths"]
    assert {k: v["extra"]["endpoint"] for k, v in paths.items() if k in ("health", "ready", "metrics")} == {
        "health": "health",
        "ready": "ready",
        "metrics": "metrics",
    }
    assert paths["ready"]["extra"]["control_socket"] == SOCKET
    assert paths["ready"]["extra"]["store"] == STORE
    assert [c["class"] for c in paths["ready"]["extra"]["components"]] == [
        "router.channels.service.ChannelComponent",
        "router.admin.AdminComponent",
        "components.chat.ChatComponent",
        "components.system.SystemComponent",
    ]
    assert paths["metrics"]["extra"]["token_sha256"] is None
    assert config.operations_url == "http://127.0.0.1:8080"


def test_a_listener_of_their_own_is_http_only(tmp_path: Path) -> None:
    """With ``port`` the endpoints get a web transport with only their paths (no WAMP), and the main listener
    none; a null path is not served and metrics counting is off without /metrics."""
    config = parsed({"port": 9100, "host": "127.0.0.2", "metrics": None}, tmp_path)
    found = transports(config)
    assert "health" not in found["transport_main"]["paths"]
    own = found["transport_operations"]
    assert own["endpoint"] == {"type": "tcp", "interface": "127.0.0.2", "port": 9100}
    assert set(own["paths"]) == {"health", "ready"}
    bootstrap = compile_node(config, control_socket=SOCKET, store_path=STORE)["workers"][0]["components"][0]
    assert bootstrap["extra"]["metrics"] is None
    assert config.operations_url == "http://127.0.0.2:9100"


def test_crossbar_accepts_both_placements(tmp_path: Path) -> None:
    """Crossbar's own config checker accepts the endpoints on a WebSocket listener and on their own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from crossbar.personality import Personality

    for operations in ({}, {"port": 9100}):
        compiled = compile_node(parsed(operations, tmp_path), control_socket=SOCKET, store_path=STORE)
        Personality.check_config(Personality, compiled)


def test_the_token_is_compiled_as_its_digest(tmp_path: Path) -> None:
    """The compiled config holds the SHA-256 of the token file's content (whitespace stripped), never the token."""
    (tmp_path / "metrics.token").write_text("  s3cret-token\n")
    config = parsed({"metrics_token_file": "metrics.token", "max_procedure_labels": 7}, tmp_path)
    compiled = compile_node(config, control_socket=SOCKET, store_path=STORE)
    paths = compiled["workers"][0]["transports"][0]["paths"]
    assert paths["metrics"]["extra"]["token_sha256"] == hashlib.sha256(b"s3cret-token").hexdigest()
    assert "s3cret-token" not in str(compiled)
    assert compiled["workers"][0]["components"][0]["extra"]["metrics"] == {"max_procedures": 7}


@pytest.mark.parametrize(
    ("operations", "expected"),
    [
        ({"listener": "main", "port": 9100}, "/operations/port: either `listener` or `port`, not both"),
        ({"listener": "nope"}, "/operations/listener: no `websocket` listener named 'nope' (there are: 'main')"),
        ({"health": "/ws"}, "/operations/health: '/ws' is already the listener's WebSocket path"),
        ({"ready": "/"}, "/operations/ready: '/' does not match '^/[A-Za-z0-9_-]+$'"),
        ({"metrics": "/health"}, "/operations/metrics: '/health' is already the `health` endpoint"),
        ({"port": 8080}, "/operations/port: 127.0.0.1:8080 is already used by /listen/0"),
        ({"health": "/a/b"}, "/operations/health: '/a/b' does not match '^/[A-Za-z0-9_-]+$'"),
        ({"max_procedure_labels": -1}, "/operations/max_procedure_labels: -1 is less than the minimum of 0"),
        ({"extra": 1}, "/operations/extra: unknown key"),
    ],
)
def test_bad_operations_are_pointed_at(operations: dict[str, Any], expected: str, tmp_path: Path) -> None:
    """Each mistake is reported at its key."""
    found = problems(operations, tmp_path)
    assert any(p.startswith(expected) for p in found), found


def test_a_web_mount_is_not_shadowed(tmp_path: Path) -> None:
    """An endpoint path that is already a `web` mount of the listener is refused."""
    doc = demo_document()
    doc["listen"][0]["web"]["/health"] = doc["listen"][0]["web"]["/"]
    doc["operations"] = {}
    with pytest.raises(ConfigError) as raised:
        parse_config(doc, base_dir=tmp_path)
    assert [str(p) for p in raised.value.problems] == [
        "/operations/health: '/health' is already a `web` mount of the listener"
    ]


def test_a_rawsocket_listener_cannot_serve_them(tmp_path: Path) -> None:
    """Only a WebSocket listener (an HTTP server) can carry the endpoints; with none, give them a port."""
    doc = demo_document()
    doc["listen"] = [{"name": "raw", "type": "rawsocket", "port": 0, "auth": {"anonymous": {"role": "anonymous"}}}]
    doc["operations"] = {}
    with pytest.raises(ConfigError) as raised:
        parse_config(doc, base_dir=tmp_path)
    assert [str(p) for p in raised.value.problems] == [
        "/operations: no `websocket` listener to serve the endpoints on: add one or give a `port`"
    ]
    doc["operations"] = {"port": 0}
    assert parse_config(doc, base_dir=tmp_path).operations.url == "http://127.0.0.1:0"


def test_the_token_file_must_hold_a_token(tmp_path: Path) -> None:
    """A missing or blank token file is refused at its key."""
    assert problems({"metrics_token_file": "missing.token"}, tmp_path)[0].startswith(
        "/operations/metrics_token_file: cannot read"
    )
    (tmp_path / "blank.token").write_text(" \n")
    assert problems({"metrics_token_file": "blank.token"}, tmp_path) == [
        f"/operations/metrics_token_file: {tmp_path / 'blank.token'} is empty"
    ]


def test_bearer_token_matching() -> None:
    """Only ``Bearer <the token>`` matches (scheme in any case); anything else does not."""
    digest = hashlib.sha256(b"tok").hexdigest()
    assert bearer_matches(b"Bearer tok", digest)
    assert bearer_matches(b"bearer tok", digest)
    for header in (None, b"", b"Bearer", b"Bearer ", b"Basic tok", b"Bearer tok2", b"Bearertok"):
        assert not bearer_matches(header, digest), header


class Checks:
    """Named checks whose answers the test gives, counting how often each ran."""

    def __init__(self) -> None:
        self.runs = 0
        self.pending: list[defer.Deferred[str | None]] = []

    async def check(self) -> str | None:
        self.runs += 1
        d: defer.Deferred[str | None] = defer.Deferred()
        self.pending.append(d)
        return await d


def test_concurrent_requests_share_one_run_and_reuse_it_for_a_second() -> None:
    """Three requests while a run is in progress share it; within READY_MAX_AGE the result is reused; after,
    the checks run again."""
    clock, checks = task.Clock(), Checks()
    readiness = Readiness(clock, {"session": checks.check})
    answers: list[dict[str, Any]] = []
    for _ in range(3):
        readiness.state().addCallback(answers.append)
    assert checks.runs == 1
    assert answers == []
    checks.pending.pop().callback(None)
    assert answers == [{"ready": True, "checks": {"session": {"ok": True}}}] * 3
    clock.advance(READY_MAX_AGE / 2)
    readiness.state().addCallback(answers.append)
    assert checks.runs == 1
    assert len(answers) == 4
    clock.advance(READY_MAX_AGE)
    readiness.state().addCallback(answers.append)
    assert checks.runs == 2
    checks.pending.pop().callback("user store: unable to open database file")
    assert answers[-1] == {
        "ready": False,
        "checks": {"session": {"ok": False, "reason": "user store: unable to open database file"}},
    }


def test_a_check_that_hangs_or_breaks_fails_with_a_reason() -> None:
    """A check with no answer within CHECK_TIMEOUT fails as such; one that raises fails with the error's
    name; the others still count."""
    clock, hanging = task.Clock(), Checks()

    async def broken() -> str | None:
        raise ConnectionRefusedError("refused")

    async def fine() -> str | None:
        return None

    readiness = Readiness(clock, {"session": hanging.check, "store": broken, "components": fine})
    answers: list[dict[str, Any]] = []
    readiness.state().addCallback(answers.append)
    assert answers == []
    clock.advance(CHECK_TIMEOUT)
    assert answers == [
        {
            "ready": False,
            "checks": {
                "session": {"ok": False, "reason": f"no answer within {CHECK_TIMEOUT:g} s"},
                "store": {"ok": False, "reason": "ConnectionRefusedError"},
                "components": {"ok": True},
            },
        }
    ]


def test_an_exposition_is_reused_for_a_second() -> None:
    """Requests within METRICS_MAX_AGE get the same exposition, made once; after it, a new one. A request
    without the token makes none."""
    from twisted.web.test.requesthelper import DummyRequest

    from router.operations import METRICS_MAX_AGE, Metrics

    clock, made = task.Clock(), []

    def render() -> tuple[bytes, str]:
        made.append(clock.seconds())
        return f"switchboard_x {len(made)}\n".encode(), "text/plain; version=0.0.4"

    endpoint = Metrics(hashlib.sha256(b"tok").hexdigest(), clock, render)
    authorized = {b"authorization": [b"Bearer tok"]}

    def get(headers: dict[bytes, list[bytes]]) -> tuple[int, bytes]:
        request = DummyRequest([b""])
        for name, values in headers.items():
            request.requestHeaders.setRawHeaders(name, values)
        body = endpoint.render_GET(request)
        return request.responseCode or 200, body

    assert get({}) == (401, b'{"error": "a bearer token is required"}\n')
    assert made == []
    assert get(authorized) == (200, b"switchboard_x 1\n")
    clock.advance(METRICS_MAX_AGE / 2)
    assert get(authorized) == (200, b"switchboard_x 1\n")
    clock.advance(METRICS_MAX_AGE / 2)
    assert get(authorized) == (200, b"switchboard_x 2\n")
    assert made == [0.0, METRICS_MAX_AGE]


def test_an_exposition_made_later_answers_every_waiting_request_once() -> None:
    """With a render that returns a Deferred (several router workers), requests arriving meanwhile share one
    exposition, all answered when it is made; one already made answers at once; a failure answers 503."""
    from twisted.web.test.requesthelper import DummyRequest

    from router.operations import METRICS_MAX_AGE, Metrics

    clock = task.Clock()
    pending: list[defer.Deferred[tuple[bytes, str]]] = []

    def render() -> defer.Deferred[tuple[bytes, str]]:
        pending.append(defer.Deferred())
        return pending[-1]

    endpoint = Metrics(None, clock, render)
    first, second = DummyRequest([b""]), DummyRequest([b""])
    assert endpoint.render_GET(first) is NOT_DONE_YET
    assert endpoint.render_GET(second) is NOT_DONE_YET
    assert len(pending) == 1
    pending[0].callback((b"switchboard_x 1\n", "text/plain"))
    assert [b"".join(r.written) for r in (first, second)] == [b"switchboard_x 1\n"] * 2
    assert (first.finished, second.finished) == (1, 1)

    clock.advance(METRICS_MAX_AGE)
    made = Metrics(None, clock, lambda: defer.succeed((b"switchboard_x 2\n", "text/plain")))
    at_once = DummyRequest([b""])
    assert made.render_GET(at_once) is NOT_DONE_YET
    assert (b"".join(at_once.written), at_once.finished) == (b"switchboard_x 2\n", 1)

    failing = Metrics(None, clock, lambda: defer.fail(RuntimeError("no worker")))
    broken = DummyRequest([b""])
    failing.render_GET(broken)
    assert (broken.responseCode, broken.finished) == (503, 1)
