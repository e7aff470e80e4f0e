"""JavaScript clients (autobahn-js and wampy from npm, in Node) against the shared real node."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import utils

from tests.integration.users import add_user

pytestmark = pytest.mark.integration

JS_DIR = Path(__file__).resolve().parent.parent / "js"


async def run_node_tests(
    reactor: Any,
    test_file: str,
    env: dict[str, str],
    *,
    directory: Path = JS_DIR,
    test_timeout: float = 30,
    deadline: float = 90,
) -> None:
    """Run one ``node --test`` file of ``directory`` and fail with its report unless every test in it passed
    (each test gets ``test_timeout`` seconds, the whole run ``deadline``)."""
    node = shutil.which("node")
    assert node is not None, "Node.js is required for the JavaScript tests"
    assert (directory / "node_modules").is_dir(), f"run `npm install --prefix {directory}` first (tox does)"
    env = dict(os.environ, **env)
    running = utils.getProcessOutputAndValue(
        node,
        ["--test", f"--test-timeout={int(test_timeout * 1000)}", test_file],
        env=env,
        path=str(directory),
        reactor=reactor,
    )
    running.addTimeout(deadline, reactor)
    out, err, code = await running
    report = out.decode() + err.decode()
    assert code == 0, report
    assert "# fail 0" in report, report
    assert "# pass 0" not in report, report


@pytest.mark.parametrize("test_file", ["autobahn.test.js", "wampy.test.js"])
@pytest_twisted.ensureDeferred
async def test_node_clients(reactor: Any, demo_node: Any, test_file: str) -> None:
    """autobahn-js and wampy call chat.send, receive the event and get the documented errors."""
    await run_node_tests(reactor, test_file, {"SWITCHBOARD_URL": demo_node.url})


@pytest_twisted.ensureDeferred
async def test_node_clients_authenticate(reactor: Any, auth_node: Any) -> None:
    """autobahn-js (ticket, wampcra, cryptosign) and wampy (ticket, wampy-cra, wampy-cryptosign) log in
    as a store user; a wrong ticket gets the uniform refusal."""
    user = add_user(auth_node)
    env = {
        "SWITCHBOARD_URL": auth_node.url,
        "SWITCHBOARD_AUTHID": user.authid,
        "SWITCHBOARD_PASSWORD": user.password,
        "SWITCHBOARD_SEED": user.privkey,
    }
    await run_node_tests(reactor, "auth.test.js", env)
