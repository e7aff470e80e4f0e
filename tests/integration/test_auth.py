"""Authentication against the user store on a real node, with autobahn-python clients."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError

from components import uris
from router.store import UserStore
from router.testkit import JoinRefused, session, wait
from tests.integration.users import add_user, credentials

pytestmark = pytest.mark.integration

METHODS = ["ticket", "wampcra", "cryptosign", "scram"]
FAILED = ("wamp.error.not_authorized", "authentication failed")


def store_of(node: Any) -> UserStore:
    return UserStore(node.store_path)


async def refusal(reactor: Any, node: Any, method: str, authid: str | None, **creds: Any) -> tuple[str, str | None]:
    """Try to log in; return the ABORT reason and message (fail if the login succeeds)."""
    with pytest.raises(JoinRefused) as refused:
        async with session(reactor, node.url, authmethod=method, authid=authid, **creds):
            pass
    return refused.value.reason, refused.value.message


@pytest.mark.parametrize("method", METHODS)
@pytest_twisted.ensureDeferred
async def test_login_with_each_method(reactor: Any, auth_node: Any, method: str) -> None:
    """A store user logs in with each method and gets its authid, role and method; chat.send records it."""
    user = add_user(auth_node)
    async with session(reactor, auth_node.url, authmethod=method, authid=user.authid, **credentials(method, user)) as s:
        assert (s.details.authid, s.details.authrole, s.details.authmethod) == (user.authid, "user", method)
        assert (await s.call(uris.SYS_INFO))["authid"] == user.authid
        message = await s.call(uris.CHAT_SEND, "auth_tests", "signed")
        assert message["author"] == user.authid


@pytest_twisted.ensureDeferred
async def test_cryptosign_finds_the_authid_by_key(reactor: Any, auth_node: Any) -> None:
    """With cryptosign the authid may be omitted: the router finds the user by its public key."""
    user = add_user(auth_node)
    async with session(reactor, auth_node.url, authmethod="cryptosign", privkey=user.privkey) as s:
        assert (s.details.authid, s.details.authrole) == (user.authid, "user")


@pytest.mark.parametrize("method", METHODS)
@pytest_twisted.ensureDeferred
async def test_failures_look_the_same(reactor: Any, auth_node: Any, method: str) -> None:
    """Wrong secret, unknown user and disabled user get the identical ABORT: nothing reveals who exists."""
    wrong = add_user(auth_node)
    disabled = add_user(auth_node)
    store = store_of(auth_node)
    store.set_enabled("demo", disabled.authid, False)
    store.close()
    bad = credentials(method, wrong, password="not-the-password")
    assert await refusal(reactor, auth_node, method, wrong.authid, **bad) == FAILED
    assert await refusal(reactor, auth_node, method, "nobody_" + wrong.authid, **credentials(method, wrong)) == FAILED
    assert await refusal(reactor, auth_node, method, disabled.authid, **credentials(method, disabled)) == FAILED


@pytest.mark.parametrize("method", ["ticket", "wampcra"])
@pytest_twisted.ensureDeferred
async def test_throttle_refuses_even_the_right_secret(reactor: Any, auth_node: Any, method: str) -> None:
    """After 3 failures for one authid the right secret is refused too (same ABORT), while another user
    from the same address still logs in."""
    user = add_user(auth_node)
    for _ in range(3):
        wrong = credentials(method, user, password="wrong-password")
        assert await refusal(reactor, auth_node, method, user.authid, **wrong) == FAILED
    assert await refusal(reactor, auth_node, method, user.authid, **credentials(method, user)) == FAILED
    other = add_user(auth_node)
    async with session(
        reactor, auth_node.url, authmethod=method, authid=other.authid, **credentials(method, other)
    ) as s:
        assert s.details.authid == other.authid


@pytest_twisted.ensureDeferred
async def test_a_success_resets_the_failure_count(reactor: Any, auth_node: Any) -> None:
    """Two failures, a success, then two more failures: still not locked out (the success reset the count)."""
    user = add_user(auth_node)
    wrong = credentials("ticket", user, password="wrong-password")
    right = credentials("ticket", user)
    for _ in range(2):
        await refusal(reactor, auth_node, "ticket", user.authid, **wrong)
    async with session(reactor, auth_node.url, authmethod="ticket", authid=user.authid, **right):
        pass
    for _ in range(2):
        await refusal(reactor, auth_node, "ticket", user.authid, **wrong)
    async with session(reactor, auth_node.url, authmethod="ticket", authid=user.authid, **right) as s:
        assert s.details.authid == user.authid


@pytest_twisted.ensureDeferred
async def test_store_changes_apply_to_the_next_login(reactor: Any, auth_node: Any) -> None:
    """Role change, new password and key removal made in the store are honoured by the very next login."""
    user = add_user(auth_node)
    store = store_of(auth_node)
    store.set_role("demo", user.authid, "anonymous")
    async with session(reactor, auth_node.url, authmethod="ticket", authid=user.authid, ticket=user.password) as s:
        assert s.details.authrole == "anonymous"
    from router.credentials import password_credentials

    store.set_credentials("demo", user.authid, password_credentials("a-brand-new-password"))
    assert await refusal(reactor, auth_node, "wampcra", user.authid, secret=user.password) == FAILED
    async with session(reactor, auth_node.url, authmethod="wampcra", authid=user.authid, secret="a-brand-new-password"):
        pass
    store.remove_key("demo", user.pubkey)
    store.close()
    assert await refusal(reactor, auth_node, "cryptosign", user.authid, privkey=user.privkey) == FAILED


@pytest_twisted.ensureDeferred
async def test_denied_actions_still_apply_to_authenticated_users(reactor: Any, auth_node: Any) -> None:
    """A logged-in user has its role's permissions, no more: registering is not_authorized."""
    user = add_user(auth_node)
    async with session(reactor, auth_node.url, authmethod="ticket", authid=user.authid, ticket=user.password) as s:
        with pytest.raises(ApplicationError) as caught:
            await s.register(lambda: None, "chat.mine")
    assert caught.value.error == uris.NOT_AUTHORIZED


