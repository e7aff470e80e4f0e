"""
The pytest plugin ``switchboard``: a real node from your JSON config and sessions per role, in fixtures.

pytest loads it through the ``pytest11`` entry point of the installed package (no conftest needed;
``-p no:switchboard`` turns it off). It runs on pytest-twisted (Switchboard's ``testing`` extra)
and imports Twisted, autobahn and the router only when a fixture needs them, so it costs a project that
does not use it nothing.

- ``--switchboard-config PATH`` (relative to the invocation directory) or the ini key ``switchboard_config``
  (relative to the ini file): the config the node runs; ``--switchboard-loglevel`` / ``switchboard_loglevel``
  its log level (``info``).
- ``reactor`` (session): the global reactor pytest-twisted runs.
- ``switchboard_node`` (session) and ``switchboard_module_node`` (one per test module): a
  :class:`router.launch.RunningNode` on free ports, with a fresh data directory and the test-login
  transport, ready when the fixture returns, stopped with its whole process group at the end.
- ``wamp_session`` (function): a :class:`router.testkit.sessions.SessionFactory` on the module node if the
  test uses ``switchboard_module_node``, else on the session node.

A failing test that used a node gets the part of the node's log written while it ran in its report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from router.launch import RunningNode
    from router.testkit.sessions import SessionFactory

__all__ = [
    "READY_TIMEOUT",
    "config_path",
    "pytest_addoption",
    "pytest_configure",
    "pytest_runtest_makereport",
    "pytest_runtest_setup",
    "reactor",
    "switchboard_module_node",
    "switchboard_node",
    "wamp_session",
]

#: Seconds a node may take to be ready (its components started) before the fixture fails.
READY_TIMEOUT = 90.0
#: How much of a node's log a failure report shows at most (its end).
LOG_TAIL = 16_000
# sun_path is 108 bytes on Linux (104 on macOS), including the terminating NUL.
_MAX_UNIX_PATH = 103

_STARTED = pytest.StashKey[list[Any]]()  # on the config: every node the plugin started, in order
_USED = pytest.StashKey[list[Any]]()  # on an item: nodes its wamp_session used
_OFFSETS = pytest.StashKey[dict[int, int]]()  # on an item: each started node's log size when it began


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--switchboard-config``, ``--switchboard-loglevel`` and their ini keys."""
    group = parser.getgroup("switchboard", "Switchboard nodes for tests")
    group.addoption(
        "--switchboard-config",
        dest="switchboard_config",
        metavar="PATH",
        default=None,
        help="the Switchboard JSON config the switchboard_node fixtures run (relative to the current directory)",
    )
    group.addoption(
        "--switchboard-loglevel",
        dest="switchboard_loglevel",
        metavar="LEVEL",
        default=None,
        help="the log level of those nodes (default: info)",
    )
    parser.addini("switchboard_config", "the Switchboard JSON config for switchboard_node (relative to this file)")
    parser.addini("switchboard_loglevel", "the log level of the nodes switchboard_node starts", default="info")


def pytest_configure(config: pytest.Config) -> None:
    """Keep the kit's own import chain quiet under ``filterwarnings = error``: autobahn's client imports
    passlib, which imports the ``crypt`` module Python 3.11+ deprecates (not the project's to fix)."""
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:passlib.*")


def config_path(config: pytest.Config) -> Path | None:
    """The config file the nodes run: the option (relative to the invocation directory), else the ini key
    (relative to the ini file), else None."""
    option = config.getoption("switchboard_config")
    if option:
        return (config.invocation_params.dir / str(option)).resolve()
    ini = config.getini("switchboard_config")
    if ini:
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        return (base / str(ini)).resolve()
    return None


@pytest.fixture(scope="session")
def reactor() -> Any:
    """The global reactor, which pytest-twisted runs (the only place the kit imports it)."""
    _pytest_twisted()
    from twisted.internet import reactor as running

    return running


@pytest.fixture(scope="session")
def switchboard_node(
    request: pytest.FixtureRequest, reactor: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningNode]:
    """A real node on the configured JSON, shared by the whole session."""
    yield from _node(request, reactor, tmp_path_factory, "switchboard")


@pytest.fixture(scope="module")
def switchboard_module_node(
    request: pytest.FixtureRequest, reactor: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningNode]:
    """A real node on the configured JSON for one test module (its state is the module's alone)."""
    yield from _node(request, reactor, tmp_path_factory, "switchboard-module")


@pytest.fixture
def wamp_session(request: pytest.FixtureRequest, reactor: Any) -> SessionFactory:
    """Sessions on the node: ``async with wamp_session(realm=..., role=..., authid=...) as s:``."""
    from router.testkit.sessions import SessionFactory

    name = "switchboard_module_node" if "switchboard_module_node" in request.fixturenames else "switchboard_node"
    node = request.getfixturevalue(name)
    request.node.stash.setdefault(_USED, []).append(node)
    return SessionFactory(reactor, node)


