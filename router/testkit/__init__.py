"""
Switchboard's test kit: real nodes, sessions per role, and assertions for testing WAMP components.

The pytest plugin (:mod:`router.testkit.plugin`, registered as ``switchboard`` through the ``pytest11``
entry point; Switchboard's ``testing`` extra) gives the fixtures ``reactor``, ``switchboard_node``,
``switchboard_module_node`` and ``wamp_session``; everything below works without pytest too (pass the
reactor). See ``docs/testing.md``. The names below are imported on first use.

- :mod:`router.testkit.sessions`: start a node, sessions with real credentials or any role and authid;
- :mod:`router.testkit.checks`: :class:`Inbox`, :func:`assert_denied`, :func:`assert_invalid`;
- :mod:`router.testkit.logins`: the test-login authenticator, in the nodes the plugin starts only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.testkit.checks import Inbox, NoEvent, assert_denied, assert_invalid
    from router.testkit.sessions import (
        SERIALIZERS,
        TIMEOUT,
        JoinRefused,
        SessionFactory,
        role_session,
        session,
        start_node,
        wait,
    )

__all__ = [
    "SERIALIZERS",
    "TIMEOUT",
    "Inbox",
    "JoinRefused",
    "NoEvent",
    "SessionFactory",
    "assert_denied",
    "assert_invalid",
    "role_session",
    "session",
    "start_node",
    "wait",
]

_CHECKS = {"Inbox", "NoEvent", "assert_denied", "assert_invalid"}


def __getattr__(name: str) -> Any:
    # Imported on first use: pytest imports this package for its plugin in every run of an environment
    # where Switchboard is installed, and autobahn's WAMP stack takes almost half a second to import.
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module("router.testkit.checks" if name in _CHECKS else "router.testkit.sessions")
    return getattr(module, name)
