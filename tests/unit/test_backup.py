"""Backups of the user store and channel history (router.backup): what a backup holds, what a restore
refuses, and how it replaces the files."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

import router.backup as router_backup
from router import __version__, datadir
from router.backup import MANIFEST, BackupError, backup, database_files, restore, verify
from router.channels import db
from router.store import MIGRATIONS, UserStore


def make_data_dir(path: Path, realms: tuple[str, ...] = ("demo",)) -> Path:
    """A data directory with one user in the store and one event per realm's history, both left open in
    WAL mode with unwritten -wal content as a running node leaves them (the connections are returned)."""
    datadir.prepare(path)
    store = UserStore(datadir.store_path(path))
    store.add_user("demo", "alice", "user", {})
    store.close()
    for realm in realms:
        conn, _, _ = db.open_history(datadir.history_path(path, realm))
        conn.execute("INSERT INTO events VALUES ('t', 1, 7, 1.0, 9e9, x'00', 'alice', 'user')")
        conn.close()
    return path


def sha256(path: Path) -> str:
    """SHA-256 of a file, computed here (the test's own oracle)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rewrite_manifest(target: Path) -> None:
    """Recompute the manifest's sizes and hashes after a test changed a file on purpose."""
    doc = json.loads((target / MANIFEST).read_text())
    for f in doc["files"]:
        f["size"], f["sha256"] = (target / f["name"]).stat().st_size, sha256(target / f["name"])
    (target / MANIFEST).write_text(json.dumps(doc))


def test_backup_copies_every_database_owner_only_with_a_manifest(tmp_path: Path) -> None:
    """The backup directory (0700) holds the store and each realm's history (0600, standalone: no -wal)
    and a manifest with this version, a UTC time and each file's size and SHA-256; the copies hold the data."""
    data = make_data_dir(tmp_path / "data", realms=("demo", "other"))
    target = tmp_path / "backup"
    manifest = backup(data, target, clock=lambda: 0.0)
    names = ["users.sqlite3", "history.demo.sqlite", "history.other.sqlite"]
    assert sorted(p.name for p in target.iterdir()) == sorted([*names, MANIFEST])
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in target.iterdir()} == {0o600}
    doc = json.loads((target / MANIFEST).read_text())
    assert doc == {
        "format": 1,
        "version": __version__,
        "created": "1970-01-01T00:00:00+00:00",
        "files": [{"name": n, "size": (target / n).stat().st_size, "sha256": sha256(target / n)} for n in names],
    }
    assert [f.name for f in manifest.files] == names
    copy = sqlite3.connect(target / "users.sqlite3")
    assert copy.execute("SELECT authid FROM users").fetchall() == [("alice",)]
    assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    copy.close()
    events = sqlite3.connect(target / "history.demo.sqlite")
    assert events.execute("SELECT topic, seq, publication FROM events").fetchall() == [("t", 1, 7)]
    events.close()


def test_backup_refuses_a_non_empty_target_and_a_missing_store(tmp_path: Path) -> None:
    """An existing non-empty directory or a file as target, and a data directory without a store, are
    refused with a message saying so; the target keeps what it had."""
    data = make_data_dir(tmp_path / "data")
    full = tmp_path / "full"
    full.mkdir(mode=0o700)
    (full / "keep").write_text("mine")
    with pytest.raises(BackupError, match="exists and is not empty"):
        backup(data, full)
    assert [p.name for p in full.iterdir()] == ["keep"]
    (tmp_path / "file").write_text("")
    with pytest.raises(BackupError, match="is not a directory"):
        backup(data, tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackupError, match="no user store"):
        backup(tmp_path / "empty", tmp_path / "b")
    empty_target = tmp_path / "empty-target"
    empty_target.mkdir(mode=0o700)
    assert len(backup(data, empty_target).files) == 2


