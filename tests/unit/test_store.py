"""The SQLite user store: migrations, users, credentials, keys, errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from router.store import (
    MIGRATIONS,
    DuplicateKey,
    DuplicateUser,
    StoreError,
    UnknownKey,
    UnknownUser,
    UserStore,
    valid_authid,
)

KEY = "ab" * 32


def store(tmp_path: Path) -> UserStore:
    return UserStore(tmp_path / "users.sqlite3", clock=lambda: 1000.0)


def test_new_store_is_at_the_latest_schema_version(tmp_path: Path) -> None:
    """Opening a new file creates every table and records the schema version."""
    s = store(tmp_path)
    assert s.schema_version == len(MIGRATIONS)
    tables = {r[0] for r in sqlite3.connect(s.path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "credentials", "keys"} <= tables


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer Switchboard is not silently used."""
    path = tmp_path / "users.sqlite3"
    UserStore(path).close()
    sqlite3.connect(path).execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="schema version"):
        UserStore(path)


def test_users_and_their_credentials(tmp_path: Path) -> None:
    """Users are per realm, with role, enabled flag and one credential per method."""
    s = store(tmp_path)
    s.add_user("demo", "alice", "user", {"ticket": {"hash": "h"}})
    s.add_user("other", "alice", "admin", {})
    assert s.get_user("demo", "alice").methods == ("ticket",)
    assert s.get_user("other", "alice").role == "admin"
    found = s.credential("demo", "alice", "ticket")
    assert found is not None
    assert found[1] == {"hash": "h"}
    assert s.credential("other", "alice", "ticket") is None
    s.set_role("demo", "alice", "admin")
    s.set_enabled("demo", "alice", False)
    assert (s.get_user("demo", "alice").role, s.get_user("demo", "alice").enabled) == ("admin", False)
    assert [u.realm for u in s.list_users()] == ["demo", "other"]
    assert [u.authid for u in s.list_users("demo")] == ["alice"]


def test_keys_belong_to_users_and_go_with_them(tmp_path: Path) -> None:
    """A key identifies its owner; removing the user removes its keys and credentials."""
    s = store(tmp_path)
    s.add_user("demo", "alice", "user", {"ticket": {"hash": "h"}})
    s.add_key("demo", "alice", KEY, "laptop")
    owner = s.key_owner("demo", KEY)
    assert owner is not None
    assert owner.authid == "alice"
    assert s.get_user("demo", "alice").keys == 1
    s.remove_user("demo", "alice")
    assert s.key_owner("demo", KEY) is None
    assert s.list_keys("demo") == []
    assert s.credential("demo", "alice", "ticket") is None


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (lambda s: s.add_user("demo", "alice", "user", {}), DuplicateUser),
        (lambda s: s.add_user("demo", "has space", "user", {}), StoreError),
        (lambda s: s.add_user("demo", "bob\n", "user", {}), StoreError),
        (lambda s: s.remove_user("demo", "ghost"), UnknownUser),
        (lambda s: s.set_role("demo", "ghost", "user"), UnknownUser),
        (lambda s: s.set_enabled("demo", "ghost", True), UnknownUser),
        (lambda s: s.set_credentials("demo", "ghost", {}), UnknownUser),
        (lambda s: s.add_key("demo", "ghost", KEY), UnknownUser),
        (lambda s: s.add_key("demo", "alice", KEY), DuplicateKey),
        (lambda s: s.remove_key("demo", "cd" * 32), UnknownKey),
        (lambda s: s.get_user("elsewhere", "alice"), UnknownUser),
    ],
)
def test_errors_name_what_is_wrong(tmp_path: Path, action: object, error: type[Exception]) -> None:
    """Each impossible operation raises its own StoreError subclass and changes nothing."""
    s = store(tmp_path)
    s.add_user("demo", "alice", "user", {})
    s.add_key("demo", "alice", KEY)
    with pytest.raises(error):
        action(s)  # type: ignore[operator]
    assert [u.authid for u in s.list_users()] == ["alice"]


def test_migrating_a_version_1_store_keeps_its_users(tmp_path: Path) -> None:
    """A store created at schema version 1 is upgraded in place: users stay, the roles table appears."""
    path = tmp_path / "users.sqlite3"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.execute("INSERT INTO users (realm, authid, role, enabled, created) VALUES ('demo', 'old', 'user', 1, 0)")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    s = UserStore(path)
    assert s.schema_version == len(MIGRATIONS)
    assert s.get_user("demo", "old").role == "user"
    s.set_role_definition("demo", "extra", {"allow": []})
    s.set_role_definition("demo", "gone", None)
    assert s.role_definitions("demo") == {"extra": {"allow": []}, "gone": None}


@pytest.mark.parametrize(
    ("authid", "valid"),
    [
        ("alice", True),
        ("a", True),
        ("alice.b-c_d+e@example.com", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("alice\n", False),
        ("alice\nbob", False),
        ("\nalice", False),
        ("", False),
        ("-alice", False),
        ("al ice", False),
        ("alïce", False),
        (None, False),
        (42, False),
    ],
)
def test_authids_are_matched_whole(authid: object, valid: bool) -> None:
    """Hand-written table: an authid is 1-128 ASCII characters of the allowed set, nothing after it (a
    trailing newline included), nothing but a string."""
    assert valid_authid(authid) is valid
