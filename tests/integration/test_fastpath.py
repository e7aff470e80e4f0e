"""router.seam.fastpath on a real node: what callers and callees see stays Crossbar's, and the fast paths are
taken (the router logs the first time each is) unless ``SWITCHBOARD_FASTPATH=0``.

Every behaviour is checked twice with the same session and URI: the first CALL is decided by the role (a
cache miss, Crossbar's own path), the second from the authorization cache (the fast path), and both must
give the same result.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, CallOptions, RegisterOptions
from twisted.internet import defer, task

from router.config import load_config
from router.launch import RunningNode, launch, with_port
from router.testkit.sessions import session, wait
from tests.conftest import demo_document, running, write_config

pytestmark = pytest.mark.integration

TAKEN_CALL = "fast path: first CALL decided from the authorization cache"
TAKEN_SEND = "fast path: first message sent in one function"
SWITCHED_OFF = "fast paths not installed: switched off"


def _config(tmp: Path) -> Any:
    doc = demo_document()
    doc["realms"][0]["roles"]["anonymous"]["allow"] += [
        {"uri": "fp", "match": "prefix", "actions": ["call", "register"]},
        {"uri": "fp.seen", "match": "prefix", "actions": ["call"], "disclose": True},
    ]
    return with_port(load_config(write_config(tmp, doc)), 0)


@pytest.fixture(scope="module")
def fast_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A node whose anonymous role may call and register ``fp.*`` (disclosing callers of ``fp.seen.*``),
    logging at info."""
    tmp = tmp_path_factory.mktemp("fastpath-node")
    with running(launch(reactor, _config(tmp), tmp / "data", loglevel="info", ready_timeout=90)) as node:
        yield node


@pytest.fixture(scope="module")
def plain_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """The same node with ``SWITCHBOARD_FASTPATH=0`` in its environment."""
    tmp = tmp_path_factory.mktemp("fastpath-off-node")
    with mock.patch.dict(os.environ, {"SWITCHBOARD_FASTPATH": "0"}):
        starting = launch(reactor, _config(tmp), tmp / "data", loglevel="info", ready_timeout=90)
        node = pytest_twisted.blockon(defer.ensureDeferred(starting))
    try:
        yield node
    finally:
        pytest_twisted.blockon(defer.ensureDeferred(node.stop()))


async def log_with(reactor: Any, node: RunningNode, *markers: str) -> str:
    """The node's log once it holds every marker (workers log through the controller), or after 10 s."""
    deadline = reactor.seconds() + 10
    while True:
        text = node.process.log_path.read_text(encoding="utf-8", errors="replace")
        if all(m in text for m in markers) or reactor.seconds() > deadline:
            return text
        await task.deferLater(reactor, 0.05, lambda: None)


async def twice(reactor: Any, caller: Any, procedure: str, *args: Any, **kwargs: Any) -> list[Any]:
    """Call ``procedure`` twice (role decision, then cached decision): each result or ApplicationError."""
    outcomes: list[Any] = []
    for _ in range(2):
        try:
            outcomes.append(await wait(caller.call(procedure, *args, **kwargs), reactor))
        except ApplicationError as e:
            outcomes.append(e)
    return outcomes


def as_tuple(e: Any) -> Any:
    return (e.error, e.args, e.kwargs) if isinstance(e, ApplicationError) else e


@pytest_twisted.ensureDeferred
async def test_results_and_disclosure_stay_crossbars(reactor: Any, fast_node: RunningNode) -> None:
    """A callee sees the caller's identity exactly where the role discloses it, on both calls; the caller gets
    the callee's results; and the router logs that the fast paths were taken."""
    uid = uuid.uuid4().hex
    async with session(reactor, fast_node.url) as callee, session(reactor, fast_node.url) as caller:

        def echo(*args: Any, details: CallDetails) -> list[Any]:
            return [list(args), details.caller, details.caller_authrole]

        options = RegisterOptions(details=True)
        await wait(callee.register(echo, f"fp.seen.{uid}", options=options), reactor)
        await wait(callee.register(echo, f"fp.hidden.{uid}", options=options), reactor)
        seen = await twice(reactor, caller, f"fp.seen.{uid}", 1, "a")
        hidden = await twice(reactor, caller, f"fp.hidden.{uid}", 2)
        assert seen == [[[1, "a"], caller.session_id, "anonymous"]] * 2
        assert hidden == [[[2], None, None]] * 2
    log = await log_with(reactor, fast_node, TAKEN_CALL, TAKEN_SEND)
    assert TAKEN_CALL in log
    assert TAKEN_SEND in log


