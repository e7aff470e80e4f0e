"""The greeter's rules, without WAMP: what a good name is, the greeting, and the count of greetings."""

from __future__ import annotations

MAX_NAME_LENGTH = 64


class Greetings:
    """Greets by name and counts the greetings since the last reset."""

    def __init__(self) -> None:
        self.count = 0

    def greet(self, name: object) -> str:
        """``Hello, <name>``; a name that is not a non-empty string of at most 64 characters is a ValueError."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("name: must be a non-empty string")
        if len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"name: must be at most {MAX_NAME_LENGTH} characters")
        self.count += 1
        return f"Hello, {name}"

    def reset(self) -> int:
        """Set the count back to zero; the count it had."""
        previous, self.count = self.count, 0
        return previous
