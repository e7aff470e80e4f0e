"""
Start a Switchboard node: compile the config into a data directory, spawn Crossbar, wait until ready.

Used by ``switchboard run`` and by the test fixtures, so tests exercise the very path users take.
Everything that can be checked early (ports and a node already running before Crossbar starts, component
imports while it boots) is, because Crossbar's own report of those takes seconds and a page of log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import importlib
import json
import os
import shlex
import socket
import sqlite3
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router import datadir, logs
from router.compile import compile_node
from router.config import Config, Tls, Transport
from router.datadir import store_path
from router.diagnose import explain_failure, is_port_in_use
from router.process import NodeProcess
from router.store import StoreError, UserStore

__all__ = [
    "ImportProblem",
    "RunningNode",
    "StartError",
    "component_import_problems",
    "launch",
    "node_public_key",
    "relaunch",
    "store_path",
    "with_dev_tls",
    "with_port",
]

# sun_path is 108 bytes on Linux, including the terminating NUL.
_MAX_UNIX_PATH = 107
_PORT_ATTEMPTS = 3


class StartError(Exception):
    """The node could not start; the message is one line naming the cause."""


@dataclass
class RunningNode:
    """A node that has joined its readiness probe."""

    process: NodeProcess
    config: Config
    data_dir: Path
    control_socket: str
    #: The test-login socket (tests only: ``launch(..., test_logins=True)``, see :mod:`router.testkit`).
    test_login_socket: str | None = None

    @property
    def store_path(self) -> Path:
        """The user store of this node."""
        return store_path(self.data_dir)

    @property
    def url(self) -> str:
        """URL of the main transport, with the real port."""
        return self.config.main_transport.url

    async def stop(self, grace: float = 10.0) -> int:
        """Stop the node; return Crossbar's exit code (1 after SIGTERM even when clean)."""
        return await self.process.stop(grace)


def with_port(config: Config, port: int) -> Config:
    """``config`` with the main transport listening on ``port``."""
    main = config.main_transport
    transports = tuple(dataclasses.replace(t, port=port) if t is main else t for t in config.transports)
    return dataclasses.replace(config, transports=transports)


def with_dev_tls(config: Config, data_dir: Path) -> Config:
    """``config`` with the main transport serving TLS with the development certificate of ``data_dir``
    (:func:`router.tls.dev_certificate`, made on first use)."""
    from router.tls import dev_certificate

    cert, key = dev_certificate(datadir.tls_dir(data_dir.resolve()))
    main = config.main_transport
    tls = Tls(cert=str(cert), key=str(key))
    transports = tuple(dataclasses.replace(t, tls=tls) if t is main else t for t in config.transports)
    return dataclasses.replace(config, transports=transports)


async def launch(
    reactor: Any,
    config: Config,
    data_dir: Path,
    *,
    loglevel: str = "warn",
    ready_timeout: float = 60.0,
    on_line: Callable[[str], None] | None = None,
    on_spawn: Callable[[NodeProcess], None] | None = None,
    test_logins: bool = False,
    log_format: str = logs.DEFAULT_FORMAT,
    log_max_size: int = logs.DEFAULT_MAX_SIZE,
    log_keep: int = logs.DEFAULT_KEEP,
) -> RunningNode:
    """Compile ``config`` into ``data_dir``, start Crossbar and return once a probe session has joined.

    Raises :class:`StartError` (with every child process gone) when the node cannot start. ``on_spawn``
    receives the Crossbar process as soon as it is spawned (before it is ready), e.g. to stop it on a
    signal that arrives meanwhile. ``test_logins`` (the pytest plugin only, never ``switchboard run``) adds
    the test-login transport (:mod:`router.testkit.logins`) on :func:`router.datadir.kit_login_socket_path`.
    ``loglevel`` and ``log_*`` are ``switchboard run``'s ``--log-*`` options (:mod:`router.logs`): ``node.log``
    is appended to and rotated, ``on_line`` gets each line in ``log_format``.
    """
    data_dir = data_dir.resolve()
    control_socket = await _prepare(reactor, config, data_dir)
    test_login_socket = _kit_login_socket(data_dir) if test_logins else None
    log_options = {"log_format": log_format, "log_max_size": log_max_size, "log_keep": log_keep}

    picked = any(t.port == 0 for t in config.transports) or (config.cluster is not None and config.cluster.port == 0)
    attempts = _PORT_ATTEMPTS if picked else 1
    for attempt in range(1, attempts + 1):
        resolved = _resolve_ports(config)
        try:
            return await _start(
                reactor,
                resolved,
                data_dir,
                control_socket,
                loglevel,
                ready_timeout,
                on_line,
                on_spawn,
                test_login_socket,
                log_options,
            )
        except _PortTaken as e:
            # A port we picked was taken between picking and binding: pick again (bounded).
            if attempt == attempts:
                raise StartError(str(e)) from None
    raise AssertionError("unreachable")


