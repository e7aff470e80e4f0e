"""The test kit without a node: the test-login transport in the compiled config (and its absence), who the
test-login authenticator lets in, the session factory's arguments, the assertions, the inbox, the plugin's
config path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, task

from router.compile import KIT_LOGIN_AUTHENTICATOR, KIT_LOGIN_TRANSPORT_ID, compile_node
from router.config import load_config
from router.launch import RunningNode, with_port
from router.store import UserStore
from router.testkit import Inbox, JoinRefused, NoEvent, SessionFactory, assert_denied, assert_invalid, sessions
from router.testkit.logins import realm_roles, refusal
from router.testkit.plugin import config_path
from tests.conftest import DEMO_CONFIG, demo_document

SOCKET = "/data/.crossbar/control.sock"
KIT_SOCKET = "/data/.crossbar/kit-login.sock"
STORE = "/data/users.sqlite3"
DEMO_ROLES = json.loads(DEMO_CONFIG.read_text())["realms"][0]["roles"]


def demo(**kwargs: Any) -> dict[str, Any]:
    """The demo config compiled with ``kwargs``."""
    return compile_node(with_port(load_config(DEMO_CONFIG), 18080), control_socket=SOCKET, store_path=STORE, **kwargs)


# -- the transport ------------------------------------------------------------------------------------------


def test_without_test_logins_the_node_has_no_test_login_transport_or_authenticator() -> None:
    """What `switchboard run` compiles (no test_login_socket) names neither the transport nor the
    authenticator anywhere, and the control transport is its only unix socket."""
    compiled = demo()
    text = json.dumps(compiled)
    assert KIT_LOGIN_TRANSPORT_ID not in text
    assert KIT_LOGIN_AUTHENTICATOR not in text
    assert "router.testkit" not in text
    unix = [t for t in compiled["workers"][0]["transports"] if t["endpoint"]["type"] == "unix"]
    assert [t["endpoint"]["path"] for t in unix] == [SOCKET]


def test_with_test_logins_the_transport_is_a_unix_socket_with_the_ticket_authenticator_only() -> None:
    """Asked for, the test-login transport is RawSocket on the given unix socket, ticket only, through the
    test-login authenticator configured with the store and the file's roles of every realm; the control
    transport stays last (the readiness probe relies on it)."""
    transports = demo(test_login_socket=KIT_SOCKET)["workers"][0]["transports"]
    assert transports[-1]["id"] == "transport_control"
    assert transports[-2] == {
        "type": "rawsocket",
        "id": "transport_kit_login",
        "endpoint": {"type": "unix", "path": KIT_SOCKET},
        "serializers": ["json", "msgpack", "cbor"],
        "auth": {
            "ticket": {
                "type": "function",
                "create": "router.testkit.logins.create",
                "config": {"store": STORE, "realms": {"demo": DEMO_ROLES}},
            }
        },
    }
    # Nothing else changes.
    assert [t for t in transports if t["id"] != "transport_kit_login"] == demo()["workers"][0]["transports"]


# -- who the test-login authenticator lets in ---------------------------------------------------------------

ROLES = {"anonymous": {}, "user": {}, "auditor": {}}


@pytest.mark.parametrize(
    ("role", "authid", "roles", "expected"),
    [
        ("user", "alice", ROLES, None),
        ("anonymous", "x", ROLES, None),
        ("auditor", "bob", ROLES, None),
        ("admin", "alice", ROLES, "the realm has no role 'admin'"),
        ("trusted", "alice", ROLES, "'trusted' is a role reserved by the router"),
        ("trusted", "alice", {**ROLES, "trusted": {}}, "'trusted' is a role reserved by the router"),
        ("user", "alice", None, "no such realm on this node"),
        ("user", None, ROLES, "an authid is required"),
        ("user", "", ROLES, "an authid is required"),
        (None, "alice", ROLES, "the ticket must name the role"),
        ("", "alice", ROLES, "the ticket must name the role"),
        (["user"], "alice", ROLES, "the ticket must name the role"),
    ],
)
def test_refusal_of_a_test_login(role: object, authid: object, roles: dict[str, Any] | None, expected: str) -> None:
    """A test login is allowed exactly for a role the realm has, never a reserved one, with an authid."""
    assert refusal(role, authid, roles) == expected


def test_realm_roles_are_the_files_with_the_changes_made_at_run_time(tmp_path: Path) -> None:
    """Roles created at run time count, removed ones do not, and a realm the config lacks has none."""
    store = UserStore(tmp_path / "users.sqlite3")
    try:
        store.set_role_definition("demo", "auditor", {"allow": []})
        store.set_role_definition("demo", "backend", None)
    finally:
        store.close()
    roles = realm_roles(tmp_path / "users.sqlite3", {"demo": DEMO_ROLES}, "demo")
    assert roles is not None
    assert sorted(roles) == ["admin", "anonymous", "auditor", "user"]
    assert realm_roles(tmp_path / "users.sqlite3", {"demo": DEMO_ROLES}, "other") is None


# -- the session factory --------------------------------------------------------------------------------------


class Recorder:
    """Stands in for role_session/session: records how it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append((*args, kwargs))
        return "context"


