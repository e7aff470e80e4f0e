"""Binding WAMP call arguments to a procedure's parameters."""

from __future__ import annotations

import pytest
from autobahn.wamp.exception import ApplicationError

from components.arguments import bind


def shape(room: object, limit: object = 50) -> None: ...


def test_binds_positional_and_keyword_arguments_with_defaults() -> None:
    """Arguments bind by position or name; defaults fill the rest."""
    assert bind("p", shape, ("a",), {}) == {"room": "a", "limit": 50}
    assert bind("p", shape, (), {"room": "a", "limit": 3}) == {"room": "a", "limit": 3}


@pytest.mark.parametrize(
    ("args", "kwargs", "reason"),
    [
        ((), {}, "missing a required argument: 'room'"),
        (("a", 1, 2), {}, "too many positional arguments"),
        (("a",), {"x": 1}, "got an unexpected keyword argument 'x'"),
        (("a",), {"room": "b"}, "multiple values for argument 'room'"),
    ],
)
def test_mismatch_is_invalid_argument(args: tuple[object, ...], kwargs: dict[str, object], reason: str) -> None:
    """Arguments that do not fit raise wamp.error.invalid_argument naming the procedure."""
    with pytest.raises(ApplicationError) as caught:
        bind("chat.x", shape, args, kwargs)
    assert caught.value.error == "wamp.error.invalid_argument"
    assert caught.value.args[0] == f"chat.x: {reason}"
