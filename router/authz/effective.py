"""
Which roles a realm has: the config file's, changed by what the admin API stored at run time.

The one answer used by the router at start-up (:class:`router.worker.WorkerBootstrap`), by the admin API
(:mod:`router.admin`) and by the CLI (``switchboard user add|set-role``), so a role created with
``switchboard.admin.role.set`` can be given to users from the command line and a removed one cannot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.authz.model import reserved_role_problem

__all__ = ["effective_roles", "ignored_changes", "removed_roles"]


def effective_roles(
    file_roles: Mapping[str, Any],
    stored: Mapping[str, Any | None],
    changes: Mapping[str, Any | None] | None = None,
) -> dict[str, Any]:
    """The realm's role definitions: ``file_roles``, then ``stored`` changes, then ``changes``.

    In ``stored`` and ``changes`` a definition replaces the file's (or adds a role) and ``None`` removes
    the role. Stored changes to a reserved name (:func:`ignored_changes`) are left out.
    """
    ignored = set(ignored_changes(stored))
    merged: dict[str, Any | None] = dict(file_roles)
    merged.update((name, definition) for name, definition in stored.items() if name not in ignored)
    merged.update(changes or {})
    return {name: definition for name, definition in merged.items() if definition is not None}


def removed_roles(stored: Mapping[str, Any | None]) -> set[str]:
    """Names ``stored`` removes (the router must drop them if the file or an earlier change defined them)."""
    return {name for name, definition in stored.items() if definition is None and not reserved_role_problem(name)}


def ignored_changes(stored: Mapping[str, Any | None]) -> list[str]:
    """Stored changes that never apply: reserved names an older version may have stored (the router
    refuses to install them, which would keep the node from starting)."""
    return sorted(name for name in stored if reserved_role_problem(name))