def test_backup_refuses_a_directory_another_user_could_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An existing empty directory is taken only if it is ours and owner-only: one open to others (0755), one
    owned by another user, or a symbolic link to one of ours is refused, and left as it was (not chmodded)."""
    data = make_data_dir(tmp_path / "data")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    with pytest.raises(BackupError, match=r"is accessible to other users \(mode 0755\)"):
        backup(data, shared)
    assert (stat.S_IMODE(shared.stat().st_mode), list(shared.iterdir())) == (0o755, [])
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(theirs, 65534, 65534)  # really another user's
    else:  # not root: this process cannot give a directory away, so it is told it is someone else
        owner = os.geteuid()
        monkeypatch.setattr(os, "geteuid", lambda: owner + 1)
    with pytest.raises(BackupError, match="belongs to another user"):
        backup(data, theirs)
    monkeypatch.undo()
    assert list(theirs.iterdir()) == []
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(mine)
    with pytest.raises(BackupError, match="is a symbolic link"):
        backup(data, tmp_path / "link")
    assert list(mine.iterdir()) == []


@pytest.mark.parametrize("planted", ["history.demo.sqlite", MANIFEST])
def test_a_name_planted_in_the_target_during_a_backup_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, planted: str
) -> None:
    """A symbolic link that appears in the target while the backup runs (after the target was checked) is
    neither followed nor reused: the backup fails saying so, the file it points at keeps its bytes, and
    the files the backup had written are removed."""
    data = make_data_dir(tmp_path / "data")
    victim = tmp_path / "victim.sqlite"  # a database of ours elsewhere, which SQLite would overwrite
    mine = sqlite3.connect(victim)
    mine.execute("CREATE TABLE mine (x)")
    mine.close()
    kept = victim.read_bytes()
    target = tmp_path / "backup"

    def plant() -> None:
        (target / planted).symlink_to(victim)

    if planted == MANIFEST:
        clock = lambda: plant() or 0.0  # noqa: E731 - called after the databases are copied
    else:
        clock = lambda: 0.0  # noqa: E731
        real = router_backup.database_files

        def listed(data_dir: Path) -> list[Path]:
            plant()  # the target exists and was found empty by now
            return real(data_dir)

        monkeypatch.setattr(router_backup, "database_files", listed)
    with pytest.raises(BackupError, match=f"{planted} appeared during the backup"):
        backup(data, target, clock=clock)
    assert victim.read_bytes() == kept
    assert [p.name for p in target.iterdir()] == [planted]


def test_only_history_files_and_the_store_are_databases(tmp_path: Path) -> None:
    """database_files lists the store first, then history.<realm>.sqlite by name, never -wal/-shm or others."""
    data = make_data_dir(tmp_path / "data", realms=("b", "a"))
    (data / "history.x.sqlite-wal").write_text("")
    (data / "notes.sqlite").write_text("")
    assert [p.name for p in database_files(data)] == ["users.sqlite3", "history.a.sqlite", "history.b.sqlite"]


def test_restore_replaces_the_files_and_their_stale_journals(tmp_path: Path) -> None:
    """A restore puts the backup's bytes in place (0600), removes the old files' -wal/-shm, and leaves a
    history the backup does not hold; the restored store reads as backed up."""
    data = make_data_dir(tmp_path / "data")
    backup(data, tmp_path / "backup")
    store = UserStore(datadir.store_path(data))
    store.add_user("demo", "bob", "user", {})  # after the backup: gone by the restore
    store.close()
    for suffix in ("-wal", "-shm"):
        (data / f"users.sqlite3{suffix}").write_bytes(b"stale")
    extra = datadir.history_path(data, "later")
    extra.write_bytes(b"kept")
    restore(tmp_path / "backup", data)
    assert sha256(data / "users.sqlite3") == sha256(tmp_path / "backup" / "users.sqlite3")
    assert not (data / "users.sqlite3-wal").exists()
    assert not (data / "users.sqlite3-shm").exists()
    assert stat.S_IMODE((data / "users.sqlite3").stat().st_mode) == 0o600
    assert extra.read_bytes() == b"kept"
    assert sorted(p.name for p in data.iterdir() if p.name.endswith(".restore")) == []
    restored = UserStore(datadir.store_path(data))
    assert [u.authid for u in restored.list_users()] == ["alice"]
    restored.close()


def test_restore_into_a_new_data_directory(tmp_path: Path) -> None:
    """A data directory that does not exist is created owner-only and gets the backup's files."""
    backup(make_data_dir(tmp_path / "data"), tmp_path / "backup")
    restore(tmp_path / "backup", tmp_path / "new")
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert sha256(tmp_path / "new" / "history.demo.sqlite") == sha256(tmp_path / "backup" / "history.demo.sqlite")


