"""The authenticator's event lines and login counts: login_failed for each failure, login_locked once, for
the failed attempt that takes a client over a throttle limit (fake store, synchronous pool)."""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet.task import Clock

from router import events, metrics
from router.events import EventLog
from tests.unit.test_authenticator import PEER, TRANSPORT, FakeStore, InlineReactor, authenticator, settled

RIGHT = "correct horse battery staple"


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The event lines written during the test (the shared event log replaced, restored after)."""
    written: list[str] = []
    monkeypatch.setattr(events, "_shared", EventLog(Clock(), 1000, written.append))
    monkeypatch.setattr(metrics, "counts", metrics.Counts())
    return written


async def ticket(auth: object, password: str, clock: InlineReactor) -> bool:
    """One ticket login of alice, and Crossbar's verdict on it; whether it succeeded."""
    from router.auth.service import Authenticator

    assert isinstance(auth, Authenticator)
    try:
        await settled(defer.ensureDeferred(auth.ticket("demo", "alice", {**PEER, "ticket": password})), clock)
    except ApplicationError:
        auth.verdict("demo", "alice", "ticket", TRANSPORT, ok=False)
        return False
    auth.verdict("demo", "alice", "ticket", TRANSPORT, ok=True)
    return True


@pytest_twisted.ensureDeferred
async def test_the_failure_that_locks_out_is_logged_once(lines: list[str]) -> None:
    """With per_authid 2: two failures (the second locks alice out from this address, logged once), then
    refused attempts log login_failed only; the throttle refusals and failures are counted."""
    clock = InlineReactor()
    auth = authenticator(FakeStore(), clock, per_authid=2)
    assert [await ticket(auth, "wrong", clock) for _ in range(4)] == [False] * 4
    failed = "event=login_failed realm=demo authid=alice method=ticket peer=10.0.0.1"
    assert lines == [
        failed,
        failed,
        "event=login_locked realm=demo authid=alice method=ticket peer=10.0.0.1 scope=per_authid",
        failed,
        failed,
    ]
    assert metrics.counts.logins == {("ticket", "failure"): 4}
    assert metrics.counts.throttle_refusals == 2


@pytest_twisted.ensureDeferred
async def test_a_success_at_the_limit_locks_nobody_out(lines: list[str]) -> None:
    """The attempt that fills the count but succeeds is no lockout: no login_locked line."""
    clock = InlineReactor()
    auth = authenticator(FakeStore(), clock, per_authid=2)
    assert await ticket(auth, "wrong", clock) is False
    assert await ticket(auth, RIGHT, clock) is True
    assert [line.split()[0] for line in lines] == ["event=login_failed"]
    assert metrics.counts.logins == {("ticket", "failure"): 1, ("ticket", "success"): 1}


def test_the_peer_limit_is_named(lines: list[str]) -> None:
    """A failure that fills the per-address count logs scope=per_peer."""
    clock = InlineReactor()
    auth = authenticator(FakeStore(), clock, per_authid=100, per_peer=1)
    assert auth.throttle.attempted("demo", "bob", "10.0.0.1") == ["per_peer"]
