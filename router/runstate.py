"""
The run-state file of ``switchboard run``, and the processes of a node as the data directory names them.

``run`` writes :func:`router.datadir.run_state_path` (owner-only JSON, replaced atomically) when it spawns
Crossbar, again when the node is ready and on every restart, and removes it when it stops cleanly. It holds
what ``switchboard status`` and ``stop`` cannot ask the node: the PID of ``run`` and when it started, the
URLs, the version and the config file. Crossbar's PID comes from its own pid file. A PID alone is not
proof (PIDs are reused after a crash), so on Linux the state also records the process's start time
(``/proc/PID/stat``) and a PID counts as the node's only while that matches.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from router import __version__, datadir

__all__ = [
    "NodeProcesses",
    "RunState",
    "RunStateError",
    "RunStateFile",
    "alive",
    "crossbar_pid",
    "node_processes",
    "process_start",
    "read_run_state",
]

_FORMAT = 1


class RunStateError(Exception):
    """The run-state file exists but cannot be read; the message says why."""


@dataclass(frozen=True)
class RunState:
    """What one ``switchboard run`` records about itself."""

    pid: int
    #: The process's start time (Linux: clock ticks after boot, ``/proc/PID/stat``); None elsewhere.
    pid_start: int | None
    #: When ``run`` started (seconds since the epoch).
    started: float
    version: str
    data_dir: str
    config_path: str | None = None
    crossbar_pid: int | None = None
    #: Crossbar's start time, like :attr:`pid_start`.
    crossbar_start: int | None = None
    #: "starting" until the node first joins its readiness probe, then "ready".
    phase: str = "starting"
    urls: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        return {"format": _FORMAT, **asdict(self), "urls": list(self.urls)}


def read_run_state(data_dir: Path) -> RunState | None:
    """The run-state file of ``data_dir``, or None when there is none."""
    path = datadir.run_state_path(data_dir)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise RunStateError(f"cannot read {path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise RunStateError(f"{path}: not a run-state file this version understands")
    try:
        return RunState(
            pid=int(doc["pid"]),
            pid_start=None if doc.get("pid_start") is None else int(doc["pid_start"]),
            started=float(doc["started"]),
            version=str(doc["version"]),
            data_dir=str(doc["data_dir"]),
            config_path=None if doc.get("config_path") is None else str(doc["config_path"]),
            crossbar_pid=None if doc.get("crossbar_pid") is None else int(doc["crossbar_pid"]),
            crossbar_start=None if doc.get("crossbar_start") is None else int(doc["crossbar_start"]),
            phase=str(doc.get("phase", "starting")),
            urls=tuple(str(u) for u in doc.get("urls", ())),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise RunStateError(f"{path}: malformed ({type(e).__name__}: {e})") from None


class RunStateFile:
    """The run-state file of this ``switchboard run`` (write as it goes, :meth:`remove` on a clean stop).

    Only written from :meth:`spawned` on: ``run`` spawns Crossbar only after it found no other node running
    on the data directory, so a ``run`` refused for that reason never overwrites the running one's file.
    """

    def __init__(
        self,
        data_dir: Path,
        config_path: Path | None = None,
        *,
        pid: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = datadir.run_state_path(data_dir)
        pid = os.getpid() if pid is None else pid
        self._state = RunState(
            pid=pid,
            pid_start=process_start(pid),
            started=clock(),
            version=__version__,
            data_dir=str(data_dir),
            config_path=None if config_path is None else str(config_path.resolve()),
        )
        self._written = False
        self._failed = False

    @property
    def state(self) -> RunState:
        """What the file holds (or will hold once written)."""
        return self._state

    def spawned(self, crossbar_pid: int | None) -> None:
        """Crossbar (re)started as ``crossbar_pid``."""
        started = None if crossbar_pid is None else process_start(crossbar_pid)
        self._write(replace(self._state, crossbar_pid=crossbar_pid, crossbar_start=started))

    def ready(self, urls: tuple[str, ...]) -> None:
        """The node answers at ``urls``."""
        self._write(replace(self._state, phase="ready", urls=urls))

    def remove(self) -> None:
        """Remove the file (a clean stop); nothing to do when it was never written."""
        if self._written:
            self.path.unlink(missing_ok=True)
            self._written = False

    def _write(self, state: RunState) -> None:
        self._state = state
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(datadir.open_private(temporary), "w", encoding="utf-8") as f:
                f.write(json.dumps(state.to_json(), indent=2) + "\n")
            os.replace(temporary, self.path)
        except OSError as e:
            # Advisory (status/stop read it): a full or read-only disk must not stop the node. Said once.
            if not self._failed:
                self._failed = True
                sys.stderr.write(
                    f"warning: cannot write {self.path} ({e}); `switchboard status` may not see this node\n"
                )
            return
        self._written = True


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot), on Linux; None elsewhere or when it is gone."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name (field 2) may hold spaces and parentheses: split after it.
    return int(stat_line.rsplit(")", 1)[1].split()[19])


def alive(pid: int, started: int | None = None) -> bool:
    """Whether process ``pid`` exists, is not a zombie, and (when ``started`` is given and the platform
    tells) is the process that started then rather than a later one given the same PID."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: not a node of our (owner-only) data directory
    if sys.platform.startswith("linux"):
        try:
            stat_line = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        fields = stat_line.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            return False
        if started is not None and int(fields[19]) != started:
            return False
    return True


