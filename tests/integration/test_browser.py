"""The demo web app (web/) in a real Chromium, driven by playwright-core from ``node --test`` files in
tests/browser, against real nodes on the demo config: chat and presence between two users, recovery after a
cut connection, HTTPS/wss, and the origin check. A missing Chromium or missing npm packages fail these tests
(CI installs both: .ci/run and tox); they are never skipped."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted

from router.launch import RunningNode
from router.testkit import start_node
from router.tls import dev_certificate
from tests.conftest import ROOT, demo_document, running, write_config
from tests.integration.test_js_clients import run_node_tests
from tests.integration.users import add_user

pytestmark = pytest.mark.integration

BROWSER_DIR = ROOT / "tests" / "browser"
WEB_DIR = ROOT / "web"
ARTIFACTS = BROWSER_DIR / "artifacts"


def chromium() -> str:
    """The Chromium the tests drive: $CHROMIUM, else Debian's; fails (never skips) when there is none."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    assert os.access(path, os.X_OK), (
        f"no Chromium at {path}: install Debian's (`apt-get install -y chromium`, as .ci/run does) or set CHROMIUM"
    )
    return path


async def run_browser_tests(reactor: Any, test_file: str, env: dict[str, str]) -> None:
    """Run one ``node --test`` file of tests/browser; fail with its report unless every test in it passed."""
    assert (BROWSER_DIR / "node_modules" / "playwright-core").is_dir(), (
        "run `npm install --prefix tests/browser` first (tox does)"
    )
    assert (WEB_DIR / "index.html").is_file(), "web/index.html is missing: the demo app is what these tests load"
    assert (WEB_DIR / "node_modules" / "autobahn-browser").is_dir(), "run `npm install --prefix web` first (tox does)"
    ARTIFACTS.mkdir(exist_ok=True)
    env = dict(env, CHROMIUM=chromium(), SWITCHBOARD_ARTIFACTS=str(ARTIFACTS))
    await run_node_tests(reactor, test_file, env, directory=BROWSER_DIR, test_timeout=60, deadline=150)


def web_document() -> dict[str, Any]:
    """The demo config serving this checkout's web/ at `/` (an absolute path: the copy lives elsewhere)."""
    doc = demo_document()
    doc["listen"][0]["web"] = {"/": str(WEB_DIR)}
    return doc


def page_url(node: RunningNode) -> str:
    """The node's own page: the demo app at `/` of its main listener."""
    transport = node.config.main_transport
    return f"{'https' if transport.tls else 'http'}://{transport.host}:{transport.port}/"


@pytest.fixture(scope="module")
def web_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A real node on the demo config with the demo app at `/`, over plain HTTP and ws://."""
    tmp = tmp_path_factory.mktemp("browser")
    with running(start_node(reactor, write_config(tmp, web_document()), tmp / "data")) as node:
        yield node


@pytest.fixture(scope="module")
def tls_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """The same over HTTPS and wss://, with the self-signed development certificate."""
    tmp = tmp_path_factory.mktemp("browser-tls")
    cert, key = dev_certificate(tmp / "tls")
    doc = web_document()
    doc["listen"][0]["tls"] = {"cert": str(cert), "key": str(key)}
    with running(start_node(reactor, write_config(tmp, doc), tmp / "data")) as node:
        yield node


@pytest_twisted.ensureDeferred
async def test_two_users_chat_and_see_each_other(reactor: Any, web_node: RunningNode) -> None:
    """Two users logged in with tickets see each other in the member list, each other's messages and the
    other's typing indicator; the screenshot of that is tests/browser/artifacts/demo.png."""
    alice, bob = add_user(web_node, prefix="alice"), add_user(web_node, prefix="bob")
    env = {
        "SWITCHBOARD_PAGE": page_url(web_node),
        "SWITCHBOARD_ALICE": alice.authid,
        "SWITCHBOARD_ALICE_PASSWORD": alice.password,
        "SWITCHBOARD_BOB": bob.authid,
        "SWITCHBOARD_BOB_PASSWORD": bob.password,
    }
    await run_browser_tests(reactor, "chat.test.mjs", env)


@pytest_twisted.ensureDeferred
async def test_a_page_recovers_what_it_missed_while_cut_off(reactor: Any, web_node: RunningNode) -> None:
    """A page whose connection is cut shows the banner, and after the connection returns shows the messages
    sent meanwhile, once each and in order."""
    await run_browser_tests(reactor, "recovery.test.mjs", {"SWITCHBOARD_PAGE": page_url(web_node)})


@pytest_twisted.ensureDeferred
async def test_the_app_works_over_https_and_wss(reactor: Any, tls_node: RunningNode) -> None:
    """Over a TLS listener the page loads by HTTPS and chats over wss://."""
    await run_browser_tests(reactor, "tls.test.mjs", {"SWITCHBOARD_PAGE": page_url(tls_node)})


@pytest_twisted.ensureDeferred
async def test_a_page_of_another_origin_cannot_open_a_websocket(reactor: Any, web_node: RunningNode) -> None:
    """The node refuses the WebSocket handshake of a page from an origin it does not allow, and accepts its
    own page's."""
    await run_browser_tests(reactor, "origin.test.mjs", {"SWITCHBOARD_PAGE": page_url(web_node)})


@pytest_twisted.ensureDeferred
async def test_the_admin_page_shows_sessions_users_and_the_audit_stream(reactor: Any, web_node: RunningNode) -> None:
    """On web/admin/, an admin created in the store logs in, sees its own session and a chatting user's, that
    user in its room's presence, adds a user and sees it in the users and the audit stream; a user without
    the admin permission (and a wrong password) is refused with the reason. Screenshot:
    tests/browser/artifacts/admin.png."""
    admin, user = add_user(web_node, role="admin", prefix="admin"), add_user(web_node, prefix="carol")
    env = {
        "SWITCHBOARD_PAGE": page_url(web_node),
        "SWITCHBOARD_ADMIN": admin.authid,
        "SWITCHBOARD_ADMIN_PASSWORD": admin.password,
        "SWITCHBOARD_USER": user.authid,
        "SWITCHBOARD_USER_PASSWORD": user.password,
    }
    await run_browser_tests(reactor, "admin.test.mjs", env)
