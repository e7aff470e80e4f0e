"""Login throttling with an injected clock (no real time)."""

from __future__ import annotations

from twisted.internet.task import Clock

from router.auth.throttle import LoginThrottle, ThrottleLimits, peer_host


def throttle(clock: Clock, per_authid: int = 3, per_peer: int = 5, window: float = 60) -> LoginThrottle:
    return LoginThrottle(clock.seconds, ThrottleLimits(per_authid, per_peer, window))


def test_blocks_an_authid_after_n_failures_until_the_window_passes() -> None:
    """N failures within the window block the authid; once they age out, it may try again."""
    clock = Clock()
    t = throttle(clock)
    for _ in range(3):
        assert not t.blocked("demo", "alice", "10.0.0.1")
        t.failed("demo", "alice", "10.0.0.1")
        clock.advance(10)
    assert t.blocked("demo", "alice", "10.0.0.2")  # another address does not help
    clock.advance(30.5)  # the first failure is now older than 60 s
    assert not t.blocked("demo", "alice", "10.0.0.2")


def test_a_success_resets_the_authid_but_not_the_peer() -> None:
    """Success forgets the authid's failures; the peer's count is kept."""
    clock = Clock()
    t = throttle(clock, per_authid=2, per_peer=3)
    t.failed("demo", "alice", "10.0.0.1")
    t.failed("demo", "alice", "10.0.0.1")
    assert t.blocked("demo", "alice", None)
    t.succeeded("demo", "alice")
    assert not t.blocked("demo", "alice", None)
    t.failed("demo", "bob", "10.0.0.1")
    assert t.blocked("demo", "carol", "10.0.0.1")  # 3 failures from that address


def test_peer_limit_covers_many_authids() -> None:
    """Spraying many usernames from one address hits the per-peer limit."""
    clock = Clock()
    t = throttle(clock, per_authid=100, per_peer=5)
    for i in range(5):
        t.failed("demo", f"user{i}", "10.0.0.9")
    assert t.blocked("demo", "fresh_name", "10.0.0.9")
    assert not t.blocked("demo", "fresh_name", "10.0.0.10")


def test_realms_are_separate_and_memory_is_bounded() -> None:
    """The same authid in two realms counts separately; at most max_keys keys are remembered."""
    clock = Clock()
    t = LoginThrottle(clock.seconds, ThrottleLimits(1, 1000, 60), max_keys=10)
    t.failed("a", "alice", None)
    assert t.blocked("a", "alice", None)
    assert not t.blocked("b", "alice", None)
    for i in range(20):
        t.failed("a", f"x{i}", None)
    assert not t.blocked("a", "alice", None)  # evicted: the oldest entries go first


def test_peer_host_strips_the_port() -> None:
    """Crossbar peer strings become addresses; unknown forms are kept whole."""
    assert peer_host("tcp4:127.0.0.1:5678") == "127.0.0.1"
    assert peer_host("tcp6:::1:5678") == "::1"
    assert peer_host("unix") == "unix"
    assert peer_host(None) is None
