"""The permission matrix: six roles x four actions x URI classes, registered or not, on a real router.

Every cell asserts the router's answer: ``wamp.error.not_authorized`` where the rules deny, something else
(success, or ``no_such_procedure`` / ``procedure_already_exists``) where they allow. The expected answers
are :data:`ALLOWED`, written by hand from the roles in ``matrix.json`` (not computed by the code the router
runs); every cell not listed there must be denied.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from twisted.internet import defer

from router.authz.rules import decide
from router.config import ACTIONS, Role, load_config
from router.control import control_session
from router.credentials import password_credentials
from router.launch import RunningNode
from router.store import UserStore
from router.testkit import session, start_node

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parent / "matrix.json"
ROLES = ["anonymous", "user", "moderator", "restricted", "admin", "backend"]
PASSWORD = "matrix-password"
URIS = [
    "app.echo",  # exact hit (anonymous call)
    "app.echo.more",  # below an exact rule: miss
    "app.room",  # prefix root
    "app.room.lobby",  # prefix hit
    "app.roomy",  # near miss of the app.room prefix
    "app.user.profile",  # inherited prefix
    "app.lobby.typing",  # wildcard hit
    "app.typing",  # wildcard miss (too few components)
    "app.admin.reset",  # under a deny prefix
    "wamp.session.list",  # meta API procedure
    "wamp.session.on_join",  # meta API topic
    "zzz.unknown",  # nothing covers it
]
ALLOWED_ERRORS = {None, "wamp.error.no_such_procedure", "wamp.error.procedure_already_exists"}

# Every URI of URIS under "app" (the prefix rules on "app" cover them all, "app.roomy" included).
APP = [
    "app.echo",
    "app.echo.more",
    "app.room",
    "app.room.lobby",
    "app.roomy",
    "app.user.profile",
    "app.lobby.typing",
    "app.typing",
    "app.admin.reset",
]

#: The allowed cells, role -> action -> URIs, read off matrix.json by hand; everything else is denied.
ALLOWED: dict[str, dict[str, list[str]]] = {
    # app.echo exact [call]; app.room prefix [subscribe] (app.room and below, not app.roomy).
    "anonymous": {
        "call": ["app.echo"],
        "subscribe": ["app.room", "app.room.lobby"],
    },
    # anonymous + app.user prefix [call, subscribe] + app..typing wildcard [subscribe, publish]
    # (exactly three components: app.lobby.typing, not app.typing).
    "user": {
        "call": ["app.echo", "app.user.profile"],
        "subscribe": ["app.room", "app.room.lobby", "app.user.profile", "app.lobby.typing"],
        "publish": ["app.lobby.typing"],
    },
    # user + app.room prefix [publish].
    "moderator": {
        "call": ["app.echo", "app.user.profile"],
        "subscribe": ["app.room", "app.room.lobby", "app.user.profile", "app.lobby.typing"],
        "publish": ["app.lobby.typing", "app.room", "app.room.lobby"],
    },
    # app prefix [all], minus deny app.admin prefix [all] and deny app.echo exact [register] (not below it).
    "restricted": {
        "call": [u for u in APP if u != "app.admin.reset"],
        "register": [u for u in APP if u not in ("app.admin.reset", "app.echo")],
        "publish": [u for u in APP if u != "app.admin.reset"],
        "subscribe": [u for u in APP if u != "app.admin.reset"],
    },
    # "" prefix [all] (everything but wamp.*) + wamp.session prefix [call, subscribe].
    "admin": {
        "call": [*APP, "zzz.unknown", "wamp.session.list", "wamp.session.on_join"],
        "register": [*APP, "zzz.unknown"],
        "publish": [*APP, "zzz.unknown"],
        "subscribe": [*APP, "zzz.unknown", "wamp.session.list", "wamp.session.on_join"],
    },
    # app prefix [register, publish].
    "backend": {
        "register": APP,
        "publish": APP,
    },
}


def expected_allowed(role: str, action: str, uri: str) -> bool:
    """The hand-written answer for one cell."""
    return uri in ALLOWED[role].get(action, [])


@pytest.fixture(scope="module")
def matrix_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A node on tests/integration/matrix.json with one ticket user per role."""
    tmp = tmp_path_factory.mktemp("matrix")
    shutil.copy(CONFIG, tmp / "matrix.json")
    node = pytest_twisted.blockon(defer.ensureDeferred(start_node(reactor, tmp / "matrix.json", tmp / "data")))
    store = UserStore(node.store_path)
    credentials = password_credentials(PASSWORD)
    for role in ROLES[1:]:
        store.add_user("matrix", f"m_{role}", role, credentials)
    store.close()
    yield node
    pytest_twisted.blockon(defer.ensureDeferred(node.stop()))


