"""``switchboard user`` and ``switchboard key``: round trips, bad input, and effect on a running node."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from click.testing import CliRunner
from nacl.signing import SigningKey
from twisted.internet import threads

from router.cli import cli
from router.datadir import store_path
from router.store import AUTHID_PATTERN, UserStore
from router.testkit import JoinRefused, session, wait
from tests.conftest import DEMO_CONFIG
from tests.integration.cli import sb
from tests.integration.users import add_user

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"


def test_user_and_key_round_trip(tmp_path: Path) -> None:
    """add, list, set-role, passwd, disable, enable, key add/list/remove and remove all work and show no secret."""
    d = tmp_path / "data"
    pubkey = SigningKey.generate().verify_key.encode().hex()
    added = sb(d, "user", "add", "alice", "--role", "user", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added 'alice' to realm 'demo' as 'user' (methods: scram, ticket, wampcra)"
    assert sb(d, "user", "add", "bob", "--role", "user", "--no-password").returncode == 0
    assert (
        sb(d, "key", "add", "alice", pubkey, "--comment", "laptop").stdout.strip() == f"added key {pubkey} for 'alice'"
    )
    listing = sb(d, "user", "list").stdout.splitlines()
    assert listing[1].split() == ["demo", "alice", "user", "yes", "scram,ticket,wampcra", "1"]
    assert listing[2].split() == ["demo", "bob", "user", "yes", "-", "0"]
    assert sb(d, "key", "list", "alice").stdout.split() == ["alice", pubkey, "laptop"]
    assert sb(d, "user", "set-role", "alice", "anonymous").returncode == 0
    assert sb(d, "user", "disable", "alice").stdout.strip() == "'alice' disabled"
    assert sb(d, "user", "list").stdout.splitlines()[1].split()[2:4] == ["anonymous", "no"]
    assert sb(d, "user", "enable", "alice").returncode == 0
    assert sb(d, "user", "passwd", "alice", "--password-stdin", stdin="another good password\n").returncode == 0
    assert sb(d, "key", "remove", pubkey).stdout.strip() == f"removed key {pubkey} of 'alice'"
    assert sb(d, "key", "list").stdout.strip() == "no keys"
    assert sb(d, "user", "remove", "alice").returncode == 0
    assert sb(d, "user", "remove", "bob").returncode == 0
    assert sb(d, "user", "list").stdout.strip() == "no users"
    everything = (d / "users.sqlite3").read_bytes()
    assert PASSWORD.encode() not in everything
    assert b"another good password" not in everything


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ("user", "add", "x1", "--role", "nope", "--no-password"),
            None,
            "error: no role 'nope' in realm 'demo' (roles: anonymous, user, admin, backend)",
        ),
        (
            ("user", "add", "x1", "--role", "user", "--password-stdin"),
            "short\n",
            "error: password too short: at least 8 characters",
        ),
        (
            ("user", "add", "x1", "--role", "user"),
            "",
            "error: no password: pass --password-stdin, or run in a terminal to be prompted",
        ),
        (
            ("user", "add", "bad id", "--role", "user", "--no-password"),
            None,
            f"error: invalid authid 'bad id': must match {AUTHID_PATTERN.pattern}",
        ),
        (
            ("user", "add", "dup", "--role", "user", "--no-password"),
            None,
            "error: user 'dup' already exists in realm 'demo'",
        ),
        (
            ("user", "add", "x1", "--role", "trusted", "--no-password"),
            None,
            "error: 'trusted' is a role reserved by the router",
        ),
        (("user", "set-role", "dup", "trusted"), None, "error: 'trusted' is a role reserved by the router"),
        (("user", "remove", "ghost"), None, "error: no user 'ghost' in realm 'demo'"),
        (("user", "disable", "ghost"), None, "error: no user 'ghost' in realm 'demo'"),
        (
            ("user", "set-role", "dup", "nope"),
            None,
            "error: no role 'nope' in realm 'demo' (roles: anonymous, user, admin, backend)",
        ),
        (("user", "passwd", "ghost", "--password-stdin"), "long enough pw\n", "error: no user 'ghost' in realm 'demo'"),
        (("user", "list", "--realm", "elsewhere"), None, "error: no realm 'elsewhere' in the config (realms: demo)"),
        (("key", "add", "dup", "abcd"), None, "error: a public key is 64 hex characters (an Ed25519 verify key)"),
        (("key", "add", "dup", "zz" * 32), None, f"error: not an Ed25519 public key: {'zz' * 32!r}"),
        (("key", "add", "ghost", "ab" * 32), None, "error: no user 'ghost' in realm 'demo'"),
        (("key", "remove", "cd" * 32), None, f"error: no key {'cd' * 32} in realm 'demo'"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    """Every store command refuses bad input with exit code 2 and one line saying why, and stores nothing."""
    d = tmp_path / "data"
    assert sb(d, "user", "add", "dup", "--role", "user", "--no-password").returncode == 0
    before = sb(d, "user", "list").stdout
    result = sb(d, *args, stdin=stdin)
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert "Traceback" not in result.stderr
    assert sb(d, "user", "list").stdout == before


@pytest_twisted.ensureDeferred
async def test_disable_ends_open_sessions_at_once(reactor: Any, auth_node: Any) -> None:
    """`user disable` on the node's data directory closes the user's open session before the command
    returns, and the next login is refused."""
    d = auth_node.data_dir
    added = await threads.deferToThread(
        sb, d, "user", "add", "carol_cli", "--role", "user", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    async with session(reactor, auth_node.url, authmethod="ticket", authid="carol_cli", ticket=PASSWORD) as s:
        result = await threads.deferToThread(sb, d, "user", "disable", "carol_cli")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == ["'carol_cli' disabled", "closed 1 open session(s) of 'carol_cli'"]
        await wait(s.left, reactor, timeout=1.0)
        assert s.close_reason == "switchboard.close.credentials_revoked"
    with pytest.raises(JoinRefused):
        async with session(reactor, auth_node.url, authmethod="ticket", authid="carol_cli", ticket=PASSWORD):
            pass


@pytest_twisted.ensureDeferred
async def test_roles_changed_at_run_time_are_the_roles_the_cli_knows(reactor: Any, auth_node: Any) -> None:
    """A role created with switchboard.admin.role.set can be given with `user set-role` (and the user logs in
    with it); once removed with role.remove, `user add --role` refuses it like a role that never existed."""
    admin = add_user(auth_node, role="admin")
    alice = add_user(auth_node)
    role, dave = f"muted_{uuid.uuid4().hex[:8]}", f"dave_{uuid.uuid4().hex[:8]}"
    definition = {"allow": [{"uri": "sys.info", "actions": ["call"], "disclose": True}]}
    d = auth_node.data_dir
    async with session(reactor, auth_node.url, authmethod="ticket", authid=admin.authid, ticket=admin.password) as a:
        await a.call("switchboard.admin.role.set", role, definition)
        changed = await threads.deferToThread(sb, d, "user", "set-role", alice.authid, role)
        assert changed.returncode == 0, changed.stderr
        assert changed.stdout.splitlines()[0] == f"{alice.authid!r} now has role {role!r}"
        async with session(
            reactor, auth_node.url, authmethod="ticket", authid=alice.authid, ticket=alice.password
        ) as s:
            assert (await s.call("sys.info"))["authrole"] == role
        await a.call("switchboard.admin.role.remove", role)
    refused = await threads.deferToThread(sb, d, "user", "add", dave, "--role", role, "--no-password")
    assert refused.returncode == 2
    # The node is shared: other tests' run-time roles may follow the config's in the list.
    head, _, listed = refused.stderr.strip().partition(" (roles: ")
    assert head == f"error: no role {role!r} in realm 'demo'"
    assert listed.rstrip(")").split(", ")[:4] == ["anonymous", "user", "admin", "backend"]
    assert role not in listed


@pytest.mark.parametrize(
    "args",
    [("user", "add", "dave", "--role", "backend", "--no-password"), ("user", "set-role", "carol", "backend")],
)
def test_a_config_role_removed_at_run_time_is_refused(tmp_path: Path, args: tuple[str, ...]) -> None:
    """A role of the config file that the admin API removed (stored as removed) is refused by `user add` and
    `user set-role` with exit 2 and the same line as an unknown role, listing the roles that remain."""
    d = tmp_path / "data"
    runner = CliRunner()
    common = ("--config", str(DEMO_CONFIG), "--data-dir", str(d))
    assert runner.invoke(cli, ["user", "add", "carol", "--role", "user", "--no-password", *common]).exit_code == 0
    store = UserStore(store_path(d))
    try:
        store.set_role_definition("demo", "backend", None)
    finally:
        store.close()
    result = runner.invoke(cli, [*args, *common])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: no role 'backend' in realm 'demo' (roles: anonymous, user, admin)"
    listing = runner.invoke(cli, ["user", "list", *common]).stdout.splitlines()
    assert [line.split()[1:3] for line in listing[1:]] == [["carol", "user"]]
