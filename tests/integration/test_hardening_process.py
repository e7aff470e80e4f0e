"""Hardening of the process around the router (issue 9): restarts after a crash, an owner-only data
directory, revocation that says when it failed, and the demo chat's bounded rooms."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, task, threads

from components import uris
from router import serve
from router.authz.model import RESERVED_ROLES
from router.launch import RunningNode, StartError
from router.testkit import session, start_node
from tests.conftest import DEMO_CONFIG, demo_document, running, write_config
from tests.integration.cli import SWITCHBOARD, RunningCommand, sb
from tests.integration.processes import children, router_worker

pytestmark = pytest.mark.integration

MAX_ROOMS = 20
PASSWORD = "correct horse battery staple"
RESTART_LINE = "node exited unexpectedly (exit code {code}); restarting (attempt {attempt})"


@pytest.fixture(scope="module")
def bounded_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A node on the demo config whose chat keeps at most MAX_ROOMS rooms, with ticket logins."""
    doc = demo_document()
    doc["components"][0]["extra"] = {"max_rooms": MAX_ROOMS, "room_ttl": 86400}
    tmp = tmp_path_factory.mktemp("bounded-node")
    with running(start_node(reactor, write_config(tmp, doc), tmp / "data")) as node:
        yield node


# -- restarts --------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_run_restarts_the_node_after_the_router_worker_is_killed(
    reactor: Any, tmp_path: Path, command: list[RunningCommand]
) -> None:
    """kill -9 of the router worker: `run` prints one restart line, the node is ready again on the same port
    within seconds (a new session can call the chat), and SIGTERM still stops everything with exit 0."""
    run = RunningCommand("--config", str(DEMO_CONFIG), "--port", "0", "--data-dir", "data", cwd=tmp_path)
    command.append(run)
    ready = run.read_line()
    assert ready.startswith("Switchboard ready: ws://127.0.0.1:"), ready
    url = ready.split(": ", 1)[1].strip()
    worker = router_worker(run.processes())
    killed_at = time.monotonic()
    os.kill(worker, signal.SIGKILL)
    err_lines: list[str] = []
    while not any(line.startswith("node exited unexpectedly") for line in err_lines):
        line = run.read_err_line(timeout=30)
        assert line, f"stderr closed without a restart line: {err_lines}"
        err_lines.append(line)
        assert len(err_lines) < 500
    restart = next(line for line in err_lines if line.startswith("node exited unexpectedly"))
    assert restart.strip() in {RESTART_LINE.format(code=c, attempt=1) for c in (1, -9)}
    lines = [run.read_line(timeout=60)]
    while not lines[-1].startswith("Switchboard ready") and len(lines) < 6:  # after the first start's hints
        lines.append(run.read_line(timeout=60))
    assert lines[-1] == f"Switchboard ready: {url}\n", lines  # the same port
    back_after = time.monotonic() - killed_at
    assert back_after < 30
    async with session(reactor, url) as s:
        sent = await s.call(uris.CHAT_SEND, "after_restart", "hi")
    assert sent["seq"] == 1  # the room's first message, numbered by the channel history the new node serves
    assert router_worker(run.processes()) != worker
    run.proc.send_signal(signal.SIGTERM)
    code, _ = run.wait()
    assert code == 0
    assert run.processes() == []


class _FakeProcess:
    def __init__(self, code: int) -> None:
        self.code = code
        self.log_path = Path("node.log")
        self.stopped = False

    @property
    def exited(self) -> defer.Deferred[int]:
        return defer.succeed(self.code)


class _FakeNode:
    def __init__(self) -> None:
        self.process = _FakeProcess(1)
        self.url = "ws://127.0.0.1:1/ws"

    async def stop(self) -> int:
        self.process.stopped = True
        return 1


