"""
:class:`Patches`: the attributes a seam module (:mod:`router.seam`) replaced on library classes, kept to put
them back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Patches"]


class Patches:
    """The replacements of one seam module: each attribute's own value before the first replacement (None
    when the class inherited it), so :meth:`undo` restores exactly what was there."""

    def __init__(self) -> None:
        self._saved: dict[str, tuple[Any, str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._saved)

    @staticmethod
    def _key(owner: Any, name: str) -> str:
        return f"{owner.__module__}.{owner.__qualname__}.{name}"

    def done(self, owner: Any, name: str) -> bool:
        """Whether ``owner.name`` has been replaced."""
        return self._key(owner, name) in self._saved

    def replace(self, owner: Any, name: str, value: Any) -> None:
        """Set ``owner.name`` to ``value`` (what it was first is kept)."""
        self._saved.setdefault(self._key(owner, name), (owner, name, owner.__dict__.get(name)))
        setattr(owner, name, value)

    def wrap(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        """Set ``owner.name`` to ``make(<its current value>)``, once: a second call does nothing."""
        if not self.done(owner, name):
            self.replace(owner, name, make(getattr(owner, name)))

    def undo(self) -> None:
        """Put every replaced attribute back, the last replaced first."""
        while self._saved:
            _, (owner, name, previous) = self._saved.popitem()
            if previous is None:
                delattr(owner, name)
            else:
                setattr(owner, name, previous)
