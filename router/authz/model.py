"""
The role model: :class:`Rule`, :class:`Role`, inheritance, and the checks a set of role definitions must pass.

Shared by the configuration loader (roles in ``switchboard.json``), the runtime admin API (roles changed
over WAMP) and the CLI, so all of them accept and refuse exactly the same definitions and names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator

__all__ = [
    "RESERVED_ROLES",
    "Role",
    "Rule",
    "build_roles",
    "definition_problems",
    "name_problem",
    "reserved_role_problem",
    "role_problems",
]

#: The role the links between router workers and nodes join with (:mod:`router.workers`).
LINK_ROLE = "switchboard-link"
#: Role names Crossbar keeps for itself (``crossbar.router.router.Router.RESERVED_ROLES``): ``trusted`` may use
#: the meta API and register/publish under ``wamp.*``, and Crossbar refuses to add or drop it at run time.
#: Switchboard's control socket grants it; no configured or stored role may take the name. Nor may the role of
#: the links between router workers (:data:`LINK_ROLE`).
RESERVED_ROLES: frozenset[str] = frozenset({"trusted", LINK_ROLE})

Action = Literal["call", "register", "publish", "subscribe"]
Match = Literal["exact", "prefix", "wildcard"]


@dataclass(frozen=True)
class Rule:
    """Allows ``actions`` on the URIs that ``uri`` covers under ``match`` semantics."""

    uri: str
    match: Match
    actions: frozenset[Action]
    disclose: bool = False


@dataclass(frozen=True)
class Role:
    """A named set of rules; a session holds exactly one role.

    ``allow`` and ``deny`` are the role's *effective* rules: its own plus those of every role it inherits
    (transitively); ``inherits`` keeps the names as written.
    """

    name: str
    allow: tuple[Rule, ...]
    deny: tuple[Rule, ...] = ()
    inherits: tuple[str, ...] = ()


def build_roles(definitions: Mapping[str, Any], schema: dict[str, Any]) -> dict[str, Role]:
    """Role models from valid definitions (see :func:`role_problems`), defaults from ``schema``."""
    return {
        name: Role(
            name=name,
            allow=tuple(_rules(definitions, name, "allow", schema)),
            deny=tuple(_rules(definitions, name, "deny", schema)),
            inherits=tuple(definition.get("inherits", [])),
        )
        for name, definition in definitions.items()
    }


def definition_problems(definition: Any, schema: dict[str, Any]) -> list[tuple[str, str]]:
    """Schema problems of one role definition, as (JSON pointer within it, message)."""
    validator = Draft202012Validator({"$ref": "#/$defs/role", "$defs": schema["$defs"]})
    found = []
    for error in validator.iter_errors(definition):
        pointer = "".join(f"/{p}" for p in error.absolute_path)
        found.append((pointer, error.message))
    return sorted(found)


def name_problem(name: object, schema: dict[str, Any]) -> str | None:
    """Why ``name`` cannot name a role, or None."""
    validator = Draft202012Validator({"$ref": "#/$defs/name", "$defs": schema["$defs"]})
    error = next(iter(validator.iter_errors(name)), None)
    return None if error is None else error.message


def reserved_role_problem(name: object) -> str | None:
    """Why ``name`` may not be given to a role or a user because the router keeps it, or None."""
    if name in RESERVED_ROLES:
        return f"{name!r} is a role reserved by the router"
    return None


def role_problems(definitions: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """What schema-valid role definitions may still get wrong, as (``/<role>/...`` pointer, message)."""
    for name, definition in definitions.items():
        reserved = reserved_role_problem(name)
        if reserved:
            yield f"/{name}", reserved
        for kind in ("allow", "deny"):
            for j, rule in enumerate(definition.get(kind, [])):
                problem = _rule_problem(rule)
                if problem:
                    yield f"/{name}/{kind}/{j}/uri", problem
        for j, parent in enumerate(definition.get("inherits", [])):
            if parent not in definitions:
                yield f"/{name}/inherits/{j}", f"no role {parent!r} in this realm"
    yield from _inheritance_problems(definitions)


def _inheritance_problems(roles: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Cycles in ``inherits``."""
    for name in roles:
        path = _cycle_from(name, roles)
        if path:
            j = roles[name]["inherits"].index(path[1])
            yield f"/{name}/inherits/{j}", "inheritance cycle: " + " -> ".join(path)


def _cycle_from(start: str, roles: Mapping[str, Any]) -> list[str] | None:
    """A path start -> ... -> start through ``inherits``, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for parent in roles.get(name, {}).get("inherits", []):
            if parent == start:
                return [*path, start]
            if parent in roles and parent not in seen:
                seen.add(parent)
                stack.append((parent, [*path, parent]))
    return None


def _ancestors(name: str, roles: Mapping[str, Any]) -> list[str]:
    """``name`` and every role it inherits from, transitively (roles must be acyclic)."""
    order, todo = [], [name]
    while todo:
        current = todo.pop(0)
        if current in order or current not in roles:
            continue
        order.append(current)
        todo.extend(roles[current].get("inherits", []))
    return order


def _rule_problem(rule: dict[str, Any]) -> str | None:
    uri, match = rule["uri"], rule.get("match", "exact")
    parts = uri.split(".")
    if match == "wildcard":
        if "" not in parts:
            return 'a "wildcard" URI needs at least one empty component, e.g. "chat..typing"'
        if parts[0] == "":
            return 'a "wildcard" URI must start with a literal component, e.g. "chat..typing"'
        return None
    if uri == "" and match == "prefix":
        return None  # the empty prefix covers every URI
    if "" in parts:
        return f'empty URI components are only allowed with "match": "wildcard" (got {match!r})'
    return None


def _rules(roles: Mapping[str, Any], name: str, kind: str, schema: dict[str, Any]) -> Iterator[Rule]:
    """The effective ``allow`` or ``deny`` rules of role ``name``: its own, then inherited ones."""
    defaults = schema["$defs"]["rule"]["properties"]
    for holder in _ancestors(name, roles):
        for rule in roles[holder].get(kind, []):
            yield Rule(
                uri=rule["uri"],
                match=rule.get("match", defaults["match"]["default"]),
                actions=frozenset(rule["actions"]),
                disclose=rule.get("disclose", defaults["disclose"]["default"]),
            )