@pytest_twisted.ensureDeferred
async def test_restarts_are_bounded_per_window(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    """A node that keeps dying is restarted MAX_RESTARTS times within RESTART_WINDOW seconds, then `run`
    gives up with exit 1 and one error line (no real node: the restart policy alone, on a task.Clock)."""
    clock = task.Clock()
    starts: list[_FakeNode] = []

    async def relaunch(reactor: Any, node: Any, **options: Any) -> _FakeNode:
        clock.advance(1.0)  # every restart takes a second
        starts.append(_FakeNode())
        return starts[-1]

    monkeypatch.setattr(serve, "relaunch", relaunch)
    with pytest.raises(SystemExit) as caught:
        await serve._keep_running(clock, _FakeNode(), {}, lambda: False)
    assert caught.value.code == 1
    assert len(starts) == serve.MAX_RESTARTS
    assert starts[-1].process.stopped
    err = capsys.readouterr().err.splitlines()
    assert err[: serve.MAX_RESTARTS] == [
        RESTART_LINE.format(code=1, attempt=k) for k in range(1, serve.MAX_RESTARTS + 1)
    ]
    assert len(err) == serve.MAX_RESTARTS + 1
    assert err[-1].startswith("error: the Crossbar node exited unexpectedly (exit code 1;")
    assert err[-1].endswith(f"after {serve.MAX_RESTARTS} restarts within 60 s; giving up")


@pytest_twisted.ensureDeferred
async def test_restarts_outside_the_window_do_not_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """Crashes further apart than RESTART_WINDOW / MAX_RESTARTS are restarted indefinitely; a restart that
    fails ends `run` with exit 1."""
    clock = task.Clock()
    starts: list[_FakeNode] = []

    async def relaunch(reactor: Any, node: Any, **options: Any) -> _FakeNode:
        if len(starts) == 3 * serve.MAX_RESTARTS:
            raise StartError("port taken")
        clock.advance(serve.RESTART_WINDOW)
        starts.append(_FakeNode())
        return starts[-1]

    monkeypatch.setattr(serve, "relaunch", relaunch)
    with pytest.raises(SystemExit) as caught:
        await serve._keep_running(clock, _FakeNode(), {}, lambda: False)
    assert caught.value.code == 1
    assert len(starts) == 3 * serve.MAX_RESTARTS


# -- the data directory ------------------------------------------------------------------------------------


def loose_files(root: Path) -> list[str]:
    """Everything under ``root`` that its group or others may access (sockets and the public node key
    excepted: Twisted creates unix sockets 0666, Crossbar writes key.pub 0644; both sit in a 0700 directory)."""
    loose = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISSOCK(mode) or path.name == "key.pub":
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path
            continue
        if stat.S_IMODE(mode) & 0o077:
            loose.append(f"{path.relative_to(root)} {stat.S_IMODE(mode):04o}")
    return loose


@pytest_twisted.ensureDeferred
async def test_run_creates_an_owner_only_data_directory(tmp_path: Path, command: list[RunningCommand]) -> None:
    """`run` on a new data directory (under a umask of 022) creates it and every file in it owner-only:
    the store and its -wal/-shm, node.log, the compiled config, the node key and pid file."""
    run = RunningCommand("--config", str(DEMO_CONFIG), "--port", "0", "--data-dir", "data", cwd=tmp_path, umask=0o022)
    command.append(run)
    assert run.read_line().startswith("Switchboard ready: ")
    data = tmp_path / "data"
    names = {p.relative_to(data).as_posix() for p in data.rglob("*")}
    assert {"users.sqlite3", "node.log", ".crossbar/config.json", ".crossbar/key.priv"} <= names
    assert loose_files(data) == []
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait()[0] == 0


def test_user_add_creates_an_owner_only_data_directory(tmp_path: Path) -> None:
    """A data directory first created by `user add` is 0700 and its store 0600, under a umask of 022."""
    data = tmp_path / "data"
    added = subprocess.run(
        [
            SWITCHBOARD,
            "user",
            "add",
            "alice",
            "--role",
            "user",
            "--password-stdin",
            "--config",
            str(DEMO_CONFIG),
            "--data-dir",
            str(data),
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        umask=0o022,
    )
    assert added.returncode == 0, added.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "users.sqlite3").stat().st_mode) == 0o600
    assert loose_files(data) == []


