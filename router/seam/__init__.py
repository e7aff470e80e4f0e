"""
Every place Switchboard reaches into Crossbar, autobahn or Twisted internals: one module per job.

- :mod:`router.seam.auth`: uniform login refusals, verdicts for the throttle, decoys, stored WAMP-CRA keys;
- :mod:`router.seam.denials`: REGISTER and ``wamp.*`` PUBLISH authorized first, so a denial never tells
  which procedures exist;
- :mod:`router.seam.roles`: role objects installed, swapped and removed in a running router;
- :mod:`router.seam.parsing`: nesting bound before any recursive parse, no batched serializers, quiet
  protocol errors;
- :mod:`router.seam.authorization`: pattern subscriptions and registrations, ``forward_for`` from clients,
  a bounded decision cache;
- :mod:`router.seam.transport`: HTTP-stage timeout, connection caps, outgoing buffer bound;
- :mod:`router.seam.calls`: call timeouts in milliseconds, a router-side call timeout, pending calls per
  session;
- :mod:`router.seam.speedups`: orjson JSON, plain log arguments, wsaccel;
- :mod:`router.seam.framing`: WebSocket frames parsed and built in C (:mod:`router.wsframe`);
- :mod:`router.seam.subscriptions`: subscriptions and registrations per session;
- :mod:`router.seam.channels`: channel history as Crossbar's realm store, presence from the broker's
  subscriptions;
- :mod:`router.seam.metrics`: session join/leave event lines, and the per-message counts of ``/metrics``;
- :mod:`router.seam.logging`: the controller's log events as records (level, source), no secret logged at
  ``debug``;
- :mod:`router.seam.rlinks`: Crossbar's router-to-router links (between router workers, between nodes)
  forward errors, identities, patterns, progressive results and publication ids as one router would;
- :mod:`router.seam.fastpath`: CALLs with a cached authorization decided without Deferreds, messages sent in
  one function.

**Versions.** :data:`VERIFIED` is the one table of the library versions these overrides were verified
against (``pyproject.toml`` pins the install to the same versions). Each module lists the names it relies on
in ``RELIED_ON`` and, for methods it wraps or calls passing arguments by position, the parameter names it
expects in ``SIGNATURES``; :func:`missing` checks both against the installed libraries (the canary test,
``tests/unit/test_seam_canary.py``, uses the same function).

**Policy on other versions** (:func:`allowed`): the router worker refuses to start, with one line naming
the versions found, unless the environment sets ``SWITCHBOARD_UNVERIFIED=1``; then each module is used
only if everything it relies on is there, and a warning names each module skipped and why.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import warnings
from types import ModuleType
from typing import Any

import autobahn
import crossbar
import twisted
from twisted.logger import Logger

from router.config import Limits
from router.peers import networks

__all__ = [
    "DEALER_CALL",
    "MODULES",
    "OBSERVERS",
    "UNVERIFIED_ENV",
    "VERIFIED",
    "UnverifiedVersion",
    "allowed",
    "check_versions",
    "exists",
    "install",
    "installed_versions",
    "missing",
    "relied_on",
    "split_module",
]

#: The library versions every module of this package was verified against (the only place besides the
#: pins in ``pyproject.toml``). Twisted is here because :mod:`router.seam.transport` reads private
#: attributes of its file descriptors; txaio is not, as only its public API is used.
VERIFIED = {"crossbar": "26.10.1", "autobahn": "26.10.2", "twisted": "26.10.0"}

#: ``SIGNATURES`` entries several modules share (each module still lists what it relies on).
DEALER_CALL: dict[str, tuple[str, ...]] = {
    "crossbar.router.dealer.Dealer._call": (
        "self",
        "session",
        "call",
        "registration",
        "authorization",
        "is_queued_call",
    ),
}
OBSERVERS: dict[str, tuple[str, ...]] = {
    "crossbar.router.observation.UriObservationMap.add_observer": (
        "self",
        "observer",
        "uri",
        "match",
        "extra",
        "observer_extra",
    ),
    "crossbar.router.observation.UriObservationMap.drop_observer": ("self", "observer", "observation"),
}

#: Set to ``1`` to run on versions other than :data:`VERIFIED` (to try an upgrade): see :func:`allowed`.
UNVERIFIED_ENV = "SWITCHBOARD_UNVERIFIED"

#: Every module of the package, in the order :func:`install` considers them.
MODULES = (
    "speedups",
    "framing",
    "parsing",
    "authorization",
    "transport",
    "calls",
    "denials",
    "auth",
    "roles",
    "channels",
    "subscriptions",
    "metrics",
    "logging",
    "rlinks",
    "fastpath",
)

_log = Logger(namespace="switchboard.seam")
_decisions: dict[str, bool] = {}


class UnverifiedVersion(RuntimeError):
    """The installed libraries are not :data:`VERIFIED` (and ``SWITCHBOARD_UNVERIFIED=1`` is not set)."""


def installed_versions() -> dict[str, str | None]:
    """The installed version of each library named in :data:`VERIFIED`."""
    return {
        "crossbar": getattr(crossbar, "__version__", None),
        "autobahn": getattr(autobahn, "__version__", None),
        "twisted": getattr(twisted, "__version__", None),
    }


def _mismatch() -> str | None:
    found = installed_versions()
    if found == VERIFIED:
        return None
    return ", ".join(
        f"{name} {found[name]} (verified: {VERIFIED[name]})" for name in VERIFIED if found[name] != VERIFIED[name]
    )


def check_versions() -> None:
    """Raise :class:`UnverifiedVersion` (one line) unless the installed libraries are :data:`VERIFIED`."""
    mismatch = _mismatch()
    if mismatch is not None:
        raise UnverifiedVersion(
            f"router.seam was not verified against {mismatch}; set {UNVERIFIED_ENV}=1 to run anyway"
            " (each override then installs only where everything it relies on exists)"
        )


def allowed(name: str) -> bool:
    """The mismatch policy for seam module ``name`` (``"speedups"``, ``"auth"``, ...): whether to use it.

    True on the :data:`VERIFIED` versions. On others: :class:`UnverifiedVersion` unless
    ``SWITCHBOARD_UNVERIFIED=1``; with it, True if everything the module relies on exists (:func:`missing`),
    else False and a warning naming the module and what is gone. Decided once per module and process.
    """
    decided = _decisions.get(name)
    if decided is not None:
        return decided
    if _mismatch() is None:
        return True
    if os.environ.get(UNVERIFIED_ENV) != "1":
        check_versions()
    gone = missing(importlib.import_module(f"router.seam.{name}"))
    if gone:
        _log.warn(
            "router.seam.{module} skipped on unverified versions ({versions}): {gone}",
            module=name,
            versions=_mismatch(),
            gone=", ".join(gone),
        )
    _decisions[name] = not gone
    return not gone


def install(limits: Limits, trusted_proxies: tuple[str, ...] = (), **_: Any) -> None:
    """Install every override of the router worker in this process, idempotently, under :func:`allowed`.

    Every module is judged before any is installed, so a wrapper of one module never hides a changed
    signature from the check of another. :mod:`router.seam.auth` installs with the authenticator
    (:func:`router.auth.service.shared_authenticator`), :mod:`router.seam.roles` is called by the role
    installation.
    """
    use = {name: allowed(name) for name in MODULES}
    from router.seam import (
        authorization,
        calls,
        denials,
        framing,
        metrics,
        parsing,
        speedups,
        subscriptions,
        transport,
    )

    if use["speedups"]:
        speedups.install()
    if use["framing"]:
        framing.install()
    if use["parsing"]:
        parsing.install(limits, networks(trusted_proxies))
    if use["authorization"]:
        authorization.install(limits)
    if use["transport"]:
        transport.install(limits, trusted_proxies)
    if use["calls"]:
        calls.install(limits)
    if use["denials"]:
        denials.install()
    if use["subscriptions"]:
        subscriptions.install(limits)
    if use["metrics"]:
        metrics.install(limits, trusted_proxies)  # the counters themselves: router.metrics.enable()
    if use["logging"]:
        from router.seam import logging as secret_free_logging

        secret_free_logging.install()  # its controller half: router.seam.logging.controller_main
    if use["rlinks"]:
        from router.seam import rlinks

        rlinks.install()  # the message hooks only once a link session attaches to a router here
    if use["fastpath"]:
        from router.seam import fastpath

        fastpath.install()  # last: it stands in for authorization's cache hits and framing's sendFrame


# --- what the seam relies on, checked at run time (policy) and by the canary test -----------------------


def relied_on(module: ModuleType) -> list[tuple[str, str]]:
    """``module``'s ``RELIED_ON`` entries as ``(importable module, "Class.attribute")`` pairs."""
    return [entry if isinstance(entry, tuple) else split_module(entry) for entry in getattr(module, "RELIED_ON", [])]