def flip_byte(path: Path, offset: int) -> None:
    """Change one byte of ``path``."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_backup_is_refused_and_nothing_is_restored(tmp_path: Path) -> None:
    """One changed byte in a backed-up file fails the hash check; the data directory is left untouched."""
    data = make_data_dir(tmp_path / "data")
    backup(data, tmp_path / "backup")
    flip_byte(tmp_path / "backup" / "history.demo.sqlite", 5000)
    before = sha256(data / "users.sqlite3")
    with pytest.raises(BackupError, match="differs from the manifest"):
        restore(tmp_path / "backup", data)
    assert sha256(data / "users.sqlite3") == before


def test_a_corrupt_database_fails_the_integrity_check(tmp_path: Path) -> None:
    """A damaged page with a manifest that matches it (made after the damage) fails PRAGMA integrity_check
    or cannot be read at all: refused either way."""
    backup(make_data_dir(tmp_path / "data"), tmp_path / "backup")
    path = tmp_path / "backup" / "users.sqlite3"
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    for offset in range(page + 8, page + 64):  # the b-tree page header and cell pointers of page 2
        flip_byte(path, offset)
    rewrite_manifest(tmp_path / "backup")
    with pytest.raises(BackupError, match=r"integrity check failed|not a readable SQLite database"):
        verify(tmp_path / "backup")


def test_a_store_newer_than_this_version_is_refused(tmp_path: Path) -> None:
    """A store whose schema version is beyond the migrations this version knows is refused, naming both."""
    backup(make_data_dir(tmp_path / "data"), tmp_path / "backup")
    newer = sqlite3.connect(tmp_path / "backup" / "users.sqlite3")
    newer.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    newer.close()
    rewrite_manifest(tmp_path / "backup")
    with pytest.raises(BackupError) as refused:
        verify(tmp_path / "backup")
    assert f"schema version {len(MIGRATIONS) + 1} is newer than this version of Switchboard supports" in str(
        refused.value
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda doc: doc["files"].append({"name": "../evil", "size": 1, "sha256": "0"}), "unexpected file name"),
        (lambda doc: doc["files"].pop(0), "must list the user store"),
        (lambda doc: doc.update(format=2), "not a backup manifest this version understands"),
        (lambda doc: doc["files"][0].pop("sha256"), "malformed"),
    ],
)
def test_a_manifest_that_is_not_ours_is_refused(tmp_path: Path, change: object, message: str) -> None:
    """A manifest naming a path, lacking the store, of another format, or missing a field is refused."""
    backup(make_data_dir(tmp_path / "data"), tmp_path / "backup")
    doc = json.loads((tmp_path / "backup" / MANIFEST).read_text())
    change(doc)  # type: ignore[operator]
    (tmp_path / "backup" / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(BackupError, match=message):
        verify(tmp_path / "backup")


def test_a_directory_without_a_manifest_is_not_a_backup(tmp_path: Path) -> None:
    """verify() of a directory without manifest.json says it is not a backup."""
    with pytest.raises(BackupError, match=r"is not a backup: no manifest\.json"):
        verify(tmp_path)


def digests(directory: Path) -> dict[str, str]:
    """SHA-256 of each file of ``directory`` (to show a refused restore changed nothing)."""
    return {p.name: sha256(p) for p in directory.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    ("name", "sql", "refusal"),
    [
        (
            "users.sqlite3",
            "CREATE TRIGGER keep_admin AFTER UPDATE ON users BEGIN UPDATE users SET role = 'admin'; END",
            "unexpected trigger 'keep_admin' on 'users'",
        ),
        ("users.sqlite3", "CREATE VIEW everyone AS SELECT * FROM users", "unexpected view 'everyone'"),
        ("users.sqlite3", "CREATE TABLE stash AS SELECT * FROM credentials", "unexpected table 'stash'"),
        ("users.sqlite3", "CREATE INDEX by_role ON users (role)", "unexpected index 'by_role' on 'users'"),
        (
            "users.sqlite3",
            "DROP TABLE roles; CREATE TABLE roles (realm TEXT, name TEXT, definition TEXT, updated REAL, x)",
            "table 'roles' is defined otherwise",
        ),
        ("users.sqlite3", "DROP INDEX keys_by_user", "missing index 'keys_by_user'"),
        (
            "history.demo.sqlite",
            "CREATE TRIGGER t AFTER INSERT ON events BEGIN DELETE FROM events; END",
            "unexpected trigger 't' on 'events'",
        ),
    ],
)
def test_a_backup_with_a_schema_switchboard_does_not_create_is_refused(
    tmp_path: Path, name: str, sql: str, refusal: str
) -> None:
    """A backed-up database whose schema differs from what this version creates (a trigger, a view, a table
    or index more or less, a table defined otherwise), with hashes made to match, is refused naming the
    object; the data directory keeps its bytes."""
    data = make_data_dir(tmp_path / "data")
    backup(data, tmp_path / "backup")
    changed = sqlite3.connect(tmp_path / "backup" / name)
    changed.executescript(sql)
    changed.close()
    rewrite_manifest(tmp_path / "backup")
    before = digests(data)
    with pytest.raises(BackupError) as refused:
        restore(tmp_path / "backup", data)
    assert refusal in str(refused.value)
    assert str(refused.value).startswith(f"{tmp_path / 'backup' / name}: the ")
    assert digests(data) == before


def test_a_store_of_an_older_schema_version_is_restored(tmp_path: Path) -> None:
    """A store made by an older version (fewer migrations) matches that version's schema: restored, and
    migrated when opened."""
    data = tmp_path / "data"
    datadir.prepare(data)
    old = sqlite3.connect(datadir.store_path(data))
    old.executescript(";".join(MIGRATIONS[0]) + "; PRAGMA user_version = 1")
    old.execute("INSERT INTO users VALUES ('demo', 'alice', 'user', 1, 0)")
    old.commit()
    old.close()
    backup(data, tmp_path / "backup")
    restore(tmp_path / "backup", tmp_path / "new")
    store = UserStore(datadir.store_path(tmp_path / "new"))
    assert (store.schema_version, [u.authid for u in store.list_users()]) == (len(MIGRATIONS), ["alice"])
    store.close()
