"""Authentication hardening on a real node (issue 9, findings 4 and 9): what challenges reveal, what the
throttle counts, whom it refuses, and how long its refusals take.

The node trusts 127.0.0.1 as a reverse proxy, so each test can speak from its own client addresses by
sending ``X-Forwarded-For`` (autobahn's ``WampWebSocketClientFactory(headers=...)``).
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
import pytest_twisted
from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.auth import create_authenticator
from autobahn.wamp.serializer import JsonSerializer
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint

from router.config import load_config
from router.launch import RunningNode, launch, with_port
from tests.conftest import demo_document, running, write_config
from tests.integration.users import add_user, credentials

pytestmark = pytest.mark.integration

TIMEOUT = 15.0
_addresses = itertools.count(1)


def fresh_address() -> str:
    """A client address no other test uses (TEST-NET-2), so per-address counts start at zero."""
    n = next(_addresses)
    return f"198.51.{n // 250}.{n % 250 + 1}"


class NodeLines:
    """The node's output lines as they arrive; :meth:`first` awaits the first one a predicate accepts."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._waiting: list[tuple[Callable[[str], bool], defer.Deferred[str]]] = []

    def feed(self, line: str) -> None:
        self.lines.append(line)
        for entry in [w for w in self._waiting if w[0](line)]:
            self._waiting.remove(entry)
            entry[1].callback(line)

    def first(self, accept: Callable[[str], bool]) -> defer.Deferred[str]:
        for line in self.lines:
            if accept(line):
                return defer.succeed(line)
        d: defer.Deferred[str] = defer.Deferred()
        self._waiting.append((accept, d))
        return d


node_lines = NodeLines()


@pytest.fixture(scope="module")
def proxied_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """The demo config with scram, 127.0.0.1 as a trusted proxy, 3 failures per authid and address within
    10 minutes, no per-authid delay in reach, logging at info (login failures are logged at info)."""
    doc = demo_document()
    doc["listen"][0]["auth"]["scram"] = {}
    doc["throttle"] = {"per_authid": 3, "per_peer": 10000, "window": 600, "delay_after": 1000}
    doc["trusted_proxies"] = ["127.0.0.1"]
    tmp = tmp_path_factory.mktemp("proxied-node")
    config = with_port(load_config(write_config(tmp, doc)), 0)
    with running(launch(reactor, config, tmp / "data", loglevel="info", on_line=node_lines.feed)) as node:
        yield node


class Outcome:
    """What became of one login attempt."""

    def __init__(self) -> None:
        self.challenge: dict[str, Any] | None = None
        self.joined: Any = None
        self.refused: tuple[str, str | None] | None = None
        #: Seconds from sending AUTHENTICATE to the router's answer (WELCOME or ABORT).
        self.answer_time: float | None = None


class _Probe(ApplicationSession):
    """Logs in with ``method``; with no ``secret`` it stops at the challenge and hangs up."""

    def __init__(
        self, reactor: Any, method: str, authid: str | None, secret: dict[str, str] | None, done: defer.Deferred[Any]
    ) -> None:
        super().__init__(ComponentConfig(realm="demo"))
        self._reactor = reactor
        self._method = method
        self._authid = authid
        self._done = done
        self.outcome = Outcome()
        if method == "scram":  # needs its nonce in HELLO even when it never answers
            secret = secret or {"password": "unused-password", "kdf": "argon2id13"}
        self._answer = secret is not None
        self._client = None
        if secret is not None:
            extra = {} if method == "ticket" else {"authid": authid}
            self._client = create_authenticator(method, **extra, **secret)
        self._sent_at = 0.0

    def onConnect(self) -> None:
        authextra = self._client.authextra if self._client is not None else None
        self.join("demo", authmethods=[self._method], authid=self._authid, authextra=authextra)

    def onChallenge(self, challenge: Any) -> Any:
        self.outcome.challenge = dict(challenge.extra)
        if not self._answer:
            self._finish()
            self.transport.close()  # type: ignore[union-attr]
            return defer.Deferred()  # never answered
        assert self._client is not None
        signature = self._client.on_challenge(self, challenge)
        self._sent_at = self._reactor.seconds()
        return signature

    def onJoin(self, details: Any) -> None:
        self.outcome.answer_time = self._reactor.seconds() - self._sent_at
        self.outcome.joined = details
        self._finish()
        self.leave()

    def onLeave(self, details: Any) -> None:
        if self.outcome.joined is None and self.outcome.refused is None:
            self.outcome.answer_time = self._reactor.seconds() - self._sent_at
            self.outcome.refused = (details.reason, details.message)
        self._finish()
        super().onLeave(details)

    def onDisconnect(self) -> None:
        self._finish()

    def _finish(self) -> None:
        if not self._done.called:
            self._done.callback(self.outcome)


