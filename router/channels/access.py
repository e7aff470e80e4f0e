"""
Who may use the channel URIs: derived from the right to subscribe, so roles need no rules for them.

On a realm with channels, for every role but ``trusted``:

- the channel procedures (:data:`router.uris.CHANNEL_PROCEDURES`) may be called by anyone, the caller
  disclosed to them; each answers only for topics the caller may subscribe to (:mod:`router.channels.service`);
- ``switchboard.presence.<topic>`` may be subscribed to exactly when ``<topic>`` may;
- nothing else below ``switchboard.history.`` or ``switchboard.presence.`` is allowed, whatever the
  role's rules say (no one else may publish presence events or serve these procedures), and no pattern
  registration reaching into them (:func:`pattern_reaches_channels`).

Pattern subscriptions are decided on both sides: the part of what a pattern matches inside
``switchboard.presence.`` by the role's right to subscribe to the corresponding topics
(:func:`presence_pattern`), the rest by its rules.
"""

from __future__ import annotations

from typing import Literal

from router.uris import CHANNEL_PROCEDURES, HISTORY_PREFIX, PRESENCE_PREFIX

__all__ = ["Decision", "exact_decision", "pattern_reaches_channels", "presence_pattern"]

#: ``allow``/``deny``, ``("as", topic)``: decide as SUBSCRIBE to ``topic``; None: not a channel URI.
Decision = Literal["allow", "deny"] | tuple[Literal["as"], str] | None

_PRESENCE_PARTS = PRESENCE_PREFIX.rstrip(".").split(".")
_OWN = "switchboard."
_NAMESPACES = (HISTORY_PREFIX, PRESENCE_PREFIX)


def exact_decision(uri: str, action: str) -> Decision:
    """The decision on ``action`` on the exact ``uri`` if it is a channel URI, else None."""
    if action == "call" and uri in CHANNEL_PROCEDURES:
        return "allow"
    if uri.startswith(PRESENCE_PREFIX):
        topic = uri[len(PRESENCE_PREFIX) :]
        # No channel lives under switchboard. (the configuration refuses it): decided at once, never by
        # taking prefixes off a URI one at a time.
        if action == "subscribe" and not topic.startswith(_OWN):
            return ("as", topic)
        return "deny"
    if uri.startswith(HISTORY_PREFIX):
        return "deny"
    return None


def presence_pattern(pattern: str, match: str) -> tuple[str, bool] | None:
    """What a ``match`` pattern reaches inside ``switchboard.presence.``, as a pattern on the topics
    themselves, and whether the pattern lies wholly inside; None if it reaches nothing there.

    A ``prefix`` is a raw string prefix (as Crossbar matches it): ``switchboard.presence.chat.room.``
    reaches the presence of ``chat.room.`` (prefix), ``switchboard.`` that of every topic (prefix ``""``).
    A ``wildcard`` reaches in if its first two components can be ``switchboard`` and ``presence``.
    """
    if match == "prefix":
        if pattern.startswith(PRESENCE_PREFIX):
            return pattern[len(PRESENCE_PREFIX) :], True
        if PRESENCE_PREFIX.startswith(pattern):
            return "", False
        return None
    if match == "wildcard":
        parts = pattern.split(".")
        if len(parts) < 3 or any(p not in ("", want) for p, want in zip(parts, _PRESENCE_PARTS, strict=False)):
            return None
        return ".".join(parts[2:]), parts[:2] == _PRESENCE_PARTS
    return None


def pattern_reaches_channels(pattern: str, match: str) -> bool:
    """Whether a ``match`` pattern can match a URI below ``switchboard.history.`` or
    ``switchboard.presence.`` (registering such a pattern is refused: only the router serves there)."""
    if match == "prefix":
        return any(pattern.startswith(ns) or ns.startswith(pattern) for ns in _NAMESPACES)
    if match == "wildcard":
        parts = pattern.split(".")
        return len(parts) >= 3 and any(
            all(p in ("", want) for p, want in zip(parts, ns.rstrip(".").split("."), strict=False))
            for ns in _NAMESPACES
        )
    return False
