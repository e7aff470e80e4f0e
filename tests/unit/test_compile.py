"""The compiler from a Switchboard config to a Crossbar node config (pure; no sockets)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from router.authz.static import compile_permissions
from router.compile import compile_node
from router.config import Role, Rule, load_config, parse_config
from router.launch import with_port
from tests.conftest import DEMO_CONFIG, demo_document

SOCKET = "/run/sb/control.sock"
STORE = "/run/sb/users.sqlite3"


def demo_node_config(port: int = 18080) -> dict[str, Any]:
    return compile_node(with_port(load_config(DEMO_CONFIG), port), control_socket=SOCKET, store_path=STORE)


def perms(*rules: Rule) -> dict[str, dict[str, Any]]:
    return {p["uri"]: p for p in compile_permissions(Role(name="r", allow=rules))}


def test_crossbar_accepts_the_compiled_demo_config() -> None:
    """Crossbar's own config checker accepts what the compiler produces for the demo."""
    with warnings.catch_warnings():
        # crossbar's import chain (web3, eth utils, lib2to3, ...) warns about itself; not our concern here.
        warnings.simplefilter("ignore")
        from crossbar.personality import Personality

    Personality.check_config(Personality, demo_node_config())


def test_one_router_worker_with_realm_components_and_transports() -> None:
    """The node has one router worker hosting the demo realm, its two components and the transports."""
    (worker,) = demo_node_config()["workers"]
    assert worker["type"] == "router"
    assert [r["name"] for r in worker["realms"]] == ["demo"]
    assert [r["name"] for r in worker["realms"][0]["roles"]] == ["anonymous", "user", "admin", "backend"]
    assert [(c["classname"], c["realm"], c["role"]) for c in worker["components"]] == [
        ("router.worker.WorkerBootstrap", "demo", "trusted"),
        ("router.channels.service.ChannelComponent", "demo", "trusted"),
        ("router.admin.AdminComponent", "demo", "trusted"),
        ("components.chat.ChatComponent", "demo", "backend"),
        ("components.system.SystemComponent", "demo", "backend"),
    ]
    assert worker["components"][1]["extra"]["history"] == str(Path(STORE).parent / "history.demo.sqlite")
    assert worker["components"][2]["extra"] == {
        "store": STORE,
        "roles": json.loads(DEMO_CONFIG.read_text())["realms"][0]["roles"],
        "workers": 1,
    }
    assert worker["components"][3]["extra"] == {}


def test_store_methods_become_function_authenticators_sharing_one_config() -> None:
    """ticket, wampcra and cryptosign are in-process function authenticators reading the store."""
    (worker,) = demo_node_config()["workers"]
    auth = worker["transports"][0]["paths"]["ws"]["auth"]
    expected_config = {
        "store": STORE,
        "throttle": {
            "per_authid": 5,
            "per_peer": 50,
            "window": 60,
            "delay_after": 10,
            "max_delay": 8,
            "max_entries": 50000,
        },
        "trusted_proxies": [],
    }
    assert auth["anonymous"] == {"type": "static", "role": "anonymous"}
    for method in ("ticket", "wampcra", "cryptosign"):
        assert auth[method] == {
            "type": "function",
            "create": f"router.auth.service.create_{method}",
            "config": expected_config,
        }
    assert "scram" not in auth
    assert worker["components"][0]["extra"]["auth"] == expected_config


def test_no_authenticator_without_store_methods(tmp_path: Path) -> None:
    """A node with only anonymous logins has no store-backed authenticator; the bootstrap still runs."""
    doc = demo_document()
    doc["listen"][0]["auth"] = {"anonymous": {"role": "anonymous"}}
    path = tmp_path / "sb.json"
    path.write_text(json.dumps(doc))
    compiled = compile_node(with_port(load_config(path), 1), control_socket=SOCKET, store_path=STORE)
    bootstrap, _channels, admin, *components = compiled["workers"][0]["components"]
    assert (bootstrap["classname"], bootstrap["extra"]["auth"]) == ("router.worker.WorkerBootstrap", None)
    assert admin["classname"] == "router.admin.AdminComponent"
    assert [c["classname"] for c in components] == [
        "components.chat.ChatComponent",
        "components.system.SystemComponent",
    ]
    assert "ticket" not in compiled["workers"][0]["transports"][0]["paths"]["ws"]["auth"]


