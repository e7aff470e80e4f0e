"""
``switchboard status``, ``stop``, ``backup``, ``restore`` and ``node-key``: the node of a data directory.

The node is found through the data directory alone: the run-state file of ``switchboard run`` and
Crossbar's pid file (:mod:`router.runstate`) name its processes, and a session over the control socket
(:mod:`router.control`) tells whether it answers. Every wait is bounded.

Exit codes:

- ``status``: 0 running (the node answers); 1 a node process lives but the node does not answer
  (starting, stopping, hung: *stale*) or the state cannot be read; 3 not running (LSB).
- ``stop``: 0 stopped, or was not running (stdout says which); 1 did not stop within ``--timeout``, or
  could not be signalled.
- ``backup``, ``restore``: 0 done; 1 refused or failed (a node runs on the data directory, the target is
  not empty, the backup is damaged...), with one line saying why.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click

from router import __version__, datadir
from router.cli_common import EXIT_FAILED, data_dir_option
from router.runstate import NodeProcesses, RunStateError, alive, node_processes

__all__ = ["EXIT_NOT_RUNNING", "NodeStatus", "backup", "inspect_node", "node_key", "restore", "status", "stop"]

#: ``status`` of a data directory no node runs on (LSB's "program is not running").
EXIT_NOT_RUNNING = 3
#: Seconds a node has to answer a session over its control socket.
ANSWER_TIMEOUT = 3.0
_POLL = 0.1


@dataclass(frozen=True)
class NodeStatus:
    """The node of a data directory as ``status`` reports it."""

    data_dir: Path
    processes: NodeProcesses
    #: A session over the control socket joined.
    answers: bool
    #: Client sessions per realm (None: that realm did not answer in time); empty unless it answers.
    sessions: dict[str, int | None] = field(default_factory=dict)

    @property
    def state(self) -> str:
        """``running``, ``not running`` or ``not answering`` (a node process lives, the node does not answer)."""
        if self.answers:
            return "running"
        return "not answering" if self.processes.pids else "not running"

    def to_json(self, now: float) -> dict[str, Any]:
        """``status --json``."""
        state = self.processes.state
        live = state is not None and self.processes.run_pid is not None
        return {
            "state": self.state,
            "data_dir": str(self.data_dir),
            "pid": self.processes.run_pid,
            "crossbar_pid": self.processes.crossbar_pid,
            "urls": list(state.urls) if live and state else [],
            "started": state.started if live and state else None,
            "uptime": round(now - state.started, 1) if live and state else None,
            "version": state.version if live and state else None,
            "config": state.config_path if live and state else None,
            "sessions": self.sessions,
        }


def _realms(data_dir: Path) -> list[str]:
    """The realms of the node's compiled config (what the running Crossbar serves), in order."""
    try:
        node_config = json.loads((datadir.node_dir(data_dir) / "config.json").read_text(encoding="utf-8"))
        return [realm["name"] for worker in node_config["workers"] for realm in worker.get("realms", ())]
    except (OSError, ValueError, KeyError, TypeError):
        return []


async def inspect_node(reactor: Any, data_dir: Path, sessions: bool = True) -> NodeStatus:
    """Find the node of ``data_dir``: its live processes, whether it answers, and (``sessions``) the
    number of client sessions per realm (``wamp.session.count``, which leaves out trusted sessions such as
    this one). Raises :class:`router.runstate.RunStateError` when the run-state file cannot be read."""
    from router.control import control_session, node_workers

    processes = node_processes(data_dir)
    socket_path = datadir.control_socket_path(data_dir)
    realms = _realms(data_dir)
    counts: dict[str, int | None] = {}
    if not socket_path.exists() or not realms:
        return NodeStatus(data_dir, processes, answers=False)
    for i, realm in enumerate(realms if sessions else realms[:1]):
        try:
            async with control_session(reactor, str(socket_path), realm, ANSWER_TIMEOUT) as session:
                counts[realm] = await _bounded(reactor, _client_sessions(session, node_workers(data_dir)))
        except Exception:
            if i == 0:  # the first realm is the readiness probe's: not answering there is not answering
                return NodeStatus(data_dir, processes, answers=False)
            counts[realm] = None
    return NodeStatus(data_dir, processes, answers=True, sessions=counts if sessions else {})


async def _client_sessions(session: Any, workers: int) -> int | None:
    """Client sessions of ``session``'s realm in every router worker (not the links between them); None when a
    worker does not answer (its link is down: the node answers, its count is unknown)."""
    from autobahn.wamp.exception import ApplicationError

    from router.uris import WORKER_UNAVAILABLE
    from router.workers import LINK_ROLE
    from router.workers_agent import each_worker

    try:
        every = await each_worker(session, workers, "wamp.session.count")
        links = await each_worker(session, workers, "wamp.session.count", [LINK_ROLE])
    except ApplicationError as e:
        if e.error == WORKER_UNAVAILABLE:
            return None
        raise
    return int(sum(every) - sum(links))


