"""
Calls: the caller's ``timeout`` in milliseconds, a router-side call timeout, pending calls per session.

Crossbar 26.10.1's dealer (``crossbar/router/dealer.py``, ``Dealer._add_invoke_request`` ~1234) hands the
CALL option ``timeout`` to a timer that counts seconds, on a batched timer quantized to whole seconds, while
WAMP says milliseconds: a 500 ms timeout fires after 500 s. It sets no timeout of its own, does not announce
``call_timeout``, and lets one session keep any number of calls pending: a callee that never answers pins
every call made to it (and its arguments) in the router for ever.

What this module overrides, and why there:

- ``Dealer._add_invoke_request`` (where Crossbar records a pending invocation and starts its timer): the
  original runs with no timeout, then a timer of our own (``reactor.callLater``, exact) is set for
  :func:`effective_timeout`: ``limits.call_timeout`` seconds, or the caller's ``timeout`` milliseconds if
  shorter. When it fires, the caller gets ERROR ``wamp.error.canceled``, the callee an INTERRUPT
  (``killnowait``, if it announced call canceling), the callee's concurrency slot is given back (Crossbar's
  own timeout forgot that), and the invocation is forgotten; a late YIELD is ignored.
- ``Dealer._call`` (where Crossbar turns an authorized CALL into an invocation): a session that already has
  ``limits.max_pending_calls`` calls pending gets ERROR :data:`TOO_MANY_PENDING_CALLS` instead. Sessions of
  the router's own components (authrole ``trusted``) are exempt.
- ``Router.attach`` (which returns the roles announced in WELCOME): the dealer announces ``call_timeout``.

So what a callee that never answers can pin is bounded by ``max_pending_calls`` per calling session, each
for at most ``call_timeout`` seconds.
"""

from __future__ import annotations

from typing import Any

from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from twisted.logger import Logger

from router.config import Limits
from router.seam import DEALER_CALL
from router.uris import TOO_MANY_PENDING_CALLS
from router.workers import LINK_ROLE

__all__ = ["RELIED_ON", "SIGNATURES", "effective_timeout", "install"]


#: Sessions exempt from the pending-call cap: the router's own components, and the links between router
#: workers and nodes, which make every call forwarded from the other side (router.workers).
EXEMPT_ROLES = frozenset({"trusted", LINK_ROLE})

#: Crossbar/autobahn names this module relies on (``tests/unit/test_seam_calls.py`` checks them).
#: A name on a class that is not a class attribute must be assigned as ``self.<name>`` in that class.
RELIED_ON = [
    "crossbar.router.dealer.Dealer._add_invoke_request",
    "crossbar.router.dealer.Dealer._remove_invoke_request",
    "crossbar.router.dealer.Dealer._call",
    "crossbar.router.dealer.Dealer._invocations",
    "crossbar.router.dealer.Dealer._caller_to_invocations",
    "crossbar.router.dealer.Dealer._reactor",
    "crossbar.router.dealer.Dealer._router",
    "crossbar.router.dealer._can_cancel",
    "crossbar.router.dealer.InvocationRequest.id",
    "crossbar.router.dealer.InvocationRequest.caller",
    "crossbar.router.dealer.InvocationRequest.callee",
    "crossbar.router.dealer.InvocationRequest.call",
    "crossbar.router.dealer.InvocationRequest.registration",
    "crossbar.router.dealer.InvocationRequest.canceled",
    "crossbar.router.dealer.InvocationRequest.error_msg",
    "crossbar.router.dealer.InvocationRequest.timeout_call",
    "crossbar.router.dealer.RegistrationCalleeExtra.concurrency_current",
    "crossbar.router.router.Router.attach",
    "crossbar.router.router.Router.send",
    "crossbar.router.session.RouterSession._authrole",
    "autobahn.wamp.role.RoleDealerFeatures.call_timeout",
]

