"""Which roles a realm has: the config file's, changed by what the admin API stored (router.authz.effective)."""

from __future__ import annotations

from typing import Any

from router.authz.effective import effective_roles, ignored_changes, removed_roles

USER: dict[str, Any] = {"allow": [{"uri": "chat.send", "actions": ["call"]}]}
ADMIN: dict[str, Any] = {"inherits": ["user"]}
MUTED: dict[str, Any] = {"inherits": ["user"], "deny": [{"uri": "chat.send", "actions": ["call"]}]}
FILE = {"user": USER, "admin": ADMIN}


def test_without_stored_changes_the_file_roles_are_the_roles() -> None:
    """Nothing stored: exactly the file's roles, in the file's order."""
    assert list(effective_roles(FILE, {})) == ["user", "admin"]


def test_a_stored_role_is_added_after_the_file_roles() -> None:
    """A role created at run time exists, after the file's roles."""
    assert effective_roles(FILE, {"muted": MUTED}) == {"user": USER, "admin": ADMIN, "muted": MUTED}
    assert list(effective_roles(FILE, {"muted": MUTED})) == ["user", "admin", "muted"]


def test_a_stored_definition_replaces_the_file_one() -> None:
    """A file role changed at run time has its stored definition."""
    assert effective_roles(FILE, {"admin": MUTED})["admin"] == MUTED


def test_a_role_stored_as_removed_is_gone() -> None:
    """None in the store removes the role, whether the file or an earlier change defined it."""
    assert effective_roles(FILE, {"admin": None}) == {"user": USER}
    assert removed_roles({"admin": None, "muted": MUTED}) == {"admin"}


def test_pending_changes_apply_last() -> None:
    """A change being validated (admin role.set/remove) applies over the stored ones."""
    assert effective_roles(FILE, {"muted": MUTED}, {"muted": None, "extra": USER}) == {
        "user": USER,
        "admin": ADMIN,
        "extra": USER,
    }


def test_stored_changes_to_reserved_names_never_apply() -> None:
    """An older version may have stored a role named "trusted": it is ignored (and reported as such)."""
    stored = {"trusted": USER, "muted": MUTED}
    assert "trusted" not in effective_roles(FILE, stored)
    assert ignored_changes(stored) == ["trusted"]
    assert removed_roles({"trusted": None}) == set()