async def attempt(
    reactor: Any,
    node: RunningNode,
    method: str,
    authid: str | None,
    address: str,
    secret: dict[str, str] | None = None,
) -> Outcome:
    """One login attempt from client ``address`` (named by the trusted proxy header)."""
    done: defer.Deferred[Any] = defer.Deferred()
    factory: Any = WampWebSocketClientFactory(
        lambda: _Probe(reactor, method, authid, secret, done),
        url=node.url,
        serializers=[JsonSerializer()],
        headers={"X-Forwarded-For": address},
    )
    parsed = urlparse(node.url)
    endpoint = TCP4ClientEndpoint(reactor, parsed.hostname or "127.0.0.1", parsed.port or 80)
    proto = await endpoint.connect(factory).addTimeout(TIMEOUT, reactor)
    try:
        return await done.addTimeout(TIMEOUT, reactor)  # type: ignore[no-any-return]
    finally:
        proto.transport.loseConnection()


FAILED = ("wamp.error.not_authorized", "authentication failed")


@pytest_twisted.ensureDeferred
async def test_wampcra_challenges_look_the_same_for_real_and_unknown_users(
    reactor: Any, proxied_node: RunningNode
) -> None:
    """The WAMP-CRA challenge of a real user and of an unknown one have the same keys, the same challenge
    fields and the same (absent) role: nothing tells them apart."""
    user = add_user(proxied_node)
    address = fresh_address()
    real = await attempt(reactor, proxied_node, "wampcra", user.authid, address)
    unknown = await attempt(reactor, proxied_node, "wampcra", "nobody_" + user.authid, address)
    assert real.challenge is not None
    assert unknown.challenge is not None
    assert set(real.challenge) == set(unknown.challenge) == {"challenge", "salt", "iterations", "keylen"}
    real_fields, unknown_fields = json.loads(real.challenge["challenge"]), json.loads(unknown.challenge["challenge"])
    assert set(real_fields) == set(unknown_fields)
    assert real_fields["authrole"] == unknown_fields["authrole"] is None
    assert (real.challenge["iterations"], real.challenge["keylen"]) == (
        unknown.challenge["iterations"],
        unknown.challenge["keylen"],
    )
    assert len(real.challenge["salt"]) == len(unknown.challenge["salt"])


@pytest.mark.parametrize("method", ["wampcra", "scram"])
@pytest_twisted.ensureDeferred
async def test_an_unknown_users_salt_is_the_same_every_time(
    reactor: Any, proxied_node: RunningNode, method: str
) -> None:
    """Asking twice (from two addresses) for an unknown user's salt gives the same salt, as for a real
    user; another unknown user gets another salt."""
    name = f"ghost_{next(_addresses)}"
    first = await attempt(reactor, proxied_node, method, name, fresh_address())
    again = await attempt(reactor, proxied_node, method, name, fresh_address())
    other = await attempt(reactor, proxied_node, method, name + "x", fresh_address())
    assert first.challenge is not None
    assert again.challenge is not None
    assert other.challenge is not None
    assert first.challenge["salt"] == again.challenge["salt"]
    assert other.challenge["salt"] != first.challenge["salt"]