def test_websocket_transport_has_production_limits() -> None:
    """The public WebSocket sits at its path with a message size limit, handshake timeout and pings."""
    main = demo_node_config(port=18080)["workers"][0]["transports"][0]
    assert main["type"] == "web"
    assert main["endpoint"] == {"type": "tcp", "interface": "127.0.0.1", "port": 18080}
    ws = main["paths"]["ws"]
    assert ws["type"] == "websocket"
    assert ws["options"] == {
        "max_message_size": 1048576,
        "open_handshake_timeout": 2500,
        "auto_ping_interval": 10000,
        "auto_ping_timeout": 5000,
        "enable_webstatus": False,
        # The demo's pages and local tools only (docs/web.md); file:// pages refused.
        "allowed_origins": ["http://127.0.0.1:*", "http://localhost:*", "https://127.0.0.1:*", "https://localhost:*"],
        "allow_null_origin": False,
    }


def test_control_transport_is_last_and_trusted() -> None:
    """The control socket is the last transport (started last) and grants the built-in trusted role."""
    control = demo_node_config()["workers"][0]["transports"][-1]
    assert control["endpoint"] == {"type": "unix", "path": SOCKET}
    assert control["auth"] == {"anonymous": {"type": "static", "role": "trusted"}}


def test_prefix_rule_covers_whole_components_only() -> None:
    """A prefix rule on u becomes u exact plus 'u.' prefix, so it never covers 'u' + 'y...'."""
    compiled = perms(Rule("chat.room", "prefix", frozenset({"subscribe"})))
    assert set(compiled) == {"chat.room", "chat.room."}
    assert compiled["chat.room"]["match"] == "exact"
    assert compiled["chat.room."]["match"] == "prefix"
    assert all(
        p["allow"] == {"call": False, "register": False, "publish": False, "subscribe": True} for p in compiled.values()
    )


def test_empty_prefix_covers_everything_but_the_meta_api() -> None:
    """The empty prefix compiles to Crossbar's empty prefix, plus entries keeping wamp.* closed."""
    compiled = perms(Rule("", "prefix", frozenset({"call"})))
    assert set(compiled) == {"", "wamp", "wamp."}
    assert compiled[""]["allow"]["call"] is True
    assert not any(compiled["wamp."]["allow"].values())
    assert not any(compiled["wamp"]["allow"].values())


def test_rules_on_the_same_uri_merge() -> None:
    """An entry carries every rule covering its URI: both exact rules and the broader prefix rule (Crossbar
    uses one entry per URI and does not fall back to shorter ones)."""
    compiled = perms(
        Rule("chat.send", "exact", frozenset({"call"}), disclose=True),
        Rule("chat", "prefix", frozenset({"subscribe"})),
        Rule("chat.send", "exact", frozenset({"register"})),
    )
    entry = compiled["chat.send"]
    assert entry["allow"] == {"call": True, "register": True, "publish": False, "subscribe": True}
    assert entry["disclose"] == {"caller": True, "publisher": False}
    # chat.send would otherwise hide the chat prefix rule from chat.send.x
    below = compiled["chat.send."]
    assert below["match"] == "prefix"
    assert below["allow"] == {"call": False, "register": False, "publish": False, "subscribe": True}


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ({"call"}, {"caller": True, "publisher": False}),
        ({"publish"}, {"caller": False, "publisher": True}),
        ({"subscribe", "register"}, {"caller": False, "publisher": False}),
    ],
)
def test_disclose_applies_to_the_rule_actions(actions: set[str], expected: dict[str, bool]) -> None:
    """disclose reveals the caller for call rules and the publisher for publish rules."""
    compiled = perms(Rule("x.y", "exact", frozenset(actions), disclose=True))  # type: ignore[arg-type]
    assert compiled["x.y"]["disclose"] == expected


def test_pythonpath_is_resolved_against_the_config_file(tmp_path: Path) -> None:
    """pythonpath entries are relative to the config file and reach Crossbar as absolute paths."""
    doc = demo_document()
    doc["pythonpath"] = ["lib"]
    path = tmp_path / "sb.json"
    path.write_text(json.dumps(doc))
    compiled = compile_node(with_port(load_config(path), 1), control_socket=SOCKET, store_path=STORE)
    assert compiled["workers"][0]["options"]["pythonpath"] == [str(tmp_path / "lib")]


