"""The ``workers`` key: what more than one router worker cannot serve is refused at its JSON pointer, and the
pure naming of workers, links and sockets (router.workers)."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from router.config import ConfigError, parse_config
from router.launch import with_port
from router.workers import MAX_WORKERS, link_socket, meta_uri, rlinks, roles_uri, worker_id
from tests.conftest import demo_document


def problems_of(doc: dict[str, Any], tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(doc, tmp_path)
    return [str(p) for p in caught.value.problems]


def test_one_worker_is_the_default(tmp_path: Path) -> None:
    """Without the key the node has one router worker, and the demo config is accepted as it is."""
    assert parse_config(demo_document(), tmp_path).workers == 1


def test_operations_on_a_shared_listener_are_refused(tmp_path: Path) -> None:
    """With two workers the endpoints would answer from whichever worker got the connection: the config must
    give them a port of their own, and the error says so at /operations."""
    doc = demo_document()
    doc["workers"] = 2
    for realm in doc["realms"]:
        for channel in realm.get("channels", []):
            channel.pop("presence", None)
    found = problems_of(doc, tmp_path)
    assert len(found) == 1
    assert found[0].startswith("/operations: ")
    assert "`port` of their own" in found[0]
    doc["operations"] = {"port": 0}
    assert parse_config(doc, tmp_path).workers == 2


def test_presence_with_more_than_one_worker_is_refused(tmp_path: Path) -> None:
    """Presence members are known only to the worker they subscribed on: refused at the channel's presence."""
    doc = demo_document()
    doc["workers"] = 2
    doc["operations"] = {"port": 0}
    found = problems_of(doc, tmp_path)
    channels = doc["realms"][0]["channels"]
    expected = [f"/realms/0/channels/{j}/presence" for j, c in enumerate(channels) if c.get("presence")]
    assert expected
    assert [p.split(":")[0] for p in found] == expected


@pytest.mark.parametrize("workers", [0, MAX_WORKERS + 1, "2"])
def test_the_worker_count_is_bounded(workers: Any, tmp_path: Path) -> None:
    """0, more than the maximum, or a string: refused at /workers."""
    doc = demo_document()
    doc["workers"] = workers
    assert [p.split(":")[0] for p in problems_of(doc, tmp_path)] == ["/workers"]


def test_names_sockets_and_links() -> None:
    """Worker 0 keeps the one-worker id; sockets sit next to the control socket; worker k links to 0..k-1;
    the agent URIs name the worker."""
    assert [worker_id(k) for k in range(3)] == ["router_main", "router_1", "router_2"]
    assert link_socket("/d/.crossbar/control.sock", 2) == "/d/.crossbar/link-2.sock"
    links = rlinks(3, "demo", "/d/control.sock")
    assert [link["id"] for link in links] == ["link_3_to_0", "link_3_to_1", "link_3_to_2"]
    assert rlinks(0, "demo", "/d/control.sock") == []
    assert (meta_uri(2), roles_uri(2)) == ("switchboard.node.worker.2.meta", "switchboard.node.worker.2.roles")


def cluster_document(**cluster: Any) -> dict[str, Any]:
    """The demo config without channels, as node ``a`` of a cluster with peers ``b`` (dialed) and ``c``."""
    doc = demo_document()
    for realm in doc["realms"]:
        realm.pop("channels", None)
    doc["cluster"] = {
        "name": "a",
        "port": 9200,
        "peers": [{"name": "b", "key": "b" * 64, "url": "tcp://10.0.0.2:9200"}, {"name": "c", "key": "c" * 64}],
        **cluster,
    }
    return doc


def test_a_cluster_node_has_one_worker_no_channels_and_distinct_peers(tmp_path: Path) -> None:
    """Each restriction is reported at its pointer: more than one worker, a realm with channels, a peer named
    twice or named like this node."""
    doc = cluster_document(
        peers=[{"name": "a", "key": "b" * 64}, {"name": "b", "key": "b" * 64}, {"name": "b", "key": "c" * 64}]
    )
    doc["workers"] = 2
    doc["operations"] = {"port": 0}
    doc["realms"][0]["channels"] = [{"topic": "x.y", "history": {}}]
    found = [p.split(":")[0] for p in problems_of(doc, tmp_path)]
    assert found == ["/cluster", "/realms/0/channels", "/cluster/peers/0/name", "/cluster/peers/2/name"]


