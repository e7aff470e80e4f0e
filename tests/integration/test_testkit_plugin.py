"""The pytest plugin as a user's project meets it: a separate pytest run (pytester, in a subprocess) in a
directory with nothing but a config, an ini file and a test file; the plugin comes from the installed
package's entry point, with no conftest."""

from __future__ import annotations

import json
import time

import pytest

from router.testkit.plugin import READY_TIMEOUT
from tests.conftest import demo_document

pytestmark = pytest.mark.integration

USER_TESTS = """
import pytest_twisted
from router.testkit import assert_denied


@pytest_twisted.ensureDeferred
async def test_role_session(wamp_session):
    async with wamp_session(realm="demo", role="user", authid="alice") as s:
        info = await s.call("sys.info")
    assert (info["authid"], info["authrole"]) == ("alice", "user")


async def test_undecorated(wamp_session):
    async with wamp_session(role="anonymous") as s:
        assert (await s.call("sys.info"))["authrole"] == "anonymous"


@pytest_twisted.ensureDeferred
async def test_denied(wamp_session):
    async with wamp_session() as s:
        await assert_denied(s.register(lambda: None, "sys.mine"))


@pytest_twisted.ensureDeferred
async def test_wrong_expectation(wamp_session):
    async with wamp_session(role="admin", authid="carol") as s:
        info = await s.call("sys.info")
    assert info["authrole"] == "user"
"""


def user_project(pytester: pytest.Pytester) -> None:
    """The demo config as conf/app.json and the user's test file, nothing else."""
    (pytester.path / "conf").mkdir()
    (pytester.path / "conf" / "app.json").write_text(json.dumps(demo_document()))
    pytester.makepyfile(test_app=USER_TESTS)


def test_a_user_project_runs_against_a_real_node_from_its_ini(pytester: pytest.Pytester) -> None:
    """With `switchboard_config` in the project's ini: role sessions get exactly their role and authid, a
    denial passes assert_denied, plain `async def` tests run too, and the wrong expectation fails with the
    node's log of that test (the admin session carol joining) in its report."""
    user_project(pytester)
    pytester.makeini("[pytest]\nswitchboard_config = conf/app.json\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_wrong_expectation*", "*assert 'admin' == 'user'*"])
    output = result.stdout.str()
    section = output.split("switchboard node log, while the test ran", 1)[1]
    assert "event=session_joined realm=demo" in section
    assert "authid=carol authrole=admin" in section
    assert "authid=alice " not in section  # only what the failing test caused


def test_the_option_names_the_config_and_a_module_node_serves_wamp_session(pytester: pytest.Pytester) -> None:
    """--switchboard-config (relative to where pytest runs) with no ini: in a module that uses
    switchboard_module_node, wamp_session is on that node, and no session node is started. Also
    measures the time from starting pytest to the first test running (docs/testing.md)."""
    (pytester.path / "conf").mkdir()
    (pytester.path / "conf" / "app.json").write_text(json.dumps(demo_document()))
    pytester.makepyfile(
        test_module="""
import pathlib, time
import pytest

pytestmark = pytest.mark.usefixtures("switchboard_module_node")


def test_first(wamp_session, request):
    pathlib.Path("first-test").write_text(repr(time.time()))
    node = request.getfixturevalue("switchboard_module_node")
    assert wamp_session.node is node
    assert node.config.realms[0].name == "demo"
    assert "switchboard_node" not in request.fixturenames
"""
    )
    started = time.time()
    result = pytester.runpytest_subprocess("--switchboard-config", "conf/app.json")
    result.assert_outcomes(passed=1)
    first_test = float((pytester.path / "first-test").read_text()) - started
    assert 0 < first_test < READY_TIMEOUT


def test_without_a_config_the_fixture_says_what_to_set(pytester: pytest.Pytester) -> None:
    """No option and no ini key: the test errors in setup with one line naming both; nothing starts."""
    pytester.makepyfile(test_none="def test_node(switchboard_node):\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*switchboard_node needs a config: pass --switchboard-config PATH or set*"])


def test_the_plugin_comes_from_the_entry_point(pytester: pytest.Pytester) -> None:
    """The fixtures exist through the installed package's `pytest11` entry point alone: turning the
    plugin off by its name `switchboard` removes them, and --help lists its options."""
    pytester.makepyfile(test_none="def test_node(wamp_session):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:switchboard")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'wamp_session' not found*"])
    helped = pytester.runpytest_subprocess("--help")
    helped.stdout.fnmatch_lines(["*--switchboard-config=PATH*", "*switchboard_config*"])
