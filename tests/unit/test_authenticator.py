"""The store-backed authenticator's decisions, without a router (fake store, synchronous thread pool)."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet.task import Clock

from router.auth.service import THROTTLED, Authenticator
from router.auth.throttle import LoginThrottle, ThrottleLimits
from router.credentials import password_credentials
from router.crossbar_adapter import DECOY, DERIVED
from router.store import User

CREDS = password_credentials("correct horse battery staple")


class FakeStore:
    """Counts credential look-ups so tests can tell whether a KDF could have run."""

    def __init__(self, enabled: bool = True) -> None:
        self.lookups = 0
        self.user = User("demo", "alice", "user", enabled)

    def credential(self, realm: str, authid: str, method: str) -> tuple[User, dict[str, Any]] | None:
        self.lookups += 1
        return (self.user, CREDS[method]) if authid == "alice" else None

    def key_owner(self, realm: str, pubkey: str) -> User | None:
        self.lookups += 1
        return self.user if pubkey == "11" * 32 else None


class InlinePool:
    """deferToThreadPool's pool interface, running the work at once on the calling thread."""

    def callInThreadWithCallback(self, onResult: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        try:
            result = f(*args, **kwargs)
        except Exception as e:
            onResult(False, e)
        else:
            onResult(True, result)


class InlineReactor:
    """The one reactor method deferToThreadPool uses, run at once."""

    def callFromThread(self, f: Any, *args: Any) -> None:
        f(*args)


def authenticator(store: FakeStore, clock: Clock) -> Authenticator:
    throttle = LoginThrottle(clock.seconds, ThrottleLimits(per_authid=2, per_peer=100, window=60))
    return Authenticator(InlineReactor(), store, throttle, InlinePool())  # type: ignore[arg-type]


PEER = {"transport": {"peer": "tcp4:10.0.0.1:4000"}}


@pytest_twisted.ensureDeferred
async def test_ticket_accepts_the_password_and_refuses_others() -> None:
    """A right ticket yields the user's authid and role; wrong, unknown and disabled all raise the same."""
    clock = Clock()
    auth = authenticator(FakeStore(), clock)
    assert await auth.ticket("demo", "alice", {**PEER, "ticket": "correct horse battery staple"}) == {
        "authid": "alice",
        "role": "user",
    }
    refusals = []
    for authid, ticket, store in [
        ("alice", "nope", FakeStore()),
        ("bob", "x", FakeStore()),
        ("alice", "correct horse battery staple", FakeStore(enabled=False)),
    ]:
        with pytest.raises(ApplicationError) as caught:
            await authenticator(store, clock).ticket("demo", authid, {**PEER, "ticket": ticket})
        refusals.append((caught.value.error, caught.value.args))
    assert refusals == [("wamp.error.not_authorized", ("authentication failed",))] * 3


@pytest_twisted.ensureDeferred
async def test_throttled_attempts_never_reach_the_store() -> None:
    """Once throttled, a login is refused before any look-up (so before any KDF), until the window passes."""
    clock = Clock()
    store = FakeStore()
    auth = authenticator(store, clock)
    auth.verdict("demo", "alice", "tcp4:10.0.0.1:4000", ok=False)
    auth.verdict("demo", "alice", "tcp4:10.0.0.1:4000", ok=False)
    for method in (auth.ticket, auth.wampcra, auth.scram):
        with pytest.raises(ApplicationError) as caught:
            await method("demo", "alice", {**PEER, "ticket": "correct horse battery staple"})
        assert caught.value.args == (THROTTLED,)
    assert store.lookups == 0
    clock.advance(61)
    assert (await auth.ticket("demo", "alice", {**PEER, "ticket": "correct horse battery staple"}))["authid"] == "alice"


@pytest_twisted.ensureDeferred
async def test_challenge_methods_give_decoys_for_unknown_or_disabled_users() -> None:
    """wampcra/scram/cryptosign return a decoy principal (random keys) instead of revealing absence."""
    clock = Clock()
    real = await authenticator(FakeStore(), clock).wampcra("demo", "alice", PEER)
    assert real["secret"] == CREDS["wampcra"]["key"]
    assert real[DERIVED] is True
    assert DECOY not in real
    for store, authid in [(FakeStore(), "bob"), (FakeStore(enabled=False), "alice")]:
        auth = authenticator(store, clock)
        assert (await auth.wampcra("demo", authid, PEER))[DECOY] is True
        assert (await auth.scram("demo", authid, PEER))[DECOY] is True
        decoy = await auth.cryptosign("demo", authid, {**PEER, "authextra": {"pubkey": "22" * 32}})
        assert decoy[DECOY] is True
        assert decoy["pubkey"] != "22" * 32


@pytest_twisted.ensureDeferred
async def test_cryptosign_finds_the_owner_and_checks_a_given_authid() -> None:
    """The key's owner is the authid; a different authid with that key gets a decoy."""
    clock = Clock()
    auth = authenticator(FakeStore(), clock)
    extra = {**PEER, "authextra": {"pubkey": "11" * 32}}
    assert await auth.cryptosign("demo", None, extra) == {"authid": "alice", "role": "user", "pubkey": "11" * 32}
    assert (await auth.cryptosign("demo", "mallory", extra))[DECOY] is True
