"""The store-backed authenticator's decisions, without a router (fake store, synchronous thread pool)."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.internet.task import Clock

from router.auth.service import THROTTLED, Authenticator
from router.auth.throttle import LoginThrottle, ThrottleLimits
from router.credentials import password_credentials
from router.seam.auth import DECOY, DERIVED
from router.store import User

CREDS = password_credentials("correct horse battery staple")


class FakeStore:
    """Counts credential look-ups so tests can tell whether a KDF could have run."""

    def __init__(self, enabled: bool = True, role: str = "user") -> None:
        self.lookups = 0
        self.user = User("demo", "alice", role, enabled)

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


class InlineReactor(Clock):
    """A task.Clock that also runs deferToThreadPool's callbacks at once."""

    def callFromThread(self, f: Any, *args: Any) -> None:
        f(*args)


SECRET = b"s" * 32


def authenticator(store: FakeStore, clock: InlineReactor, **limits: Any) -> Authenticator:
    defaults: dict[str, Any] = {"per_authid": 2, "per_peer": 100, "window": 60}
    throttle = LoginThrottle(clock.seconds, ThrottleLimits(**{**defaults, **limits}))
    return Authenticator(clock, store, throttle, InlinePool(), SECRET)  # type: ignore[arg-type]


PEER = {"transport": {"peer": "tcp4:10.0.0.1:4000"}}
TRANSPORT = PEER["transport"]


async def settled(d: Any, clock: Clock, step: float = 0.01, limit: float = 30.0) -> Any:
    """Advance ``clock`` until the Deferred ``d`` fires (bounded); return its result (or raise)."""
    waited = 0.0
    while not d.called and waited < limit:
        clock.advance(step)
        waited += step
    assert d.called, "still waiting after the clock advanced 30 s"
    return await d


@pytest_twisted.ensureDeferred
async def test_ticket_accepts_the_password_and_refuses_others() -> None:
    """A right ticket yields the user's authid and role; wrong, unknown and disabled all raise the same."""
    clock = InlineReactor()
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
async def test_throttled_tickets_never_reach_the_store_but_wait_like_a_verification() -> None:
    """Once throttled, a ticket login is refused before any look-up (so before any KDF), after waiting about
    as long as a real verification (measured on the clock), until the window passes."""
    clock = InlineReactor()
    store = FakeStore()
    auth = authenticator(store, clock)
    auth.throttle.attempted("demo", "alice", "10.0.0.1")
    auth.throttle.attempted("demo", "alice", "10.0.0.1")
    lookups = store.lookups
    started = clock.seconds()
    attempt = defer.ensureDeferred(auth.ticket("demo", "alice", {**PEER, "ticket": "correct horse battery staple"}))
    with pytest.raises(ApplicationError) as caught:
        await settled(attempt, clock, step=0.001)
    assert caught.value.args == (THROTTLED,)
    assert store.lookups == lookups
    waited = clock.seconds() - started
    assert any(abs(waited - sample) <= 0.002 for sample in auth.kdf_times), (waited, list(auth.kdf_times))
    clock.advance(61)
    assert (await auth.ticket("demo", "alice", {**PEER, "ticket": "correct horse battery staple"}))["authid"] == "alice"


@pytest_twisted.ensureDeferred
async def test_throttled_challenges_are_the_users_own_but_refused() -> None:
    """A throttled wampcra/scram attempt gets the user's real salt (nothing shows the throttle) marked as
    a decoy, so the adapter refuses whatever the client signs."""
    clock = InlineReactor()
    auth = authenticator(FakeStore(), clock)
    free = await auth.wampcra("demo", "alice", PEER)
    await auth.wampcra("demo", "alice", PEER)  # never answered: counts as a failure
    throttled = await auth.wampcra("demo", "alice", PEER)
    assert DECOY not in free
    assert throttled[DECOY] is True
    assert throttled["salt"] == free["salt"] == CREDS["wampcra"]["salt"]
    scram = await auth.scram("demo", "alice", PEER)
    assert (scram[DECOY], scram["salt"]) == (True, CREDS["scram"]["salt"])
    assert (await auth.wampcra("demo", "alice", {"transport": {"peer": "tcp4:10.0.0.2:1"}})).get(DECOY) is None


@pytest_twisted.ensureDeferred
async def test_challenge_requests_count_and_a_success_takes_its_own_back() -> None:
    """Each challenge counts toward the throttle; a success (the adapter's verdict) takes it back."""
    clock = InlineReactor()
    auth = authenticator(FakeStore(), clock)
    for _ in range(5):
        await auth.scram("demo", "alice", PEER)
        auth.verdict("demo", "alice", "scram", TRANSPORT, ok=True)
    assert not auth.throttle.admit("demo", "alice", "10.0.0.1").refused
    await auth.scram("demo", "alice", PEER)
    auth.verdict("demo", "alice", "scram", TRANSPORT, ok=False)
    await auth.scram("demo", "alice", PEER)
    assert auth.throttle.admit("demo", "alice", "10.0.0.1").refused


