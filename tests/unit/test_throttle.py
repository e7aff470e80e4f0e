"""Login throttling with an injected clock (no real time)."""

from __future__ import annotations

from twisted.internet.task import Clock

from router.auth.throttle import Admission, LoginThrottle, ThrottleLimits

OPEN = Admission(refused=False, delay=0.0)


def throttle(clock: Clock, **limits: float) -> LoginThrottle:
    defaults: dict[str, float] = {"per_authid": 3, "per_peer": 100, "window": 60, "delay_after": 100}
    return LoginThrottle(clock.seconds, ThrottleLimits(**{**defaults, **limits}))  # type: ignore[arg-type]


def fail(t: LoginThrottle, authid: str | None, peer: str | None, times: int = 1, realm: str = "demo") -> None:
    for _ in range(times):
        t.attempted(realm, authid, peer)


def test_an_authid_is_refused_only_from_the_address_that_failed() -> None:
    """3 failures for alice from one address refuse alice from there; from another address she gets in."""
    clock = Clock()
    t = throttle(clock)
    fail(t, "alice", "10.0.0.1", 3)
    assert t.admit("demo", "alice", "10.0.0.1").refused
    assert t.admit("demo", "alice", "10.0.0.2") == OPEN
    assert t.admit("demo", "bob", "10.0.0.1") == OPEN


def test_counts_drain_at_the_limit_per_window() -> None:
    """After 3 failures (limit 3 per 60 s) one more attempt is allowed every 20 s, and all after 60 s."""
    clock = Clock()
    t = throttle(clock)
    fail(t, "alice", "10.0.0.1", 3)
    clock.advance(19)
    assert t.admit("demo", "alice", "10.0.0.1").refused
    clock.advance(1.5)
    assert not t.admit("demo", "alice", "10.0.0.1").refused
    fail(t, "alice", "10.0.0.1")
    assert t.admit("demo", "alice", "10.0.0.1").refused
    clock.advance(60)
    assert t.admit("demo", "alice", "10.0.0.1") == OPEN
    assert t.held_keys() == []  # drained entries are gone, not just zero


def test_a_success_takes_its_attempt_back_and_clears_the_pair() -> None:
    """Two failures and a success leave alice (at that address) and the address with nothing counted
    but the address's two failures."""
    clock = Clock()
    t = throttle(clock, per_authid=3, per_peer=3)
    fail(t, "alice", "10.0.0.1", 3)  # the third is the attempt that then succeeds
    t.succeeded("demo", "alice", "10.0.0.1")
    assert not t.admit("demo", "alice", "10.0.0.1").refused
    fail(t, "bob", "10.0.0.1")
    assert t.admit("demo", "carol", "10.0.0.1").refused  # 2 + 1 failures from that address


def test_spraying_names_from_one_address_hits_the_per_peer_limit_there_only() -> None:
    """Many authids from one address hit per_peer at that address; other addresses are untouched."""
    clock = Clock()
    t = throttle(clock, per_authid=100, per_peer=5)
    for i in range(5):
        fail(t, f"user{i}", "10.0.0.9")
    assert t.admit("demo", "fresh_name", "10.0.0.9").refused
    assert t.admit("demo", "fresh_name", "10.0.0.10") == OPEN


def test_failures_from_many_addresses_delay_the_authid_but_never_refuse_it() -> None:
    """Past delay_after failures (from anywhere) each attempt waits, doubling from 0.25 s to max_delay."""
    clock = Clock()
    t = throttle(clock, delay_after=4, max_delay=2.0)
    delays = []
    for i in range(8):
        delays.append(t.admit("demo", "alice", "10.0.1.1").delay)
        fail(t, "alice", f"10.0.0.{i}")
    assert delays == [0, 0, 0, 0, 0.25, 0.5, 1.0, 2.0]
    fail(t, "alice", "10.0.0.99", 20)
    assert t.admit("demo", "alice", "10.0.1.1") == Admission(refused=False, delay=2.0)
    assert t.admit("demo", "bob", "10.0.1.1") == OPEN


def test_realms_are_separate() -> None:
    """The same authid in two realms counts separately."""
    clock = Clock()
    t = throttle(clock, per_authid=1)
    fail(t, "alice", "10.0.0.1", realm="a")
    assert t.admit("a", "alice", "10.0.0.1").refused
    assert not t.admit("b", "alice", "10.0.0.1").refused


def test_keys_are_16_byte_digests_whatever_the_authid_length() -> None:
    """200 failures with 1 MB authids keep 16-byte keys: the throttle holds 401 keys of 16 bytes."""
    clock = Clock()
    t = throttle(clock, per_authid=5)
    for i in range(200):
        fail(t, f"{i:06d}" + "x" * 1_000_000, "10.0.0.1")
    keys = t.held_keys()
    assert len(keys) == 200 + 200 + 1  # pairs, authids, the address
    assert {len(k) for k in keys} == {16}
    assert sum(len(k) for k in keys) == 401 * 16


def test_memory_is_bounded_by_max_entries() -> None:
    """100k distinct authids from 100k addresses keep at most max_entries keys per kind, 16 bytes each,
    and the least recently updated are forgotten first. (1 KB authids: the key size does not depend on
    the length, as the 1 MB test shows, and hashing 100k x 1 MB would take minutes.)"""
    clock = Clock()
    t = throttle(clock, per_authid=1, max_entries=1000)
    fail(t, "alice", "10.0.0.1")
    for i in range(100_000):
        t.attempted("demo", f"{i:08d}" + "y" * 1000, f"10.1.{i // 256 % 256}.{i % 256}")
        clock.advance(0.0001)
    keys = t.held_keys()
    assert len(keys) == 3 * 1000
    assert sum(len(k) for k in keys) == 3 * 1000 * 16
    assert not t.admit("demo", "alice", "10.0.0.1").refused  # forgotten: the oldest entries go first


def test_drained_entries_are_pruned_without_being_looked_at() -> None:
    """Entries nobody asks about again are removed once drained, as later updates happen."""
    clock = Clock()
    t = throttle(clock)
    for i in range(50):
        fail(t, f"user{i}", f"10.0.0.{i}")
    clock.advance(61)
    fail(t, "late", "10.0.9.9")
    assert len(t.held_keys()) == 3  # only the late attempt's pair, authid and address
