"""The run-state file of ``switchboard run`` and how a data directory's node processes are identified."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from router import __version__, datadir
from router.runstate import (
    NodeProcesses,
    RunState,
    RunStateError,
    RunStateFile,
    alive,
    crossbar_pid,
    node_processes,
    process_start,
    read_run_state,
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A prepared data directory (its node directory exists)."""
    datadir.prepare(tmp_path / "data")
    return tmp_path / "data"


def gone_pid() -> int:
    """The PID of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_file_follows_the_run_and_is_owner_only(data_dir: Path) -> None:
    """Nothing is written before Crossbar is spawned; then the file holds run's PID, the start time, the
    version, the config path, Crossbar's PID, and after ready the URLs; it is 0600; remove() deletes it."""
    state = RunStateFile(data_dir, Path("cfg.json"), clock=lambda: 1234.5)
    path = data_dir / ".crossbar" / "run.json"
    assert not path.exists()
    state.spawned(os.getpid())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_run_state(data_dir) == RunState(
        pid=os.getpid(),
        pid_start=process_start(os.getpid()),
        started=1234.5,
        version=__version__,
        data_dir=str(data_dir),
        config_path=str(Path("cfg.json").resolve()),
        crossbar_pid=os.getpid(),
        crossbar_start=process_start(os.getpid()),
        phase="starting",
        urls=(),
    )
    state.ready(("ws://127.0.0.1:1/ws", "rs://127.0.0.1:2"))
    found = read_run_state(data_dir)
    assert found is not None
    assert (found.phase, found.urls) == ("ready", ("ws://127.0.0.1:1/ws", "rs://127.0.0.1:2"))
    assert sorted(p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")) == []
    state.remove()
    assert not path.exists()
    assert read_run_state(data_dir) is None


def test_a_refused_run_never_removes_the_running_ones_file(data_dir: Path) -> None:
    """remove() of a RunStateFile that never wrote (its run was refused before spawning) leaves the file."""
    RunStateFile(data_dir, pid=os.getpid()).spawned(None)
    RunStateFile(data_dir).remove()
    assert read_run_state(data_dir) is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read"),
        ('{"format": 99, "pid": 1}', "not a run-state file this version understands"),
        ('{"format": 1, "pid": "x", "started": 1, "version": "v", "data_dir": "d"}', "malformed"),
        ('{"format": 1, "started": 1, "version": "v", "data_dir": "d"}', "malformed"),
    ],
)
def test_an_unreadable_file_is_an_error_naming_it(data_dir: Path, content: str, message: str) -> None:
    """A damaged run-state file raises RunStateError naming the file and the problem."""
    path = datadir.run_state_path(data_dir)
    path.write_text(content)
    with pytest.raises(RunStateError) as raised:
        read_run_state(data_dir)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_alive_tells_a_reused_pid_from_the_process_recorded() -> None:
    """Our own PID is alive, with our start time and without one; with another start time (a later
    process given the same PID) it is not; an exited PID and PID 0 are not alive."""
    me = os.getpid()
    started = process_start(me)
    assert started is not None  # the suite runs on Linux
    assert alive(me)
    assert alive(me, started)
    assert not alive(me, started + 1)
    assert not alive(gone_pid())
    assert not alive(0)


def test_crossbars_pid_file_counts_only_for_a_live_crossbar(data_dir: Path) -> None:
    """Crossbar's pid file naming a process that is gone, or a live process that is not a Crossbar
    controller (this Python), names no process; no file names none either."""
    assert crossbar_pid(data_dir) is None
    for pid in (gone_pid(), os.getpid()):
        datadir.crossbar_pid_path(data_dir).write_text(json.dumps({"pid": pid}))
        assert crossbar_pid(data_dir) is None


def test_node_processes_of_a_killed_run(data_dir: Path) -> None:
    """A run-state file left by a run that is gone names no live process, but is still reported."""
    gone = gone_pid()
    RunStateFile(data_dir, pid=gone).spawned(gone)
    processes = node_processes(data_dir)
    assert (processes.run_pid, processes.crossbar_pid, processes.pids, processes.describe()) == (None, None, [], "")
    assert processes.state is not None
    assert processes.state.pid == gone


def test_describe_names_each_live_process() -> None:
    """describe() names run's PID and Crossbar's, whichever live."""
    assert NodeProcesses(None, 12, 34).describe() == "switchboard run PID 12, Crossbar PID 34"
    assert NodeProcesses(None, None, 34).describe() == "Crossbar PID 34"
    assert NodeProcesses(None, 12, None).pids == [12]
