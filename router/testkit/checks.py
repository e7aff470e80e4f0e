"""
Assertions for WAMP tests: an event inbox with a bounded wait, and the two refusals a test checks most.

- :class:`Inbox`: pass it as the handler of a subscription, then ``await inbox.next()``;
- :func:`assert_denied`: the action is refused with ``wamp.error.not_authorized``;
- :func:`assert_invalid`: the call is refused with ``wamp.error.invalid_argument`` naming an argument.

They fail with an ``AssertionError`` that says what happened instead (a result, another error), so pytest
shows it as the test's failure.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer

from router.testkit.sessions import TIMEOUT, JoinRefused

__all__ = ["Inbox", "NoEvent", "assert_denied", "assert_invalid"]

NOT_AUTHORIZED = ApplicationError.NOT_AUTHORIZED
INVALID_ARGUMENT = ApplicationError.INVALID_ARGUMENT


class NoEvent(defer.TimeoutError):
    """:meth:`Inbox.next` waited its whole timeout for an event that did not come."""


class Inbox:
    """Collects the events of a subscription: ``await session.subscribe(inbox, topic)``, then
    ``await inbox.next()``.

    ``reactor`` defaults to the global one (the reactor pytest-twisted runs), looked up when waiting.
    """

    def __init__(self, reactor: Any = None) -> None:
        self._reactor = reactor
        self._queue: defer.DeferredQueue[Any] = defer.DeferredQueue()
        #: How many events arrived so far (taken or not).
        self.received = 0

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.received += 1
        self._queue.put(args[0] if len(args) == 1 and not kwargs else (args, kwargs))

    async def next(self, timeout: float = TIMEOUT) -> Any:
        """The next event (its single argument, else ``(args, kwargs)``), within ``timeout`` seconds;
        raises :class:`NoEvent` after."""
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor  # the one running: this is test code, called in it
        waiting = self._queue.get()
        waiting.addTimeout(timeout, reactor)
        try:
            return await waiting
        except defer.TimeoutError:
            raise NoEvent(f"no event within {timeout:g} s ({self.received} received in all)") from None


def _describe(e: BaseException) -> str:
    if isinstance(e, ApplicationError):
        return f"it failed with {e.error_message()}"
    if isinstance(e, JoinRefused):
        return f"the join was refused with {e.reason}: {e.message}"
    return f"it raised {type(e).__name__}: {e}"


async def assert_denied(action: Awaitable[Any]) -> ApplicationError | JoinRefused:
    """Await ``action`` (a call, a register, a subscribe, an acknowledged publish); pass only when the router
    refuses it with ``wamp.error.not_authorized``, and return that error.

    A publish without ``PublishOptions(acknowledge=True)`` is never refused to the publisher: the router
    drops it silently.
    """
    try:
        result = await action
    except (ApplicationError, JoinRefused) as e:
        reason = e.error if isinstance(e, ApplicationError) else e.reason
        if reason == NOT_AUTHORIZED:
            return e
        raise AssertionError(f"expected {NOT_AUTHORIZED}, but {_describe(e)}") from e
    except Exception as e:
        raise AssertionError(f"expected {NOT_AUTHORIZED}, but {_describe(e)}") from e
    hint = " (a publish is refused only with PublishOptions(acknowledge=True))" if result is None else ""
    raise AssertionError(f"expected {NOT_AUTHORIZED}, but it succeeded with {result!r}{hint}")


async def assert_invalid(action: Awaitable[Any], argument: str) -> ApplicationError:
    """Await ``action`` (a call); pass only when it fails with ``wamp.error.invalid_argument`` whose message
    names ``argument`` (as a word: ``text`` is not named by ``context``), and return that error."""
    try:
        result = await action
    except ApplicationError as e:
        if e.error != INVALID_ARGUMENT:
            raise AssertionError(f"expected {INVALID_ARGUMENT} about {argument!r}, but {_describe(e)}") from e
        message = " ".join(str(a) for a in e.args)
        if not re.search(rf"(?<![\w]){re.escape(argument)}(?![\w])", message):
            raise AssertionError(
                f"expected {INVALID_ARGUMENT} about {argument!r}, but its message does not name it: {message}"
            ) from e
        return e
    except Exception as e:
        raise AssertionError(f"expected {INVALID_ARGUMENT} about {argument!r}, but {_describe(e)}") from e
    raise AssertionError(f"expected {INVALID_ARGUMENT} about {argument!r}, but it succeeded with {result!r}")