async def _bounded(reactor: Any, result: Any) -> Any:
    from twisted.internet import defer

    d = defer.ensureDeferred(result) if not isinstance(result, defer.Deferred) else result
    d.addTimeout(ANSWER_TIMEOUT, reactor)
    return await d


def _react(work: Callable[[Any], Awaitable[int]]) -> NoReturn:
    """Run ``work(reactor)`` and exit with the code it returns."""
    from twisted.internet import defer, task

    async def main(reactor: Any) -> None:
        code = await work(reactor)
        if code:
            raise SystemExit(code)

    task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
    raise AssertionError("unreachable")  # react exits


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_FAILED)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if days or hours else []
    parts += [f"{minutes}m"] if days or hours or minutes else []
    return " ".join([*parts, f"{secs}s"])


def _status_lines(node: NodeStatus, now: float) -> list[str]:
    where = f"data directory {node.data_dir}"
    processes = node.processes
    state = processes.state
    if node.state == "not running":
        lines = [f"not running: {where}"]
        if state is not None:
            lines.append(
                f"  (a run-state file names switchboard run PID {state.pid}, which is gone: "
                "it was killed; the next run replaces the file)"
            )
        return lines
    if node.state == "not answering":
        phase = " (still starting)" if state is not None and state.phase == "starting" else ""
        return [
            f"not answering: {where}",
            f"  stale: {processes.describe()} alive, but the node does not answer on its control socket{phase}",
            f"  stop it with: switchboard stop --data-dir {shlex.quote(str(node.data_dir))}",
        ]
    lines = [f"running: {where}", f"  pid        {processes.describe() or 'unknown (no run-state or pid file)'}"]
    if state is not None and processes.run_pid is not None:
        lines += [f"  url        {url}" for url in state.urls]
        started = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(state.started))
        lines.append(f"  uptime     {_duration(now - state.started)} (since {started})")
        lines.append(f"  version    {state.version}")
        if state.config_path:
            lines.append(f"  config     {state.config_path}")
    for realm, count in node.sessions.items():
        lines.append(f"  sessions   {realm}: {'?' if count is None else count}")
    return lines


@click.command()
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout instead of text.")
def status(data_dir: Path, as_json: bool) -> None:
    """Whether a node runs on DATA_DIR: PIDs, URLs, uptime, sessions per realm, version.

    Exit code 0 running, 1 not answering (a node process lives but the node does not answer: starting,
    stopping or stale), 3 not running.
    """
    data_dir = data_dir.resolve()

    async def work(reactor: Any) -> int:
        try:
            node = await inspect_node(reactor, data_dir)
        except RunStateError as e:
            click.echo(f"error: {e}", err=True)
            return EXIT_FAILED
        now = time.time()
        if as_json:
            click.echo(json.dumps(node.to_json(now), indent=2))
        else:
            click.echo("\n".join(_status_lines(node, now)))
        return {"running": 0, "not running": EXIT_NOT_RUNNING}.get(node.state, EXIT_FAILED)

    _react(work)


@click.command()
@data_dir_option
@click.option(
    "--timeout",
    type=click.FloatRange(0, 3600),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the node to stop.",
)
def stop(data_dir: Path, timeout: float) -> None:
    """Stop the node running on DATA_DIR (SIGTERM to `switchboard run`, which stops Crossbar; SIGTERM to
    Crossbar's process group when no `run` is left) and wait until its processes are gone.

    Exit code 0 stopped or was not running (stdout says which), 1 still running after --timeout.
    """
    data_dir = data_dir.resolve()

    async def work(reactor: Any) -> int:
        from twisted.internet import task

        try:
            node = await inspect_node(reactor, data_dir, sessions=False)
        except RunStateError as e:
            click.echo(f"error: {e}", err=True)
            return EXIT_FAILED
        processes = node.processes
        if not processes.pids:
            if node.answers:
                click.echo(
                    f"error: a node answers on {datadir.control_socket_path(data_dir)} but neither a run-state "
                    "file nor Crossbar's pid file names a live process",
                    err=True,
                )
                return EXIT_FAILED
            click.echo(f"not running: data directory {data_dir}")
            return 0
        described = processes.describe()
        try:
            _terminate(processes)
        except PermissionError as e:
            click.echo(f"error: cannot signal {described}: {e}", err=True)
            return EXIT_FAILED
        watched = _watched(processes)
        started = time.monotonic()
        while any(alive(pid, since) for pid, since in watched):
            if time.monotonic() - started >= timeout:
                left = ", ".join(str(pid) for pid, since in watched if alive(pid, since))
                click.echo(f"error: still running after {timeout:g} s (PID {left})", err=True)
                return EXIT_FAILED
            await task.deferLater(reactor, _POLL, lambda: None)
        click.echo(f"stopped: data directory {data_dir} ({described}) in {time.monotonic() - started:.1f} s")
        return 0

    _react(work)


