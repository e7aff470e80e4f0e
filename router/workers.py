"""
The router workers of one node (``"workers": N`` in the config) and the links between them: names, sockets and
the Crossbar config of each link. Pure functions, used by :mod:`router.compile`.

**Layout.** Worker 0, the *home* worker (``router_main``), is the node of a one-worker config: every hosted
component (the application's, the admin API, the channel services), the control socket and the operations
endpoints. Workers 1 .. N-1 serve the same realms with the same roles on the same public ports (each listener
``shared``: the kernel spreads connections over the workers, ``SO_REUSEPORT``) and host only
:class:`router.worker.WorkerBootstrap` (the overrides, the roles) and :class:`router.workers_agent.WorkerAgent`
(what the home worker's admin API asks of every worker).

**Links.** Every worker listens on a private RawSocket unix socket in the node directory (owner-only, like the
control socket) whose only login is WAMP-cryptosign with the node's own key (Crossbar signs for its rlinks with
it), granting :data:`LINK_ROLE`. For each pair i < j, worker j runs one Crossbar rlink per realm to worker i,
forwarding events and calls both ways: a full mesh, so whatever crosses crosses once
(:mod:`router.seam.rlinks` makes what crosses behave as it would inside one worker).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from router.authz.model import LINK_ROLE  # the role the links join with, reserved (no config or store uses it)
from router.config import Cluster, Limits, Throttle
from router.uris import NODE_WORKER_PREFIX

__all__ = [
    "HOME_WORKER_ID",
    "LINK_ROLE",
    "MAX_WORKERS",
    "NODE_URI_PREFIX",
    "cluster_listener",
    "cluster_rlinks",
    "link_authid",
    "link_listener",
    "link_role",
    "link_socket",
    "meta_uri",
    "metrics_uri",
    "node_authid",
    "reaches_node_uris",
    "rlinks",
    "roles_uri",
    "worker_id",
    "worker_share",
]

#: The home worker's id (the id of the only router worker of a one-worker node).
HOME_WORKER_ID = "router_main"
#: The node's own procedures: no client may register anything that could receive their calls.
NODE_URI_PREFIX = "switchboard.node."
#: The most router workers a node may have (the config's ``workers`` maximum).
MAX_WORKERS = 16


def meta_uri(worker: int) -> str:
    """The session meta API relay of router worker ``worker`` (:class:`router.workers_agent.WorkerAgent`)."""
    return f"{NODE_WORKER_PREFIX}{worker}.meta"


def roles_uri(worker: int) -> str:
    """The role installation of router worker ``worker`` (:class:`router.workers_agent.WorkerAgent`)."""
    return f"{NODE_WORKER_PREFIX}{worker}.roles"


#: Every rlink forwards events and calls in both directions.
_BOTH_WAYS = {
    "forward_local_events": True,
    "forward_remote_events": True,
    "forward_local_invocations": True,
    "forward_remote_invocations": True,
}


def metrics_uri(worker: int) -> str:
    """The metrics exposition of router worker ``worker`` (:class:`router.workers_agent.WorkerAgent`)."""
    return f"{NODE_WORKER_PREFIX}{worker}.metrics"


def reaches_node_uris(uri: str, match: str) -> bool:
    """Whether registering ``uri`` with ``match`` could take calls meant for the node's own procedures
    (``switchboard.node.*``: the readiness report, the agents of :mod:`router.workers_agent`), were their
    registration missing for a moment (a worker starting, a link reconnecting). Prefixes compare as raw
    strings, as Crossbar routes them; an empty wildcard component matches any."""
    if match == "exact":
        return uri.startswith(NODE_URI_PREFIX)
    if match == "prefix":
        return uri.startswith(NODE_URI_PREFIX) or NODE_URI_PREFIX.startswith(uri)
    parts = uri.split(".")
    return len(parts) >= 3 and all(
        part in ("", wanted) for part, wanted in zip(parts[:2], ("switchboard", "node"), strict=True)
    )


def worker_share(throttle: Throttle, limits: Limits, workers: int) -> tuple[Throttle, Limits]:
    """The limits each of ``workers`` router workers applies, so the node as a whole keeps its bounds.

    Each worker counts only the logins, connections and log lines it sees, and the kernel spreads
    connections over the workers at random: with the whole limit in each worker, a client trying from one
    address would get up to ``workers`` times its allowance. So the counts a client can drive up are shared:
    the login throttle's ``per_authid``, ``per_peer`` and ``delay_after``, ``max_connections_per_peer`` and
    ``max_log_events`` become ``ceil(limit / workers)`` per worker (at most ``workers - 1`` above the
    limit node-wide). Limits of one session (it lives in one worker) and of one process (memory, file
    descriptors: ``max_connections``, ``authorization_cache``) stay whole.
    """
    if workers == 1:
        return throttle, limits

    def share(limit: int) -> int:
        return -(-limit // workers)

    shared_throttle = replace(
        throttle,
        per_authid=share(throttle.per_authid),
        per_peer=share(throttle.per_peer),
        delay_after=share(throttle.delay_after),
    )
    shared_limits = replace(
        limits,
        max_connections_per_peer=share(limits.max_connections_per_peer),
        max_log_events=share(limits.max_log_events),
    )
    return shared_throttle, shared_limits


def worker_id(index: int) -> str:
    """The Crossbar worker id of router worker ``index`` (0: the home worker)."""
    return HOME_WORKER_ID if index == 0 else f"router_{index}"


def link_authid(index: int) -> str:
    """The authid router worker ``index`` uses on the other workers' link sockets."""
    return f"switchboard-link-{index}"


