"""Pattern subscriptions and registrations are allowed only when every URI they can match is allowed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from router.authz.rules import decide, pattern_allowed
from router.config import Rule


def rule(uri: str, match: str = "exact", actions: tuple[str, ...] = ("subscribe",)) -> Rule:
    return Rule(uri, match, frozenset(actions))  # type: ignore[arg-type]


# (allow rules, deny rules, pattern, match, expected): written by hand from Crossbar's matching, where a
# prefix pattern is a raw string prefix and a wildcard pattern has a fixed number of components.
CASES = [
    # The findings: a pattern must not reach beyond what the role allows.
    ([rule("a.b")], [], "a.b", "prefix", False),  # would receive a.b.secret and a.bc
    ([rule("a.room", "prefix")], [], "a.room", "prefix", False),  # would receive a.roomy
    ([rule("a.room", "prefix")], [], "a.room.", "prefix", True),  # exactly what the rule covers below it
    ([rule("a.room", "prefix")], [], "a.room.x", "prefix", True),
    ([rule("a.room", "prefix")], [], "a.roo", "prefix", False),
    ([rule("a.svc")], [], "a.svc", "prefix", False),  # would answer calls to a.svc.admin.reset
    ([rule("a.svc", "prefix")], [], "a.svc.", "prefix", True),
    # The action must be the one asked for.
    ([rule("a.room", "prefix", ("call",))], [], "a.room.", "prefix", False),
    # Wildcard patterns.
    ([rule("a.b")], [], "a..b", "wildcard", False),
    ([rule("a..c", "wildcard")], [], "a..c", "wildcard", True),
    ([rule("a..c", "wildcard")], [], "a.b.c", "wildcard", True),
    ([rule("a..c", "wildcard")], [], "a...c", "wildcard", False),
    ([rule("a..", "wildcard")], [], "a..c", "wildcard", True),
    ([rule("a..c", "wildcard")], [], "a..", "wildcard", False),
    ([rule("a", "prefix")], [], "a..c", "wildcard", True),
    ([rule("a.b", "prefix")], [], "a..c", "wildcard", False),
    ([rule("a.b.c")], [], "a.b.c", "wildcard", True),
    # Deny rules anywhere in what the pattern reaches refuse it.
    ([rule("a", "prefix")], [rule("a.x.secret")], "a.", "prefix", False),
    ([rule("a", "prefix")], [rule("a.x", "prefix")], "a.x.", "prefix", False),
    ([rule("a", "prefix")], [rule("a.x", "prefix")], "a.y.", "prefix", True),
    ([rule("a", "prefix")], [rule("a..secret", "wildcard")], "a.", "prefix", False),
    ([rule("a", "prefix")], [rule("a..secret", "wildcard")], "a.b.c.", "prefix", True),
    ([rule("a", "prefix")], [rule("a.x.secret")], "a..secret", "wildcard", False),
    ([rule("a", "prefix")], [rule("a.x.secret")], "a..public", "wildcard", True),
    ([rule("a", "prefix")], [rule("a.b", "prefix", ("call",))], "a.", "prefix", True),
    # The empty prefix covers everything but the meta API; a pattern that can reach wamp.* needs a wamp rule.
    ([rule("", "prefix")], [], "", "prefix", False),
    ([rule("", "prefix")], [], "w", "prefix", False),
    ([rule("", "prefix")], [], "x", "prefix", True),
    ([rule("", "prefix"), rule("wamp", "prefix")], [], "", "prefix", True),
    ([rule("", "prefix")], [], "wamp.session.", "prefix", False),
    ([rule("wamp.session", "prefix")], [], "wamp.session.", "prefix", True),
    ([rule("", "prefix")], [], ".b", "wildcard", False),
    ([rule("", "prefix"), rule("wamp", "prefix")], [], ".b", "wildcard", True),
    ([rule("", "prefix")], [], "x..b", "wildcard", True),
    # Unknown match policies are refused; exact is the plain decision.
    ([rule("a", "prefix")], [], "a.", "glob", False),
    ([rule("a.b")], [], "a.b", "exact", True),
]


@pytest.mark.parametrize(("allow", "deny", "pattern", "match", "expected"), CASES)
def test_pattern_decisions(allow: list[Rule], deny: list[Rule], pattern: str, match: str, expected: bool) -> None:
    """Each hand-written case gets the decision written next to it."""
    assert pattern_allowed(allow, deny, pattern, match, "subscribe") is expected
    # Registration follows the same rules for its own action.
    assert pattern_allowed(as_register(allow), as_register(deny), pattern, match, "register") is expected


def as_register(rules: list[Rule]) -> list[Rule]:
    return [Rule(r.uri, r.match, frozenset("register" if a == "subscribe" else a for a in r.actions)) for r in rules]


PIECES = st.sampled_from(["a", "b", "wamp", "ab", ""])
FILL = st.sampled_from(["a", "b", "wamp", "ab", "zz", "a.b", "b.a.wamp"])


@st.composite
def role_rules(draw: Any) -> list[Rule]:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        match = draw(st.sampled_from(["exact", "prefix", "wildcard"]))
        parts = draw(st.lists(st.sampled_from(["a", "b", "wamp", "ab"]), min_size=1, max_size=3))
        if match == "wildcard":
            parts.append("")
        if match == "prefix" and draw(st.booleans()):
            parts = [""]
        out.append(rule(".".join(parts), match, ("subscribe",)))
    return out


def instances(pattern: str, match: str, fills: list[str]) -> list[str]:
    """Concrete URIs the pattern matches under Crossbar's matching, built from ``fills``."""
    if match == "prefix":
        found = [pattern + tail for tail in ["", *fills, *("." + f for f in fills)]]
    else:
        parts = pattern.split(".")
        found = [".".join(f if p == "" else p for p in parts) for f in fills if "." not in f]
    # Only well-formed URIs (no empty component) can be published or called.
    return [u for u in found if u and all(u.split("."))]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    allow=role_rules(),
    deny=role_rules(),
    parts=st.lists(PIECES, min_size=1, max_size=3),
    from_rule=st.booleans(),
    match=st.sampled_from(["prefix", "wildcard"]),
    fills=st.lists(FILL, min_size=1, max_size=6),
)
def test_an_allowed_pattern_reaches_only_allowed_uris(
    allow: list[Rule], deny: list[Rule], parts: list[str], from_rule: bool, match: str, fills: list[str]
) -> None:
    """Whenever a pattern is allowed, every URI it matches is allowed by the plain per-URI decision."""
    pattern = ".".join(parts)
    if from_rule and allow:
        # Patterns near a rule's own URI are where mistakes would hide.
        pattern = allow[0].uri + "." + pattern if match == "prefix" else allow[0].uri
    assume(pattern_allowed(allow, deny, pattern, match, "subscribe"))
    for uri in instances(pattern, match, fills):
        assert decide(allow, deny, uri, "subscribe"), (pattern, match, uri)
