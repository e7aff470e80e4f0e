"""The logs of real nodes: ``switchboard run --log-format json`` on stderr and in node.log, a failed login at
the default level, rotation at a tiny size, and no secret in the log at debug."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import task

from router import datadir
from router.cli_common import load_or_exit
from router.launch import launch, with_port
from router.testkit import JoinRefused, session
from tests.conftest import DEMO_CONFIG, demo_document, write_config
from tests.integration.cli import RunningCommand, sb

pytestmark = pytest.mark.integration

RECORD_KEYS = {"time", "level", "source", "pid", "namespace", "message"}
# An authid a client chose: a quote, a newline and an escape sequence to forge a line, non-ASCII, and long.
HOSTILE_AUTHID = 'evil"\n2026-01-01T00:00:00.000Z error [router 1] forged\x1b[2J\u00e9' + "z" * 500
SECRET = "pw-must-never-be-logged-4711"


def log_files(data: Path) -> list[Path]:
    """node.log and its rotated files, newest first."""
    rotated = sorted(data.glob("node.log.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    return [datadir.log_path(data), *rotated]


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object (fails on a line that is not one)."""
    records = [json.loads(line) for line in text.split("\n") if line]
    assert all(isinstance(r, dict) and set(r) >= RECORD_KEYS for r in records), records
    return records


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:  # rotated away meanwhile
        return ""


async def logged(reactor: Any, data: Path, marker: str) -> None:
    """Wait (at most 15 s) until ``marker`` is in one of the node's log files: workers log through the
    controller, so a line arrives after the fact."""
    deadline = reactor.seconds() + 15
    while not any(marker in _read(p) for p in log_files(data)):
        assert reactor.seconds() < deadline, f"{marker!r} not logged within 15 s"
        await task.deferLater(reactor, 0.1, lambda: None)


@pytest_twisted.ensureDeferred
async def test_json_logs_a_failed_login_and_rotate(reactor: Any, tmp_path: Path, command: list[RunningCommand]) -> None:
    """With SWITCHBOARD_LOG_FORMAT=json, a 2K rotation size and 2 files kept: every line on stderr and in
    node.log* is a JSON record; a failed ticket login is there at the default level as a login_failed
    event with the client's authid escaped and cut, and without the ticket; the log rotated to node.log.1
    and node.log.2 (no .3), each file owner-only and near the size."""
    env = dict(os.environ, SWITCHBOARD_LOG_FORMAT="json")
    args = ("--config", str(DEMO_CONFIG), "--port", "0", "--data-dir", "data", "--log-max-size", "2K")
    run = RunningCommand(*args, "--log-keep", "2", cwd=tmp_path, env=env)
    command.append(run)
    line = run.read_line()
    assert line.startswith("Switchboard ready: "), line
    url = line.split(": ", 1)[1].strip()
    data = tmp_path / "data"

    for _ in range(8):  # session_joined and session_left lines: enough to rotate twice
        async with session(reactor, url):
            pass
    with pytest.raises(JoinRefused):  # last, so that its line is still in one of the files kept
        async with session(reactor, url, authmethod="ticket", authid=HOSTILE_AUTHID, ticket=SECRET):
            pass
    await logged(reactor, data, "login_failed")
    run.proc.send_signal(signal.SIGTERM)
    code, err = run.wait()
    assert code == 0, err

    stderr_records = json_lines(err)
    assert any(r["message"].startswith("event=session_joined") for r in stderr_records)
    files = log_files(data)
    assert [p.name for p in files] == ["node.log", "node.log.1", "node.log.2"]
    records = [r for p in files for r in json_lines(p.read_text(encoding="utf-8"))]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.stat().st_size <= 2048 + 1024  # rotated before a record would pass 2K (records < 1K)
    (failed,) = [r for r in records if r.get("event") == "login_failed"]
    assert (failed["level"], failed["source"], failed["namespace"]) == ("info", "router", "switchboard.events")
    assert (failed["realm"], failed["method"]) == ("demo", "ticket")
    assert failed["authid"].startswith('evil"\n2026-01-01T00:00:00.000Z error [router 1] forged\x1b[2J\u00e9z')
    assert failed["authid"].endswith("...")
    assert len(failed["authid"]) < 100
    everything = err + "".join(p.read_text(encoding="utf-8") for p in files)
    assert SECRET not in everything
    assert not any(line.startswith("2026-01-01") for line in everything.split("\n"))


