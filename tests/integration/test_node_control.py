"""Node control (issue 13): no Crossbar outlives a killed ``switchboard run``, a second ``run`` names the
running node's PIDs, and ``switchboard status`` / ``stop`` with their exit codes, against real nodes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import task, threads

from router import __version__
from router.testkit import session, start_node
from tests.conftest import DEMO_CONFIG
from tests.integration.cli import RunningCommand, switchboard
from tests.integration.processes import alive, children

pytestmark = pytest.mark.integration

#: Seconds every Crossbar process has to exit after ``run`` is killed.
ORPHAN_DEADLINE = 10.0


def crossbar_pids(run: RunningCommand) -> list[int]:
    """The command's processes other than ``run`` itself: Crossbar's controller and workers."""
    return [pid for pid in run.processes() if pid != run.proc.pid]


def start_run(tmp_path: Path, command: list[RunningCommand]) -> tuple[RunningCommand, str]:
    """A ``switchboard run`` of the demo config on data directory ``tmp_path/data``, ready; and its URL."""
    run = RunningCommand("--config", str(DEMO_CONFIG), "--port", "0", "--data-dir", "data", cwd=tmp_path)
    command.append(run)
    ready = run.read_line()
    assert ready.startswith("Switchboard ready: ws://127.0.0.1:"), ready
    return run, ready.split(": ", 1)[1].strip()


async def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a switchboard command off the reactor thread (the node may be this process's child)."""
    result: subprocess.CompletedProcess[str] = await threads.deferToThread(switchboard, *args)
    return result


def test_no_crossbar_outlives_a_killed_run(tmp_path: Path, command: list[RunningCommand]) -> None:
    """kill -9 of `switchboard run`: Crossbar's controller and its workers are gone within ORPHAN_DEADLINE
    seconds, `status` says not running (exit 3) and names the killed run's left-over state, and a new `run`
    on the same data directory starts."""
    run, _ = start_run(tmp_path, command)
    node = crossbar_pids(run)
    assert len(node) >= 2  # the controller and the router worker
    os.kill(run.proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    while any(alive(pid) for pid in node):
        assert time.monotonic() - killed < ORPHAN_DEADLINE, [pid for pid in node if alive(pid)]
        time.sleep(0.05)
    run.wait()
    data = str(tmp_path / "data")
    status = switchboard("status", "--data-dir", data)
    assert status.returncode == 3, status
    assert status.stdout.splitlines()[0] == f"not running: data directory {data}"
    assert f"names switchboard run PID {run.proc.pid}, which is gone" in status.stdout
    again, _ = start_run(tmp_path, command)
    again.proc.send_signal(signal.SIGTERM)
    assert again.wait()[0] == 0
    assert again.processes() == []


@pytest_twisted.ensureDeferred
async def test_status_and_stop_of_a_running_node(reactor: Any, tmp_path: Path, command: list[RunningCommand]) -> None:
    """`status` of a running `run`: exit 0, its PID and Crossbar's, the URL, a session count that grows
    with a client's session, the version; a second `run` is refused naming both PIDs; `stop` exits 0 once
    every process is gone and the run-state file removed; then `status` exits 3 and `stop` says not running."""
    run, url = start_run(tmp_path, command)
    data = str(tmp_path / "data")
    controller = json.loads((tmp_path / "data" / ".crossbar" / "node.pid").read_text())["pid"]
    assert controller in crossbar_pids(run)
    before = await cli("status", "--data-dir", data, "--json")
    assert before.returncode == 0, before
    report = json.loads(before.stdout)
    assert (report["state"], report["pid"], report["crossbar_pid"]) == ("running", run.proc.pid, controller)
    assert (report["urls"], report["version"], report["config"]) == ([url], __version__, str(DEMO_CONFIG))
    assert 0 <= report["uptime"] < 120
    async with session(reactor, url):
        during = json.loads((await cli("status", "--data-dir", data, "--json")).stdout)
        text = await cli("status", "--data-dir", data)
    assert during["sessions"]["demo"] == report["sessions"]["demo"] + 1
    assert text.returncode == 0
    assert text.stdout.splitlines()[:3] == [
        f"running: data directory {data}",
        f"  pid        switchboard run PID {run.proc.pid}, Crossbar PID {controller}",
        f"  url        {url}",
    ]

    second = await cli("run", "--config", str(DEMO_CONFIG), "--port", "0", "--data-dir", data)
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"error: a Switchboard node is already running with data directory {data} "
        f"(switchboard run PID {run.proc.pid}, Crossbar PID {controller}); "
        f"stop it with: switchboard stop --data-dir {data}"
    )

    stopped = await cli("stop", "--data-dir", data)
    assert stopped.returncode == 0, stopped
    assert stopped.stdout.startswith(
        f"stopped: data directory {data} (switchboard run PID {run.proc.pid}, Crossbar PID {controller}) in "
    )
    assert run.wait()[0] == 0  # a requested stop, as on Ctrl-C
    assert run.processes() == []
    assert not (tmp_path / "data" / ".crossbar" / "run.json").exists()
    after = await cli("status", "--data-dir", data)
    assert (after.returncode, after.stdout) == (3, f"not running: data directory {data}\n")
    again = await cli("stop", "--data-dir", data)
    assert (again.returncode, again.stdout) == (0, f"not running: data directory {data}\n")


