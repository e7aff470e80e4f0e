"""
The embedded user store: SQLite in the data directory.

Per realm it holds users (authid, role, enabled), their credentials per auth method and their Ed25519
public keys. Credentials are stored only as what the verifier needs (argon2id hashes, PBKDF2-derived
WAMP-CRA keys, SCRAM stored/server keys; see :mod:`router.credentials`), never as a password.

The schema is versioned with SQLite's ``user_version``; :data:`MIGRATIONS` lists the statements that take
it from one version to the next, so later features add tables without touching existing data. The CLI
writes and the router worker reads concurrently, so the database runs in WAL mode with a busy timeout.
Each thread gets its own connection (the router worker reads from a thread pool).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "AUTHID_PATTERN",
    "MAX_AUTHID_LENGTH",
    "MIGRATIONS",
    "DuplicateKey",
    "DuplicateUser",
    "Key",
    "StoreError",
    "UnknownKey",
    "UnknownUser",
    "User",
    "UserStore",
    "valid_authid",
]

#: What an authid may be; always matched whole (:func:`valid_authid`): ``$`` alone lets a trailing newline in.
AUTHID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}")
#: Longest valid authid (bounds anything derived from one).
MAX_AUTHID_LENGTH = 128


def valid_authid(authid: object) -> bool:
    """Whether ``authid`` is a string the store could hold (checked before any regex work on long input)."""
    return isinstance(authid, str) and len(authid) <= MAX_AUTHID_LENGTH and AUTHID_PATTERN.fullmatch(authid) is not None


#: MIGRATIONS[n] takes the schema from version n to n + 1.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE users (
            realm TEXT NOT NULL,
            authid TEXT NOT NULL,
            role TEXT NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            created REAL NOT NULL,
            PRIMARY KEY (realm, authid)
        )""",
        """CREATE TABLE credentials (
            realm TEXT NOT NULL,
            authid TEXT NOT NULL,
            method TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (realm, authid, method),
            FOREIGN KEY (realm, authid) REFERENCES users (realm, authid) ON DELETE CASCADE
        )""",
        """CREATE TABLE keys (
            realm TEXT NOT NULL,
            pubkey TEXT NOT NULL,
            authid TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            PRIMARY KEY (realm, pubkey),
            FOREIGN KEY (realm, authid) REFERENCES users (realm, authid) ON DELETE CASCADE
        )""",
        "CREATE INDEX keys_by_user ON keys (realm, authid)",
    ],
    [
        # Role definitions changed at run time (admin API); NULL marks a role removed at run time.
        """CREATE TABLE roles (
            realm TEXT NOT NULL,
            name TEXT NOT NULL,
            definition TEXT,
            updated REAL NOT NULL,
            PRIMARY KEY (realm, name)
        )""",
    ],
]


class StoreError(Exception):
    """A store operation cannot be done; the message says why, for the user."""


class UnknownUser(StoreError):
    """No such user in that realm."""


class DuplicateUser(StoreError):
    """The user already exists in that realm."""


class UnknownKey(StoreError):
    """No such public key in that realm."""


class DuplicateKey(StoreError):
    """The public key is already registered in that realm."""


@dataclass(frozen=True)
class User:
    """A principal of one realm."""

    realm: str
    authid: str
    role: str
    enabled: bool
    methods: tuple[str, ...] = ()
    keys: int = 0


@dataclass(frozen=True)
class Key:
    """An Ed25519 public key (hex) that logs in as ``authid`` with WAMP-cryptosign."""

    realm: str
    pubkey: str
    authid: str
    comment: str