async def relaunch(
    reactor: Any,
    node: RunningNode,
    *,
    loglevel: str = "warn",
    ready_timeout: float = 60.0,
    on_line: Callable[[str], None] | None = None,
    on_spawn: Callable[[NodeProcess], None] | None = None,
    log_format: str = logs.DEFAULT_FORMAT,
    log_max_size: int = logs.DEFAULT_MAX_SIZE,
    log_keep: int = logs.DEFAULT_KEEP,
) -> RunningNode:
    """Start ``node`` again after its process died: same data directory, same compiled ports.

    Whatever is left of the old process group is killed first. Raises :class:`StartError` like
    :func:`launch`.
    """
    await node.process.stop(grace=0)
    control_socket = await _prepare(reactor, node.config, node.data_dir)
    return await _start(
        reactor,
        node.config,
        node.data_dir,
        control_socket,
        loglevel,
        ready_timeout,
        on_line,
        on_spawn,
        node.test_login_socket,
        {"log_format": log_format, "log_max_size": log_max_size, "log_keep": log_keep},
    )


async def _prepare(reactor: Any, config: Config, data_dir: Path) -> str:
    """The data directory and an up-to-date store, owner-only; the control socket's path, cleared."""
    # The control socket grants the trusted role and the store holds credentials: owner only. (A warning
    # about an existing directory open to others is the command's to print: see router.serve.)
    datadir.prepare(data_dir)
    control_socket = str(datadir.control_socket_path(data_dir))
    if len(control_socket.encode()) > _MAX_UNIX_PATH:
        raise StartError(f"data directory path too long for a unix socket ({control_socket})")
    await _clear_control_socket(reactor, control_socket, config.realms[0].name, data_dir)
    # No node runs here (checked above): a test-login socket is one left behind, and a node started without
    # test logins must not show one.
    datadir.kit_login_socket_path(data_dir).unlink(missing_ok=True)
    for link_socket in datadir.node_dir(data_dir).glob("link-*.sock"):  # router.workers: left behind likewise
        link_socket.unlink(missing_ok=True)
    try:
        UserStore(store_path(data_dir)).close()  # create or migrate before the router reads it
    except (StoreError, sqlite3.Error) as e:
        raise StartError(f"cannot open the user store {store_path(data_dir)}: {e}") from None
    return control_socket


def _kit_login_socket(data_dir: Path) -> str:
    path = str(datadir.kit_login_socket_path(data_dir))
    if len(path.encode()) > _MAX_UNIX_PATH:
        raise StartError(f"data directory path too long for a unix socket ({path})")
    return path


class _PortTaken(StartError):
    pass


async def _start(
    reactor: Any,
    config: Config,
    data_dir: Path,
    control_socket: str,
    loglevel: str,
    ready_timeout: float,
    on_line: Callable[[str], None] | None,
    on_spawn: Callable[[NodeProcess], None] | None,
    test_login_socket: str | None = None,
    log_options: dict[str, Any] | None = None,
) -> RunningNode:
    cbdir = datadir.node_dir(data_dir)  # made owner-only by datadir.prepare
    node_config = compile_node(
        config,
        control_socket=control_socket,
        store_path=str(store_path(data_dir)),
        test_login_socket=test_login_socket,
        node_key=node_public_key(cbdir) if config.workers > 1 else None,
    )
    _write_private(cbdir / "config.json", json.dumps(node_config, indent=2) + "\n")

    log_path = datadir.log_path(data_dir)
    process = NodeProcess(
        reactor,
        cbdir,
        log_path,
        loglevel=loglevel,
        on_line=on_line,
        max_log_lines=config.limits.max_log_events,
        **(log_options or {}),
    )
    process.start(hold_output=True)
    if on_spawn is not None:
        on_spawn(process)
    try:
        # While Crossbar boots (seconds), not before: the imports take a third of a second of the startup.
        # Its output is held meanwhile, so a failed check prints one line and nothing of Crossbar's.
        _check_components_import(config)
    except StartError:
        process.release_output(forward=False)
        await process.stop(grace=0)
        raise
    process.release_output()
    # Imported here, not at the top: the probe pulls in autobahn's WAMP stack (a fifth of a second), which
    # need not load before Crossbar starts booting.
    from router.probe import ComponentFailed, ProbeTimeout, wait_until_ready

    exited = process.exited
    deadline = reactor.seconds() + ready_timeout
    try:
        await wait_until_ready(reactor, control_socket, config.realms[0].name, deadline, gave_up=exited)
    except ComponentFailed as e:
        await process.stop()
        raise StartError(str(e)) from None
    except ProbeTimeout:
        code = await process.stop()
        log = process.recent_output()  # this run's (node.log also holds earlier runs)
        cause = explain_failure(log) if process.exit_code is not None else None
        where = f"(exit code {code}; log: {process.log_path})"
        if cause and is_port_in_use(log):
            raise _PortTaken(f"{cause} {where}") from None
        if cause:
            raise StartError(f"{cause} {where}") from None
        raise StartError(f"node not ready within {ready_timeout:g} s {where}") from None
    except BaseException:
        await process.stop()
        raise
    return RunningNode(
        process=process,
        config=config,
        data_dir=data_dir,
        control_socket=control_socket,
        test_login_socket=test_login_socket,
    )