def link_socket(control_socket: str, index: int) -> str:
    """Router worker ``index``'s link socket: next to the control socket (owner-only directory)."""
    return str(Path(control_socket).with_name(f"link-{index}.sock"))


def link_role() -> dict[str, Any]:
    """The Crossbar role of the links: everything allowed, callers and publishers disclosed (the link forwards
    them to the other worker, whose own rules decide what a callee or subscriber there sees)."""
    return {
        "name": LINK_ROLE,
        "permissions": [
            {
                "uri": "",
                "match": "prefix",
                "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
                "disclose": {"caller": True, "publisher": True},
                "cache": True,
            }
        ],
    }


#: Bytes a forwarded message may add to a client's message (its forward_for entry and options).
LINK_OVERHEAD = 64 * 1024


def link_listener(
    index: int, control_socket: str, workers: int, node_key: str, max_message_size: int
) -> dict[str, Any]:
    """Router worker ``index``'s link socket: cryptosign with the node key only, for the other workers."""
    principals = {
        link_authid(other): {"role": LINK_ROLE, "authorized_keys": [node_key]}
        for other in range(workers)
        if other != index
    }
    return {
        "type": "rawsocket",
        "id": "transport_link",
        "endpoint": {"type": "unix", "path": link_socket(control_socket, index)},
        "serializers": ["cbor"],
        # What crosses is a client's message and a little more; Crossbar's own default would be 16 MiB.
        "options": {"max_message_size": max_message_size + LINK_OVERHEAD},
        "auth": {"cryptosign": {"type": "static", "principals": principals}},
    }


def rlinks(index: int, realm: str, control_socket: str) -> list[dict[str, Any]]:
    """The rlinks router worker ``index`` runs for ``realm``: one to each worker before it."""
    return [
        {
            "id": f"link_{index}_to_{target}",
            "realm": realm,
            "authid": link_authid(index),
            "transport": {
                "type": "rawsocket",
                "endpoint": {"type": "unix", "path": link_socket(control_socket, target)},
                "url": "rs://localhost",
                "serializer": "cbor",
            },
            **_BOTH_WAYS,
        }
        for target in range(index)
    ]


def node_authid(name: str) -> str:
    """The authid node ``name`` of a cluster (``cluster.name``) uses on the other nodes' link listeners."""
    return f"switchboard-node-{name}"


def cluster_listener(cluster: Cluster, max_message_size: int) -> dict[str, Any]:
    """This node's link listener for the other nodes of ``cluster``: cryptosign with their node keys only."""
    principals = {node_authid(p.name): {"role": LINK_ROLE, "authorized_keys": [p.key]} for p in cluster.peers}
    return {
        "type": "rawsocket",
        "id": "transport_cluster",
        "endpoint": {"type": "tcp", "interface": cluster.host, "port": cluster.port},
        "serializers": ["cbor"],
        # What crosses is a client's message and a little more; Crossbar's own default would be 16 MiB.
        "options": {"max_message_size": max_message_size + LINK_OVERHEAD},
        "auth": {"cryptosign": {"type": "static", "principals": principals}},
    }


def cluster_rlinks(cluster: Cluster, realm: str) -> list[dict[str, Any]]:
    """The rlinks this node runs for ``realm``: one to each peer it dials (a ``url`` in ``cluster.peers``)."""
    return [
        {
            "id": f"link_to_{peer.name}",
            "realm": realm,
            "authid": node_authid(cluster.name),
            "transport": {
                "type": "rawsocket",
                "endpoint": {"type": "tcp", "host": peer.host, "port": peer.port},
                "url": f"rs://{peer.host}:{peer.port}",
                "serializer": "cbor",
            },
            **_BOTH_WAYS,
        }
        for peer in cluster.peers
        if peer.host is not None
    ]
