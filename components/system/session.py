"""WAMP glue for ``sys.info``: the Switchboard version and the caller's realm, authid and authrole."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails

from components import uris
from router.component import ComponentSession, procedure

__all__ = ["SystemComponent", "switchboard_version"]


def switchboard_version() -> str:
    """The installed Switchboard version."""
    try:
        return version("switchboard")
    except PackageNotFoundError:
        return "0.0.0+unknown"


class SystemComponent(ComponentSession):
    """Registers ``sys.info``."""

    async def onJoin(self, details: Any) -> None:
        self._version = switchboard_version()
        self._joined_realm: str = details.realm
        await self.register(self)

    @procedure(uris.SYS_INFO)
    async def info(self, *, details: CallDetails) -> dict[str, Any]:
        """``sys.info()``: the version, and the caller's realm, authid and authrole."""
        if details.caller_authid is None:
            raise ApplicationError(
                uris.CALLER_NOT_DISCLOSED,
                f'{uris.SYS_INFO} needs the caller\'s identity: give its rule "disclose": true',
            )
        return {
            "version": self._version,
            "realm": self._joined_realm,
            "authid": details.caller_authid,
            "authrole": details.caller_authrole,
        }
