"""
``switchboard run``: keep a node running in the foreground until a signal stops it.

Twisted turns SIGINT/SIGTERM into a reactor shutdown; a "before shutdown" trigger stops Crossbar first
(bounded), so the command exits 0 on a requested stop and no process outlives it. A node that dies on its
own is an error (exit 1).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from router.config import Config
from router.launch import StartError, launch
from router.store import UserStore

__all__ = ["serve"]

log = Logger()


def _echo(line: str, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(line + "\n")
    stream.flush()


def serve(reactor: Any, config: Config, data_dir: Path, loglevel: str, ready_timeout: float) -> defer.Deferred[None]:
    """Start the node and wait until it stops; the Deferred fails with ``SystemExit(1)`` on failure."""
    return defer.ensureDeferred(_serve(reactor, config, data_dir, loglevel, ready_timeout))


async def _serve(reactor: Any, config: Config, data_dir: Path, loglevel: str, ready_timeout: float) -> None:
    try:
        node = await launch(
            reactor,
            config,
            data_dir,
            loglevel=loglevel,
            ready_timeout=ready_timeout,
            on_line=lambda line: _echo(line, err=True),
        )
    except StartError as e:
        _echo(f"error: {e}", err=True)
        raise SystemExit(1) from None

    stopping = False

    async def stop() -> None:
        nonlocal stopping
        stopping = True
        await node.stop()

    reactor.addSystemEventTrigger("before", "shutdown", lambda: defer.ensureDeferred(stop()))
    _echo(f"Switchboard ready: {node.url}")
    if config.uses_store and not _has_users(node.store_path):
        _echo(
            "No users yet. Create the first one with:\n"
            f"  switchboard user add alice --role {_suggested_role(config)} --data-dir {data_dir}"
        )
    code = await node.process.exited
    if stopping:
        return
    _echo(
        f"error: the Crossbar node exited unexpectedly (exit code {code}; log: {node.process.log_path})",
        err=True,
    )
    await node.stop()
    raise SystemExit(1)


def _has_users(path: Path) -> bool:
    store = UserStore(path)
    try:
        return bool(store.list_users())
    finally:
        store.close()


def _suggested_role(config: Config) -> str:
    roles = list(config.realms[0].roles)
    return "user" if "user" in roles else roles[0]
