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
