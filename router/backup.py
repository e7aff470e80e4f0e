"""
Backups of a data directory's databases: the user store (users, credentials, keys, roles changed at run
time) and the channel history of every realm (``history.<realm>.sqlite``).

:func:`backup` copies each database with SQLite's online backup API, so a running node keeps serving (and
writing) meanwhile and each copy is one consistent snapshot. The copies are standalone files (rollback
journal, no ``-wal``) in a new owner-only directory (or an empty one that is ours and owner-only: nobody
else may be able to plant or swap a file in it) with a ``manifest.json`` naming each file with its size
and SHA-256; each file is created anew, never through a symbolic link. :func:`verify` checks a backup the
way :func:`restore` needs it: the manifest, the hashes, a user store schema version this version can read,
a schema exactly as this version creates it (the hashes are not signed: anyone can make a backup whose
triggers or views would run in the node), and ``PRAGMA integrity_check``. :func:`restore` then copies each
file beside its target, checks the copy again and renames it over the target, after removing the
target's ``-wal``/``-shm`` (which belong to the file being replaced and would be applied to the new one).
Whether a node runs on the data directory is the caller's to check (:mod:`router.cli_node`): restoring
under a running node would be overwritten or worse.

A history file copied from a running node is marked "in use" (its router had it open), so the node started
on the restored data sees an unclean stop and gives each topic a new epoch: clients that saw events after
the backup are told ``recovered: false`` instead of being handed sequence numbers again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import sqlite3
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from router import __version__, datadir
from router.channels import db as history_db
from router.store import MIGRATIONS, UserStore

__all__ = [
    "MANIFEST",
    "BackupError",
    "BackupFile",
    "Manifest",
    "backup",
    "database_files",
    "read_manifest",
    "restore",
    "verify",
]

#: The manifest's name in a backup directory.
MANIFEST = "manifest.json"
_FORMAT = 1
_HISTORY_NAME = re.compile(r"history\.[^/\\]+\.sqlite")
_CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore cannot be done; the message says why, for the user."""


@dataclass(frozen=True)
class BackupFile:
    """One database in a backup."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What a backup holds."""

    version: str
    created: str
    files: tuple[BackupFile, ...]

    def to_json(self) -> dict[str, Any]:
        """The manifest file's content."""
        return {
            "format": _FORMAT,
            "version": self.version,
            "created": self.created,
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in self.files],
        }


def database_files(data_dir: Path) -> list[Path]:
    """The databases of ``data_dir`` a backup holds: the user store, then each realm's history (by name)."""
    history = sorted(p for p in data_dir.glob("history.*.sqlite") if _HISTORY_NAME.fullmatch(p.name))
    return [datadir.store_path(data_dir), *history]


def backup(data_dir: Path, target: Path, *, clock: Callable[[], float] = time.time) -> Manifest:
    """Copy the databases of ``data_dir`` into ``target`` with a manifest, everything owner-only.

    ``target`` is created (mode 0700; its parent must exist), or may be an existing directory that is
    empty, ours and owner-only: never one another user owns or can write, who could plant or swap files
    in it. Each file is created anew (``O_EXCL``, never through a symbolic link): a name that appears in
    ``target`` meanwhile fails the backup. Raises :class:`BackupError`."""
    store = datadir.store_path(data_dir)
    if not store.is_file():
        raise BackupError(f"no user store in {data_dir} (nothing to back up)")
    directory = _open_target(target)
    written: list[str] = []
    try:
        files = []
        for source in database_files(data_dir):
            fd = _create(directory, target, source.name)
            written.append(source.name)
            with os.fdopen(fd, "r+b") as copy:
                _online_copy(source, target / source.name)
                # What SQLite wrote by path must be the file created here (not a swapped directory or name).
                if not os.path.samestat(os.fstat(copy.fileno()), os.stat(target / source.name, follow_symlinks=False)):
                    raise BackupError(f"{target / source.name} was replaced during the backup: refused")
                os.fsync(copy.fileno())
                size, digest = _hash_file(copy)
            files.append(BackupFile(source.name, size, digest))
        created = datetime.fromtimestamp(clock(), UTC).isoformat(timespec="seconds")
        manifest = Manifest(__version__, created, tuple(files))
        fd = _create(directory, target, MANIFEST)
        written.append(MANIFEST)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(manifest.to_json(), indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.fsync(directory)
    except (OSError, sqlite3.Error, BackupError) as e:
        for name in written:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=directory)
        if isinstance(e, BackupError):
            raise
        raise BackupError(f"backup into {target} failed: {e}") from None
    finally:
        os.close(directory)
    return manifest