def node(test_logins: bool = True, config_file: Path = DEMO_CONFIG) -> RunningNode:
    """A RunningNode record for ``config_file`` that no process backs."""
    config = with_port(load_config(config_file), 18080)
    return RunningNode(
        process=None,  # type: ignore[arg-type]  # not started: only the factory's choices are tested
        config=config,
        data_dir=Path("/data"),
        control_socket=SOCKET,
        test_login_socket=KIT_SOCKET if test_logins else None,
    )


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, Recorder]:
    """role_session and session replaced by recorders (restored after the test)."""
    found = {"role_session": Recorder(), "session": Recorder()}
    for name, recorder in found.items():
        monkeypatch.setattr(sessions, name, recorder)
    return found


def test_role_session_defaults_to_the_first_realm_the_anonymous_role_and_a_fresh_authid(
    recorded: dict[str, Recorder],
) -> None:
    """Without arguments: the config's first realm, the main transport's anonymous role, a new authid each
    time, over the test-login socket."""
    factory = SessionFactory("reactor", node())
    assert factory() == "context"
    factory()
    first, second = recorded["role_session"].calls
    assert first[:4] == ("reactor", KIT_SOCKET, "demo", "anonymous")
    assert first[4].startswith("test-")
    assert second[4] != first[4]
    assert first[5:7] == ("json", 10.0)


def test_role_session_takes_exactly_the_role_and_authid_asked_for(recorded: dict[str, Recorder]) -> None:
    """realm, role, authid and serializer go through unchanged."""
    SessionFactory("reactor", node())(realm="demo", role="admin", authid="alice", serializer="cbor", timeout=3)
    assert recorded["role_session"].calls == [("reactor", KIT_SOCKET, "demo", "admin", "alice", "cbor", 3, {})]


