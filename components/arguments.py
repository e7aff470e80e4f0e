"""
Argument binding for WAMP procedures.

Autobahn reports a Python ``TypeError`` from a handler's signature (a missing or unexpected argument) as
``wamp.error.runtime_error``. Procedures here take ``*args, **kwargs`` and bind them with :func:`bind`
instead, so a caller who gets the arguments wrong receives ``wamp.error.invalid_argument`` and a message
naming the procedure and the argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from autobahn.wamp.exception import ApplicationError

__all__ = ["bind", "invalid_argument"]


def invalid_argument(procedure: str, reason: str) -> ApplicationError:
    """The error a procedure raises for bad input: ``wamp.error.invalid_argument`` with a readable reason."""
    return ApplicationError(ApplicationError.INVALID_ARGUMENT, f"{procedure}: {reason}")


def bind(procedure: str, shape: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Bind a call's positional and keyword arguments to the parameters of ``shape``.

    Returns every parameter by name, defaults applied. Raises ``wamp.error.invalid_argument`` when the
    arguments do not fit (missing, extra or unknown).
    """
    try:
        bound = inspect.signature(shape).bind(*args, **kwargs)
    except TypeError as e:
        raise invalid_argument(procedure, str(e)) from None
    bound.apply_defaults()
    return dict(bound.arguments)
