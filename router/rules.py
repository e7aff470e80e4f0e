"""
What a role's rules mean, as plain reference logic (no Crossbar).

A rule covers URIs according to its ``match``: ``exact`` the URI itself; ``prefix`` the URI and every URI
below it, whole components only (``""`` covers everything); ``wildcard`` URIs with as many components,
where an empty pattern component matches any one component. A role allows an action on a URI when any of
its allow rules covering the URI lists the action and none of its deny rules covering the URI does; deny
beats allow, and nothing else is allowed.

The WAMP meta API (``wamp`` and below) is covered only by rules that name it: a rule whose URI does not
start with the component ``wamp`` (the empty prefix included) never covers a ``wamp.*`` URI.

The compiler turns rules into Crossbar's static permissions; the tests check Crossbar's own decisions on
the compiled result against :func:`decide`.
"""

from __future__ import annotations

from collections.abc import Iterable

from router.config import Rule

__all__ = ["allows", "covers", "decide", "is_meta"]


def is_meta(uri: str) -> bool:
    """Whether ``uri`` belongs to the WAMP meta API."""
    return uri.split(".", 1)[0] == "wamp"


def covers(rule: Rule, uri: str) -> bool:
    """Whether ``rule`` applies to ``uri``."""
    if is_meta(uri) and not is_meta(rule.uri):
        return False
    if rule.match == "exact":
        return uri == rule.uri
    if rule.match == "prefix":
        return rule.uri == "" or uri == rule.uri or uri.startswith(rule.uri + ".")
    pattern, parts = rule.uri.split("."), uri.split(".")
    return len(pattern) == len(parts) and all(p in ("", u) for p, u in zip(pattern, parts, strict=True))


def allows(rules: Iterable[Rule], uri: str, action: str) -> bool:
    """Whether any rule covering ``uri`` allows ``action``."""
    return any(action in rule.actions and covers(rule, uri) for rule in rules)


def decide(allow: Iterable[Rule], deny: Iterable[Rule], uri: str, action: str) -> bool:
    """The role's decision: some allow rule covers it and no deny rule does."""
    return allows(allow, uri, action) and not allows(deny, uri, action)