def crossbar_pid(data_dir: Path) -> int | None:
    """The PID in Crossbar's pid file of ``data_dir`` when that process is alive and, on Linux, is a
    Crossbar controller (by its process title) that started before the file was written (not a later
    process given the same PID), else None."""
    path = datadir.crossbar_pid_path(data_dir)
    try:
        pid = int(json.loads(path.read_text(encoding="utf-8"))["pid"])
        written = path.stat().st_mtime
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not alive(pid):
        return None
    if sys.platform.startswith("linux"):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
            started = _boot_time() + (process_start(pid) or 0) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            return None
        if not title.startswith(b"crossbar") or started > written + 1:
            return None
    return pid


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise ValueError("no btime in /proc/stat")


@dataclass(frozen=True)
class NodeProcesses:
    """The live processes of the node of a data directory, as its files name them."""

    #: The run-state file (None: there is none).
    state: RunState | None
    #: ``switchboard run``'s PID if it is alive.
    run_pid: int | None
    #: Crossbar's controller's PID if it is alive.
    crossbar_pid: int | None

    @property
    def pids(self) -> list[int]:
        """Every live PID, ``run``'s first."""
        return [p for p in (self.run_pid, self.crossbar_pid) if p is not None]

    def describe(self) -> str:
        """E.g. ``switchboard run PID 12, Crossbar PID 34`` (what lives; empty when nothing does)."""
        parts = [f"switchboard run PID {self.run_pid}"] if self.run_pid is not None else []
        parts += [f"Crossbar PID {self.crossbar_pid}"] if self.crossbar_pid is not None else []
        return ", ".join(parts)


def node_processes(data_dir: Path) -> NodeProcesses:
    """The node processes of ``data_dir`` that are alive now. Raises :class:`RunStateError` when the
    run-state file cannot be read."""
    state = read_run_state(data_dir)
    run_pid = state.pid if state is not None and alive(state.pid, state.pid_start) else None
    # The one run recorded, if it is still that process; else Crossbar's pid file (a node started otherwise).
    recorded = state.crossbar_pid if state is not None else None
    if recorded is not None and state is not None and alive(recorded, state.crossbar_start):
        return NodeProcesses(state=state, run_pid=run_pid, crossbar_pid=recorded)
    return NodeProcesses(state=state, run_pid=run_pid, crossbar_pid=crossbar_pid(data_dir))