def _open_target(target: Path) -> int:
    """Create ``target`` owner-only, or accept it empty, ours and owner-only; a file descriptor of it."""
    created = True
    try:
        os.mkdir(target, 0o700)
    except FileExistsError:
        created = False
    except OSError as e:
        raise BackupError(f"cannot create {target}: {e}") from None
    try:
        # O_NOFOLLOW: a symbolic link (whoever made it) is not followed to a directory it names.
        directory = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        with contextlib.suppress(OSError):
            kind = os.lstat(target).st_mode
            if stat.S_ISLNK(kind):
                raise BackupError(f"{target} is a symbolic link: back up into a new directory") from None
            if not stat.S_ISDIR(kind):
                raise BackupError(f"{target} exists and is not a directory") from None
        raise BackupError(f"cannot open {target}: {e}") from None
    try:
        info = os.fstat(directory)
        if info.st_uid != os.geteuid():
            raise BackupError(
                f"{target} belongs to another user (uid {info.st_uid}), who could change the backup: "
                "back up into a new directory"
            )
        mode = stat.S_IMODE(info.st_mode)
        if created:
            os.fchmod(directory, 0o700)  # mkdir's mode went through the umask
        elif mode & 0o077:
            raise BackupError(
                f"{target} is accessible to other users (mode {mode:04o}): back up into a new directory "
                "(or chmod 700 it)"
            )
        if os.listdir(directory):
            raise BackupError(f"{target} exists and is not empty: back up into a new directory")
    except BaseException:
        os.close(directory)
        raise
    return directory


