"""
Shared fixtures: nodes on variants of the demo config, and ``demo_node``.

The ``reactor``, ``switchboard_node`` and ``wamp_session`` fixtures are Switchboard's own pytest plugin's
(:mod:`router.testkit.plugin`, loaded through its entry point; ``switchboard_config`` in pyproject.toml
names the demo config). ``demo_node`` is ``switchboard_node``. The other nodes here are started by the same
:func:`router.launch.launch` that ``switchboard run`` uses, on ports picked at run time and temporary data
directories, and stopped (SIGTERM, bounded, then SIGKILL) at the end; the plugin attaches the log of every
node a failing test used to its report.
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
from router.testkit import start_node

# pytester runs small test projects against the installed plugin (tests/*/test_testkit*.py).
pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "config" / "switchboard.json"


def demo_document() -> dict[str, Any]:
    """A fresh copy of the demo config's JSON, to change for a test's own node (its directories made
    absolute, so the copy can be written anywhere)."""
    doc: dict[str, Any] = json.loads(DEMO_CONFIG.read_text())
    doc["$schema"] = str(ROOT / "config" / "switchboard.schema.json")
    # Paths in the file are relative to it; the copy is written elsewhere.
    for listener in doc["listen"]:
        for mount, directory in listener.get("web", {}).items():
            listener["web"][mount] = str((DEMO_CONFIG.parent / directory).resolve())
    return doc


def write_config(directory: Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` as ``switchboard.json`` in ``directory``; its path."""
    path = directory / "switchboard.json"
    path.write_text(json.dumps(doc))
    return path


@contextmanager
def running(starting: Coroutine[Any, Any, RunningNode]) -> Iterator[RunningNode]:
    """Start a node (from a fixture, outside the reactor), stop it at the end."""
    node = pytest_twisted.blockon(defer.ensureDeferred(starting))
    try:
        yield node
    finally:
        pytest_twisted.blockon(defer.ensureDeferred(node.stop()))


@pytest.fixture(scope="session")
def demo_node(switchboard_node: RunningNode) -> RunningNode:
    """A real node on the demo config, listening on free ports: the plugin's ``switchboard_node``."""
    return switchboard_node


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
