"""
The operators' HTTP endpoints, answered by the router worker: :func:`endpoint` is the Crossbar ``resource``
path service :mod:`router.compile` mounts for each path of the ``operations`` config.

- **health** answers ``200 {"status": "ok"}`` from the router worker's reactor: it proves the worker runs and
  is not blocked, nothing more (a liveness probe).
- **ready** answers ``200`` when the node serves: a probe session joins the first realm over the control
  socket (a real WAMP login through the router), the user store is readable, and every hosted component has
  started and is still joined; else ``503``, with the check that failed. The checks run at most once per
  :data:`READY_MAX_AGE` seconds and concurrent requests share one run, so a flood of requests costs one
  check per second; each check is bounded by :data:`CHECK_TIMEOUT`. The body names components by class and
  state only (the reason a component failed is in the log, not on a port anyone may reach).
- **metrics** answers the Prometheus text exposition of :mod:`router.metrics`; with a token configured, only
  to ``Authorization: Bearer <token>`` (else ``401``). The compiled config holds the token's SHA-256 only.
  An exposition is reused for :data:`METRICS_MAX_AGE` seconds, so a flood of requests costs one a second.

All three answer GET and HEAD only, with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.web import resource
from twisted.web.server import NOT_DONE_YET

from router.component import FAILED, LEFT, STARTING, component_report, start_records

__all__ = [
    "CHECK_TIMEOUT",
    "METRICS_MAX_AGE",
    "READY_MAX_AGE",
    "Health",
    "Metrics",
    "Readiness",
    "Ready",
    "bearer_matches",
    "endpoint",
    "node_exposition",
]

#: Seconds a readiness result is reused for.
READY_MAX_AGE = 1.0
#: Seconds each readiness check may take before it counts as failed.
CHECK_TIMEOUT = 2.0
#: Seconds a metrics exposition is reused for.
METRICS_MAX_AGE = 1.0

_log = Logger(namespace="switchboard.operations")

#: A check: None when it passes, else a short reason.
Check = Callable[[], Awaitable[str | None]]


def _answer(
    request: Any, code: int, body: Mapping[str, Any] | bytes, content_type: bytes = b"application/json"
) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", content_type)
    request.setHeader(b"cache-control", b"no-store")
    request.setHeader(b"x-content-type-options", b"nosniff")
    return body if isinstance(body, bytes) else json.dumps(body).encode() + b"\n"


class Health(resource.Resource):
    """``200 {"status": "ok"}``, from the worker's reactor."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        return _answer(request, 200, {"status": "ok"})

    render_HEAD = render_GET


class Readiness:
    """Runs named checks together, at most once per ``max_age`` seconds of ``clock``; concurrent callers of
    :meth:`state` share the run in progress."""

    def __init__(self, clock: Any, checks: Mapping[str, Check], max_age: float = READY_MAX_AGE) -> None:
        self._clock = clock
        self._checks = dict(checks)
        self._max_age = max_age
        self._last: dict[str, Any] | None = None
        self._last_at = 0.0
        self._waiting: list[defer.Deferred[dict[str, Any]]] | None = None

    def state(self) -> defer.Deferred[dict[str, Any]]:
        """``{"ready": bool, "checks": {name: {"ok": bool, "reason"?: str}}}``."""
        if self._last is not None and self._clock.seconds() - self._last_at < self._max_age:
            return defer.succeed(self._last)
        waiter: defer.Deferred[dict[str, Any]] = defer.Deferred()
        if self._waiting is None:
            self._waiting = [waiter]
            defer.ensureDeferred(self._run()).addBoth(self._settle)
        else:
            self._waiting.append(waiter)
        return waiter

    async def _run(self) -> dict[str, Any]:
        names = list(self._checks)
        outcomes = await defer.gatherResults(
            [defer.ensureDeferred(self._bounded(self._checks[name])) for name in names], consumeErrors=True
        )
        checks = {
            name: {"ok": True} if reason is None else {"ok": False, "reason": reason}
            for name, reason in zip(names, outcomes, strict=True)
        }
        return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}

    async def _bounded(self, check: Check) -> str | None:
        running = defer.ensureDeferred(_awaited(check))
        running.addTimeout(CHECK_TIMEOUT, self._clock)
        try:
            return await running
        except defer.TimeoutError:
            return f"no answer within {CHECK_TIMEOUT:g} s"
        except Exception as e:  # a check that broke is a failed check, named, not a 500
            return type(e).__name__

    def _settle(self, result: Any) -> None:
        waiting, self._waiting = self._waiting or [], None
        if isinstance(result, dict):
            self._last, self._last_at = result, self._clock.seconds()
        for waiter in waiting:
            if isinstance(result, dict):
                waiter.callback(result)
            else:
                waiter.errback(result)