@pytest_twisted.ensureDeferred
async def test_text_log_shows_the_failed_login_on_one_line(
    reactor: Any, tmp_path: Path, command: list[RunningCommand]
) -> None:
    """The default text format: the failed login is one line (the authid's newline and escape sequence
    escaped, nothing forged), no secret; a second run appends to node.log instead of moving it away."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    datadir.log_path(data).write_text("the previous run\n")
    run = RunningCommand("--config", str(DEMO_CONFIG), "--port", "0", "--data-dir", "data", cwd=tmp_path)
    command.append(run)
    url = run.read_line().split(": ", 1)[1].strip()
    with pytest.raises(JoinRefused):
        async with session(reactor, url, authmethod="ticket", authid=HOSTILE_AUTHID, ticket=SECRET):
            pass
    await logged(reactor, data, "login_failed")
    run.proc.send_signal(signal.SIGTERM)
    code, err = run.wait()
    assert code == 0, err
    log = datadir.log_path(data).read_text(encoding="utf-8")
    assert log.startswith("the previous run\n")
    assert not datadir.rotated_log_path(data, 1).exists()
    (line,) = [line for line in log.split("\n") if "event=login_failed" in line]
    assert " info  [router " in line
    assert 'authid="evil\\"\\n2026-01-01T00:00:00.000Z error [router 1] forged\\u001b[2J\\u00e9z' in line
    assert SECRET not in log + err
    assert "\x1b" not in log + err
    assert not any(text.startswith("2026-01-01") for text in (log + err).split("\n"))


@pytest_twisted.ensureDeferred
async def test_no_secret_in_the_log_at_debug(reactor: Any, tmp_path: Path) -> None:
    """At debug, after logins with ticket, wampcra and scram (and a wrong ticket, a wrong WAMP-CRA password)
    of a user added with `switchboard user add`, neither the password nor the wrong one is in node.log or the
    lines run prints, nor the WAMP-CRA signature the router expected; Crossbar's AUTHENTICATE line is there,
    without them."""
    doc = demo_document()
    doc["listen"][0]["auth"]["scram"] = {}
    config_path = write_config(tmp_path, doc)
    data = tmp_path / "data"
    password, wrong = "pw-correct-horse-4711", "pw-wrong-battery-0815"
    added = sb(data, "user", "add", "alice", "--role", "user", "--password-stdin", stdin=password + "\n")
    assert added.returncode == 0, added.stderr
    config = with_port(load_or_exit(config_path), 0)
    printed: list[str] = []
    node = await launch(reactor, config, data, loglevel="debug", on_line=printed.append)
    try:
        credentials = {"ticket": {"ticket": password}, "wampcra": {"secret": password}}
        credentials["scram"] = {"password": password, "kdf": "argon2id13"}
        for method, creds in credentials.items():
            async with session(reactor, node.url, authmethod=method, authid="alice", **creds) as s:
                assert s.details.authmethod == method
        with pytest.raises(JoinRefused):
            async with session(reactor, node.url, authmethod="ticket", authid="alice", ticket=wrong):
                pass
        # A wrong WAMP-CRA signature: Crossbar alone logs the expected one (a password oracle) at warn.
        with pytest.raises(JoinRefused):
            async with session(reactor, node.url, authmethod="wampcra", authid="alice", secret=wrong):
                pass
        await logged(reactor, data, "onAuthenticate: scram signature of")
        await logged(reactor, data, "login_failed")
    finally:
        await node.stop()
    log = "".join(p.read_text(encoding="utf-8", errors="replace") for p in log_files(data))
    assert "onAuthenticate: ticket signature of 21 characters" in log
    assert "onAuthenticate: wampcra signature of 44 characters" in log
    assert log.count("event=login_failed") == 2
    assert "expected" not in log
    for secret in (password, wrong):
        assert secret not in log
        assert not any(secret in line for line in printed)
