"""
Shared fixtures: the reactor, and one real Switchboard node on the demo config for the whole session.

This is the only module that imports the global reactor (pytest-twisted runs it). The node is started by
the same :func:`router.launch.launch` that ``switchboard run`` uses, on a port picked at run time and a
temporary data directory, and stopped (SIGTERM, bounded, then SIGKILL) at the end of the session.
"""

from __future__ import annotations

import json
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from router.launch import RunningNode
from router.testing import start_node

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "config" / "switchboard.json"

_nodes: list[RunningNode] = []


def demo_document() -> dict[str, Any]:
    """A fresh copy of the demo config's JSON, to change for a test's own node."""
    doc: dict[str, Any] = json.loads(DEMO_CONFIG.read_text())
    doc["$schema"] = str(ROOT / "config" / "switchboard.schema.json")
    return doc


def write_config(directory: Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` as ``switchboard.json`` in ``directory``; its path."""
    path = directory / "switchboard.json"
    path.write_text(json.dumps(doc))
    return path


@contextmanager
def running(starting: Coroutine[Any, Any, RunningNode]) -> Iterator[RunningNode]:
    """Start a node (from a fixture, outside the reactor), attach its log to failures, stop it at the end."""
    node = pytest_twisted.blockon(defer.ensureDeferred(starting))
    _nodes.append(node)
    try:
        yield node
    finally:
        pytest_twisted.blockon(defer.ensureDeferred(node.stop()))
        _nodes.remove(node)


@pytest.fixture(scope="session")
def reactor() -> Any:
    """The reactor pytest-twisted runs."""
    from twisted.internet import reactor as global_reactor

    return global_reactor


@pytest.fixture(scope="session")
def demo_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A real node on the demo config, listening on a free port."""
    with running(start_node(reactor, DEMO_CONFIG, tmp_path_factory.mktemp("demo-node"))) as node:
        yield node


@pytest.fixture(scope="session")
def auth_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A real node on the demo config with every store-backed method (scram too), a strict throttle
    (3 failures per authid within 10 minutes) and a role ``muted``: ``user`` minus calling chat.send."""
    doc = demo_document()
    doc["listen"][0]["auth"]["scram"] = {}
    doc["throttle"] = {"per_authid": 3, "per_peer": 10000, "window": 600}
    doc["realms"][0]["roles"]["muted"] = {"inherits": ["user"], "deny": [{"uri": "chat.send", "actions": ["call"]}]}
    tmp = tmp_path_factory.mktemp("auth-node")
    with running(start_node(reactor, write_config(tmp, doc), tmp / "data")) as node:
        yield node


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the tail of every running node's log to a failing test's report."""
    report = yield
    if report.failed:
        for node in _nodes:
            log = node.process.log_path.read_text(encoding="utf-8", errors="replace")
            report.sections.append((f"crossbar node log ({node.process.log_path})", log[-8000:]))
    return report
