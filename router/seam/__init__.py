"""
Switchboard's hardening of Crossbar and autobahn internals: one module per job, installed together.

Crossbar 26.10.1 is barely maintained upstream, so every override here names the library versions it was
verified against (:data:`VERIFIED`) and is installed only on exactly those; on any other version
:func:`install` raises, and the router worker does not start (an unverified router must not serve clients
believing it is protected). ``tests/unit/test_seam_canary.py`` names every private attribute relied on.

- :mod:`router.seam.parsing`: nesting bound before any recursive parse, no batched serializers, quiet
  protocol errors;
- :mod:`router.seam.authorization`: pattern subscriptions and registrations, ``forward_for`` from clients,
  a bounded decision cache;
- :mod:`router.seam.transport`: HTTP-stage timeout, connection caps, outgoing buffer bound;
- :mod:`router.seam.calls`: call timeouts in milliseconds, a router-side call timeout, pending calls per
  session.
"""

from __future__ import annotations

from typing import Any

import autobahn
import crossbar

from router.config import Limits
from router.peers import networks

__all__ = ["VERIFIED", "UnverifiedVersion", "check_versions", "install"]

#: The library versions every module of this package was verified against.
VERIFIED = {"crossbar": "26.10.1", "autobahn": "26.10.2"}


class UnverifiedVersion(RuntimeError):
    """The installed crossbar/autobahn are not the versions the seam was verified against."""


def check_versions() -> None:
    """Raise :class:`UnverifiedVersion` unless the installed libraries are :data:`VERIFIED`."""
    found = {"crossbar": crossbar.__version__, "autobahn": getattr(autobahn, "__version__", None)}
    if found != VERIFIED:
        raise UnverifiedVersion(f"router.seam was verified against {VERIFIED}, found {found}")


def install(limits: Limits, trusted_proxies: tuple[str, ...] = (), **_: Any) -> None:
    """Install every override in this process (the router worker), idempotently."""
    check_versions()
    from router.seam import authorization, calls, parsing, transport

    parsing.install(limits, networks(trusted_proxies))
    authorization.install(limits)
    transport.install(limits, trusted_proxies)
    calls.install(limits)