# -- revocation ------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_disable_reports_sessions_it_could_not_close(reactor: Any, bounded_node: RunningNode) -> None:
    """With the node running but not answering (router worker stopped), `user disable` stores the change
    and exits 1 with one line saying the open sessions could not be closed; the session indeed survives."""
    d = bounded_node.data_dir
    authid = f"frozen_{uuid.uuid4().hex[:8]}"
    added = await threads.deferToThread(
        sb, d, "user", "add", authid, "--role", "user", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    worker = router_worker(children(bounded_node.process.pid or 0))
    async with session(reactor, bounded_node.url, authmethod="ticket", authid=authid, ticket=PASSWORD) as s:
        os.kill(worker, signal.SIGSTOP)
        try:
            result = await threads.deferToThread(sb, d, "user", "disable", authid)
        finally:
            os.kill(worker, signal.SIGCONT)
        assert result.returncode == 1
        assert result.stdout.splitlines() == [f"{authid!r} disabled"]
        assert result.stderr.splitlines() == [
            f"error: could not close the open sessions of {authid!r} on the running node: "
            "the node did not answer in time"
        ]
        assert (await s.call(uris.SYS_INFO))["authid"] == authid  # still open: the failure was real


def test_revocation_without_a_running_node_says_nothing_more(tmp_path: Path) -> None:
    """A control socket left behind by a node that is gone means no node runs: `user disable` exits 0 and
    prints only what it changed."""
    import socket

    d = tmp_path / "data"
    assert sb(d, "user", "add", "dave", "--role", "user", "--no-password").returncode == 0
    stale = d / ".crossbar" / "control.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(stale))
    result = sb(d, "user", "disable", "dave")
    assert (result.returncode, result.stdout, result.stderr) == (0, "'dave' disabled\n", "")


# -- reserved roles ------------------------------------------------------------------------------------------


def test_reserved_roles_are_crossbars_and_the_links() -> None:
    """Switchboard's reserved role names are the ones the pinned Crossbar keeps for itself, and the role of the
    links between router workers (router.workers)."""
    from crossbar.router.router import Router

    from router.workers import LINK_ROLE

    assert set(Router.RESERVED_ROLES) | {LINK_ROLE} == RESERVED_ROLES


# -- the chat's bounded rooms ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_more_rooms_than_max_rooms_keeps_chat_rooms_answering(reactor: Any, bounded_node: RunningNode) -> None:
    """Posting to 1.5 x max_rooms new rooms keeps max_rooms of them (the most recently active ones); chat.rooms
    answers with one capped page and pages on with `after`. A forgotten room keeps its messages: they live
    in the channel history, not in the chat component."""
    prefix = f"r_{uuid.uuid4().hex[:8]}_"
    names = [f"{prefix}{i:03d}" for i in range(MAX_ROOMS + MAX_ROOMS // 2)]
    async with session(reactor, bounded_node.url) as s:
        for name in names:
            await s.call(uris.CHAT_SEND, name, "x")
        kept = await s.call(uris.CHAT_ROOMS)
        assert kept == names[-MAX_ROOMS:]
        forgotten = await s.call(uris.CHAT_HISTORY, names[0])
        assert [(m["room"], m["text"], m["seq"]) for m in forgotten] == [(names[0], "x", 1)]
        first = await s.call(uris.CHAT_ROOMS, limit=5)
        assert first == names[-MAX_ROOMS:][:5]
        assert await s.call(uris.CHAT_ROOMS, limit=5, after=first[-1]) == names[-MAX_ROOMS:][5:10]


def test_a_readable_store_left_by_an_older_version_is_made_owner_only(tmp_path: Path) -> None:
    """A store file readable by others (as `user add` used to leave it) is made 0600 by the next command,
    while the existing data directory keeps its mode."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    assert sb(data, "user", "add", "erin", "--role", "user", "--no-password").returncode == 0
    (data / "users.sqlite3").chmod(0o644)
    listed = sb(data, "user", "list")
    assert listed.returncode == 0, listed.stderr
    assert stat.S_IMODE((data / "users.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o755