def split_module(dotted: str) -> tuple[str, str]:
    """``"pkg.mod.Class.attr"`` -> ``("pkg.mod", "Class.attr")``: the longest importable module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        return ".".join(parts[:cut]), ".".join(parts[cut:])
    raise ValueError(f"no importable module in {dotted!r}")


def _resolve(target: str, dotted: str) -> tuple[bool, Any]:
    """(whether ``dotted`` exists in module ``target``, the object if it is a class or module attribute)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # crossbar's import chain warns about itself
            obj: Any = importlib.import_module(target)
    except ImportError:
        return False, None
    *path, last = dotted.split(".")
    for part in path:
        obj = getattr(obj, part, None)
        if obj is None:
            return False, None
    if hasattr(obj, last):
        return True, getattr(obj, last)
    # An instance attribute counts if the class assigns it (``self.name = ...``) in its own source.
    assignment = re.compile(rf"self\.{re.escape(last)}\s*(:[^=\n]*)?=[^=]")
    if not inspect.isclass(obj):
        return False, None
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        return False, None
    return assignment.search(source) is not None, None


def exists(target: str, dotted: str) -> bool:
    """Whether ``dotted`` resolves in module ``target``; an instance attribute counts if the class sets it."""
    return _resolve(target, dotted)[0]


def _parameters(obj: Any) -> tuple[str, ...] | None:
    # A wrapper installed by this package stands for the library function it replaced: the seam judges
    # modules before installing any (see install), so what it replaced was checked then.
    if str(getattr(obj, "__module__", None) or "").startswith("router."):
        return None
    try:
        return tuple(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return None


def missing(module: ModuleType) -> list[str]:
    """What ``module`` relies on that the installed libraries lack: ``RELIED_ON`` names that do not resolve,
    and ``SIGNATURES`` whose parameter names differ (``name(expected) != (found)``)."""
    gone = [f"{target}.{name}" for target, name in relied_on(module) if not exists(target, name)]
    for dotted, expected in getattr(module, "SIGNATURES", {}).items():
        found_it, obj = _resolve(*split_module(dotted))
        if not found_it:
            gone.append(dotted)
            continue
        found = _parameters(obj)
        if found is not None and found != tuple(expected):
            gone.append(f"{dotted}({', '.join(expected)}) != ({', '.join(found)})")
    return gone
