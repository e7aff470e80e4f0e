"""The ``switchboard`` command as a user runs it: check, run, signals, exit codes, failures."""

from __future__ import annotations

import json
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
from router.testing import session
from tests.conftest import DEMO_CONFIG
from tests.integration.cli import RunningCommand, switchboard

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def demo_document() -> dict[str, Any]:
    return json.loads(DEMO_CONFIG.read_text())


def write_config(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "switchboard.json"
    path.write_text(json.dumps(document))
    return path


def test_version() -> None:
    """--version prints the installed version."""
    result = switchboard("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"switchboard, version {__version__}"


def test_check_valid_config_summarises_it() -> None:
    """check on the demo config exits 0 and lists transports, realms, roles and components."""
    result = switchboard("check", "--config", str(DEMO_CONFIG))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{DEMO_CONFIG}: valid",
        "  listen     main: ws://127.0.0.1:8080/ws (websocket, port 8080; "
        "auth: anonymous as anonymous, ticket, wampcra, cryptosign)",
        "  realm      demo: roles anonymous (5 rules), user (5 rules), admin (7 rules), backend (2 rules)",
        "  component  components.chat.ChatComponent in demo as backend",
        "  component  components.system.SystemComponent in demo as backend",
    ]


def test_check_reports_every_problem_with_its_pointer(tmp_path: Path) -> None:
    """check exits 2 and prints each problem as '<JSON pointer>: <message>', no traceback."""
    doc = demo_document()
    doc["realms"][0]["roles"]["user"] = {
        "allow": [{"uri": "chat.send", "actions": ["call"]}, {"uri": "chat.x", "actions": ["cal"]}]
    }
    doc["listen"][0]["colour"] = "blue"
    del doc["listen"][0]["port"]
    result = switchboard("check", "--config", str(write_config(tmp_path, doc)))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert (
        "/listen/0/colour: unknown key (allowed: auth, host, max_message_size, name, open_handshake_timeout, "
        "path, ping_interval, ping_timeout, port, serializers, type)" in lines
    )
    assert "/listen/0/port: is required" in lines
    assert (
        "/realms/0/roles/user/allow/1/actions/0: 'cal' is not one of ['call', 'register', 'publish', 'subscribe']"
        in lines
    )
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_check_reports_broken_references(tmp_path: Path) -> None:
    """Names that must refer to something (component realm/role, anonymous role) are checked too."""
    doc = demo_document()
    doc["components"][0]["realm"] = "nowhere"
    doc["components"][1]["role"] = "ghost"
    doc["listen"][0]["auth"]["anonymous"]["role"] = "guest"
    result = switchboard("check", "--config", str(write_config(tmp_path, doc)))
    assert result.returncode == 2
    assert result.stderr.splitlines()[:3] == [
        "/listen/0/auth/anonymous/role: role 'guest' is not defined in realm 'demo'",
        "/components/0/realm: no realm named 'nowhere' (defined: demo)",
        "/components/1/role: no role 'ghost' in realm 'demo'",
    ]


def test_check_reports_invalid_json_with_line_and_column(tmp_path: Path) -> None:
    """Broken JSON is reported with its line and column, exit 2."""
    path = tmp_path / "broken.json"
    path.write_text('{\n  "listen": [\n    {"name": "main",,}\n  ]\n}\n')
    result = switchboard("check", "--config", str(path))
    assert result.returncode == 2
    assert (
        result.stderr.splitlines()[0]
        == f"{path}: invalid JSON at line 3, column 21: Expecting property name enclosed in double quotes"
    )


def test_check_missing_file(tmp_path: Path) -> None:
    """A config path that does not exist is bad input: exit 2, one clear line."""
    result = switchboard("check", "--config", str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert f"no such file: {tmp_path / 'nope.json'}" in result.stderr


@pytest.fixture
def command() -> Iterator[list[RunningCommand]]:
    started: list[RunningCommand] = []
    yield started
    for c in started:
        c.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest_twisted.ensureDeferred
async def test_run_serves_until_signalled_then_exits_0(
    reactor: Any, tmp_path: Path, command: list[RunningCommand], signum: int
) -> None:
    """run prints the ready line with the real port, serves calls, and on SIGTERM/SIGINT exits 0 with no
    process left behind (Crossbar's own exit code 1 does not leak)."""
    run = RunningCommand("--config", str(DEMO_CONFIG), "--port", "0", "--data-dir", "data", cwd=tmp_path)
    command.append(run)
    line = run.read_line()
    assert line.startswith("Switchboard ready: ws://127.0.0.1:"), line
    url = line.split(": ", 1)[1].strip()
    assert not url.endswith(":0/ws")
    assert run.read_line() == "No users yet. Create the first one with:\n"
    assert run.read_line() == "  switchboard user add alice --role user --data-dir data\n"
    async with session(reactor, url) as s:
        sent = await s.call(uris.CHAT_SEND, "cli", "hi")
    assert sent["seq"] == 1
    assert len(run.processes()) >= 3  # switchboard, crossbar controller, router worker
    run.proc.send_signal(signum)
    code, err = run.wait()
    assert code == 0, err
    assert run.processes() == []
    assert (tmp_path / "data" / ".crossbar" / "config.json").is_file()
    assert (tmp_path / "data" / "node.log").is_file()


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


def test_check_refuses_a_reserved_role_name(tmp_path: Path) -> None:
    """A role named `trusted` (Crossbar's own, which may use wamp.*) is refused by check: exit 2, one line."""
    doc = demo_document()
    doc["realms"][0]["roles"]["trusted"] = {"allow": []}
    result = switchboard("check", "--config", str(write_config(tmp_path, doc)))
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "/realms/0/roles/trusted: 'trusted' is a role reserved by the router"
