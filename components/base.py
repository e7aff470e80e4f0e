"""
``ComponentSession``: the base class for components hosted by Switchboard.

It is a plain autobahn ``ApplicationSession`` except for one thing: an ``ApplicationError`` raised on
purpose by a procedure (``wamp.error.invalid_argument`` for bad input, say) is the caller's problem, not
the router's, so it is logged at debug level instead of as a warning on every bad call. Unexpected
exceptions are still logged with their traceback.
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError

__all__ = ["ComponentSession"]


class ComponentSession(ApplicationSession):
    """Base class for hosted components; see the module docstring."""

    def onUserError(self, fail: Any, msg: str) -> None:
        if isinstance(getattr(fail, "value", None), ApplicationError):
            self.log.debug(
                "{klass} answered with an error: {error}",
                klass=type(self).__name__,
                error=fail.value.error_message(),
            )
            return
        super().onUserError(fail, msg)
