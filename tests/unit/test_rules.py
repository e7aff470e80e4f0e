"""Crossbar's own decisions on compiled permissions and on installed roles, checked against the rule semantics.

The oracle is :func:`router.authz.rules.decide`, the plain statement of what rules mean (its own examples are
the hand-written cases below and in ``tests/integration/test_permission_matrix.py``); the code under test is
the compilation to Crossbar's static permissions and the role objects the router ends up holding.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from router.authz.install import install_roles
from router.authz.rules import allows, covers, decide
from router.authz.static import compile_permissions, static_is_exact
from router.config import ACTIONS, Role, Rule

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # crossbar's import chain warns about itself
    from crossbar.router.role import RouterRoleStaticAuth
    from crossbar.router.router import RouterFactory


def crossbar_allows(rules: list[Rule], uri: str, action: str, deny: list[Rule] | None = None) -> bool:
    """Ask Crossbar's static role, built from the compiled permissions, for a decision."""
    compiled = compile_permissions(Role("r", tuple(rules), tuple(deny or ())))
    role = RouterRoleStaticAuth(None, "r", permissions=compiled)
    return bool(role.authorize(None, uri, action, {})["allow"])


class RealmRecord:
    """Crossbar's ``RouterRealm``, reduced to its id and config (the real one starts the rlink machinery)."""

    id = "realm_000"
    config = {"name": "m"}  # noqa: RUF012


def crossbar_router() -> Any:
    """A real Crossbar router for realm ``m``; its worker and realm record are reduced to what role
    installation reads: the registry Crossbar's ``RouterController`` keeps (realm id -> ``roles``,
    ``role_to_id``) and the realm's id and name."""
    factory = RouterFactory("node", "worker", None)
    registry = SimpleNamespace(roles={}, role_to_id={})

    def start_router_realm_role(realm_id: str, role_id: str, config: dict[str, Any]) -> None:
        registry.roles[role_id] = config
        registry.role_to_id[config["name"]] = role_id

    factory._worker = SimpleNamespace(realms={"realm_000": registry}, start_router_realm_role=start_router_realm_role)
    return factory.start_realm(RealmRecord())


def definition(rules: list[Rule]) -> list[dict[str, Any]]:
    return [{"uri": r.uri, "match": r.match, "actions": sorted(r.actions)} for r in rules]


def installed_allows(rules: list[Rule], uri: str, action: str, deny: list[Rule] | None = None) -> bool:
    """The router's decision for a session of role ``r`` once Switchboard installed ``r`` from these rules."""
    router = crossbar_router()
    install_roles(router, {"r": {"allow": definition(rules), "deny": definition(deny or [])}}, removed=set())
    session = SimpleNamespace(_realm="m", _authrole="r", _authid="someone", _session_id=1)
    decisions: list[dict[str, Any]] = []
    router.authorize(session, uri, action, {}).addCallback(decisions.append)
    return bool(decisions[0]["allow"])


@pytest.mark.parametrize(
    ("rule", "uri", "expected"),
    [
        (Rule("chat.room", "prefix", frozenset({"subscribe"})), "chat.room", True),
        (Rule("chat.room", "prefix", frozenset({"subscribe"})), "chat.room.a.b", True),
        (Rule("chat.room", "prefix", frozenset({"subscribe"})), "chat.roomy", False),
        (Rule("chat.room", "prefix", frozenset({"subscribe"})), "chat", False),
        (Rule("", "prefix", frozenset({"subscribe"})), "anything.at.all", True),
        (Rule("chat..typing", "wildcard", frozenset({"subscribe"})), "chat.lobby.typing", True),
        (Rule("chat..typing", "wildcard", frozenset({"subscribe"})), "chat.typing", False),
        (Rule("chat..typing", "wildcard", frozenset({"subscribe"})), "chat.a.b.typing", False),
        (Rule("chat.send", "exact", frozenset({"call"})), "chat.send.x", False),
    ],
)
def test_reference_semantics(rule: Rule, uri: str, expected: bool) -> None:
    """The documented match semantics (docs/configuration.md), on the reference implementation."""
    assert covers(rule, uri) is expected
    assert crossbar_allows([rule], uri, "subscribe") is (expected and "subscribe" in rule.actions)


def test_exact_rule_under_a_prefix_rule() -> None:
    """An exact rule does not hide a broader prefix rule, neither on its URI nor below it."""
    rules = [Rule("chat", "prefix", frozenset({"subscribe"})), Rule("chat.send", "exact", frozenset({"call"}))]
    assert crossbar_allows(rules, "chat.send", "call")
    assert crossbar_allows(rules, "chat.send", "subscribe")
    assert crossbar_allows(rules, "chat.send.x", "subscribe")
    assert not crossbar_allows(rules, "chat.send.x", "call")


COMPONENTS = st.sampled_from(["a", "b", "wamp"])
MATCHES = st.sampled_from(["exact", "prefix", "wildcard"])


@st.composite
def rules(draw: Any, with_wildcards: bool) -> list[Rule]:
    out = []
    for _ in range(draw(st.integers(1, 5))):
        match = draw(MATCHES if with_wildcards else st.sampled_from(["exact", "prefix"]))
        parts = draw(st.lists(COMPONENTS, min_size=1, max_size=3))
        if match == "wildcard":
            if len(parts) == 1:
                parts.append("")
            parts[draw(st.integers(1, len(parts) - 1))] = ""
        actions = frozenset(draw(st.sets(st.sampled_from(ACTIONS), min_size=1)))
        out.append(Rule(".".join(parts), match, actions))  # type: ignore[arg-type]
    return out