def test_crossbar_accepts_a_compiled_rawsocket_transport() -> None:
    """A `rawsocket` listener compiles to what Crossbar's checker accepts, with its message size limit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from crossbar.personality import Personality

    document = demo_document()
    raw = {"name": "raw", "type": "rawsocket", "port": 18081, "max_message_size": 16777216, "auth": {"cryptosign": {}}}
    document["listen"].append(raw)
    config = parse_config(document, DEMO_CONFIG.parent)
    node = compile_node(with_port(config, 18080), control_socket=SOCKET, store_path=STORE)
    Personality.check_config(Personality, node)
    (transport,) = [t for t in node["workers"][0]["transports"] if t["id"] == "transport_raw"]
    assert transport["options"] == {"max_message_size": 16777216}


NODE_KEY = "ab" * 32


def workers_document(workers: int) -> dict[str, Any]:
    """The demo config with ``workers`` router workers (operations on a port of their own, no presence)."""
    doc = demo_document()
    doc["workers"] = workers
    doc["operations"] = {"port": 19100}
    for realm in doc["realms"]:
        for channel in realm.get("channels", []):
            channel.pop("presence", None)
    return doc


def workers_node_config(workers: int = 3) -> dict[str, Any]:
    config = with_port(parse_config(workers_document(workers), DEMO_CONFIG.parent), 18080)
    return compile_node(config, control_socket=SOCKET, store_path=STORE, node_key=NODE_KEY)


def test_crossbar_accepts_a_compiled_multi_worker_config() -> None:
    """Crossbar's own config checker accepts three router workers with their link sockets and rlinks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from crossbar.personality import Personality

    Personality.check_config(Personality, workers_node_config())


def test_the_home_worker_hosts_every_component_and_the_others_their_agents() -> None:
    """Worker 0 hosts what a one-worker node hosts, plus the link socket; the others host only their
    bootstrap and one agent per realm, and none of the private transports but their link socket."""
    home, first, second = workers_node_config()["workers"]
    assert [w["id"] for w in (home, first, second)] == ["router_main", "router_1", "router_2"]
    one = demo_node_config()["workers"][0]
    assert [c["classname"] for c in home["components"]] == [c["classname"] for c in one["components"]]
    assert home["components"][0]["extra"]["workers"] == 3
    for k, worker in ((1, first), (2, second)):
        assert [(c["classname"], c["extra"].get("worker")) for c in worker["components"]] == [
            ("router.worker.WorkerBootstrap", k),
            ("router.workers_agent.WorkerAgent", k),
        ]
        assert [t["id"] for t in worker["transports"]] == ["transport_link", "transport_main"]
    home_ids = [t["id"] for t in home["transports"]]
    assert (home_ids[0], home_ids[-1]) == ("transport_link", "transport_control")
    assert "transport_operations" in home_ids


def test_public_listeners_are_shared_and_links_form_a_full_mesh() -> None:
    """Every worker's public listener is `shared` (SO_REUSEPORT) on the same port; worker k links to each
    worker before it, per realm, on that worker's socket; each link socket accepts the other workers' authids
    with the node key only, as the link role."""
    workers = workers_node_config()["workers"]
    for worker in workers:
        main = next(t for t in worker["transports"] if t["id"] == "transport_main")
        assert main["endpoint"]["shared"] is True
        assert main["endpoint"]["port"] == 18080
    links = [[link["id"] for link in w["realms"][0]["rlinks"]] for w in workers]
    assert links == [[], ["link_1_to_0"], ["link_2_to_0", "link_2_to_1"]]
    target = workers[2]["realms"][0]["rlinks"][1]["transport"]["endpoint"]["path"]
    assert target == "/run/sb/link-1.sock"
    listener = workers[1]["transports"][0]
    assert listener["endpoint"] == {"type": "unix", "path": "/run/sb/link-1.sock"}
    assert listener["auth"] == {
        "cryptosign": {
            "type": "static",
            "principals": {
                "switchboard-link-0": {"role": "switchboard-link", "authorized_keys": [NODE_KEY]},
                "switchboard-link-2": {"role": "switchboard-link", "authorized_keys": [NODE_KEY]},
            },
        }
    }
    assert [r["name"] for r in workers[1]["realms"][0]["roles"]][-1] == "switchboard-link"


def test_more_than_one_worker_needs_the_node_key() -> None:
    """Without the node key the links could not log in: the compiler refuses."""
    doc = workers_document(2)
    with pytest.raises(ValueError, match="node key"):
        compile_node(parse_config(doc, DEMO_CONFIG.parent), control_socket=SOCKET, store_path=STORE)