@pytest_twisted.ensureDeferred
async def test_stop_that_times_out_exits_1(reactor: Any, tmp_path: Path, command: list[RunningCommand]) -> None:
    """A `run` that cannot act on SIGTERM (stopped with SIGSTOP) outlives `stop --timeout 1`: exit 1 naming
    the PID still alive; once continued, it stops as asked (exit 0)."""
    run, _ = start_run(tmp_path, command)
    os.kill(run.proc.pid, signal.SIGSTOP)
    try:
        stuck = await cli("stop", "--data-dir", str(tmp_path / "data"), "--timeout", "1")
    finally:
        os.kill(run.proc.pid, signal.SIGCONT)
    assert stuck.returncode == 1
    assert stuck.stderr.startswith(f"error: still running after 1 s (PID {run.proc.pid}")
    assert run.wait()[0] == 0
    assert run.processes() == []


@pytest_twisted.ensureDeferred
async def test_stop_without_a_run_stops_crossbars_process_group(reactor: Any, tmp_path: Path) -> None:
    """A node whose `run` is gone (here: started without one) is named by `status` from Crossbar's pid file
    and stopped by `stop` with SIGTERM to Crossbar's process group: controller and workers exit."""
    node = await start_node(reactor, DEMO_CONFIG, tmp_path / "data")
    try:
        data = str(tmp_path / "data")
        controller = node.process.pid
        assert controller is not None
        workers = children(controller)
        assert workers
        report = json.loads((await cli("status", "--data-dir", data, "--json")).stdout)
        assert (report["state"], report["pid"], report["crossbar_pid"]) == ("running", None, controller)
        stopped = await cli("stop", "--data-dir", data, "--timeout", "20")
        assert stopped.returncode == 0, stopped
        assert stopped.stdout.startswith(f"stopped: data directory {data} (Crossbar PID {controller}) in ")
        exited = node.process.exited
        exited.addTimeout(10, reactor)
        await exited
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, [pid for pid in workers if alive(pid)]
            await task.deferLater(reactor, 0.05, lambda: None)
    finally:
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_a_hung_node_is_stale(reactor: Any, tmp_path: Path, command: list[RunningCommand]) -> None:
    """With Crossbar stopped (SIGSTOP to its process group: alive, not answering), `status` exits 1 calling
    it stale with both PIDs, and a second `run` refuses to start beside it, naming them, instead of removing
    its control socket."""
    run, _ = start_run(tmp_path, command)
    data = str(tmp_path / "data")
    controller = json.loads((tmp_path / "data" / ".crossbar" / "node.pid").read_text())["pid"]
    os.killpg(controller, signal.SIGSTOP)  # the controller and its workers (the router serves the socket)
    try:
        status = await cli("status", "--data-dir", data)
        second = await cli("run", "--config", str(DEMO_CONFIG), "--port", "0", "--data-dir", data)
    finally:
        os.killpg(controller, signal.SIGCONT)
    pids = f"switchboard run PID {run.proc.pid}, Crossbar PID {controller}"
    assert status.returncode == 1
    assert status.stdout.splitlines()[:2] == [
        f"not answering: data directory {data}",
        f"  stale: {pids} alive, but the node does not answer on its control socket",
    ]
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"error: a Switchboard node is already running but not answering on its control socket with data "
        f"directory {data} ({pids}); stop it with: switchboard stop --data-dir {data}"
    )
    assert (tmp_path / "data" / ".crossbar" / "control.sock").exists()
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait()[0] == 0