#: Methods wrapped or called here with positional arguments: the parameters they are expected to take.
SIGNATURES = {
    "crossbar.router.dealer.Dealer._add_invoke_request": (
        "self",
        "invocation_request_id",
        "registration",
        "session",
        "call",
        "callee",
        "forward_for",
        "authorization",
        "timeout",
    ),
    **DEALER_CALL,
    "crossbar.router.dealer.Dealer._remove_invoke_request": ("self", "invocation_request"),
    "crossbar.router.dealer._can_cancel": ("session", "side"),
    "crossbar.router.router.Router.attach": ("self", "session"),
    "crossbar.router.router.Router.send": ("self", "session", "msg"),
}

_log = Logger(namespace="switchboard.calls")


def effective_timeout(requested_ms: int | None, call_timeout: float) -> float:
    """Seconds a call may stay pending: ``call_timeout``, or the caller's ``timeout`` (ms) if shorter."""
    if requested_ms and requested_ms > 0:
        return min(call_timeout, requested_ms / 1000.0)
    return call_timeout


def _expire(dealer: Any, invoke: Any) -> None:
    """A pending call ran out of time: cancel it on both sides and forget it."""
    from crossbar.router.dealer import _can_cancel

    invoke.timeout_call = None
    if dealer._invocations.get(invoke.id) is not invoke:
        return  # answered or cleaned up meanwhile
    # A call canceled by its caller in "killnowait" mode already got its ERROR; "kill" waits for one.
    if not invoke.canceled or invoke.error_msg is not None:
        error = message.Error(message.Call.MESSAGE_TYPE, invoke.call.request, ApplicationError.CANCELED, ["timeout"])
        dealer._router.send(invoke.caller, error)
    if _can_cancel(invoke.callee, "callee"):
        dealer._router.send(invoke.callee, message.Interrupt(invoke.id, message.Cancel.KILLNOWAIT))
    extra = invoke.registration.observers_extra.get(invoke.callee)
    if extra is not None and extra.concurrency_current > 0:
        extra.concurrency_current -= 1
    dealer._remove_invoke_request(invoke)


_installed: dict[str, Any] = {}


def install(limits: Limits) -> None:
    """Install the overrides on Crossbar's ``Dealer`` and ``Router`` classes (idempotent: first call wins)."""
    if _installed:
        return
    from crossbar.router.dealer import Dealer
    from crossbar.router.router import Router

    _installed["limits"] = limits
    add_invoke_request = Dealer._add_invoke_request
    call = Dealer._call
    attach = Router.attach

    def _add_invoke_request(
        self: Any,
        invocation_request_id: int,
        registration: Any,
        session: Any,
        call: Any,
        callee: Any,
        forward_for: Any,
        authorization: Any,
        timeout: Any = None,
    ) -> Any:
        invoke = add_invoke_request(
            self, invocation_request_id, registration, session, call, callee, forward_for, authorization, timeout=None
        )
        seconds = effective_timeout(call.timeout, limits.call_timeout)
        invoke.timeout_call = self._reactor.callLater(seconds, _expire, self, invoke)
        return invoke

    def _call(
        self: Any, session: Any, call_: Any, registration: Any, authorization: Any, is_queued_call: bool = False
    ) -> Any:
        if not is_queued_call and session._authrole not in EXEMPT_ROLES:
            pending = self._caller_to_invocations.get(session)
            if pending is not None and len(pending) >= limits.max_pending_calls:
                reply = message.Error(
                    message.Call.MESSAGE_TYPE,
                    call_.request,
                    TOO_MANY_PENDING_CALLS,
                    [f"at most {limits.max_pending_calls} calls may be pending at once"],
                )
                self._router.send(session, reply)
                return False
        return call(self, session, call_, registration, authorization, is_queued_call)

    def _attach(self: Any, session: Any) -> Any:
        roles = attach(self, session)
        dealer = roles.get("dealer")
        if dealer is not None:
            dealer.call_timeout = True
        return roles

    Dealer._add_invoke_request = _add_invoke_request  # type: ignore[method-assign]
    Dealer._call = _call  # type: ignore[method-assign]
    Router.attach = _attach  # type: ignore[method-assign]