@pytest_twisted.ensureDeferred
async def test_decoys_are_the_same_for_the_same_authid_and_differ_between_authids() -> None:
    """Asking twice for an unknown user's WAMP-CRA or SCRAM parameters gives the same answer, as for a real
    user; two unknown users get different salts; all look like real ones (same keys, same parameters)."""
    clock = InlineReactor()
    auth = authenticator(FakeStore(), clock, per_authid=100)
    for method in (auth.wampcra, auth.scram):
        first, again, other = [await method("demo", authid, PEER) for authid in ("bob", "bob", "carol")]
        real = await method("demo", "alice", PEER)
        assert first == again
        assert first["salt"] != other["salt"]
        assert len(first["salt"]) == len(real["salt"])
        assert set(first) - {DECOY} == set(real)
        public = ("iterations", "keylen") if method == auth.wampcra else ("kdf", "iterations", "memory")
        assert [first[k] for k in public] == [real[k] for k in public]
    other_node = Authenticator(clock, FakeStore(), auth.throttle, InlinePool(), b"t" * 32)  # type: ignore[arg-type]
    assert (await other_node.wampcra("demo", "bob", PEER))["salt"] != (await auth.wampcra("demo", "bob", PEER))["salt"]


@pytest.mark.parametrize(
    "authid",
    ["alice\n", "x" * 1_000_000, "", "-alice", "al ice"],
    ids=["trailing-newline", "1MB", "empty", "leading-dash", "space"],
)
@pytest_twisted.ensureDeferred
async def test_impossible_authids_are_refused_without_the_store_or_a_throttle_key(authid: str) -> None:
    """An authid the store could never hold is refused (ticket) or gets a decoy (challenge methods) without
    a store look-up; only its address is counted, under one 16-byte key."""
    clock = InlineReactor()
    store = FakeStore()
    auth = authenticator(store, clock)
    attempt = defer.ensureDeferred(auth.ticket("demo", authid, {**PEER, "ticket": "correct horse battery staple"}))
    with pytest.raises(ApplicationError):
        await settled(attempt, clock)
    assert (await auth.wampcra("demo", authid, PEER))[DECOY] is True
    assert (await auth.scram("demo", authid, PEER))[DECOY] is True
    assert (await auth.cryptosign("demo", authid, {**PEER, "authextra": {"pubkey": "11" * 32}}))[DECOY] is True
    assert store.lookups == 0
    assert [len(k) for k in auth.throttle.held_keys()] == [16]  # the address's count, nothing keyed by the authid


def test_failed_logins_are_logged_escaped_and_truncated() -> None:
    """A failure logs an event line with realm, method, client address and at most 64 characters of the
    authid, JSON-escaped (router.events)."""
    from twisted.logger import globalLogPublisher

    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        auth = authenticator(FakeStore(), InlineReactor())
        auth.verdict("demo", "evil\nname" + "z" * 1000, "wampcra", TRANSPORT, ok=False)
    finally:
        globalLogPublisher.removeObserver(events.append)
    (event,) = [e for e in events if e.get("log_namespace") == "switchboard.events"]
    assert event["log_level"].name == "info"
    assert event["event_line"] == (
        'event=login_failed realm=demo authid="evil\\nname' + "z" * 55 + '..." method=wampcra peer=10.0.0.1'
    )


def test_the_client_address_comes_from_a_trusted_proxy_only() -> None:
    """X-Forwarded-For names the client only when the connection comes from a trusted proxy."""
    from router.peers import networks

    clock = InlineReactor()
    throttle = LoginThrottle(clock.seconds, ThrottleLimits())
    auth = Authenticator(clock, FakeStore(), throttle, InlinePool(), SECRET, networks(["127.0.0.1"]))  # type: ignore[arg-type]
    headers = {"x-forwarded-for": "203.0.113.7"}
    assert auth.address({"peer": "tcp4:127.0.0.1:5000", "http_headers_received": headers}) == "203.0.113.7"
    assert auth.address({"peer": "tcp4:10.9.9.9:5000", "http_headers_received": headers}) == "10.9.9.9"


@pytest_twisted.ensureDeferred
async def test_challenge_methods_give_decoys_for_unknown_or_disabled_users() -> None:
    """wampcra/scram/cryptosign return a decoy principal (random keys) instead of revealing absence."""
    clock = InlineReactor()
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
    clock = InlineReactor()
    auth = authenticator(FakeStore(), clock)
    extra = {**PEER, "authextra": {"pubkey": "11" * 32}}
    assert await auth.cryptosign("demo", None, extra) == {"authid": "alice", "role": "user", "pubkey": "11" * 32}
    assert (await auth.cryptosign("demo", "mallory", extra))[DECOY] is True


@pytest_twisted.ensureDeferred
async def test_a_stored_user_with_a_reserved_role_cannot_log_in() -> None:
    """A user stored with role ``trusted`` (possible before such roles were refused) gets no session at all:
    the right ticket is refused, and challenge methods get a decoy that no answer satisfies."""
    clock = InlineReactor()
    store = FakeStore(role="trusted")
    with pytest.raises(ApplicationError) as caught:
        await authenticator(store, clock).ticket("demo", "alice", {**PEER, "ticket": "correct horse battery staple"})
    assert caught.value.error == "wamp.error.not_authorized"
    principal = await authenticator(store, clock).wampcra("demo", "alice", {**PEER})
    assert principal[DECOY] is True
    assert principal["role"] != "trusted"