def _pytest_twisted() -> Any:
    try:
        import pytest_twisted  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        pytest.fail(
            "the switchboard fixtures need pytest-twisted: install Switchboard with its testing extra "
            "(pip install '<switchboard checkout or wheel>[testing]')",
            pytrace=False,
        )
    return pytest_twisted


def _node(
    request: pytest.FixtureRequest, reactor: Any, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[RunningNode]:
    from twisted.internet import defer

    from router.config import ConfigError, load_config
    from router.datadir import kit_login_socket_path, log_path
    from router.launch import StartError, launch

    blockon = _pytest_twisted().blockon
    path = config_path(request.config)
    if path is None:
        pytest.fail(
            "switchboard_node needs a config: pass --switchboard-config PATH or set switchboard_config in the "
            "[pytest] ini options",
            pytrace=False,
        )
    try:
        config = load_config(path)
    except ConfigError as e:
        problems = "".join(f"\n  {problem}" for problem in e.problems)
        pytest.fail(f"switchboard_node: {e}{problems}", pytrace=False)
    # Every listener on a port picked at start: tests never depend on a fixed port.
    config = dataclasses.replace(config, transports=tuple(dataclasses.replace(t, port=0) for t in config.transports))
    loglevel = request.config.getoption("switchboard_loglevel") or request.config.getini("switchboard_loglevel")

    data_dir = tmp_path_factory.mktemp(name)
    scratch = None
    if len(str(kit_login_socket_path(data_dir.resolve())).encode()) > _MAX_UNIX_PATH:
        # A deep basetemp (pytester, a long TMPDIR) would not fit a unix socket path: a short directory then
        # (mkdtemp: owner-only, unpredictable name).
        short = "/tmp" if os.path.isdir("/tmp") else None  # noqa: S108
        scratch = data_dir = Path(tempfile.mkdtemp(prefix="sb-", dir=short))
    try:
        starting = launch(reactor, config, data_dir, loglevel=loglevel, ready_timeout=READY_TIMEOUT, test_logins=True)
        try:
            node = blockon(defer.ensureDeferred(starting))
        except StartError as e:
            tail = _tail(log_path(data_dir.resolve()), 4000)
            pytest.fail(f"the Switchboard node for {path} did not start: {e}\n{tail}", pytrace=False)
        request.config.stash.setdefault(_STARTED, []).append(node)
        try:
            yield node
        finally:
            blockon(defer.ensureDeferred(node.stop()))
            request.config.stash[_STARTED].remove(node)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _tail(path: Path, limit: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return text if len(text) <= limit else "...\n" + text[-limit:]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Note how long each running node's log is when a test starts: its report shows what came after."""
    item.stash[_OFFSETS] = {id(node): _size(node) for node in item.config.stash.get(_STARTED, [])}


def _size(node: Any) -> int:
    try:
        size: int = node.process.log_path.stat().st_size
    except FileNotFoundError:
        return 0
    return size


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach to a failing test's report the log of every node it used, from where the test began."""
    report = yield
    if report.failed:
        nodes = _nodes_used(item)
        if nodes:
            with contextlib.suppress(Exception):  # a report is never lost over this (e.g. the reactor stopped)
                _settle(nodes)
        for node in nodes:
            report.sections.append(_log_section(node, item.stash.get(_OFFSETS, {}).get(id(node), 0)))
    return report


def _settle(nodes: list[Any]) -> None:
    """Let the reactor write what the nodes said last: router workers log through Crossbar's controller and
    the kit writes the log file as the output arrives, so the lines of the test's final moments may still be
    on their way. Until the logs stop growing for a tenth of a second, at most a second."""
    from twisted.internet import reactor, task

    blockon = _pytest_twisted().blockon
    sizes = [_size(node) for node in nodes]
    for _ in range(10):
        blockon(task.deferLater(reactor, 0.1, lambda: None))
        now = [_size(node) for node in nodes]
        if now == sizes:
            return
        sizes = now


def _nodes_used(item: pytest.Item) -> list[Any]:
    values = list(getattr(item, "funcargs", {}).values()) + item.stash.get(_USED, [])
    if not values:
        return []
    from router.launch import RunningNode

    found: list[Any] = []
    for value in values:
        if isinstance(value, RunningNode) and all(value is not seen for seen in found):
            found.append(value)
    return found


def _log_section(node: Any, offset: int) -> tuple[str, str]:
    path: Path = node.process.log_path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return (f"switchboard node log ({path})", "(no log file)")
    if offset > len(data):  # the node was restarted: the log is a new one
        offset = 0
    text = data[offset:].decode("utf-8", "replace")
    if len(text) > LOG_TAIL:
        text = f"... (the first {len(text) - LOG_TAIL} characters are in the file)\n" + text[-LOG_TAIL:]
    where = "while the test ran" if offset else "since the node started"
    return (f"switchboard node log, {where} ({path})", text or "(nothing)")