def _create(directory: int, target: Path, name: str) -> int:
    """Create ``name`` in ``directory`` owner-only; never an existing file, never through a symbolic link."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, 0o600, dir_fd=directory)
    except FileExistsError:
        raise BackupError(
            f"{target / name} appeared during the backup (does someone else write {target}?): refused"
        ) from None
    os.fchmod(fd, 0o600)
    return fd


def _online_copy(source: Path, copy: Path) -> None:
    # Read-only: a backup never changes the node's files (nor creates a database that is not there).
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(str(copy))
        try:
            src.backup(dst)
            # A standalone file: the copy of a WAL database would be in WAL mode too.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def _hash_file(f: BinaryIO) -> tuple[int, str]:
    """Size and SHA-256 of the open file ``f``, read from its start."""
    f.seek(0)
    digest = hashlib.sha256()
    size = 0
    while chunk := f.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(source: Path) -> Manifest:
    """The manifest of the backup in ``source``, checked for shape (not the files). Raises BackupError."""
    path = source / MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{source} is not a backup: no {MANIFEST}") from None
    except (OSError, ValueError) as e:
        raise BackupError(f"cannot read {path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise BackupError(f"{path}: not a backup manifest this version understands")
    try:
        files = tuple(BackupFile(str(f["name"]), int(f["size"]), str(f["sha256"])) for f in doc["files"])
        manifest = Manifest(str(doc["version"]), str(doc["created"]), files)
    except (KeyError, TypeError, ValueError) as e:
        raise BackupError(f"{path}: malformed ({type(e).__name__}: {e})") from None
    names = [f.name for f in files]
    store_name = datadir.store_path(Path()).name
    for name in names:
        # Names only (never a path): restore writes each into the data directory under this name.
        if name != store_name and not _HISTORY_NAME.fullmatch(name):
            raise BackupError(f"{path}: unexpected file name {name!r}")
    if store_name not in names or len(set(names)) != len(names):
        raise BackupError(f"{path}: must list the user store {store_name} once and each file once")
    return manifest


def verify(source: Path) -> Manifest:
    """Check the backup in ``source`` before a restore; return its manifest or raise :class:`BackupError`
    naming the first problem: a missing file, a size or hash that differs, a user store with a schema
    newer than this version supports, a schema that is not exactly what Switchboard creates (a trigger,
    view, table or index more or less, a table defined otherwise: the manifest is not signed, so anyone
    can make a backup that passes the hashes), a database that fails ``PRAGMA integrity_check``."""
    manifest = read_manifest(source)
    for f in manifest.files:
        path = source / f.name
        if not path.is_file():
            raise BackupError(f"{path}: missing")
        if path.stat().st_size != f.size or _sha256(path) != f.sha256:
            raise BackupError(f"{path}: differs from the manifest (size or SHA-256): damaged or changed")
        _check_database(path, _is_store(f.name))
    return manifest


def _is_store(name: str) -> bool:
    return name == datadir.store_path(Path()).name


#: A database's schema: ``(type, name) -> (tbl_name, sql with whitespace normalised)`` of sqlite_master.
_Schema = dict[tuple[str, str], tuple[str, str | None]]


def _read_schema(db: sqlite3.Connection) -> _Schema:
    rows = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return {(kind, name): (table, None if sql is None else " ".join(sql.split())) for kind, name, table, sql in rows}


@functools.cache
def _expected_schema(is_store: bool, version: int) -> tuple[tuple[tuple[str, str], tuple[str, str | None]], ...]:
    """The schema this version of Switchboard creates: a user store of schema ``version`` (the migrations
    up to it) or a history file, made in a private temporary directory and read back."""
    with tempfile.TemporaryDirectory(prefix="switchboard-schema-") as tmp:
        path = Path(tmp) / "reference.sqlite"
        if not is_store:
            conn, _, _ = history_db.open_history(path)
            history_db.close(conn)
        elif version == len(MIGRATIONS):
            UserStore(path).close()
        else:  # an older store: a later start migrates it the rest of the way
            db = sqlite3.connect(path)
            for statements in MIGRATIONS[:version]:
                for statement in statements:
                    db.execute(statement)
            db.close()
        db = sqlite3.connect(path)
        try:
            return tuple(sorted(_read_schema(db).items(), key=lambda item: item[0]))
        finally:
            db.close()


def _schema_differences(found: _Schema, expected: _Schema) -> list[str]:
    """Each object of ``found`` that ``expected`` lacks or defines otherwise, and each one missing."""
    problems = []
    for (kind, name), (table, sql) in sorted(found.items()):
        if (kind, name) not in expected:
            problems.append(f"unexpected {kind} {name!r}" + (f" on {table!r}" if table != name else ""))
        elif expected[kind, name] != (table, sql):
            problems.append(f"{kind} {name!r} is defined otherwise")
    problems.extend(f"missing {kind} {name!r}" for kind, name in sorted(expected.keys() - found.keys()))
    return problems


def _check_database(path: Path, is_store: bool, *, integrity: bool = True) -> None:
    what = "user store" if is_store else "history"
    try:
        # immutable: read as it is, without creating a -wal/-shm beside the backup.
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            # The file is not trusted yet: no function its schema names may have side effects.
            db.execute("PRAGMA trusted_schema=OFF")
            schema = _read_schema(db)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {name for kind, name in schema if kind == "table"}
            expected_tables = {"users", "credentials", "keys"} if is_store else {"events", "topics", "meta"}
            if not expected_tables <= tables or (is_store and version < 1):
                raise BackupError(f"{path}: not a Switchboard {what} database")
            if is_store and version > len(MIGRATIONS):
                raise BackupError(
                    f"{path}: user store schema version {version} is newer than this version of Switchboard "
                    f"supports ({len(MIGRATIONS)}): restore it with the version that made it or a later one"
                )
            problems = _schema_differences(schema, dict(_expected_schema(is_store, version)))
            if problems:
                raise BackupError(
                    f"{path}: the {what} schema is not the one Switchboard creates ({'; '.join(problems)}): refused"
                )
            result = [row[0] for row in db.execute("PRAGMA integrity_check")] if integrity else ["ok"]
        finally:
            db.close()
    except sqlite3.Error as e:
        raise BackupError(f"{path}: not a readable SQLite database ({e})") from None
    if result != ["ok"]:
        raise BackupError(f"{path}: integrity check failed: {'; '.join(result[:3])}")


def restore(source: Path, data_dir: Path) -> Manifest:
    """Verify the backup in ``source`` and put its files in ``data_dir`` (created owner-only if need be).
    Every file is first copied beside its target and checked again there (hash, schema); only then is
    each replaced atomically. No node may run on ``data_dir`` (the caller checks). Files of ``data_dir``
    the backup does not hold (another realm's history) are left as they are."""
    manifest = verify(source)
    staged: list[tuple[Path, Path]] = []
    try:
        datadir.prepare(data_dir)
        for f in manifest.files:
            temporary = data_dir / f".{f.name}.restore"
            staged.append((temporary, data_dir / f.name))
            _stage(source / f.name, temporary, f.sha256, _is_store(f.name))
        for temporary, target in staged:
            # The old file's journal would be applied to the new one: gone first.
            for suffix in ("-wal", "-shm", "-journal"):
                target.with_name(target.name + suffix).unlink(missing_ok=True)
            os.replace(temporary, target)
        _sync_directory(data_dir)
    except OSError as e:
        raise BackupError(f"restore into {data_dir} failed: {e}") from None
    finally:
        for temporary, _ in staged:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
    return manifest


def _stage(source: Path, temporary: Path, sha256: str, is_store: bool) -> None:
    with open(source, "rb") as src, open(datadir.open_private(temporary), "wb") as dst:
        while chunk := src.read(_CHUNK):
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    if _sha256(temporary) != sha256:
        raise BackupError(f"{source}: changed while it was being restored")
    # The schema of what is installed, not only of what verify() read: the backup may have changed since.
    _check_database(temporary, is_store, integrity=False)


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