def test_a_cluster_node_listens_for_its_peers_and_dials_those_with_a_url(tmp_path: Path) -> None:
    """The link listener (before the control socket) accepts the peers' keys only, as the link role; the node
    dials b (the peer with a url) per realm with its own node authid, and waits for c; Crossbar accepts it."""
    from router.compile import compile_node

    config = parse_config(cluster_document(), tmp_path)
    node = compile_node(with_port(config, 18080), control_socket="/run/sb/control.sock", store_path="/run/sb/u.db")
    (worker,) = node["workers"]
    ids = [t["id"] for t in worker["transports"]]
    assert ids[-2:] == ["transport_cluster", "transport_control"]
    listener = worker["transports"][-2]
    assert listener["endpoint"] == {"type": "tcp", "interface": "127.0.0.1", "port": 9200}
    assert listener["auth"]["cryptosign"]["principals"] == {
        "switchboard-node-b": {"role": "switchboard-link", "authorized_keys": ["b" * 64]},
        "switchboard-node-c": {"role": "switchboard-link", "authorized_keys": ["c" * 64]},
    }
    (link,) = worker["realms"][0]["rlinks"]
    assert (link["id"], link["authid"]) == ("link_to_b", "switchboard-node-a")
    assert link["transport"]["endpoint"] == {"type": "tcp", "host": "10.0.0.2", "port": 9200}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from crossbar.personality import Personality

    Personality.check_config(Personality, node)


def test_each_worker_applies_its_share_of_what_clients_drive_up() -> None:
    """Login throttle counts, connections per address and log lines per second are split over the workers
    (rounded up), so a client spread over them gets its allowance once, not once per worker; per-session and
    per-process limits stay whole; one worker keeps everything."""
    from router.workers import worker_share

    config = parse_config(demo_document(), Path("."))
    throttle = replace(config.throttle, per_authid=5, per_peer=50, delay_after=10)
    limits = replace(config.limits, max_connections_per_peer=100, max_log_events=100, max_pending_calls=100)
    assert worker_share(throttle, limits, 1) == (throttle, limits)
    shared_throttle, shared_limits = worker_share(throttle, limits, 4)
    assert (shared_throttle.per_authid, shared_throttle.per_peer, shared_throttle.delay_after) == (2, 13, 3)
    assert (shared_throttle.window, shared_throttle.max_delay) == (throttle.window, throttle.max_delay)
    assert (shared_limits.max_connections_per_peer, shared_limits.max_log_events) == (25, 25)
    assert shared_limits.max_pending_calls == 100
    assert shared_limits.max_connections == limits.max_connections


@pytest.mark.parametrize(
    ("uri", "match", "reaches"),
    [
        ("switchboard.node.worker.1.meta", "exact", True),
        ("switchboard.node.components", "exact", True),
        ("switchboard.admin.user.add", "exact", False),
        ("", "prefix", True),
        ("switchboard", "prefix", True),
        ("switchboard.no", "prefix", True),
        ("switchboard.node.worker", "prefix", True),
        ("switchboard.admin", "prefix", False),
        ("app", "prefix", False),
        ("switchboard..x", "wildcard", True),
        ("..worker", "wildcard", True),
        ("switchboard.admin.", "wildcard", False),
        ("a.b", "wildcard", False),
    ],
)
def test_what_reaches_the_nodes_own_procedures(uri: str, match: str, reaches: bool) -> None:
    """Exact URIs under switchboard.node., prefixes of it (as raw strings) or under it, and wildcards whose
    first two components may be switchboard.node (three components at least) reach the node's procedures."""
    from router.workers import reaches_node_uris

    assert reaches_node_uris(uri, match) is reaches


def test_link_listeners_take_no_more_than_a_client_message(tmp_path: Path) -> None:
    """The link sockets of the workers and a cluster's TCP listener refuse messages above the largest listener's
    max_message_size plus the forwarding overhead (Crossbar's own default would be 16 MiB, for anyone who
    connects, before any login)."""
    from router.compile import compile_node
    from router.workers import LINK_OVERHEAD

    config = parse_config(cluster_document(), tmp_path)
    largest = max(t.max_message_size for t in config.transports)
    (worker,) = compile_node(with_port(config, 18080), control_socket="/run/c.sock", store_path="/run/u.db")["workers"]
    cluster = next(t for t in worker["transports"] if t["id"] == "transport_cluster")
    assert cluster["options"]["max_message_size"] == largest + LINK_OVERHEAD
    doc = demo_document()
    doc["workers"], doc["operations"] = 2, {"port": 0}
    for realm in doc["realms"]:
        for channel in realm.get("channels", []):
            channel.pop("presence", None)
    compiled = compile_node(
        with_port(parse_config(doc, tmp_path), 18080),
        control_socket="/run/c.sock",
        store_path="/run/u.db",
        node_key="ab" * 32,
    )
    for w in compiled["workers"]:
        link = next(t for t in w["transports"] if t["id"] == "transport_link")
        assert link["options"]["max_message_size"] == largest + LINK_OVERHEAD
