"""Components fail loudly: a refused registration or subscription, or an onJoin that raises, stops the
node before it is ready, with one line naming the component; ``check`` reports classes that do not import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from click.testing import CliRunner

from router.cli import cli
from router.launch import StartError
from router.testkit import session, start_node
from tests.conftest import demo_document, write_config
from tests.integration.cli import RunningCommand

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def with_component(tmp_path: Path, class_name: str, **allow: list[dict[str, Any]]) -> Path:
    """The demo config plus ``component_failures.<class_name>`` in realm demo as ``backend``; ``allow``
    adds rules to roles (``backend=[...]``)."""
    doc = demo_document()
    doc["pythonpath"] = [str(FIXTURES)]
    doc["components"].append({"class": f"component_failures.{class_name}", "realm": "demo", "role": "backend"})
    for role, rules in allow.items():
        doc["realms"][0]["roles"][role]["allow"].extend(rules)
    return write_config(tmp_path, doc)


def run_until_exit(tmp_path: Path, config: Path, command: list[RunningCommand]) -> tuple[int, list[str], str]:
    """``switchboard run`` on ``config``: its exit code, its ``error:`` lines and its stdout."""
    run = RunningCommand("--config", str(config), "--port", "0", "--data-dir", "d", cwd=tmp_path)
    command.append(run)
    code, err = run.wait(timeout=120)
    assert run.proc.stdout is not None
    out = run.proc.stdout.read()
    assert run.processes() == []
    return code, [line for line in err.splitlines() if line.startswith("error: ")], out


def test_run_refused_registration_exits_1_with_one_line(tmp_path: Path, command: list[RunningCommand]) -> None:
    """A component whose role may not register its procedure: exit 1, never ready, and exactly one error line
    naming the class, the action, the URI, the error and the role; nothing left running."""
    code, errors, out = run_until_exit(tmp_path, with_component(tmp_path, "Counter"), command)
    assert code == 1
    assert errors == [
        "error: component component_failures.Counter: register 'counter.incr' refused: "
        "not_authorized (role 'backend' has no register permission on it)"
    ]
    assert "Switchboard ready" not in out


def test_run_on_join_raising_exits_1_naming_class_and_exception(tmp_path: Path, command: list[RunningCommand]) -> None:
    """A component whose onJoin raises: exit 1 with one line naming the class and the exception."""
    code, errors, out = run_until_exit(tmp_path, with_component(tmp_path, "BrokenJoin"), command)
    assert code == 1
    assert errors == [
        "error: component component_failures.BrokenJoin: onJoin raised RuntimeError: no database at start-up"
    ]
    assert "Switchboard ready" not in out


@pytest_twisted.ensureDeferred
async def test_launch_refused_subscription_raises_start_error(reactor: Any, tmp_path: Path) -> None:
    """router.launch (so every test fixture) fails the same way: a refused subscribe is a StartError whose
    message is the line, and the role's other permissions do not matter."""
    config = with_component(
        tmp_path, "Listener", backend=[{"uri": "counter", "match": "prefix", "actions": ["register"]}]
    )
    with pytest.raises(StartError) as caught:
        await start_node(reactor, config, tmp_path / "data")  # raises: there is no node to stop
    assert str(caught.value) == (
        "component component_failures.Listener: subscribe 'counter.events' refused: "
        "not_authorized (role 'backend' has no subscribe permission on it)"
    )


@pytest_twisted.ensureDeferred
async def test_the_same_component_with_its_permission_starts_and_serves(reactor: Any, tmp_path: Path) -> None:
    """The control case: with `register` in its role the component starts, and its procedure binds its
    arguments to the handler's signature (defaults applied, a mismatch is invalid_argument)."""
    config = with_component(
        tmp_path,
        "Counter",
        backend=[{"uri": "counter", "match": "prefix", "actions": ["register"]}],
        anonymous=[{"uri": "counter.incr", "actions": ["call"]}],
    )
    node = await start_node(reactor, config, tmp_path / "data")
    try:
        async with session(reactor, node.url) as s:
            assert await s.call("counter.incr") == 1
            assert await s.call("counter.incr", by=2) == 3
            with pytest.raises(ApplicationError) as caught:
                await s.call("counter.incr", 1, 2)
            assert caught.value.error == "wamp.error.invalid_argument"
            assert caught.value.args[0] == "counter.incr: too many positional arguments"
    finally:
        await node.stop()


def test_check_reports_component_classes_that_do_not_import(tmp_path: Path) -> None:
    """check exits 2 with one '<pointer>: ...' line per component class that does not import."""
    doc = demo_document()
    doc["components"][0]["class"] = "components.nosuch.Thing"
    doc["components"][1]["class"] = "components.chat.NoSuchComponent"
    result = CliRunner().invoke(cli, ["check", "--config", str(write_config(tmp_path, doc))])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "/components/0/class: cannot import component 'components.nosuch.Thing': "
        "ModuleNotFoundError: No module named 'components.nosuch'",
        "/components/1/class: cannot import component 'components.chat.NoSuchComponent': "
        "module 'components.chat' has no class 'NoSuchComponent'",
        f"{tmp_path / 'switchboard.json'}: 2 problem(s), nothing done",
    ]
    assert result.stdout == ""
