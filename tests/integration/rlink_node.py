"""
Nodes whose router workers are linked by Crossbar's rlinks, for ``test_rlinks.py``: one node with N router
workers (the topology :mod:`router.workers` compiles: a full mesh over unix sockets) and two one-worker
nodes linked over TCP, each worker with a test-login socket of its own so a test chooses the worker every
session joins (:mod:`router.testkit.logins`: the ticket names the role).

The Crossbar config is :func:`router.compile.compile_node`'s, plus the test-login transport in every worker
(and, for two nodes, the TCP link). Started like :func:`router.launch.launch` starts a node: Crossbar from the
venv, ready once a probe session has joined over the control socket (bounded), stopped with SIGTERM then
SIGKILL.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from router import datadir
from router.compile import compile_node
from router.config import parse_config
from router.launch import _resolve_ports, node_public_key
from router.probe import wait_until_ready
from router.process import NodeProcess
from router.store import UserStore
from router.testkit import role_session
from router.workers import LINK_ROLE, link_role

__all__ = ["CHANNEL", "ROLES", "LinkedNode", "linked_node", "linked_pair"]

REALM = "linked"
#: A channel with history (kept by the first worker), under the roles' ``rl`` prefix.
CHANNEL = "rl.chan"

#: The roles of the test realm: ``shown`` discloses its calls and publications, ``hidden`` does not.
ROLES: dict[str, Any] = {
    "shown": {
        "allow": [
            {"uri": "rl", "match": "prefix", "actions": ["call", "register", "subscribe", "publish"], "disclose": True}
        ]
    },
    "hidden": {"allow": [{"uri": "rl", "match": "prefix", "actions": ["call", "register", "subscribe", "publish"]}]},
    # The tests' window on each worker: the subscription and registration meta API.
    "meta": {
        "allow": [
            {"uri": "wamp.subscription", "match": "prefix", "actions": ["call"]},
            {"uri": "wamp.registration", "match": "prefix", "actions": ["call"]},
            {"uri": "wamp.session.on_join", "actions": ["subscribe"]},
        ]
    },
}


def document(workers: int) -> dict[str, Any]:
    """A Switchboard config: one WebSocket listener, the test realm, ``workers`` router workers."""
    return {
        "listen": [
            {
                "name": "main",
                "type": "websocket",
                "host": "127.0.0.1",
                "port": 0,
                "path": "ws",
                "auth": {"anonymous": {"role": "hidden"}},
            }
        ],
        # A history channel: its store lives in the first worker (router.workers).
        "realms": [{"name": REALM, "roles": ROLES, "channels": [{"topic": CHANNEL, "match": "prefix", "history": {}}]}],
        "workers": workers,
    }


@dataclasses.dataclass
class LinkedNode:
    """A running node: its process and one test-login socket per router worker."""

    reactor: Any
    process: NodeProcess
    data_dir: Path
    sockets: list[str]

    def session(self, worker: int, role: str, authid: str, serializer: str = "json") -> Any:
        """``async with node.session(1, "shown", "alice") as s:`` a session on worker ``worker``."""
        return role_session(self.reactor, self.sockets[worker], REALM, role, authid, serializer)

    async def stop(self) -> None:
        """SIGTERM, bounded, then SIGKILL."""
        await self.process.stop()


def _prepare(data_dir: Path) -> tuple[Path, str, str]:
    datadir.prepare(data_dir)
    cbdir = datadir.node_dir(data_dir)
    for stale in cbdir.glob("*.sock"):
        stale.unlink()
    store = str(datadir.store_path(data_dir))
    UserStore(Path(store)).close()
    return cbdir, str(datadir.control_socket_path(data_dir)), store


def _compiled(data_dir: Path, workers: int) -> tuple[dict[str, Any], list[str], str]:
    config = _resolve_ports(parse_config(document(workers), data_dir, "<rlink test>"))
    cbdir, control, store = _prepare(data_dir)
    kit = [str(cbdir / f"kit-{k}.sock") for k in range(workers)]
    node = compile_node(
        config,
        control_socket=control,
        store_path=store,
        test_login_socket=kit[0],
        node_key=node_public_key(cbdir) if workers > 1 else None,
    )
    # The test-login transport of the first worker, in every other worker too (a socket each).
    login = next(t for t in node["workers"][0]["transports"] if t["endpoint"].get("path") == kit[0])
    for k in range(1, workers):
        own = copy.deepcopy(login)
        own["endpoint"]["path"] = kit[k]
        node["workers"][k]["transports"].append(own)
    return node, kit, control


async def _run(reactor: Any, data_dir: Path, node: dict[str, Any], control: str) -> NodeProcess:
    cbdir = datadir.node_dir(data_dir)
    path = cbdir / "config.json"
    path.write_text(json.dumps(node, indent=2))
    path.chmod(0o600)
    process = NodeProcess(reactor, cbdir, data_dir / "node.log")
    process.start()
    try:
        await wait_until_ready(reactor, control, REALM, reactor.seconds() + 90, gave_up=process.exited)
    except BaseException:
        await process.stop(grace=0)
        raise
    return process


@asynccontextmanager
async def linked_node(reactor: Any, data_dir: Path, workers: int = 2) -> AsyncIterator[LinkedNode]:
    """A running node with ``workers`` router workers (full mesh of rlinks), stopped at the end."""
    node, kit, control = _compiled(data_dir, workers)
    process = await _run(reactor, data_dir, node, control)
    try:
        yield LinkedNode(reactor, process, data_dir, kit)
    finally:
        await process.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def linked_pair(reactor: Any, base: Path) -> AsyncIterator[tuple[LinkedNode, LinkedNode]]:
    """Two one-worker nodes, ``a`` and ``b``, linked over TCP: ``a`` listens (RawSocket/cbor on 127.0.0.1,
    cryptosign with ``b``'s node key), ``b`` runs the rlink; stopped at the end."""
    a_dir, b_dir = base / "a", base / "b"
    a_node, a_kit, a_control = _compiled(a_dir, 1)
    b_node, b_kit, b_control = _compiled(b_dir, 1)
    b_key = node_public_key(datadir.node_dir(b_dir))
    port = _free_port()
    a_worker, b_worker = a_node["workers"][0], b_node["workers"][0]
    a_worker["transports"].insert(
        0,
        {
            "type": "rawsocket",
            "id": "transport_peer",
            "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port},
            "serializers": ["cbor"],
            "auth": {
                "cryptosign": {
                    "type": "static",
                    "principals": {"switchboard-link-b": {"role": LINK_ROLE, "authorized_keys": [b_key]}},
                }
            },
        },
    )
    for worker in (a_worker, b_worker):
        worker["realms"][0]["roles"].append(link_role())
    b_worker["realms"][0]["rlinks"] = [
        {
            "id": "link_b_to_a",
            "realm": REALM,
            "authid": "switchboard-link-b",
            "transport": {
                "type": "rawsocket",
                "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": port},
                "url": f"rs://127.0.0.1:{port}",
                "serializer": "cbor",
            },
        }
    ]
    a = await _run(reactor, a_dir, a_node, a_control)
    try:
        b = await _run(reactor, b_dir, b_node, b_control)
        try:
            yield LinkedNode(reactor, a, a_dir, a_kit), LinkedNode(reactor, b, b_dir, b_kit)
        finally:
            await b.stop()
    finally:
        await a.stop()