class UserStore:
    """Users, credentials and keys in one SQLite file; created and migrated on open."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._local = threading.local()
        with self._transaction() as db:
            self._migrate(db)

    # -- connections ---------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA secure_delete=ON")  # removed credentials do not linger in free pages
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _migrate(self, db: sqlite3.Connection) -> None:
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path} has schema version {version}; this Switchboard knows {len(MIGRATIONS)}")
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        version: int = self._connection().execute("PRAGMA user_version").fetchone()[0]
        return version

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- users ---------------------------------------------------------------------------------------

    def add_user(self, realm: str, authid: str, role: str, credentials: dict[str, dict[str, Any]]) -> User:
        """Create a user with its credentials (method -> verifier data)."""
        if not valid_authid(authid):
            raise StoreError(f"invalid authid {authid!r}: must match {AUTHID_PATTERN.pattern}")
        with self._transaction() as db:
            try:
                db.execute(
                    "INSERT INTO users (realm, authid, role, enabled, created) VALUES (?, ?, ?, 1, ?)",
                    (realm, authid, role, self._clock()),
                )
            except sqlite3.IntegrityError:
                raise DuplicateUser(f"user {authid!r} already exists in realm {realm!r}") from None
            self._put_credentials(db, realm, authid, credentials)
        return self.get_user(realm, authid)

    def get_user(self, realm: str, authid: str) -> User:
        """The user, or :class:`UnknownUser`."""
        row = (
            self._connection()
            .execute("SELECT realm, authid, role, enabled FROM users WHERE realm = ? AND authid = ?", (realm, authid))
            .fetchone()
        )
        if row is None:
            raise UnknownUser(f"no user {authid!r} in realm {realm!r}")
        return self._user(row)

    def find_user(self, realm: str, authid: str) -> User | None:
        """The user, or None."""
        try:
            return self.get_user(realm, authid)
        except UnknownUser:
            return None

    def list_users(self, realm: str | None = None) -> list[User]:
        """Users of ``realm`` (or of every realm), sorted by realm and authid."""
        query = "SELECT realm, authid, role, enabled FROM users"
        params: tuple[str, ...] = ()
        if realm is not None:
            query += " WHERE realm = ?"
            params = (realm,)
        rows = self._connection().execute(query + " ORDER BY realm, authid", params).fetchall()
        return [self._user(row) for row in rows]

    def _user(self, row: sqlite3.Row) -> User:
        db = self._connection()
        methods = tuple(
            r[0]
            for r in db.execute(
                "SELECT method FROM credentials WHERE realm = ? AND authid = ? ORDER BY method",
                (row["realm"], row["authid"]),
            )
        )
        keys = db.execute(
            "SELECT COUNT(*) FROM keys WHERE realm = ? AND authid = ?", (row["realm"], row["authid"])
        ).fetchone()[0]
        return User(row["realm"], row["authid"], row["role"], bool(row["enabled"]), methods, keys)

    def remove_user(self, realm: str, authid: str) -> None:
        """Delete the user with its credentials and keys."""
        with self._transaction() as db:
            if db.execute("DELETE FROM users WHERE realm = ? AND authid = ?", (realm, authid)).rowcount == 0:
                raise UnknownUser(f"no user {authid!r} in realm {realm!r}")

    def set_role(self, realm: str, authid: str, role: str) -> None:
        """Change the role the user logs in with."""
        self._update("UPDATE users SET role = ? WHERE realm = ? AND authid = ?", role, realm, authid)

    def set_enabled(self, realm: str, authid: str, enabled: bool) -> None:
        """Enable or disable logins of the user."""
        self._update("UPDATE users SET enabled = ? WHERE realm = ? AND authid = ?", int(enabled), realm, authid)

    def _update(self, statement: str, value: object, realm: str, authid: str) -> None:
        with self._transaction() as db:
            if db.execute(statement, (value, realm, authid)).rowcount == 0:
                raise UnknownUser(f"no user {authid!r} in realm {realm!r}")

    # -- credentials ---------------------------------------------------------------------------------

    def set_credentials(self, realm: str, authid: str, credentials: dict[str, dict[str, Any]]) -> None:
        """Replace the user's credentials for the methods given."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE realm = ? AND authid = ?", (realm, authid)).fetchone() is None:
                raise UnknownUser(f"no user {authid!r} in realm {realm!r}")
            self._put_credentials(db, realm, authid, credentials)

    def _put_credentials(
        self, db: sqlite3.Connection, realm: str, authid: str, credentials: dict[str, dict[str, Any]]
    ) -> None:
        for method, data in credentials.items():
            db.execute(
                "INSERT OR REPLACE INTO credentials (realm, authid, method, data) VALUES (?, ?, ?, ?)",
                (realm, authid, method, json.dumps(data, sort_keys=True)),
            )

    def credential(self, realm: str, authid: str, method: str) -> tuple[User, dict[str, Any]] | None:
        """The user and its verifier data for ``method``, or None if either is missing."""
        row = (
            self._connection()
            .execute(
                """SELECT u.realm, u.authid, u.role, u.enabled, c.data FROM users u
               JOIN credentials c ON c.realm = u.realm AND c.authid = u.authid
               WHERE u.realm = ? AND u.authid = ? AND c.method = ?""",
                (realm, authid, method),
            )
            .fetchone()
        )
        if row is None:
            return None
        user = User(row["realm"], row["authid"], row["role"], bool(row["enabled"]))
        data: dict[str, Any] = json.loads(row["data"])
        return user, data

    # -- roles changed at run time --------------------------------------------------------------------

    def set_role_definition(self, realm: str, name: str, definition: dict[str, Any] | None) -> None:
        """Record a role's new definition (None: the role was removed); it overrides the config file."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO roles (realm, name, definition, updated) VALUES (?, ?, ?, ?)",
                (realm, name, None if definition is None else json.dumps(definition, sort_keys=True), self._clock()),
            )

    def role_definitions(self, realm: str) -> dict[str, dict[str, Any] | None]:
        """Roles changed at run time in ``realm``: name -> definition, or None if removed."""
        rows = self._connection().execute("SELECT name, definition FROM roles WHERE realm = ?", (realm,)).fetchall()
        return {r["name"]: None if r["definition"] is None else json.loads(r["definition"]) for r in rows}

    # -- keys ----------------------------------------------------------------------------------------

    def add_key(self, realm: str, authid: str, pubkey: str, comment: str = "") -> Key:
        """Register an Ed25519 public key (64 hex characters) for the user."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE realm = ? AND authid = ?", (realm, authid)).fetchone() is None:
                raise UnknownUser(f"no user {authid!r} in realm {realm!r}")
            try:
                db.execute(
                    "INSERT INTO keys (realm, pubkey, authid, comment, created) VALUES (?, ?, ?, ?, ?)",
                    (realm, pubkey, authid, comment, self._clock()),
                )
            except sqlite3.IntegrityError:
                raise DuplicateKey(f"key {pubkey} is already registered in realm {realm!r}") from None
        return Key(realm, pubkey, authid, comment)

    def remove_key(self, realm: str, pubkey: str) -> Key:
        """Unregister a public key; returns what was removed."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT realm, pubkey, authid, comment FROM keys WHERE realm = ? AND pubkey = ?", (realm, pubkey)
            ).fetchone()
            if row is None:
                raise UnknownKey(f"no key {pubkey} in realm {realm!r}")
            db.execute("DELETE FROM keys WHERE realm = ? AND pubkey = ?", (realm, pubkey))
        return Key(row["realm"], row["pubkey"], row["authid"], row["comment"])

    def list_keys(self, realm: str, authid: str | None = None) -> list[Key]:
        """Keys of the realm (or of one user), sorted by authid then key."""
        query = "SELECT realm, pubkey, authid, comment FROM keys WHERE realm = ?"
        params: tuple[str, ...] = (realm,)
        if authid is not None:
            query += " AND authid = ?"
            params = (realm, authid)
        rows = self._connection().execute(query + " ORDER BY authid, pubkey", params).fetchall()
        return [Key(r["realm"], r["pubkey"], r["authid"], r["comment"]) for r in rows]

    def key_owner(self, realm: str, pubkey: str) -> User | None:
        """The user a public key belongs to, or None."""
        row = (
            self._connection()
            .execute(
                """SELECT u.realm, u.authid, u.role, u.enabled FROM keys k
               JOIN users u ON u.realm = k.realm AND u.authid = k.authid
               WHERE k.realm = ? AND k.pubkey = ?""",
                (realm, pubkey),
            )
            .fetchone()
        )
        return None if row is None else User(row["realm"], row["authid"], row["role"], bool(row["enabled"]))