@pytest.mark.parametrize("method", ["wampcra", "scram"])
@pytest_twisted.ensureDeferred
async def test_challenge_requests_count_toward_the_throttle(
    reactor: Any, proxied_node: RunningNode, method: str
) -> None:
    """Three challenges never answered from one address use up that address's tries for the user: the
    right password is then refused there (uniform ABORT), and still accepted from another address."""
    user = add_user(proxied_node)
    attacker = fresh_address()
    for _ in range(3):
        asked = await attempt(reactor, proxied_node, method, user.authid, attacker)
        assert asked.challenge is not None
    right = credentials(method, user)
    throttled = await attempt(reactor, proxied_node, method, user.authid, attacker, right)
    assert throttled.refused == FAILED
    elsewhere = await attempt(reactor, proxied_node, method, user.authid, fresh_address(), right)
    assert elsewhere.joined is not None
    assert elsewhere.joined.authid == user.authid


@pytest.mark.parametrize("method", ["ticket", "wampcra"])
@pytest_twisted.ensureDeferred
async def test_an_attacker_cannot_lock_a_victim_out_from_everywhere(
    reactor: Any, proxied_node: RunningNode, method: str
) -> None:
    """After an attacker's wrong passwords from one address, the victim is refused there but logs in from
    her own address."""
    victim = add_user(proxied_node)
    attacker = fresh_address()
    for _ in range(5):
        wrong = await attempt(
            reactor, proxied_node, method, victim.authid, attacker, credentials(method, victim, "wrong-password")
        )
        assert wrong.refused == FAILED
    right = credentials(method, victim)
    assert (await attempt(reactor, proxied_node, method, victim.authid, attacker, right)).refused == FAILED
    home = await attempt(reactor, proxied_node, method, victim.authid, fresh_address(), right)
    assert home.joined is not None
    assert home.joined.authid == victim.authid


@pytest_twisted.ensureDeferred
async def test_throttled_refusals_take_as_long_as_real_ones(reactor: Any, proxied_node: RunningNode) -> None:
    """A throttled ticket refusal waits about as long as a real (argon2id) verification: the medians of the
    time to the ABORT are within a factor of two (bare, throttled refusals took 0.5 ms against 40-90 ms)."""
    user = add_user(proxied_node)
    wrong = credentials("ticket", user, "wrong-password")
    attacker = fresh_address()
    real_times, throttled_times = [], []
    for i in range(9):
        # Real verifications: an unknown user each time (an argon2id check all the same), fresh pairs.
        real = await attempt(reactor, proxied_node, "ticket", f"ghost_t{i}_{user.authid}", attacker, wrong)
        assert real.refused == FAILED
        assert real.answer_time is not None
        real_times.append(real.answer_time)
    for _ in range(3):
        await attempt(reactor, proxied_node, "ticket", user.authid, attacker, wrong)
    for _ in range(9):
        throttled = await attempt(reactor, proxied_node, "ticket", user.authid, attacker, wrong)
        assert throttled.refused == FAILED
        assert throttled.answer_time is not None
        throttled_times.append(throttled.answer_time)
    real_median, throttled_median = statistics.median(real_times), statistics.median(throttled_times)
    assert 0.5 * real_median <= throttled_median <= 2.0 * real_median + 0.02, (real_times, throttled_times)


@pytest_twisted.ensureDeferred
async def test_failures_are_logged_with_the_client_address_and_a_cut_escaped_authid(
    reactor: Any, proxied_node: RunningNode
) -> None:
    """A failed login is logged at info with realm, method, the address the trusted proxy names and at most
    64 escaped characters of the authid; a 100 KB authid is refused uniformly."""
    address = fresh_address()
    long_authid = "intruder\u0007" + "z" * 100_000
    refused = await attempt(reactor, proxied_node, "ticket", long_authid, address, {"ticket": "wrong-password"})
    assert refused.refused == FAILED
    failed = "event=login_failed"
    line = await node_lines.first(lambda text: failed in text and address in text).addTimeout(TIMEOUT, reactor)
    assert "realm=demo" in line
    assert "method=ticket" in line
    assert 'authid="intruder\\u0007' + "z" * 55 + '..."' in line
    assert "z" * 56 not in line
    assert sum(1 for text in node_lines.lines if failed in text and address in text) == 1