@pytest_twisted.ensureDeferred
async def test_denials_and_missing_procedures_are_crossbars(reactor: Any, fast_node: RunningNode) -> None:
    """A call the role denies, and an allowed call nobody registered: the same ERROR (URI and message) from
    the role's decision and from the cached one."""
    uid = uuid.uuid4().hex
    async with session(reactor, fast_node.url) as caller:
        denied = await twice(reactor, caller, f"nofp.{uid}")
        missing = await twice(reactor, caller, f"fp.none.{uid}")
    assert [as_tuple(e) for e in denied] == [as_tuple(denied[0])] * 2
    assert denied[0].error == ApplicationError.NOT_AUTHORIZED
    assert f'is not authorized to call procedure "nofp.{uid}" on realm "demo"' in denied[0].args[0]
    assert [as_tuple(e) for e in missing] == [
        (ApplicationError.NO_SUCH_PROCEDURE, (f"no callee registered for procedure <fp.none.{uid}>",), {})
    ] * 2


@pytest_twisted.ensureDeferred
async def test_callee_errors_reach_the_caller(reactor: Any, fast_node: RunningNode) -> None:
    """An error raised by the callee reaches the caller with its URI, args and kwargs, both times."""
    uid = uuid.uuid4().hex
    async with session(reactor, fast_node.url) as callee, session(reactor, fast_node.url) as caller:

        def fail() -> None:
            raise ApplicationError("fp.error.bad", 1, "two", three=3)

        await wait(callee.register(fail, f"fp.fail.{uid}"), reactor)
        outcomes = await twice(reactor, caller, f"fp.fail.{uid}")
    assert [as_tuple(e) for e in outcomes] == [("fp.error.bad", (1, "two"), {"three": 3})] * 2


@pytest_twisted.ensureDeferred
async def test_progressive_results_and_timeouts(reactor: Any, fast_node: RunningNode) -> None:
    """Progressive results reach the caller before the final one; a call to a callee that never answers
    ends with wamp.error.canceled after the caller's timeout (router.seam.calls), both times."""
    uid = uuid.uuid4().hex
    async with session(reactor, fast_node.url) as callee, session(reactor, fast_node.url) as caller:

        def count(n: int, details: CallDetails) -> int:
            assert details.progress is not None
            for i in range(n):
                details.progress(i)
            return n

        never: list[defer.Deferred[None]] = []

        def stall() -> defer.Deferred[None]:
            never.append(defer.Deferred())
            return never[-1]

        await wait(callee.register(count, f"fp.count.{uid}", options=RegisterOptions(details=True)), reactor)
        await wait(callee.register(stall, f"fp.stall.{uid}"), reactor)
        for _ in range(2):
            progress: list[int] = []
            calling = caller.call(f"fp.count.{uid}", 3, options=CallOptions(on_progress=progress.append))
            final = await wait(calling, reactor)
            assert (progress, final) == ([0, 1, 2], 3)
        started = reactor.seconds()
        stalled = await twice(reactor, caller, f"fp.stall.{uid}", options=CallOptions(timeout=300))
        assert [e.error for e in stalled] == [ApplicationError.CANCELED] * 2
        assert reactor.seconds() - started < 5


@pytest_twisted.ensureDeferred
async def test_switched_off_leaves_crossbars_paths(reactor: Any, plain_node: RunningNode) -> None:
    """With SWITCHBOARD_FASTPATH=0 the node logs that the fast paths are off, never takes one, and answers
    the same (a denial with Crossbar's message, a result)."""
    uid = uuid.uuid4().hex
    async with session(reactor, plain_node.url) as callee, session(reactor, plain_node.url) as caller:
        await wait(callee.register(lambda x: x, f"fp.echo.{uid}"), reactor)
        assert await twice(reactor, caller, f"fp.echo.{uid}", 7) == [7, 7]
        denied = await twice(reactor, caller, f"nofp.{uid}")
    assert [e.error for e in denied] == [ApplicationError.NOT_AUTHORIZED] * 2
    log = await log_with(reactor, plain_node, SWITCHED_OFF)
    assert SWITCHED_OFF in log
    assert "fast path: first" not in log
