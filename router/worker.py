"""
``WorkerBootstrap``: Switchboard's first component in the router worker.

Router components start after realms and roles and before any transport opens, so this is the moment to
prepare the worker: install the overrides of :mod:`router.seam` (under its version policy: on library
versions other than :data:`router.seam.VERIFIED` the worker refuses to start, with one line, unless
``SWITCHBOARD_UNVERIFIED=1``) and, when a transport uses the user store, create the shared authenticator
(Crossbar creates function authenticators lazily, at the first login, but chooses the class that handles a
login before that). Once joined, it installs every realm's roles
(:func:`router.authz.install.install_realm_roles`).
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError

from router import events, seam
from router.component import node_stopping, serve_component_report
from router.config import Limits
from router.uris import UNVERIFIED_VERSIONS

__all__ = ["WorkerBootstrap"]


class WorkerBootstrap(ApplicationSession):
    """Hosted first in the router worker; ``extra``: ``{"auth": <authenticator config> | None, "store": <path>,
    "realms": {<realm>: <its role definitions in the config file>}, ...}``."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        extra = config.extra
        limits = Limits(**extra["limits"])
        # The event lines' budget, whether or not the version policy lets the hooks that write most of them in.
        events.configure(limits.max_log_events)
        try:
            seam.install(limits, tuple(extra.get("trusted_proxies", ())))
        except seam.UnverifiedVersion as e:
            # An ApplicationError reaches the controller as is, and its first line is what the user sees.
            raise ApplicationError(UNVERIFIED_VERSIONS, str(e)) from None
        if extra.get("metrics") is not None:  # /metrics is served: count (router.metrics)
            from router import metrics

            metrics.enable(max_procedures=extra["metrics"]["max_procedures"])
        from twisted.internet import reactor as the_reactor  # the worker's (Crossbar hosts this class)

        reactor: Any = the_reactor
        reactor.addSystemEventTrigger("before", "shutdown", node_stopping)
        auth = config.extra.get("auth")
        if auth:
            from router.auth.service import shared_authenticator

            shared_authenticator(auth)

    async def onJoin(self, details: Any) -> None:
        # Every realm's roles (config file + run-time changes, router.authz), before the first await: so
        # before any other component starts and before any transport opens.
        from router.authz.install import install_realm_roles

        install_realm_roles(self, self.config.extra["realms"], self.config.extra["store"])

        # For the readiness probe: how the start of each component configured after this one went, and (with
        # more than one router worker, router.workers) whether every other worker is linked to this one.
        if self.config.extra.get("worker", 0) == 0:
            extra = self.config.extra
            await serve_component_report(self, extra.get("components", []), extra.get("workers", 1))