URIS = st.lists(COMPONENTS, min_size=1, max_size=4).map(".".join)


@settings(max_examples=400, deadline=None)
@given(rules(with_wildcards=False), URIS, st.sampled_from(ACTIONS))
def test_compiled_exact_and_prefix_rules_decide_exactly_like_the_reference(
    role_rules: list[Rule], uri: str, action: str
) -> None:
    """With exact and prefix rules (and URI components none of which extends another), Crossbar's decision
    on the compiled permissions equals the reference decision."""
    assert crossbar_allows(role_rules, uri, action) == allows(role_rules, uri, action)


@settings(max_examples=400, deadline=None)
@given(rules(with_wildcards=True), st.one_of(URIS, URIS.map(lambda u: u + "x")), st.sampled_from(ACTIONS))
def test_compiled_rules_never_allow_more_than_the_reference(role_rules: list[Rule], uri: str, action: str) -> None:
    """Whatever the rules and URIs (wildcards, components extending others), Crossbar never allows an action
    the rules do not: the known gaps only deny."""
    if crossbar_allows(role_rules, uri, action):
        assert allows(role_rules, uri, action)


@settings(max_examples=400, deadline=None)
@given(rules(with_wildcards=False), rules(with_wildcards=False), URIS, st.sampled_from(ACTIONS))
def test_compiled_allow_and_deny_rules_decide_exactly_like_the_reference(
    allow: list[Rule], deny: list[Rule], uri: str, action: str
) -> None:
    """With deny rules too, Crossbar's decision on the compiled permissions equals the reference: deny beats
    allow, at the URI and below it."""
    assert crossbar_allows(allow, uri, action, deny) == decide(allow, deny, uri, action)


@settings(max_examples=400, deadline=None)
@given(
    rules(with_wildcards=False),
    rules(with_wildcards=False),
    st.one_of(URIS, URIS.map(lambda u: u + "x")),
    st.sampled_from(ACTIONS),
)
def test_compiled_deny_rules_are_never_weakened(allow: list[Rule], deny: list[Rule], uri: str, action: str) -> None:
    """Whatever the URI, an action a deny rule covers is refused by Crossbar."""
    assume(allows(deny, uri, action))
    assert not crossbar_allows(allow, uri, action, deny)


def test_deny_carves_a_hole_in_an_allowed_prefix() -> None:
    """allow chat.* / deny chat.admin.*: chat.admin and below are refused, siblings are not. chat.adminx is
    allowed by the rules but refused by Crossbar: the documented gap, on the safe side."""
    allow = [Rule("chat", "prefix", frozenset({"call"}))]
    deny = [Rule("chat.admin", "prefix", frozenset({"call"}))]
    assert crossbar_allows(allow, "chat.send", "call", deny)
    assert not crossbar_allows(allow, "chat.admin", "call", deny)
    assert not crossbar_allows(allow, "chat.admin.reset", "call", deny)
    assert decide(allow, deny, "chat.adminx", "call")
    assert not crossbar_allows(allow, "chat.adminx", "call", deny)


def test_the_meta_api_needs_a_rule_that_names_it() -> None:
    """The empty prefix allows every URI except wamp.*; a rule on wamp.session opens just that."""
    everything = [Rule("", "prefix", frozenset(ACTIONS))]
    assert crossbar_allows(everything, "com.example.x", "call")
    assert not crossbar_allows(everything, "wamp.session.list", "call")
    assert not crossbar_allows(everything, "wamp", "subscribe")
    meta = [*everything, Rule("wamp.session", "prefix", frozenset({"call"}))]
    assert crossbar_allows(meta, "wamp.session.list", "call")
    assert not crossbar_allows(meta, "wamp.registration.list", "call")


@settings(max_examples=500, deadline=None)
@given(
    rules(with_wildcards=True),
    rules(with_wildcards=True),
    st.one_of(URIS, URIS.map(lambda u: u + "x")),
    st.sampled_from(ACTIONS),
)
def test_installed_roles_decide_exactly_like_the_reference(
    allow: list[Rule], deny: list[Rule], uri: str, action: str
) -> None:
    """Whatever the rules (wildcards, deny, inheritance flattened) and URIs, the role Switchboard installs
    decides exactly like the reference: static permissions where they are exact, the in-router decider
    elsewhere."""
    assert installed_allows(allow, uri, action, deny) == decide(allow, deny, uri, action)


def test_gap_roles_are_decided_in_the_router() -> None:
    """The documented static gaps (an extension of an exact URI under a prefix; wildcard next to a prefix)
    are where Crossbar's static permissions refuse what the rules allow; the installed role allows it."""
    gap = [Rule("chat", "prefix", frozenset({"call"})), Rule("chat.send", "exact", frozenset({"subscribe"}))]
    assert not static_is_exact(Role("r", tuple(gap)))
    assert not crossbar_allows(gap, "chat.sendx", "call")
    assert installed_allows(gap, "chat.sendx", "call")
    assert not installed_allows(gap, "chat.sendx", "subscribe")
    wildcard_and_prefix = [Rule("a..c", "wildcard", frozenset({"call"})), Rule("a.b", "prefix", frozenset({"call"}))]
    assert installed_allows(wildcard_and_prefix, "a.x.c", "call")
    assert installed_allows(wildcard_and_prefix, "a.b.c", "call")
    assert not installed_allows(wildcard_and_prefix, "a.x.d", "call")
    assert static_is_exact(Role("r", (Rule("chat.room", "prefix", frozenset({"subscribe"})),)))
