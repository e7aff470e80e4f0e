"""
``switchboard run``: keep a node running in the foreground until a signal stops it.

Twisted turns SIGINT/SIGTERM into a reactor shutdown; a "before shutdown" trigger stops Crossbar first
(bounded), so the command exits 0 on a requested stop and no process outlives it. A node that dies on its
own (a worker killed or crashed takes the Crossbar controller with it) is started again with the same
compiled config and ports, with one line on stderr; more than :data:`MAX_RESTARTS` restarts within
:data:`RESTART_WINDOW` seconds is an error (exit 1), as is a restart that fails.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from router import datadir
from router.config import Config
from router.launch import RunningNode, StartError, launch, relaunch
from router.process import NodeProcess
from router.runstate import RunStateFile
from router.store import UserStore

__all__ = ["MAX_RESTARTS", "RESTART_WINDOW", "program_name", "serve"]

log = Logger()

#: Unexpected exits restarted within :data:`RESTART_WINDOW` seconds; one more ends ``run`` with exit 1.
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0


def _echo(line: str, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(line + "\n")
    stream.flush()


def serve(
    reactor: Any,
    config: Config,
    data_dir: Path,
    loglevel: str,
    ready_timeout: float,
    *,
    config_path: Path | None = None,
    log_options: dict[str, Any] | None = None,
) -> defer.Deferred[None]:
    """Start the node and wait until it stops; the Deferred fails with ``SystemExit(1)`` on failure.
    ``config_path`` (where ``config`` was read) goes into the run-state file for ``switchboard status``;
    ``log_options`` are :func:`router.launch.launch`'s ``log_format``, ``log_max_size`` and ``log_keep``."""
    return defer.ensureDeferred(
        _serve(reactor, config, data_dir, loglevel, ready_timeout, config_path, log_options or {})
    )


async def _serve(
    reactor: Any,
    config: Config,
    data_dir: Path,
    loglevel: str,
    ready_timeout: float,
    config_path: Path | None = None,
    log_options: dict[str, Any] | None = None,
) -> None:
    try:
        warning = datadir.prepare(data_dir.resolve())
    except OSError as e:
        _echo(f"error: cannot prepare the data directory {data_dir}: {e}", err=True)
        raise SystemExit(1) from None
    if warning is not None:
        _echo(warning, err=True)

    spawned: list[NodeProcess] = []
    stopping = False
    # For `switchboard status`/`stop` (router.runstate); removed on any exit but a kill.
    state = RunStateFile(data_dir.resolve(), config_path)
    reactor.addSystemEventTrigger("after", "shutdown", state.remove)

    def on_spawn(process: NodeProcess) -> None:
        spawned.append(process)
        state.spawned(process.pid)

    async def stop() -> None:
        nonlocal stopping
        stopping = True
        if spawned:
            await spawned[-1].stop()

    # Before the first spawn, so a signal while the node boots (or restarts) stops it too.
    reactor.addSystemEventTrigger("before", "shutdown", lambda: defer.ensureDeferred(stop()))
    options: dict[str, Any] = {
        "loglevel": loglevel,
        "ready_timeout": ready_timeout,
        "on_line": lambda line: _echo(line, err=True),
        "on_spawn": on_spawn,
        **(log_options or {}),
    }
    try:
        node = await launch(reactor, config, data_dir, **options)
    except StartError as e:
        if stopping:
            return
        _echo(f"error: {e}", err=True)
        raise SystemExit(1) from None

    state.ready(tuple(t.url for t in node.config.transports))
    _echo(f"Switchboard ready: {node.url}")
    web = node.config.main_transport.web_url
    if web is not None:
        _echo(f"Open {web} in a browser")
    ops = node.config.operations
    if ops is not None and ops.url is not None:  # on a listener of their own
        _echo(f"Operations endpoints: {', '.join(ops.url + path for path in ops.paths.values())}")
    if node.config.cluster is not None:
        cluster = node.config.cluster
        _echo(f"Cluster links: node {cluster.name} listening on tcp://{cluster.host}:{cluster.port}")
    if config.uses_store and not _has_users(node.store_path):
        program = program_name(sys.argv[0], shutil.which("switchboard"))
        _echo(
            "No users yet. Create the first one with:\n"
            f"  {program} user add alice --role {_suggested_role(config)} --data-dir {shlex.quote(str(data_dir))}"
        )
    await _keep_running(reactor, node, options, lambda: stopping)


async def _keep_running(reactor: Any, node: RunningNode, options: dict[str, Any], stopping: Any) -> None:
    """Restart ``node`` whenever it exits unless ``stopping()``; bounded by MAX_RESTARTS per window."""
    recent: list[float] = []
    attempt = 0
    while True:
        code = await node.process.exited
        if stopping():
            return
        now = reactor.seconds()
        recent = [t for t in recent if now - t < RESTART_WINDOW]
        if len(recent) >= MAX_RESTARTS:
            _echo(
                f"error: the Crossbar node exited unexpectedly (exit code {code}; log: {node.process.log_path}) "
                f"after {MAX_RESTARTS} restarts within {RESTART_WINDOW:g} s; giving up",
                err=True,
            )
            await node.stop()
            raise SystemExit(1)
        recent.append(now)
        attempt += 1
        _echo(f"node exited unexpectedly (exit code {code}); restarting (attempt {attempt})", err=True)
        try:
            node = await relaunch(reactor, node, **options)
        except StartError as e:
            if stopping():
                return
            _echo(f"error: restart failed: {e}", err=True)
            raise SystemExit(1) from None
        if stopping():
            await node.stop()
            return
        _echo(f"Switchboard ready: {node.url}")


def _has_users(path: Path) -> bool:
    store = UserStore(path)
    try:
        return bool(store.list_users())
    finally:
        store.close()


def _suggested_role(config: Config) -> str:
    roles = list(config.realms[0].roles)
    return "user" if "user" in roles else roles[0]


def program_name(argv0: str, on_path: str | None) -> str:
    """How the user runs this ``switchboard`` again, for the hints it prints.

    ``switchboard`` when that is what ``PATH`` finds (``on_path``, from :func:`shutil.which`), else the path
    it was started by as given: ``./dev run`` starts ``.venv/bin/switchboard``, which is not on ``PATH``.
    """
    if os.path.basename(argv0) != "switchboard" or os.sep not in argv0:
        return "switchboard"  # not started as the console script (an embedding program): the documented name
    if on_path is not None and os.path.realpath(on_path) == os.path.realpath(argv0):
        return "switchboard"
    return shlex.quote(argv0)
