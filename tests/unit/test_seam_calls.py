"""router.seam.calls without a node: the effective timeout, what expiry sends and frees, and the canary for
the Crossbar/autobahn names it relies on."""

from __future__ import annotations

from typing import Any

import pytest
from autobahn.wamp import message
from crossbar.router.dealer import InvocationRequest, RegistrationCalleeExtra

from router.seam import calls
from tests.unit.test_seam_transport import resolve


@pytest.mark.parametrize("name", calls.RELIED_ON)
def test_every_private_name_relied_on_exists(name: str) -> None:
    """Each Crossbar/autobahn name the module relies on exists in the installed versions."""
    assert resolve(name), f"{name} is gone: re-verify router.seam.calls against the new version"


@pytest.mark.parametrize(
    ("requested_ms", "call_timeout", "seconds"),
    [
        (None, 60, 60),
        (0, 60, 60),
        (500, 60, 0.5),
        (1, 60, 0.001),
        (60_000, 60, 60),
        (120_000, 60, 60),  # the caller can only shorten the router's bound
        (-5, 2, 2),
    ],
)
def test_effective_timeout(requested_ms: int | None, call_timeout: float, seconds: float) -> None:
    """The caller's timeout is milliseconds and can only shorten call_timeout."""
    assert calls.effective_timeout(requested_ms, call_timeout) == seconds


class _Session:
    def __init__(self, session_id: int, can_cancel: bool) -> None:
        self._session_id = session_id
        features = type("Features", (), {"call_canceling": can_cancel})()
        self._session_roles = {"caller": features, "callee": features}


class _Dealer:
    """What _expire uses of a Dealer: the pending invocations, a router that records sends."""

    def __init__(self) -> None:
        self._invocations: dict[int, Any] = {}
        self.sent: list[tuple[Any, Any]] = []
        self.removed: list[Any] = []
        self._router = type("Router", (), {"send": lambda _self, to, msg: self.sent.append((to, msg))})()

    def _remove_invoke_request(self, invoke: Any) -> None:
        self.removed.append(invoke)
        del self._invocations[invoke.id]


def _pending(dealer: _Dealer, callee_cancels: bool = True) -> tuple[Any, Any]:
    caller, callee = _Session(1, True), _Session(2, callee_cancels)
    extra = RegistrationCalleeExtra(concurrency=1)
    extra.concurrency_current = 1
    registration = type("Registration", (), {"observers_extra": {callee: extra}})()
    call = message.Call(7, "x.y", args=[1])
    invoke = InvocationRequest(99, registration, caller, call, callee, None, {})
    dealer._invocations[99] = invoke
    return invoke, extra


def test_expiry_cancels_both_sides_and_frees_the_invocation() -> None:
    """When a call times out, the caller gets ERROR wamp.error.canceled for its request, the callee an
    INTERRUPT (killnowait), the callee's concurrency slot is freed and the invocation is forgotten."""
    dealer = _Dealer()
    invoke, extra = _pending(dealer)
    calls._expire(dealer, invoke)
    (to_caller, error), (to_callee, interrupt) = dealer.sent
    assert (to_caller, type(error), error.request, error.error) == (
        invoke.caller,
        message.Error,
        7,
        "wamp.error.canceled",
    )
    assert (to_callee, type(interrupt), interrupt.request, interrupt.mode) == (
        invoke.callee,
        message.Interrupt,
        99,
        "killnowait",
    )
    assert extra.concurrency_current == 0
    assert dealer.removed == [invoke]
    assert dealer._invocations == {}


def test_expiry_without_cancel_support_still_answers_the_caller() -> None:
    """A callee that did not announce call canceling gets no INTERRUPT; the caller still gets its ERROR."""
    dealer = _Dealer()
    invoke, _ = _pending(dealer, callee_cancels=False)
    calls._expire(dealer, invoke)
    assert [type(m) for _, m in dealer.sent] == [message.Error]
    assert dealer.removed == [invoke]


def test_expiry_of_an_answered_call_does_nothing() -> None:
    """A timer that fires after the call was answered (and forgotten) sends and frees nothing."""
    dealer = _Dealer()
    invoke, extra = _pending(dealer)
    del dealer._invocations[invoke.id]
    calls._expire(dealer, invoke)
    assert (dealer.sent, dealer.removed, extra.concurrency_current) == ([], [], 1)


def test_expiry_after_killnowait_cancel_does_not_answer_twice() -> None:
    """A call its caller canceled with killnowait already got its ERROR: expiry only cleans up."""
    dealer = _Dealer()
    invoke, _ = _pending(dealer)
    invoke.canceled = True
    calls._expire(dealer, invoke)
    assert [type(m) for _, m in dealer.sent] == [message.Interrupt]
    assert dealer.removed == [invoke]
