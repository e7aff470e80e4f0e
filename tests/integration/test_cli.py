"""The installed ``switchboard`` command as a user runs it, on real nodes: run, signals, exit codes, failures.

Bad input that needs no node (invalid configs, bad options, ``check``) is tested in-process, in
``tests/unit/test_cli_input.py``.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from components import uris
from router import __version__
from router.testkit import session
from tests.conftest import DEMO_CONFIG, demo_document, write_config
from tests.integration.cli import SWITCHBOARD, RunningCommand, switchboard

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_version() -> None:
    """--version prints the installed version (the console script is installed and starts)."""
    result = switchboard("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"switchboard, version {__version__}"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest_twisted.ensureDeferred
async def test_run_serves_until_signalled_then_exits_0(
    reactor: Any, tmp_path: Path, command: list[RunningCommand], signum: int
) -> None:
    """run prints the ready line with the real port, serves calls, and on SIGTERM/SIGINT exits 0 with no
    process left behind (Crossbar's own exit code 1 does not leak). The hint for the first user names the
    command as it was started when `switchboard` is not on PATH (a `./dev` user), and the previous run's
    node.log is appended to. (Issue 10 changed this test: the hint always said `switchboard`; issue 13: the
    previous run's log was moved to node.log.1.)"""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "node.log").write_text("the previous run\n")
    not_on_path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != str(Path(SWITCHBOARD).parent))
    env = dict(os.environ, PATH=not_on_path)
    run = RunningCommand("--config", str(DEMO_CONFIG), "--port", "0", "--data-dir", "data", cwd=tmp_path, env=env)
    command.append(run)
    line = run.read_line()
    assert line.startswith("Switchboard ready: ws://127.0.0.1:"), line
    url = line.split(": ", 1)[1].strip()
    assert not url.endswith(":0/ws")
    web = url.removesuffix("ws").replace("ws://", "http://")
    assert run.read_line() == f"Open {web} in a browser\n"  # the demo's web app
    assert run.read_line() == "No users yet. Create the first one with:\n"
    assert run.read_line() == f"  {shlex.quote(SWITCHBOARD)} user add alice --role user --data-dir data\n"
    async with session(reactor, url) as s:
        sent = await s.call(uris.CHAT_SEND, "cli", "hi")
    assert sent["seq"] == 1
    assert len(run.processes()) >= 3  # switchboard, crossbar controller, router worker
    run.proc.send_signal(signum)
    code, err = run.wait()
    assert code == 0, err
    assert run.processes() == []
    assert (tmp_path / "data" / ".crossbar" / "config.json").is_file()
    assert (data / "node.log").read_text().startswith("the previous run\n")
    assert not (data / "node.log.1").exists()


@contextmanager
def occupied_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something is listening on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_run_port_in_use_fails_fast(tmp_path: Path, command: list[RunningCommand]) -> None:
    """A port already taken: exit 1 with one line naming address and cause; Crossbar is never started."""
    with occupied_port() as port:
        run = RunningCommand("--config", str(DEMO_CONFIG), "--port", str(port), "--data-dir", "data", cwd=tmp_path)
        command.append(run)
        code, err = run.wait()
    assert code == 1
    assert (
        err.strip() == f"error: cannot listen on 127.0.0.1:{port} (transport 'main', /listen/0): address already in use"
    )
    assert not (tmp_path / "data" / "node.log").exists()
    assert run.processes() == []


def test_run_component_that_cannot_be_imported(tmp_path: Path, command: list[RunningCommand]) -> None:
    """A component class that does not import: exit 1, one line naming the component and the import error."""
    doc = demo_document()
    doc["components"][1]["class"] = "components.nosuch.Thing"
    run = RunningCommand("--config", str(write_config(tmp_path, doc)), "--port", "0", "--data-dir", "d", cwd=tmp_path)
    command.append(run)
    code, err = run.wait()
    assert code == 1
    assert err.strip() == (
        "error: cannot import component 'components.nosuch.Thing' (/components/1/class): "
        "ModuleNotFoundError: No module named 'components.nosuch'"
    )
    assert run.processes() == []


def test_run_component_failing_at_start_stops_everything(tmp_path: Path, command: list[RunningCommand]) -> None:
    """A component that raises while starting makes Crossbar refuse to boot: exit 1, the cause in one
    line, and neither the controller nor the worker is left running."""
    doc = demo_document()
    doc["pythonpath"] = [str(FIXTURES)]
    doc["components"].append({"class": "failing_component.FailsAtStart", "realm": "demo"})
    run = RunningCommand("--config", str(write_config(tmp_path, doc)), "--port", "0", "--data-dir", "d", cwd=tmp_path)
    command.append(run)
    code, err = run.wait(timeout=90)
    assert code == 1
    error_lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, err
    assert "database unreachable at start-up" in error_lines[0]
    assert f"log: {(tmp_path / 'd' / 'node.log').resolve()}" in error_lines[0]
    assert run.processes() == []


def test_run_keeps_the_mode_of_an_existing_data_directory(tmp_path: Path, command: list[RunningCommand]) -> None:
    """An existing data directory keeps its mode (it may be shared on purpose: never chmod it); `run` warns
    in one line when it is open to others. (Issue 9 changed this test: `run` used to chmod it to 0700.)"""
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    with occupied_port() as port:  # fail fast, after the directory is prepared
        run = RunningCommand("--config", str(DEMO_CONFIG), "--port", str(port), "--data-dir", "data", cwd=tmp_path)
        command.append(run)
        code, err = run.wait()
    assert code == 1
    assert data.stat().st_mode & 0o777 == 0o755
    assert err.splitlines()[0] == (
        f"warning: data directory {data.resolve()} is accessible to other users (mode 0755); "
        "its files are owner-only, but consider chmod 700"
    )
    assert (data / ".crossbar").stat().st_mode & 0o777 == 0o700  # where the control socket lives
