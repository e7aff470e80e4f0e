"""
Static compilation: a role's rules as Crossbar static permissions, and whether those decide exactly.

Crossbar decides a static role from its permission list alone, in the router, without a call to anyone.
:func:`compile_permissions` writes that list; :func:`static_is_exact` says whether it decides exactly like
:func:`router.authz.rules.decide`. The node config (:mod:`router.compile`) lists every role with its
compiled permissions, and :mod:`router.authz.install` keeps the static role only where it is exact.
"""

from __future__ import annotations

from typing import Any

from router.authz.model import Role, Rule
from router.authz.rules import covers, is_meta

__all__ = ["compile_permissions", "static_is_exact"]


def compile_permissions(role: Role) -> list[dict[str, Any]]:
    """Translate a role's effective rules into Crossbar static permissions.

    Crossbar looks a URI up by longest string prefix among the permission URIs and uses that one entry
    alone (an ``exact`` entry that is only a prefix of the URI counts as no match, and it does not fall back
    to a shorter entry). So entries are not translated rule by rule: each entry holds the decision, allow
    minus deny, for the URIs it will be chosen for.

    - An ``exact`` entry for the URI of each exact rule and of each prefix rule (allow or deny), deciding
      that URI from every rule covering it.
    - A ``prefix`` entry ``u.`` for each prefix rule on ``u`` (``""`` for the empty prefix), and for each
      exact entry ``u`` lying under a prefix rule (so it does not hide that rule from ``u.x``), deciding
      from the prefix rules covering everything below ``u``: below ``u``, other rules have entries of
      their own.
    - ``wamp`` exact and ``wamp.`` prefix entries when the role has the empty prefix, which does not reach
      the meta API (only rules naming ``wamp`` do).
    - A ``wildcard`` entry per allow wildcard pattern.

    The result never allows what the rules do not (``tests/unit/test_rules.py`` checks Crossbar's own
    decisions). Where it is not exact (:func:`static_is_exact`), the role is decided in the router
    instead; the permissions still register the role with Crossbar.
    """
    rules = role.allow + role.deny
    prefixes = [r for r in rules if r.match == "prefix"]
    exact_uris = {r.uri for r in rules if r.match == "exact" or (r.match == "prefix" and r.uri != "")}
    roots = {r.uri for r in prefixes}
    if "" in roots:
        # The empty prefix does not reach the meta API: give "wamp" entries of its own.
        exact_uris.add("wamp")
        roots.add("wamp")
    roots |= {u for u in exact_uris if any(p.uri != u and _covers_below(p, u) for p in prefixes)}

    def below(rules: tuple[Rule, ...], root: str) -> list[Rule]:
        return [r for r in rules if r.match == "prefix" and _covers_below(r, root)]

    entries: dict[str, dict[str, Any]] = {}
    for uri in exact_uris:
        at = [r for r in role.allow if covers(r, uri)], [r for r in role.deny if covers(r, uri)]
        entries[uri] = _entry(uri, "exact", *at)
    for root in roots:
        key = "" if root == "" else root + "."
        entries[key] = _entry(key, "prefix", below(role.allow, root), below(role.deny, root))
    for r in role.allow:
        if r.match == "wildcard":
            same = [w for w in role.allow if w.match == "wildcard" and w.uri == r.uri]
            entries[r.uri] = _entry(r.uri, "wildcard", same, [])
    return [entries[key] for key in sorted(entries)]


def static_is_exact(role: Role) -> bool:
    """Whether Crossbar's static permissions compiled for ``role`` decide exactly like its rules.

    They do unless the role has a gap (see :func:`compile_permissions`): an exact entry strictly under a
    broader prefix rule, a wildcard rule next to prefix rules, a wildcard deny rule, or a wildcard whose
    last component is the empty one. Such roles are decided in the router by
    :func:`router.authz.rules.decide` instead (still in-process, and cached by the router).
    """
    rules = role.allow + role.deny
    prefixes = [r for r in rules if r.match == "prefix"]
    wildcards = [r for r in rules if r.match == "wildcard"]
    if wildcards and prefixes:
        return False
    if any(r.match == "wildcard" for r in role.deny):
        return False  # deny wildcards have no static form
    if any(".." not in r.uri for r in wildcards):
        return False  # Crossbar files a pattern without ".." (empty last component) as a plain URI

    keys = {r.uri for r in rules if r.match == "exact" or (r.match == "prefix" and r.uri != "")}
    return not any(p.uri != k and _covers_below(p, k) for k in keys for p in prefixes)


def _covers_below(prefix_rule: Rule, root: str) -> bool:
    """Whether a prefix rule covers every URI strictly below ``root``."""
    if prefix_rule.uri == "":
        return not is_meta(root)
    return root == prefix_rule.uri or root.startswith(prefix_rule.uri + ".")


def _entry(uri: str, match: str, allow: list[Rule], deny: list[Rule]) -> dict[str, Any]:
    denied = {a for r in deny for a in r.actions}
    actions = {a for r in allow for a in r.actions} - denied
    return {
        "uri": uri,
        "match": match,
        "allow": {a: a in actions for a in ("call", "register", "publish", "subscribe")},
        "disclose": {
            "caller": "call" in actions and any(r.disclose and "call" in r.actions for r in allow),
            "publisher": "publish" in actions and any(r.disclose and "publish" in r.actions for r in allow),
        },
        "cache": True,
    }