def _terminate(processes: NodeProcesses) -> None:
    """SIGTERM ``run`` (it stops Crossbar as on Ctrl-C) or, with no ``run`` left, Crossbar's process group
    (controller and workers: ``run`` starts it as a session leader)."""
    with contextlib.suppress(ProcessLookupError):
        if processes.run_pid is not None:
            os.kill(processes.run_pid, signal.SIGTERM)
        elif processes.crossbar_pid is not None:
            pid = processes.crossbar_pid
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGTERM)
            else:
                os.kill(pid, signal.SIGTERM)


def _watched(processes: NodeProcesses) -> list[tuple[int, int | None]]:
    state = processes.state
    watched: list[tuple[int, int | None]] = []
    if processes.run_pid is not None and state is not None:
        watched.append((processes.run_pid, state.pid_start))
    if processes.crossbar_pid is not None:
        from router.runstate import process_start

        watched.append((processes.crossbar_pid, process_start(processes.crossbar_pid)))
    return watched


def _refuse_if_running(reactor: Any, data_dir: Path, doing: str) -> Awaitable[str | None]:
    async def check() -> str | None:
        try:
            node = await inspect_node(reactor, data_dir, sessions=False)
        except RunStateError as e:
            return str(e)
        if node.state == "not running":
            return None
        which = f" ({node.processes.describe()})" if node.processes.pids else ""
        return (
            f"a Switchboard node is running on data directory {data_dir}{which}: stop it before {doing} "
            f"(switchboard stop --data-dir {shlex.quote(str(data_dir))})"
        )

    return check()


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@data_dir_option
def backup(path: Path, data_dir: Path) -> None:
    """Back up the user store and the channel history of DATA_DIR into PATH, a new directory (or an empty
    owner-only one of yours); the node may keep running. PATH gets owner-only copies and a manifest.json
    with their SHA-256."""
    from router.backup import BackupError
    from router.backup import backup as make_backup

    if not data_dir.is_dir():
        _fail(f"no data directory {data_dir}")
    try:
        manifest = make_backup(data_dir, path)
    except BackupError as e:
        _fail(str(e))
    total = sum(f.size for f in manifest.files)
    click.echo(f"backed up {len(manifest.files)} file(s), {total} bytes, from {data_dir} to {path}:")
    for f in manifest.files:
        click.echo(f"  {f.name}  {f.size} bytes  sha256 {f.sha256}")


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@data_dir_option
def restore(path: Path, data_dir: Path) -> None:
    """Replace the user store and channel history of DATA_DIR with the backup in PATH, after checking it
    (manifest hashes, integrity, schema exactly as this version creates it). Refused while a node runs on
    DATA_DIR."""
    from router.backup import BackupError, database_files
    from router.backup import restore as put_back

    data_dir = data_dir.resolve()

    async def work(reactor: Any) -> int:
        refusal = await _refuse_if_running(reactor, data_dir, "restoring")
        if refusal is not None:
            click.echo(f"error: {refusal}", err=True)
            return EXIT_FAILED
        try:
            manifest = put_back(path, data_dir)
        except BackupError as e:
            click.echo(f"error: {e}", err=True)
            return EXIT_FAILED
        restored = {f.name for f in manifest.files}
        click.echo(
            f"restored {len(restored)} file(s) into {data_dir} from {path} "
            f"(made {manifest.created} by Switchboard {manifest.version}; this is {__version__})"
        )
        for other in database_files(data_dir):
            if other.name not in restored:
                click.echo(f"  kept {other.name} (not in the backup)")
        return 0

    _react(work)


@click.command("node-key")
@data_dir_option
def node_key(data_dir: Path) -> None:
    """Print the node's public key (64 hex digits), made first if DATA_DIR has none: what the other nodes of a
    cluster put in their `cluster.peers[].key` for this node (docs/scaling.md)."""
    from router.datadir import node_dir, prepare
    from router.launch import node_public_key

    data_dir = data_dir.resolve()
    prepare(data_dir)
    click.echo(node_public_key(node_dir(data_dir)))
