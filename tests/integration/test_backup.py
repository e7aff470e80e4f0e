"""``switchboard backup`` of a running, serving node and ``switchboard restore`` (issue 13), end to end: the
backup restored into a fresh data directory starts a node that has the users and the channel history."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import task, threads

from components import uris
from router import datadir
from router.store import UserStore
from router.testkit import session, start_node
from tests.conftest import DEMO_CONFIG
from tests.integration.cli import switchboard
from tests.integration.users import add_user

pytestmark = pytest.mark.integration


async def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a switchboard command off the reactor thread (the node is this process's child)."""
    result: subprocess.CompletedProcess[str] = await threads.deferToThread(switchboard, *args)
    return result


async def events_written(reactor: Any, history: Path, topic: str, count: int) -> None:
    """Wait (bounded) until ``count`` events of ``topic`` are in the history file, not only in memory."""
    deadline = time.monotonic() + 10
    while True:
        db = sqlite3.connect(f"{history.as_uri()}?mode=ro", uri=True)
        try:
            found = db.execute("SELECT count(*) FROM events WHERE topic = ?", (topic,)).fetchone()[0]
        finally:
            db.close()
        if found >= count:
            return
        assert time.monotonic() < deadline, f"{found} of {count} events written"
        await task.deferLater(reactor, 0.05, lambda: None)


def digests(directory: Path) -> dict[str, str]:
    """SHA-256 of each file of ``directory`` (to show a refused restore changed nothing)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir() if p.is_file()}


@pytest_twisted.ensureDeferred
async def test_backup_of_a_serving_node_restores_users_and_history(reactor: Any, tmp_path: Path) -> None:
    """While a node serves, `backup` copies its store and history (exit 0, owner-only); `restore` into
    the running node's data directory is refused (exit 1, files unchanged); restored into a fresh data
    directory, a node started there lets the user log in and history.get returns the events."""
    node = await start_node(reactor, DEMO_CONFIG, tmp_path / "data")
    room = "backup_room"
    topic = f"chat.room.{room}"
    try:
        user = add_user(node)
        async with session(reactor, node.url, authmethod="ticket", authid=user.authid, ticket=user.password) as s:
            sent = [await s.call(uris.CHAT_SEND, room, f"m{i}") for i in range(3)]
        await events_written(reactor, datadir.history_path(node.data_dir, "demo"), topic, 3)
        made = await cli("backup", str(tmp_path / "backup"), "--data-dir", str(node.data_dir))
        assert made.returncode == 0, made
        assert made.stdout.startswith("backed up 2 file(s), ")
        assert stat.S_IMODE((tmp_path / "backup").stat().st_mode) == 0o700
        assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "backup").iterdir()} == {0o600}

        before = digests(node.data_dir)
        refused = await cli("restore", str(tmp_path / "backup"), "--data-dir", str(node.data_dir))
        assert refused.returncode == 1
        assert refused.stderr.startswith(f"error: a Switchboard node is running on data directory {node.data_dir} (")
        assert digests(node.data_dir) == before
        again = await cli("backup", str(tmp_path / "backup"), "--data-dir", str(node.data_dir))
        assert (again.returncode, again.stderr) == (
            1,
            f"error: {tmp_path / 'backup'} exists and is not empty: back up into a new directory\n",
        )
    finally:
        await node.stop()

    fresh = tmp_path / "fresh"
    restored = await cli("restore", str(tmp_path / "backup"), "--data-dir", str(fresh))
    assert restored.returncode == 0, restored
    assert restored.stdout.startswith(f"restored 2 file(s) into {fresh} from {tmp_path / 'backup'} (made ")
    second = await start_node(reactor, DEMO_CONFIG, fresh)
    try:
        async with session(reactor, second.url, authmethod="ticket", authid=user.authid, ticket=user.password) as s:
            assert s.authid == user.authid
            page = await s.call(uris.HISTORY_GET, topic)
            chat = await s.call(uris.CHAT_HISTORY, room)
    finally:
        await second.stop()
    assert [(e["seq"], e["args"][0]["text"]) for e in page["events"]] == [(1, "m0"), (2, "m1"), (3, "m2")]
    assert chat == sent


@pytest_twisted.ensureDeferred
async def test_a_corrupted_backup_is_refused(reactor: Any, tmp_path: Path) -> None:
    """A backup with one byte changed in its user store is refused by `restore` (exit 1, saying which file
    differs from the manifest), and the data directory keeps its files."""
    data = tmp_path / "data"
    datadir.prepare(data)
    made = await cli("backup", str(tmp_path / "backup"), "--data-dir", str(data))
    assert made.returncode == 0, made
    store = tmp_path / "backup" / "users.sqlite3"
    damaged = bytearray(store.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    store.write_bytes(bytes(damaged))
    before = digests(data)
    refused = await cli("restore", str(tmp_path / "backup"), "--data-dir", str(data))
    assert (refused.returncode, refused.stderr) == (
        1,
        f"error: {store}: differs from the manifest (size or SHA-256): damaged or changed\n",
    )
    assert digests(data) == before


@pytest_twisted.ensureDeferred
async def test_a_backup_with_triggers_is_refused(reactor: Any, tmp_path: Path) -> None:
    """The red-team backup: triggers that re-create an admin when it is removed or demoted, a table stashing
    its credentials, and the manifest's hashes recomputed to match. `restore` refuses it (exit 1, naming
    the trigger) and the data directory keeps its files; backup into a directory open to others (0755) is
    refused too, and the directory is left as it was."""
    data = tmp_path / "data"
    datadir.prepare(data)
    UserStore(datadir.store_path(data)).close()
    made = await cli("backup", str(tmp_path / "backup"), "--data-dir", str(data))
    assert made.returncode == 0, made
    evil = sqlite3.connect(tmp_path / "backup" / "users.sqlite3")
    evil.executescript(
        """
        CREATE TABLE stash AS SELECT * FROM credentials WHERE authid = 'mallory';
        CREATE TRIGGER keep_mallory AFTER DELETE ON users WHEN old.authid = 'mallory' BEGIN
          INSERT INTO users VALUES (old.realm, 'mallory', 'admin', 1, 0);
          INSERT OR REPLACE INTO credentials SELECT * FROM stash;
        END;
        CREATE TRIGGER keep_admin AFTER UPDATE ON users
          WHEN new.authid = 'mallory' AND (new.role != 'admin' OR new.enabled = 0) BEGIN
          UPDATE users SET role = 'admin', enabled = 1 WHERE authid = 'mallory';
        END;
        """
    )
    evil.close()
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    for f in manifest["files"]:
        content = (tmp_path / "backup" / f["name"]).read_bytes()
        f["size"], f["sha256"] = len(content), hashlib.sha256(content).hexdigest()
    (tmp_path / "backup" / "manifest.json").write_text(json.dumps(manifest))
    before = digests(data)
    refused = await cli("restore", str(tmp_path / "backup"), "--data-dir", str(data))
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: {tmp_path / 'backup' / 'users.sqlite3'}: the user store schema is not ")
    assert "unexpected trigger 'keep_admin' on 'users'" in refused.stderr
    assert "unexpected trigger 'keep_mallory' on 'users'" in refused.stderr
    assert "unexpected table 'stash'" in refused.stderr
    assert digests(data) == before

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    again = await cli("backup", str(shared), "--data-dir", str(data))
    assert (again.returncode, again.stderr) == (
        1,
        f"error: {shared} is accessible to other users (mode 0755): back up into a new directory (or chmod 700 it)\n",
    )
    assert (stat.S_IMODE(shared.stat().st_mode), list(shared.iterdir())) == (0o755, [])
