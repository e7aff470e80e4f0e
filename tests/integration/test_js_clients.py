"""JavaScript clients (autobahn-js and wampy from npm, in Node) against the shared real node."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import utils

pytestmark = pytest.mark.integration

JS_DIR = Path(__file__).resolve().parent.parent / "js"


@pytest.mark.parametrize("test_file", ["autobahn.test.js", "wampy.test.js"])
@pytest_twisted.ensureDeferred
async def test_node_client(reactor: Any, demo_node: Any, test_file: str) -> None:
    """The Node test file passes against the node: call chat.send, receive the event, get the errors."""
    node = shutil.which("node")
    assert node is not None, "Node.js is required for the JavaScript client tests"
    assert (JS_DIR / "node_modules").is_dir(), "run `npm install --prefix tests/js` first (tox does)"
    env = dict(os.environ, SWITCHBOARD_URL=demo_node.url)
    # Each JS test and each of its waits has its own deadline; this bounds the whole run too.
    running = utils.getProcessOutputAndValue(
        node, ["--test", "--test-timeout=30000", test_file], env=env, path=str(JS_DIR), reactor=reactor
    )
    running.addTimeout(90, reactor)
    out, err, code = await running
    report = out.decode() + err.decode()
    assert code == 0, report
    assert "# fail 0" in report, report
    assert "# pass 0" not in report, report