@pytest.mark.parametrize(
    ("arguments", "credentials"),
    [
        ({"authmethod": "anonymous"}, {}),
        ({"authmethod": "ticket", "authid": "alice", "secret": "s3"}, {"ticket": "s3"}),
        ({"authmethod": "wampcra", "authid": "alice", "secret": "s3"}, {"secret": "s3"}),
        ({"authmethod": "cryptosign", "privkey": "ab" * 32}, {"privkey": "ab" * 32}),
        ({"authmethod": "scram", "authid": "alice", "password": "s3"}, {"password": "s3", "kdf": "argon2id13"}),
    ],
)
def test_real_credentials_go_to_the_public_main_transport(
    recorded: dict[str, Recorder], arguments: dict[str, Any], credentials: dict[str, str]
) -> None:
    """With an authmethod the session logs in over the node's main WebSocket with autobahn's own client
    authenticator for that method."""
    SessionFactory("reactor", node())(**arguments)
    method, authid = arguments["authmethod"], arguments.get("authid")
    assert recorded["session"].calls == [
        ("reactor", "ws://127.0.0.1:18080/ws", "demo", "json", method, authid, 10.0, credentials)
    ]
    assert recorded["role_session"].calls == []


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"authmethod": "ticket", "role": "user", "secret": "s"}, TypeError, "leave role out"),
        ({"authmethod": "ticket"}, TypeError, "authmethod 'ticket' needs secret="),
        ({"authmethod": "ticket", "password": "s"}, TypeError, "authmethod 'ticket' takes no password"),
        ({"authmethod": "anonymous", "secret": "s"}, TypeError, "authmethod 'anonymous' takes no secret"),
        ({"authmethod": "cookie"}, ValueError, "authmethod must be one of"),
        ({"role": "user", "secret": "s"}, TypeError, "credentials need an authmethod"),
        ({"serializer": "ubjson"}, ValueError, "serializer must be one of json, msgpack, cbor"),
    ],
)
def test_arguments_that_do_not_fit_fail_before_connecting(
    recorded: dict[str, Recorder], arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Mixed-up arguments raise at once, naming the problem; nothing connects."""
    with pytest.raises(error, match=message.replace("(", r"\(")):
        SessionFactory("reactor", node())(**arguments)
    assert recorded["session"].calls == recorded["role_session"].calls == []


def test_a_node_without_test_logins_or_anonymous_role_needs_more(recorded: dict[str, Recorder], tmp_path: Path) -> None:
    """A node started without test logins cannot give role sessions; a config whose main transport has no
    anonymous role needs the role named."""
    with pytest.raises(RuntimeError, match="no test-login transport"):
        SessionFactory("reactor", node(test_logins=False))(role="user")
    doc = demo_document()
    del doc["listen"][0]["auth"]["anonymous"]
    (tmp_path / "app.json").write_text(json.dumps(doc))
    with pytest.raises(TypeError, match="role is required"):
        SessionFactory("reactor", node(config_file=tmp_path / "app.json"))()
    assert recorded["role_session"].calls == []


# -- assertions ---------------------------------------------------------------------------------------------


def failing(error: str, *args: Any) -> defer.Deferred[Any]:
    """A Deferred failed with the WAMP error ``error``."""
    return defer.fail(ApplicationError(error, *args))


@pytest_twisted.ensureDeferred
async def test_assert_denied_passes_only_on_not_authorized() -> None:
    """not_authorized (from an action, or a refused join) passes and is returned; anything else fails and
    says what happened, a success included."""
    denied = await assert_denied(failing("wamp.error.not_authorized", "no"))
    assert isinstance(denied, ApplicationError)
    assert denied.error == "wamp.error.not_authorized"
    refused = await assert_denied(defer.fail(JoinRefused("wamp.error.not_authorized", "authentication failed")))
    assert isinstance(refused, JoinRefused)
    cases = [
        (defer.succeed(42), "expected wamp.error.not_authorized, but it succeeded with 42"),
        (
            defer.succeed(None),
            "expected wamp.error.not_authorized, but it succeeded with None "
            "(a publish is refused only with PublishOptions(acknowledge=True))",
        ),
        (
            failing("wamp.error.no_such_procedure", "none"),
            "expected wamp.error.not_authorized, but it failed with wamp.error.no_such_procedure: none",
        ),
        (
            defer.fail(JoinRefused("wamp.error.no_such_realm", "gone")),
            "expected wamp.error.not_authorized, but the join was refused with wamp.error.no_such_realm: gone",
        ),
        (defer.fail(KeyError("k")), "expected wamp.error.not_authorized, but it raised KeyError: 'k'"),
    ]
    for action, message in cases:
        with pytest.raises(AssertionError) as caught:
            await assert_denied(action)
        assert str(caught.value) == message


@pytest_twisted.ensureDeferred
async def test_assert_invalid_passes_only_on_invalid_argument_naming_the_argument() -> None:
    """invalid_argument whose message names the argument as a word passes; the wrong argument, a word that
    merely contains it, another error or a success fail with what happened."""
    passed = await assert_invalid(failing("wamp.error.invalid_argument", "chat.send: text must not be empty"), "text")
    assert passed.error == "wamp.error.invalid_argument"
    await assert_invalid(failing("wamp.error.invalid_argument", "x: missing a required argument: 'name'"), "name")
    about = "expected wamp.error.invalid_argument about 'text', but "
    cases = [
        (
            failing("wamp.error.invalid_argument", "chat.send: room must match"),
            about + "its message does not name it: chat.send: room must match",
        ),
        (
            failing("wamp.error.invalid_argument", "chat.send: context is wrong"),
            about + "its message does not name it: chat.send: context is wrong",
        ),
        (
            failing("wamp.error.not_authorized", "no"),
            about + "it failed with wamp.error.not_authorized: no",
        ),
        (defer.succeed("ok"), about + "it succeeded with 'ok'"),
    ]
    for action, message in cases:
        with pytest.raises(AssertionError) as caught:
            await assert_invalid(action, "text")
        assert str(caught.value) == message


# -- the inbox ----------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_inbox_hands_out_events_in_order_and_waits_a_bounded_time() -> None:
    """Events come out in order (one argument as itself, else (args, kwargs)); an event that does not come
    raises NoEvent after the timeout, and not before."""
    clock = task.Clock()
    inbox = Inbox(clock)
    inbox("one")
    inbox(1, 2, key="v")
    assert await inbox.next() == "one"
    assert await inbox.next() == ((1, 2), {"key": "v"})
    waiting = defer.ensureDeferred(inbox.next(timeout=5))
    clock.advance(4.9)
    assert not waiting.called
    clock.advance(0.1)
    with pytest.raises(NoEvent, match=r"no event within 5 s \(2 received in all\)"):
        await waiting
    later = defer.ensureDeferred(inbox.next())
    inbox("three")
    assert await later == "three"


# -- the plugin's config path ---------------------------------------------------------------------------------


def test_the_option_is_relative_to_the_invocation_directory(pytester: pytest.Pytester) -> None:
    """--switchboard-config resolves against the directory pytest runs in, and wins over the ini key."""
    pytester.makeini("[pytest]\nswitchboard_config = from-ini.json\n")
    config = pytester.parseconfig("--switchboard-config", "sub/app.json")
    assert config_path(config) == (pytester.path / "sub" / "app.json").resolve()


def test_the_ini_key_is_relative_to_the_ini_file(pytester: pytest.Pytester) -> None:
    """switchboard_config resolves against the ini file's directory, wherever pytest runs."""
    (pytester.path / "project").mkdir()
    (pytester.path / "project" / "pytest.ini").write_text("[pytest]\nswitchboard_config = conf/app.json\n")
    config = pytester.parseconfig("-c", "project/pytest.ini")
    assert config_path(config) == (pytester.path / "project" / "conf" / "app.json").resolve()
    pytester.makeini("[pytest]\n")
    assert config_path(pytester.parseconfig()) is None