async def _awaited(check: Check) -> str | None:
    return await check()


class Ready(resource.Resource):
    """``200`` or ``503`` with the :class:`Readiness` state as JSON."""

    isLeaf = True

    def __init__(self, readiness: Readiness) -> None:
        super().__init__()
        self._readiness = readiness

    def render_GET(self, request: Any) -> Any:
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def answer(state: dict[str, Any]) -> None:
            if not gone:
                request.write(_answer(request, 200 if state["ready"] else 503, state))
                request.finish()

        def broke(failure: Any) -> None:
            _log.failure("readiness check failed", failure)
            answer({"ready": False, "checks": {}})

        self._readiness.state().addCallbacks(answer, broke)
        return NOT_DONE_YET

    render_HEAD = render_GET


def bearer_matches(header: bytes | None, token_sha256: str) -> bool:
    """Whether an ``Authorization`` header value is ``Bearer <token>`` for the token of that SHA-256 (hex),
    compared in constant time."""
    if header is None:
        return False
    scheme, _, token = header.partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return False
    return hmac.compare_digest(hashlib.sha256(token.strip()).hexdigest(), token_sha256)


class Metrics(resource.Resource):
    """The Prometheus text exposition of :mod:`router.metrics`, behind a bearer token when one is set; made at
    most once per :data:`METRICS_MAX_AGE` seconds of ``clock`` (walking every session costs milliseconds on a
    busy node: a flood of requests must not). ``render`` makes it: ``(body, content type)``, or a Deferred of
    them (the node's exposition with more than one router worker, :func:`node_exposition`); requests arriving
    while one is being made wait for it."""

    isLeaf = True

    def __init__(
        self,
        token_sha256: str | None,
        clock: Any,
        render: Callable[[], tuple[bytes, str] | defer.Deferred[tuple[bytes, str]]] | None = None,
    ) -> None:
        super().__init__()
        self._token_sha256 = token_sha256
        self._clock = clock
        self._render = render
        self._made: tuple[float, bytes, str] | None = None
        self._making: defer.Deferred[Any] | None = None
        self._waiting: list[tuple[Any, list[bool]]] = []

    def render_GET(self, request: Any) -> Any:
        if self._token_sha256 is not None and not bearer_matches(
            request.getHeader(b"authorization"), self._token_sha256
        ):
            request.setHeader(b"www-authenticate", b'Bearer realm="metrics"')
            return _answer(request, 401, {"error": "a bearer token is required"})
        now = self._clock.seconds()
        if self._made is not None and now - self._made[0] < METRICS_MAX_AGE:
            return self._body(request)
        if self._render is None:
            from router.metrics import exposition

            self._render = exposition
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        if self._making is None:
            made = self._render()
            if not isinstance(made, defer.Deferred):
                self._made = (now, *made)
                return self._body(request)
            self._making = made
            self._waiting.append((request, gone))
            # Set up after the request waits: a Deferred that has already fired answers it right here.
            made.addCallback(self._keep, now).addErrback(self._broke)
            return NOT_DONE_YET
        self._waiting.append((request, gone))
        return NOT_DONE_YET

    render_HEAD = render_GET

    def _body(self, request: Any) -> bytes:
        assert self._made is not None  # noqa: S101 - only called once made
        _, body, content_type = self._made
        return _answer(request, 200, body, content_type.encode())

    def _keep(self, made: tuple[bytes, str], now: float) -> None:
        self._made = (now, *made)
        self._answer_waiting(self._body)

    def _broke(self, failure: Any) -> None:
        _log.failure("metrics exposition failed", failure)
        self._answer_waiting(lambda request: _answer(request, 503, {"error": "metrics unavailable"}))

    def _answer_waiting(self, answer: Callable[[Any], bytes]) -> None:
        waiting, self._waiting, self._making = self._waiting, [], None
        for request, gone in waiting:
            if not gone:  # the client did not hang up meanwhile
                request.write(answer(request))
                request.finish()


