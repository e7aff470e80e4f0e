"""The readiness probe's wait for hosted components (router.probe.components_started), on a task.Clock."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, task

from router.probe import ComponentFailed, components_started


def row(cls: str, state: str, reason: str | None = None) -> dict[str, Any]:
    return {"class": cls, "realm": "demo", "state": state, "reason": reason}


class ReportingSession:
    """Answers switchboard.node.components with the next of ``answers`` (the last one repeats)."""

    def __init__(self, *answers: list[dict[str, Any]] | Exception) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def call(self, uri: str) -> defer.Deferred[Any]:
        self.asked.append(uri)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return defer.fail(answer) if isinstance(answer, Exception) else defer.succeed(answer)


def wait(clock: task.Clock, session: ReportingSession, deadline: float = 10.0) -> defer.Deferred[None]:
    return defer.ensureDeferred(components_started(clock, session, deadline, None, interval=1.0, timeout=5.0))


@pytest_twisted.ensureDeferred
async def test_returns_once_nothing_is_starting() -> None:
    """Components still starting are asked about again after the interval; ready and unchecked ones pass."""
    clock = task.Clock()
    session = ReportingSession(
        [row("a.A", "ready"), row("a.B", "starting")],
        [row("a.A", "ready"), row("a.B", "ready"), row("a.C", "unchecked")],
    )
    done = wait(clock, session)
    assert not done.called
    clock.advance(1.0)
    assert done.called
    await done
    assert session.asked == ["switchboard.node.components"] * 2


@pytest_twisted.ensureDeferred
async def test_a_failed_component_is_named_with_its_reason() -> None:
    """The first failed component ends the wait with one line: the class and the reason."""
    clock = task.Clock()
    reason = "register 'counter.incr' refused: not_authorized (role 'backend' has no register permission on it)"
    session = ReportingSession([row("a.A", "starting"), row("a.Counter", "failed", reason), row("a.B", "failed", "x")])
    with pytest.raises(ComponentFailed) as caught:
        await wait(clock, session)
    assert str(caught.value) == f"component a.Counter: {reason}"


@pytest_twisted.ensureDeferred
async def test_components_still_starting_at_the_deadline_are_named() -> None:
    """A component that never reports ready (its onJoin hangs) is named once the deadline passes."""
    clock = task.Clock()
    done = wait(clock, ReportingSession([row("a.A", "starting"), row("a.B", "starting")]), deadline=3.0)
    clock.advance(1.0)
    clock.advance(1.0)
    assert not done.called
    clock.advance(1.0)
    with pytest.raises(ComponentFailed) as caught:
        await done
    assert str(caught.value) == "component a.A, a.B: not ready in time (its onJoin did not finish)"


@pytest_twisted.ensureDeferred
async def test_a_node_that_cannot_report_is_not_ready() -> None:
    """If the report procedure is missing (the bootstrap failed), the wait ends with that error."""
    session = ReportingSession(ApplicationError("wamp.error.no_such_procedure", "no callee"))
    with pytest.raises(ComponentFailed) as caught:
        await wait(task.Clock(), session)
    assert str(caught.value) == (
        "the node cannot report how its components started: wamp.error.no_such_procedure: no callee"
    )
