"""
Shared fixtures: the reactor, and one real Switchboard node on the demo config for the whole session.

This is the only module that imports the global reactor (pytest-twisted runs it). The node is started by
the same :func:`router.launch.launch` that ``switchboard run`` uses, on a port picked at run time and a
temporary data directory, and stopped (SIGTERM, bounded, then SIGKILL) at the end of the session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def reactor() -> Any:
    """The reactor pytest-twisted runs."""
    from twisted.internet import reactor as global_reactor

    return global_reactor


@pytest.fixture(scope="session")
def demo_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A real node on the demo config, listening on a free port."""
    data_dir = tmp_path_factory.mktemp("demo-node")
    node = pytest_twisted.blockon(defer.ensureDeferred(start_node(reactor, DEMO_CONFIG, data_dir)))
    _nodes.append(node)
    yield node
    pytest_twisted.blockon(defer.ensureDeferred(node.stop()))
    _nodes.remove(node)


@pytest.fixture(scope="session")
def auth_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A real node on the demo config with every store-backed method (scram too), a strict throttle
    (3 failures per authid within 10 minutes) and a role ``muted``: ``user`` minus calling chat.send."""
    doc = json.loads(DEMO_CONFIG.read_text())
    doc["listen"][0]["auth"]["scram"] = {}
    doc["throttle"] = {"per_authid": 3, "per_peer": 10000, "window": 600}
    doc["realms"][0]["roles"]["muted"] = {"inherits": ["user"], "deny": [{"uri": "chat.send", "actions": ["call"]}]}
    doc["$schema"] = str(ROOT / "config" / "switchboard.schema.json")
    tmp = tmp_path_factory.mktemp("auth-node")
    config = tmp / "switchboard.json"
    config.write_text(json.dumps(doc))
    node = pytest_twisted.blockon(defer.ensureDeferred(start_node(reactor, config, tmp / "data")))
    _nodes.append(node)
    yield node
    pytest_twisted.blockon(defer.ensureDeferred(node.stop()))
    _nodes.remove(node)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the tail of every running node's log to a failing test's report."""
    report = yield
    if report.failed:
        for node in _nodes:
            log = node.process.log_path.read_text(encoding="utf-8", errors="replace")
            report.sections.append((f"crossbar node log ({node.process.log_path})", log[-8000:]))
    return report