def node_public_key(cbdir: Path) -> str:
    """The node's Ed25519 public key (hex), made first if the node has none: Crossbar's own key files
    (``key.priv``, ``key.pub`` in the node directory), which it signs its rlinks' logins with."""
    from crossbar.common.key import _maybe_generate_node_key, _read_node_key

    _maybe_generate_node_key(str(cbdir))
    key: str = _read_node_key(str(cbdir))["hex"]
    return key


def _write_private(path: Path, text: str) -> None:
    with open(datadir.open_private(path), "w", encoding="utf-8") as f:
        f.write(text)


async def _clear_control_socket(reactor: Any, path: str, realm: str, data_dir: Path) -> None:
    if not Path(path).exists():
        return
    from router.probe import join_once
    from router.runstate import RunStateError, node_processes

    try:
        await join_once(reactor, path, realm, timeout=2.0)
    except Exception:  # refused, timed out, not a WAMP peer: a socket left behind by a node that died...
        answers = False
    else:
        answers = True
    try:
        # ...unless its processes live on (hung, or serving other realms). Our own PID is the run-state's
        # when `run` restarts its node.
        processes = node_processes(data_dir)
        if processes.run_pid == os.getpid():
            processes = dataclasses.replace(processes, run_pid=None)
        which = processes.describe()
    except RunStateError:
        which = ""
    if not answers and not which:
        Path(path).unlink(missing_ok=True)
        return
    which = f" ({which})" if which else ""
    state = "already running" if answers else "already running but not answering on its control socket"
    raise StartError(
        f"a Switchboard node is {state} with data directory {data_dir}{which}; "
        f"stop it with: switchboard stop --data-dir {shlex.quote(str(data_dir))}"
    )


@dataclass(frozen=True)
class ImportProblem:
    """A component class that does not import: where it is configured, and why."""

    pointer: str
    class_path: str
    cause: str


def component_import_problems(config: Config) -> list[ImportProblem]:
    """Every component class of ``config`` that does not import (with ``pythonpath``), in config order."""
    problems = []
    with _extra_sys_path(config.pythonpath):
        for i, component in enumerate(config.components):
            module_name, _, class_name = component.class_path.rpartition(".")
            try:
                module = importlib.import_module(module_name)
            except Exception as e:
                cause = f"{type(e).__name__}: {e}"
            else:
                if isinstance(getattr(module, class_name, None), type):
                    continue
                cause = f"module {module_name!r} has no class {class_name!r}"
            problems.append(ImportProblem(f"/components/{i}/class", component.class_path, cause))
    return problems


def _check_components_import(config: Config) -> None:
    for problem in component_import_problems(config)[:1]:
        raise StartError(f"cannot import component {problem.class_path!r} ({problem.pointer}): {problem.cause}")


@contextlib.contextmanager
def _extra_sys_path(paths: tuple[str, ...]) -> Iterator[None]:
    saved = list(sys.path)
    sys.path[:0] = list(paths)
    try:
        yield
    finally:
        sys.path[:] = saved


def _resolve_ports(config: Config) -> Config:
    transports = []
    for i, t in enumerate(config.transports):
        if t.port == 0:
            t = dataclasses.replace(t, port=_pick_free_port(t.host))
        else:
            _check_port_free(i, t)
        transports.append(t)
    ops = config.operations
    if ops is not None and ops.listener is None:
        if ops.port == 0:
            ops = dataclasses.replace(ops, port=_pick_free_port(ops.host))
        else:
            _check_free(ops.host, ops.port, "the operations endpoints, /operations/port")
    cluster = config.cluster
    if cluster is not None:
        if cluster.port == 0:
            cluster = dataclasses.replace(cluster, port=_pick_free_port(cluster.host))
        else:
            _check_free(cluster.host, cluster.port, "the links of the cluster, /cluster/port")
    return dataclasses.replace(config, transports=tuple(transports), operations=ops, cluster=cluster)


def _pick_free_port(host: str) -> int:
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _check_port_free(index: int, t: Transport) -> None:
    _check_free(t.host, t.port, f"transport {t.name!r}, /listen/{index}")


def _check_free(host: str, port: int, what: str) -> None:
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            reason = "address already in use" if e.errno == errno.EADDRINUSE else e.strerror
            raise StartError(f"cannot listen on {host}:{port} ({what}): {reason}") from None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
