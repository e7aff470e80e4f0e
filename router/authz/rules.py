"""
What a role's rules mean: the decision itself, as plain logic (no Crossbar).

A rule covers URIs according to its ``match``: ``exact`` the URI itself; ``prefix`` the URI and every URI
below it, whole components only (``""`` covers everything); ``wildcard`` URIs with as many components,
where an empty pattern component matches any one component. A role allows an action on a URI when any of
its allow rules covering the URI lists the action and none of its deny rules covering the URI does; deny
beats allow, and nothing else is allowed.

The WAMP meta API (``wamp`` and below) is covered only by rules that name it: a rule whose URI does not
start with the component ``wamp`` (the empty prefix included) never covers a ``wamp.*`` URI.

:mod:`router.authz.static` turns rules into Crossbar's static permissions where those decide exactly like
:func:`decide`; for every other role the router calls :func:`decide` itself (:mod:`router.authz.install`).

A *pattern* subscription or registration (``match`` ``prefix`` or ``wildcard`` in SUBSCRIBE/REGISTER
options) receives events or calls for every URI it matches, so :func:`pattern_allowed` allows it only when
the role allows the action on *every* URI the pattern can match under Crossbar's matching, where a
``prefix`` pattern is a raw string prefix (``a.room`` also matches ``a.roomy``): subscribe ``a.room.`` to
get exactly what a ``prefix`` rule on ``a.room`` covers below it.
"""

from __future__ import annotations

from collections.abc import Iterable

from router.authz.model import Role, Rule

__all__ = ["allows", "covers", "decide", "discloses", "is_meta", "pattern_allowed"]


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


def discloses(role: Role | None, uri: str, action: str) -> bool:
    """Whether ``role`` discloses its sessions' identity for ``action`` on ``uri``: the action is allowed and
    an allow rule covering it says ``disclose``."""
    if role is None or not decide(role.allow, role.deny, uri, action):
        return False
    return any(r.disclose and action in r.actions and covers(r, uri) for r in role.allow)


def pattern_allowed(allow: Iterable[Rule], deny: Iterable[Rule], pattern: str, match: str, action: str) -> bool:
    """Whether a ``match`` pattern on ``pattern`` reaches only URIs on which the role allows ``action``.

    ``exact`` is :func:`decide`. For ``prefix`` and ``wildcard`` the pattern matches infinitely many URIs,
    so no set of exact rules can cover it: one allow rule must cover all of it (the meta API part, if the
    pattern reaches ``wamp``, by a rule naming ``wamp``), and no deny rule may cover any URI it matches.
    Deny overlap is judged conservatively (a possible overlap denies).
    """
    if match == "exact":
        return decide(allow, deny, pattern, action)
    if match not in ("prefix", "wildcard"):
        return False
    if any(action in rule.actions and _may_overlap(rule, pattern, match) for rule in deny):
        return False
    grants = [rule for rule in allow if action in rule.actions]
    if match == "prefix":
        return _prefix_pattern_covered(grants, pattern)
    parts = pattern.split(".")
    pieces = []  # the non-meta and the meta part of what the pattern matches, each as a wildcard pattern
    if parts[0] != "wamp":
        pieces.append((parts, False))
    if parts[0] in ("", "wamp"):
        pieces.append((["wamp", *parts[1:]], True))
    return all(any(_covers_wildcard_pattern(rule, piece, meta) for rule in grants) for piece, meta in pieces)


def _prefix_pattern_covered(grants: list[Rule], pattern: str) -> bool:
    """Whether every URI starting with the string ``pattern`` is covered by one of ``grants`` (see above)."""
    if any(r.match == "prefix" and r.uri != "" and pattern.startswith(r.uri + ".") for r in grants):
        return True  # one rule covers everything the pattern reaches
    if pattern.startswith("wamp."):
        return False
    # The pattern reaches "wamp..." only if it is a string prefix of "wamp": that part needs a rule on "wamp".
    everything = any(r.match == "prefix" and r.uri == "" for r in grants)
    meta = not "wamp".startswith(pattern) or any(r.match == "prefix" and r.uri == "wamp" for r in grants)
    return everything and meta


def _covers_wildcard_pattern(rule: Rule, parts: list[str], meta: bool) -> bool:
    """Whether ``rule`` covers every URI the wildcard pattern ``parts`` matches (all meta, or all not)."""
    if is_meta(rule.uri) != meta:
        return False
    if rule.match == "exact":
        return "" not in parts and rule.uri == ".".join(parts)
    if rule.match == "prefix":
        if rule.uri == "":
            return not meta
        head = rule.uri.split(".")
        return len(head) <= len(parts) and all(p != "" and p == h for p, h in zip(parts, head, strict=False))
    rule_parts = rule.uri.split(".")
    return len(rule_parts) == len(parts) and all(
        w == "" or (p != "" and p == w) for w, p in zip(rule_parts, parts, strict=True)
    )


def _may_overlap(rule: Rule, pattern: str, match: str) -> bool:
    """Whether ``rule`` might cover some URI the pattern matches (never False when it does)."""
    if rule.match == "prefix" and rule.uri == "":
        return not (match == "prefix" and pattern.startswith("wamp."))
    if match == "prefix":
        if rule.match == "exact":
            return rule.uri.startswith(pattern)
        if rule.match == "prefix":
            return rule.uri.startswith(pattern) or pattern.startswith(rule.uri + ".")
        given, wild = pattern.split("."), rule.uri.split(".")
        last = len(given) - 1
        pairs = enumerate(zip(wild, given, strict=False))
        return len(wild) > last and all(w == "" or (w == g if i < last else w.startswith(g)) for i, (w, g) in pairs)
    parts = pattern.split(".")
    if rule.match == "exact":
        concrete = rule.uri.split(".")
        return len(concrete) == len(parts) and all(p in ("", c) for p, c in zip(parts, concrete, strict=True))
    if rule.match == "prefix":
        head = rule.uri.split(".")
        return len(head) <= len(parts) and all(p in ("", h) for p, h in zip(parts, head, strict=False))
    wild = rule.uri.split(".")
    return len(wild) == len(parts) and all("" in (p, w) or p == w for p, w in zip(parts, wild, strict=True))
