"""router.seam.logging without a node: the controller's record observer, and onAuthenticate logging no
secret (the test that fails without the fix)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from crossbar.router.auth import PendingAuthTicket
from crossbar.router.session import RouterSession
from twisted.logger import Logger, LogLevel, formatEvent
from twisted.python.failure import Failure

from router import logs
from router.seam import logging as seam_logging


def observed(level: str, *events: dict[str, Any]) -> list[logs.Record]:
    out = io.StringIO()
    observe = seam_logging.record_observer(out, level, pid=42)
    for event in events:
        observe(event)
    lines = out.getvalue().split("\n")[:-1]  # (str.splitlines also splits at the mark, \x1e)
    assert all(line.startswith(logs.RECORD_MARK) for line in lines)
    return [logs.decode_line(line, now=0) for line in lines]


def event(level: LogLevel, text: str, namespace: str, **more: Any) -> dict[str, Any]:
    return {"log_level": level, "log_format": text, "log_namespace": namespace, "log_time": 1000.5, **more}


def test_a_worker_event_becomes_a_record_with_level_source_and_namespace() -> None:
    """An event a worker forwarded (Crossbar sets log_system and cb_namespace) keeps its level, worker type
    and PID, namespace; ANSI colours are removed."""
    forwarded = event(
        LogLevel.warn,
        "\x1b[33mcareful\x1b[0m {{literal}}",
        "crossbar.node.worker",
        log_system="Router      20208",
        cb_namespace="crossbar.router.session.RouterSession",
    )
    assert observed("info", forwarded) == [
        logs.Record(
            time=1000.5,
            message="careful {literal}",
            level="warn",
            source="router",
            pid=20208,
            namespace="crossbar.router.session.RouterSession",
        )
    ]


def test_the_controllers_own_event_and_its_traceback() -> None:
    """An event of the controller itself is from the controller's PID; a failure adds its traceback."""
    try:
        raise ValueError("boom")
    except ValueError:
        failure = Failure()
    (record,) = observed("info", event(LogLevel.error, "it failed", "crossbar.node.node", log_failure=failure))
    assert (record.source, record.pid, record.level) == ("controller", 42, "error")
    assert record.message.startswith("it failed\nTraceback (most recent call last):")
    assert record.message.endswith("ValueError: boom")


def test_the_level_and_the_chatter_filter_apply() -> None:
    """Below the level nothing is written; at info Crossbar's chatter is dropped and Switchboard's events kept;
    txaio trace events never."""
    events = [
        event(LogLevel.debug, "debug detail", "switchboard.events"),
        event(LogLevel.info, "new session attached", "crossbar.router.router.Router"),
        event(LogLevel.info, "event=login_failed realm=demo", "switchboard.events"),
        event(LogLevel.debug, "traced", "crossbar.router", txaio_trace=True),
    ]
    assert [r.message for r in observed("info", *events)] == ["event=login_failed realm=demo"]
    assert [r.message for r in observed("debug", *events)] == [
        "debug detail",
        "new session attached",
        "event=login_failed realm=demo",
    ]
    assert observed("warn", *events) == []


class _Ticket(PendingAuthTicket):
    """A pending WAMP-Ticket authentication that records the signature it is asked to check."""

    def __init__(self) -> None:  # no router, no config: only authenticate is used
        self.checked: list[str] = []

    def authenticate(self, signature: str) -> Any:
        self.checked.append(signature)
        return "accepted"


class _Session:
    """What onAuthenticate uses of a RouterSession: its pending authentication and its logger."""

    def __init__(self, pending: Any, events: list[dict[str, Any]]) -> None:
        self._pending_auth = pending
        self.log = Logger(namespace="crossbar.router.session.RouterSession", observer=events.append)


@pytest.fixture
def secret_free() -> Iterator[None]:
    seam_logging.install()
    try:
        yield
    finally:
        seam_logging.uninstall()


def logged_text(events: list[dict[str, Any]]) -> str:
    return "\n".join(formatEvent(e) + " " + repr(sorted(e.items(), key=str)) for e in events)


def test_the_ticket_is_not_logged_but_checked(secret_free: None) -> None:
    """onAuthenticate of a ticket login logs the method and the length, not the ticket (in neither the text
    nor the event's fields), and the pending authentication still checks the real ticket."""
    events: list[dict[str, Any]] = []
    pending = _Ticket()
    result = RouterSession.onAuthenticate(_Session(pending, events), "pw-the-secret", {})
    assert result == "accepted"
    assert pending.checked == ["pw-the-secret"]
    assert "pw-the-secret" not in logged_text(events)
    assert [formatEvent(e) for e in events] == ["onAuthenticate: ticket signature of 13 characters"]


def test_without_pending_authentication_the_signature_is_not_logged_either(secret_free: None) -> None:
    """A client that sends AUTHENTICATE out of turn is denied as by Crossbar, and its signature not logged."""
    events: list[dict[str, Any]] = []
    result = RouterSession.onAuthenticate(_Session(None, events), "pw-out-of-turn", {})
    assert result.message == "no pending authentication"
    assert "pw-out-of-turn" not in logged_text(events)


def test_crossbar_alone_logs_the_ticket() -> None:
    """The leak the seam fixes: Crossbar's own onAuthenticate puts the ticket in its debug line."""
    events: list[dict[str, Any]] = []
    RouterSession.onAuthenticate(_Session(_Ticket(), events), "pw-the-secret", {})
    assert "pw-the-secret" in logged_text(events)


def test_a_line_repeated_beyond_the_budget_is_counted_not_written() -> None:
    """With a budget of 2 a second, 5 records of one kind write 2, another kind still gets its own 2, an
    event line is never held back (its budget is the worker's), and the 3 left out are reported in one
    warning once the second has ended."""
    now = [1000.2]
    budget = logs.LineBudget(2, lambda: now[0])
    out = io.StringIO()
    observe = seam_logging.record_observer(out, "info", pid=42, budget=budget)
    for _ in range(5):
        observe(event(LogLevel.warn, "HELLO again", "crossbar.router.session", log_system="router 7"))
    for _ in range(3):
        observe(event(LogLevel.warn, "other warning", "crossbar.router.session", log_system="router 7"))
    observe(event(LogLevel.info, "event=login_failed realm=demo", logs.EVENTS_NAMESPACE, log_system="router 7"))
    now[0] = 1001.0
    observe(event(LogLevel.warn, "next second", "crossbar.router.session", log_system="router 7"))
    lines = out.getvalue().split("\n")[:-1]
    messages = [logs.decode_line(line, now=0).message for line in lines]
    assert messages == [
        "HELLO again",
        "HELLO again",
        "other warning",
        "other warning",
        "event=login_failed realm=demo",
        "left out 3 log lines like 'router HELLO again': more than 2 a second (limits.max_log_events)",
        "left out 1 log lines like 'router other warning': more than 2 a second (limits.max_log_events)",
        "next second",
    ]


def test_the_budget_tells_a_bounded_number_of_kinds_apart() -> None:
    """Beyond max_kinds, new kinds share one budget, so a flood of distinct messages is capped too."""
    budget = logs.LineBudget(1, lambda: 5.0, max_kinds=2)
    assert [budget.admit(f"kind {i}") for i in range(5)] == [True, True, True, False, False]
    assert budget.overflow() == {}
    budget._clock = lambda: 6.0
    assert budget.overflow() == {logs.LineBudget.OTHER: 2}
    assert budget.overflow() == {}
