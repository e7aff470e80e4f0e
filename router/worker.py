"""
``WorkerBootstrap``: Switchboard's first component in the router worker.

Router components start after realms and roles and before any transport opens, so this is the moment to
prepare the worker: install :mod:`router.speedups` and the fixes of :mod:`router.crossbar_adapter` and,
when a transport uses the user store, create the shared authenticator (Crossbar creates function
authenticators lazily, at the first login, but chooses the class that handles a login before that).
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.wamp import ApplicationSession

from router import crossbar_adapter, seam, speedups
from router.config import Limits

__all__ = ["WorkerBootstrap"]


class WorkerBootstrap(ApplicationSession):
    """Hosted first in the router worker; ``extra``: ``{"auth": <authenticator config> | None}``."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        speedups.install()
        crossbar_adapter.install_denial_fixes()
        extra = config.extra
        seam.install(Limits(**extra["limits"]), tuple(extra.get("trusted_proxies", ())))
        auth = config.extra.get("auth")
        if auth:
            from router.auth.service import shared_authenticator

            shared_authenticator(auth)
