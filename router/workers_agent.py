"""
``WorkerAgent``: what the home worker's admin API asks of the other router workers (:mod:`router.workers`).

The admin API (:class:`router.admin.AdminComponent`) runs in the home worker, but a realm's sessions are spread
over every worker and each worker has its own roles. One agent per realm in each other worker registers, for
the ``trusted`` role only (the calls come from the admin component, over the workers' links):

- ``switchboard.node.worker.<k>.meta``: one procedure of the WAMP session meta API (:data:`META_PROCEDURES`),
  run in this worker (list, get, count, kill, kill by authid);
- ``switchboard.node.worker.<k>.roles``: install the realm's role definitions here, as the admin API did in the
  home worker;
- ``switchboard.node.worker.<k>.metrics``: this worker's Prometheus text exposition (:mod:`router.metrics`),
  which the first worker's ``/metrics`` sums with its own (:func:`router.operations.node_exposition`).
"""

from __future__ import annotations

from typing import Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, RegisterOptions

from router import uris
from router.authz.install import install_roles, realm_routers
from router.component import ComponentSession
from router.workers import meta_uri, metrics_uri, roles_uri

__all__ = ["META_PROCEDURES", "WorkerAgent", "each_worker"]

#: The session meta procedures the agent runs for the admin API.
META_PROCEDURES = frozenset(
    {"wamp.session.list", "wamp.session.get", "wamp.session.count", "wamp.session.kill", "wamp.session.kill_by_authid"}
)


def _trusted_only(details: CallDetails, procedure: str) -> None:
    if details.caller_authrole != "trusted":
        raise ApplicationError(uris.NOT_AUTHORIZED, f"{procedure} is for the node's own use")


class WorkerAgent(ComponentSession):
    """``extra``: ``worker`` (this worker's index, 1 or more), ``channels`` (the realm's, as for
    :class:`router.channels.service.ChannelComponent`: their access rules apply here too)."""

    async def onJoin(self, details: Any) -> None:
        worker = int(self.config.extra["worker"])
        self._router = realm_routers(self, [details.realm])[details.realm]
        channels = self.config.extra.get("channels", [])
        if channels:
            # Who may use the channel URIs is decided here as in the first worker (router.channels.access); the
            # history itself is kept there, and this worker's publications reach it over the links.
            from router.channels.index import ChannelIndex
            from router.config import Channel
            from router.seam.channels import attach

            attach(self._router, ChannelIndex(Channel(**c) for c in channels), None, None)
        await self.register(self._meta, meta_uri(worker), options=RegisterOptions(details=True))
        await self.register(self._roles, roles_uri(worker), options=RegisterOptions(details=True))
        await self.register(self._metrics, metrics_uri(worker), options=RegisterOptions(details=True))

    async def _meta(self, procedure: str, *args: Any, details: CallDetails, **kwargs: Any) -> Any:
        _trusted_only(details, "the worker meta relay")
        if procedure not in META_PROCEDURES:
            raise ApplicationError(uris.INVALID_ARGUMENT, f"{procedure!r} is not relayed")
        return await self.call(procedure, *args, **kwargs)

    async def _metrics(self, *, details: CallDetails) -> str:
        _trusted_only(details, "the worker metrics")
        from router.metrics import exposition

        return exposition()[0].decode()

    async def _roles(self, definitions: dict[str, Any], removed: list[str], *, details: CallDetails) -> None:
        _trusted_only(details, "the worker role installation")
        install_roles(self._router, definitions, set(removed))


async def each_worker(session: Any, workers: int, procedure: str, *args: Any, **kwargs: Any) -> list[Any]:
    """``procedure`` of the WAMP session meta API (:data:`META_PROCEDURES`) called in each of the node's
    ``workers`` router workers by ``session`` (a ``trusted`` session of the first worker's realm): the answers,
    the first worker's first. Raises ``switchboard.error.worker_unavailable`` naming a worker whose agent does
    not answer (after asking all the others), so a caller never takes a partial answer for a whole one."""
    answers = [await session.call(procedure, *args, **kwargs)]
    missing = []
    for worker in range(1, workers):
        try:
            answers.append(await session.call(meta_uri(worker), procedure, *args, **kwargs))
        except ApplicationError as e:
            if e.error not in (ApplicationError.NO_SUCH_PROCEDURE, ApplicationError.CANCELED):
                raise
            missing.append(str(worker))
    if missing:
        raise ApplicationError(
            uris.WORKER_UNAVAILABLE, f"router worker(s) {', '.join(missing)} did not answer {procedure}: retry"
        )
    return answers