@pytest_twisted.ensureDeferred
async def test_the_database_holds_no_password(reactor: Any, auth_node: Any) -> None:
    """The raw bytes of the store (database and WAL) contain neither the password nor the ticket."""
    user = add_user(auth_node)
    async with session(reactor, auth_node.url, authmethod="ticket", authid=user.authid, ticket=user.password):
        pass
    files = [auth_node.store_path, auth_node.store_path.with_name(auth_node.store_path.name + "-wal")]
    raw = b"".join(f.read_bytes() for f in files if f.exists())
    assert user.authid.encode() in raw  # the user is there...
    assert user.password.encode() not in raw  # ...its password is not
    assert user.password.encode("utf-16-le") not in raw
    log = (auth_node.data_dir / "node.log").read_bytes()
    assert user.password.encode() not in log


@pytest_twisted.ensureDeferred
async def test_removing_a_user_closes_its_session(reactor: Any, auth_node: Any) -> None:
    """Removing a user through the store and the control socket ends its open session."""
    from router.control import kill_user_sessions
    from router.uris import CREDENTIALS_REVOKED

    user = add_user(auth_node)
    async with session(reactor, auth_node.url, authmethod="ticket", authid=user.authid, ticket=user.password) as s:
        store = store_of(auth_node)
        store.remove_user("demo", user.authid)
        store.close()
        killed = await kill_user_sessions(reactor, auth_node.data_dir, "demo", user.authid, "user removed")
        assert killed == [s.details.session]
        await wait(s.left, reactor, timeout=5)
        assert s.close_reason == CREDENTIALS_REVOKED


@pytest_twisted.ensureDeferred
async def test_inherited_role_with_a_deny_rule(reactor: Any, auth_node: Any) -> None:
    """A `muted` user (inherits `user`, denies calling chat.send) reads rooms but cannot post."""
    user = add_user(auth_node, role="muted")
    async with session(reactor, auth_node.url, authmethod="ticket", authid=user.authid, ticket=user.password) as s:
        assert s.details.authrole == "muted"
        assert (await s.call(uris.SYS_INFO))["authrole"] == "muted"
        assert await s.call(uris.CHAT_HISTORY, "muted_room") == []
        with pytest.raises(ApplicationError) as caught:
            await s.call(uris.CHAT_SEND, "muted_room", "let me speak")
        assert caught.value.error == uris.NOT_AUTHORIZED
        subscription = await s.subscribe(lambda *a: None, uris.room_topic("muted_room"))
        assert subscription.active