async def node_exposition(reactor: Any, extra: Mapping[str, Any]) -> tuple[bytes, str]:
    """The exposition of every router worker of the node (:mod:`router.workers`), summed: this worker's, and
    each other's from its agent over a session of the control socket (each answer bounded by
    :data:`CHECK_TIMEOUT`). ``switchboard_workers_scraped`` says how many workers it holds."""
    from router.control import control_session
    from router.metrics import CONTENT_TYPE, exposition, merged
    from router.workers import metrics_uri

    texts = [exposition()[0].decode()]
    try:
        async with control_session(reactor, extra["control_socket"], extra["realm"], CHECK_TIMEOUT) as session:
            for worker in range(1, extra["workers"]):
                asked = session.call(metrics_uri(worker))
                asked.addTimeout(CHECK_TIMEOUT, reactor)
                texts.append(await asked)
    except Exception as e:  # a worker that does not answer is left out, and counted as such
        _log.warn("metrics of a router worker unavailable: {error}", error=e)
    scraped = (
        "# HELP switchboard_workers_scraped Router workers whose metrics this exposition sums.\n"
        "# TYPE switchboard_workers_scraped gauge\n"
        f"switchboard_workers_scraped {len(texts)}\n"
    )
    return merged([*texts, scraped]), CONTENT_TYPE


def component_problems(configured: Sequence[Mapping[str, str]]) -> str | None:
    """None when every hosted component started and is still joined, else which are not (class and state)."""
    report = component_report(configured, start_records())
    bad = [f"{c['class']} {c['state']}" for c in report if c["state"] in (STARTING, FAILED, LEFT)]
    return ", ".join(bad) if bad else None


def store_readable(path: str) -> str | None:
    """None when the user store at ``path`` answers a read (blocking: run it in a thread)."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=CHECK_TIMEOUT / 2)
        try:
            connection.execute("SELECT count(*) FROM users").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as e:
        return f"user store: {e}"
    return None


def readiness(reactor: Any, extra: Mapping[str, Any]) -> Readiness:
    """The node's :class:`Readiness`: the probe session, the store and the components of ``extra``."""
    from router.probe import join_once

    async def session() -> str | None:
        await join_once(reactor, extra["control_socket"], extra["realm"], timeout=CHECK_TIMEOUT)
        return None

    async def store() -> str | None:
        reason: str | None = await threads.deferToThreadPool(
            reactor, reactor.getThreadPool(), store_readable, extra["store"]
        )
        return reason

    async def components() -> str | None:
        return component_problems(extra["components"])

    checks: dict[str, Check] = {"session": session, "store": store, "components": components}
    if extra.get("workers", 1) > 1:

        async def workers() -> str | None:
            return await unlinked_workers(reactor, extra)

        checks["workers"] = workers
    return Readiness(reactor, checks)


async def unlinked_workers(reactor: Any, extra: Mapping[str, Any]) -> str | None:
    """None when every other router worker's agent reaches the first worker over the links (router.workers),
    else which do not; asked over a session of the control socket."""
    from router.control import control_session
    from router.workers import meta_uri

    async with control_session(reactor, extra["control_socket"], extra["realm"], CHECK_TIMEOUT) as session:
        missing = [
            str(worker)
            for worker in range(1, extra["workers"])
            if await session.call("wamp.registration.lookup", meta_uri(worker)) is None
        ]
    return f"router worker(s) {', '.join(missing)} not linked" if missing else None


def endpoint(extra: dict[str, Any]) -> resource.Resource:
    """Crossbar's ``resource`` path service: ``extra["endpoint"]`` is ``health``, ``ready`` or ``metrics``."""
    from twisted.internet import reactor  # the worker's: a path service gets no reactor of its own

    kind = extra["endpoint"]
    if kind == "health":
        return Health()
    if kind == "ready":
        return Ready(readiness(reactor, extra))
    if kind == "metrics":
        if extra.get("workers", 1) > 1:
            return Metrics(
                extra.get("token_sha256"), reactor, lambda: defer.ensureDeferred(node_exposition(reactor, extra))
            )
        return Metrics(extra.get("token_sha256"), reactor)
    raise ValueError(f"unknown operations endpoint {kind!r}")
