"""The greeter's rules without a router: plain pytest, no node."""

from __future__ import annotations

import pytest

from greeter.core import Greetings


def test_greets_by_name_and_counts() -> None:
    """Each greeting is "Hello, <name>" and counts once."""
    greetings = Greetings()
    assert greetings.greet("Ann") == "Hello, Ann"
    assert greetings.greet("Bob") == "Hello, Bob"
    assert greetings.count == 2


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "name: must be a non-empty string"),
        ("  ", "name: must be a non-empty string"),
        (42, "name: must be a non-empty string"),
        ("x" * 65, "name: must be at most 64 characters"),
    ],
)
def test_a_bad_name_is_refused_and_not_counted(name: object, reason: str) -> None:
    """A bad name raises ValueError with its reason and leaves the count alone."""
    greetings = Greetings()
    with pytest.raises(ValueError, match=f"^{reason}$"):
        greetings.greet(name)
    assert greetings.count == 0


def test_a_name_of_64_characters_is_fine() -> None:
    """The longest name allowed is greeted."""
    assert Greetings().greet("x" * 64) == "Hello, " + "x" * 64


def test_reset_answers_the_count_it_had() -> None:
    """reset() returns the count before it and sets it to zero."""
    greetings = Greetings()
    greetings.greet("Ann")
    assert greetings.reset() == 1
    assert greetings.count == 0
    assert greetings.reset() == 0
