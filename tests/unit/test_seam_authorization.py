"""The authorization override's cache is bounded and keyed by the match policy; patterns use the role's rules."""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any

from router.authz.static import compile_permissions
from router.config import Role, Rule
from router.seam.authorization import MAX_CACHED_URI, DecisionCache, _make_authorize, record_roles

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # crossbar's import chain warns about itself
    from crossbar.router.role import RouterRoleStaticAuth

ROLE = Role("user", (Rule("a.b", "exact", frozenset({"subscribe", "call"})),))


def fake_router(cache_size: int) -> Any:
    """Just what ``Router.authorize`` reads: the role objects and the cache attribute."""
    router = SimpleNamespace(_authorization_cache={}, _roles={})
    router._roles["user"] = RouterRoleStaticAuth(None, "user", permissions=compile_permissions(ROLE))
    record_roles(router, {"user": ROLE}, removed=set())
    router.authorize = _make_authorize(cache_size).__get__(router)
    return router


def decide(router: Any, uri: str, action: str, options: dict[str, Any] | None = None) -> bool:
    results: list[dict[str, Any]] = []
    session = SimpleNamespace(_realm="demo", _authrole="user")
    router.authorize(session, uri, action, options or {}).addCallback(results.append)
    return bool(results[0]["allow"])


def test_the_cache_keeps_at_most_its_size_least_recently_used_first() -> None:
    """Distinct URIs beyond the size evict the least recently used decisions."""
    cache = DecisionCache(3)
    for uri in ("u1", "u2", "u3"):
        cache.remember(("demo", "r", uri, "call", "exact"), {"allow": False})
    assert cache.lookup(("demo", "r", "u1", "call", "exact")) is not None  # u1 is now the most recent
    cache.remember(("demo", "r", "u4", "call", "exact"), {"allow": False})
    assert [key[2] for key in cache] == ["u3", "u1", "u4"]


def test_long_uris_are_never_cached() -> None:
    """A URI longer than MAX_CACHED_URI is decided but not kept (a 1 MB URI must not cost 1 MB per entry)."""
    cache = DecisionCache(10)
    cache.remember(("demo", "r", "x" * (MAX_CACHED_URI + 1), "call", "exact"), {"allow": False})
    assert len(cache) == 0


def test_many_distinct_uris_keep_the_router_cache_bounded() -> None:
    """10,000 denied calls to distinct URIs leave at most the configured number of cached decisions."""
    router = fake_router(cache_size=100)
    for i in range(10_000):
        assert not decide(router, f"x.{i}", "call")
    assert isinstance(router._authorization_cache, DecisionCache)
    assert len(router._authorization_cache) == 100


def test_a_cached_exact_decision_does_not_answer_for_a_pattern() -> None:
    """Allowed exact ``a.b`` is cached; the prefix pattern ``a.b`` is still refused (it reaches a.b.x, a.bc)."""
    router = fake_router(cache_size=100)
    assert decide(router, "a.b", "subscribe")
    assert not decide(router, "a.b", "subscribe", {"match": "prefix"})
    assert not decide(router, "a.", "subscribe", {"match": "wildcard"})


def test_a_role_without_rules_gets_no_pattern() -> None:
    """A role whose rules the router was never told (not installed by Switchboard) gets no pattern at all."""
    router = fake_router(cache_size=100)
    record_roles(router, {}, removed={"user"})
    assert not decide(router, "a.b.", "subscribe", {"match": "prefix"})
    assert decide(router, "a.b", "subscribe")