def roles() -> dict[str, Role]:
    return dict(load_config(CONFIG).realms[0].roles)


async def attempt(s: Any, action: str, uri: str) -> str | None:
    """Perform ``action`` on ``uri``; the error URI, or None on success (undone at once)."""
    try:
        if action == "call":
            await s.call(uri)
        elif action == "register":
            registration = await s.register(lambda *a, **kw: None, uri)
            await registration.unregister()
        elif action == "publish":
            await s.publish(uri, options=PublishOptions(acknowledge=True))
        else:
            subscription = await s.subscribe(lambda *a, **kw: None, uri)
            await subscription.unsubscribe()
    except ApplicationError as e:
        return str(e.error)
    return None


async def run_matrix(reactor: Any, node: RunningNode, role: str) -> list[str]:
    """Every action on every URI for one role; the cells that disagree with the hand-written table."""
    auth: dict[str, Any] = (
        {} if role == "anonymous" else {"authmethod": "ticket", "authid": f"m_{role}", "ticket": PASSWORD}
    )
    wrong = []
    async with session(reactor, node.url, realm="matrix", **auth) as s:
        assert s.details.authrole == role
        for uri in URIS:
            for action in ACTIONS:
                outcome = await attempt(s, action, uri)
                if expected_allowed(role, action, uri):
                    if outcome not in ALLOWED_ERRORS:
                        wrong.append(f"{action} {uri}: expected allowed, got {outcome}")
                elif outcome != "wamp.error.not_authorized":
                    wrong.append(f"{action} {uri}: expected not_authorized, got {outcome or 'success'}")
    return wrong


@pytest.mark.parametrize("role", ROLES)
@pytest_twisted.ensureDeferred
async def test_matrix_with_nothing_registered(reactor: Any, matrix_node: RunningNode, role: str) -> None:
    """Each cell, with no procedure registered and no subscriber (except Crossbar's own meta API)."""
    assert await run_matrix(reactor, matrix_node, role) == []


@pytest.mark.parametrize("role", ROLES)
@pytest_twisted.ensureDeferred
async def test_matrix_with_everything_registered(reactor: Any, matrix_node: RunningNode, role: str) -> None:
    """Each cell again while a trusted session has registered every procedure and subscribed every topic:
    existence changes nothing about a denial."""
    async with control_session(reactor, matrix_node.control_socket, "matrix") as provider:
        for uri in URIS:
            if not uri.startswith("wamp."):
                await provider.register(lambda *a, **kw: None, uri)
                await provider.subscribe(lambda *a, **kw: None, uri)
        assert await run_matrix(reactor, matrix_node, role) == []


@pytest.mark.parametrize(
    ("role", "action", "uri", "allowed"),
    [
        ("anonymous", "call", "app.echo", True),
        ("anonymous", "register", "app.echo", False),
        ("anonymous", "subscribe", "app.roomy", False),
        ("user", "subscribe", "app.lobby.typing", True),
        ("user", "subscribe", "app.typing", False),
        ("moderator", "publish", "app.room.lobby", True),
        ("restricted", "call", "app.admin.reset", False),
        ("restricted", "register", "app.echo", False),
        ("restricted", "register", "app.user.profile", True),
        ("admin", "call", "zzz.unknown", True),
        ("admin", "call", "wamp.session.list", True),
        ("admin", "publish", "wamp.session.on_join", False),
        ("backend", "subscribe", "app.room", False),
    ],
)
def test_headline_cells_of_the_table(role: str, action: str, uri: str, allowed: bool) -> None:
    """Headline cells, each checked once more on its own against the table the matrix compares with."""
    assert expected_allowed(role, action, uri) is allowed


@pytest.mark.parametrize("role", ROLES)
def test_the_rule_semantics_agree_with_the_table(role: str) -> None:
    """``router.authz.rules.decide`` (what in-router roles decide with) gives every cell of the table."""
    rules = roles()[role]
    wrong = [
        (action, uri)
        for uri in URIS
        for action in ACTIONS
        if decide(rules.allow, rules.deny, uri, action) is not expected_allowed(role, action, uri)
    ]
    assert wrong == []
