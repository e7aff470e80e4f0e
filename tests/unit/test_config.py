"""Loading and validating switchboard.json: the model, defaults and every kind of error (no sockets)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from router.config import ConfigError, Problem, load_config, parse_config, schema
from router.launch import with_port
from tests.conftest import DEMO_CONFIG, ROOT, demo_document

DEMO = demo_document()


def problems_of(document: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document, base_dir=Path("/cfg"))
    return [str(p) for p in caught.value.problems]


def demo() -> dict[str, Any]:
    return copy.deepcopy(DEMO)


def test_demo_config_loads_with_defaults_filled() -> None:
    """The demo config is valid; omitted keys take the schema's defaults."""
    config = load_config(DEMO_CONFIG)
    main = config.main_transport
    assert (main.name, main.type, main.host, main.port, main.path) == ("main", "websocket", "127.0.0.1", 8080, "ws")
    assert main.serializers == ("json", "msgpack", "cbor")
    assert (main.max_message_size, main.open_handshake_timeout) == (1048576, 2.5)
    assert main.anonymous_role == "anonymous"
    assert main.url == "ws://127.0.0.1:8080/ws"
    (realm,) = config.realms
    rule = realm.roles["anonymous"].allow[0]
    assert (rule.uri, rule.match, rule.actions, rule.disclose) == ("chat.send", "exact", {"call"}, True)
    assert config.components[1].extra == {}


def test_schema_file_is_the_packaged_schema() -> None:
    """config/switchboard.schema.json (what editors read) is the schema the loader validates with."""
    assert json.loads((ROOT / "config" / "switchboard.schema.json").read_text()) == schema()
    assert json.loads(DEMO_CONFIG.read_text())["$schema"] == "./switchboard.schema.json"


def test_with_port_overrides_the_main_transport() -> None:
    """--port changes the first websocket transport only."""
    assert with_port(load_config(DEMO_CONFIG), 0).main_transport.port == 0


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["realms"][0]["roles"]["anonymous"]["allow"][1]["actions"].__setitem__(0, "cal"),
            "/realms/0/roles/anonymous/allow/1/actions/0: "
            "'cal' is not one of ['call', 'register', 'publish', 'subscribe']",
        ),
        (
            lambda d: d["realms"][0].__setitem__("colour", 1),
            "/realms/0/colour: unknown key (allowed: channels, name, roles)",
        ),
        (
            lambda d: d.__setitem__("extra", 1),
            "/extra: unknown key (allowed: $schema, cluster, components, limits, listen, operations, pythonpath, "
            "realms, throttle, trusted_proxies, workers)",
        ),
        (lambda d: d["listen"][0].__delitem__("name"), "/listen/0/name: is required"),
        (lambda d: d.__delitem__("realms"), "/realms: is required"),
        (
            lambda d: d["listen"][0]["auth"].__setitem__("kerberos", {}),
            "/listen/0/auth/kerberos: unknown key (allowed: anonymous, cryptosign, scram, ticket, wampcra)",
        ),
        (
            lambda d: d["listen"][0]["auth"].__setitem__("anonymous", {}),
            "/listen/0/auth/anonymous/role: is required",
        ),
        (
            lambda d: d.__setitem__("throttle", {"per_authid": 0}),
            "/throttle/per_authid: 0 is less than the minimum of 1",
        ),
        (
            lambda d: d["listen"][0].__setitem__("port", 70000),
            "/listen/0/port: 70000 is greater than the maximum of 65535",
        ),
        (lambda d: d["listen"][0].__setitem__("port", "80"), "/listen/0/port: '80' is not of type 'integer'"),
        (lambda d: d["realms"][0].__setitem__("name", "crossbar"), "/realms/0/name: 'crossbar' is a reserved name"),
        (lambda d: d["realms"][0].__setitem__("name", "wamp.x"), "/realms/0/name: 'wamp.x' is a reserved name"),
        (
            lambda d: d["realms"][0]["roles"].__setitem__("Admin", {}),
            "/realms/0/roles/Admin: invalid name: 'Admin' does not match '^[a-z][a-z0-9_]{0,62}$'",
        ),
        (
            lambda d: d["components"][0].__setitem__("class", "nodots"),
            "/components/0/class: 'nodots' does not match '^[A-Za-z_][A-Za-z0-9_]*(\\\\.[A-Za-z_][A-Za-z0-9_]*)+$'",
        ),
        (
            lambda d: d["realms"][0]["roles"]["anonymous"]["allow"][0].__setitem__("match", "glob"),
            "/realms/0/roles/anonymous/allow/0/match: 'glob' is not one of ['exact', 'prefix', 'wildcard']",
        ),
    ],
)
def test_schema_errors_point_at_the_key(mutate: Any, expected: str) -> None:
    """Each schema violation is reported at the JSON pointer of the offending key."""
    doc = demo()
    mutate(doc)
    assert expected in problems_of(doc)


def test_every_problem_is_reported_in_document_order() -> None:
    """All problems come back at once, ordered as they appear in the document (numbers sort numerically)."""
    doc = demo()
    doc["listen"] = [dict(doc["listen"][0], name=f"t{i}", port=19000 + i) for i in range(12)]
    doc["listen"][11]["type"] = "udp"
    doc["listen"][2]["type"] = "udp"
    doc["realms"][0]["roles"]["anonymous"]["allow"][0]["actions"] = []
    found = problems_of(doc)
    assert found == [
        "/listen/2/type: 'udp' is not one of ['websocket', 'rawsocket']",
        "/listen/11/type: 'udp' is not one of ['websocket', 'rawsocket']",
        "/realms/0/roles/anonymous/allow/0/actions: [] should be non-empty",
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["realms"].append(copy.deepcopy(d["realms"][0])), "/realms/1/name: duplicate realm 'demo'"),
        (lambda d: d["listen"].append(dict(d["listen"][0], port=9)), "/listen/1/name: duplicate transport name 'main'"),
        (
            lambda d: d["listen"].append(dict(d["listen"][0], name="b")),
            "/listen/1/port: 127.0.0.1:8080 is already used by another transport",
        ),
        (
            lambda d: d["listen"].append(
                {"name": "rs", "type": "rawsocket", "port": 9, "path": "x", "auth": d["listen"][0]["auth"]}
            ),
            "/listen/1/path: only valid for websocket transports",
        ),
        (
            lambda d: d["components"][0].__setitem__("role", "nobody"),
            "/components/0/role: no role 'nobody' in realm 'demo'",
        ),
        (
            lambda d: d["realms"][0]["roles"]["anonymous"]["allow"].append({"uri": "a..b", "actions": ["call"]}),
            '/realms/0/roles/anonymous/allow/6/uri: empty URI components are only allowed with "match": "wildcard" '
            "(got 'exact')",
        ),
        (
            lambda d: d["realms"][0]["roles"]["anonymous"]["allow"].append(
                {"uri": "a.b", "match": "wildcard", "actions": ["call"]}
            ),
            '/realms/0/roles/anonymous/allow/6/uri: a "wildcard" URI needs at least one empty component, '
            'e.g. "chat..typing"',
        ),
    ],
)
def test_reference_errors_point_at_the_key(mutate: Any, expected: str) -> None:
    """What the schema cannot express (uniqueness, references) is checked and located too."""
    doc = demo()
    mutate(doc)
    assert expected in problems_of(doc)


def test_anonymous_role_must_exist_in_every_realm() -> None:
    """An anonymous role missing from any realm would fail logins at run time; it is a config error."""
    doc = demo()
    doc["realms"].append({"name": "other", "roles": {"backend": {}}})
    assert problems_of(doc) == ["/listen/0/auth/anonymous/role: role 'anonymous' is not defined in realm 'other'"]


def test_wildcard_must_start_with_a_literal_component() -> None:
    """A wildcard pattern may not begin with an empty component (it could otherwise reach wamp.*)."""
    doc = demo()
    doc["realms"][0]["roles"]["backend"]["allow"] = [{"uri": "..x", "match": "wildcard", "actions": ["call"]}]
    assert problems_of(doc) == [
        '/realms/0/roles/backend/allow/0/uri: a "wildcard" URI must start with a literal component, e.g. "chat..typing"'
    ]


def test_empty_prefix_rule_is_valid() -> None:
    """{"uri": "", "match": "prefix"} (every URI) is accepted."""
    doc = demo()
    doc["realms"][0]["roles"]["backend"]["allow"] = [{"uri": "", "match": "prefix", "actions": ["register"]}]
    config = parse_config(doc, base_dir=Path("/cfg"))
    assert config.realms[0].roles["backend"].allow[0].uri == ""


def test_unreadable_and_invalid_json_files(tmp_path: Path) -> None:
    """A missing file and broken JSON are problems of the whole document (empty pointer)."""
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.json")
    assert caught.value.problems == [Problem("", f"no such file: {tmp_path / 'missing.json'}")]
    bad = tmp_path / "bad.json"
    bad.write_text('{"listen": [}')
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert caught.value.problems == [Problem("", "invalid JSON at line 1, column 13: Expecting value")]


def test_pointer_escapes_slash_and_tilde() -> None:
    """Keys containing '/' or '~' are escaped as RFC 6901 says."""
    doc = demo()
    doc["realms"][0]["roles"]["a/b~c"] = {}
    assert "/realms/0/roles/a~1b~0c: invalid name: 'a/b~c' does not match '^[a-z][a-z0-9_]{0,62}$'" in problems_of(doc)


def test_inherited_rules_become_part_of_the_role() -> None:
    """A role's model holds its own rules and, transitively, those it inherits (deny included)."""
    doc = demo()
    doc["realms"][0]["roles"]["muted"] = {
        "inherits": ["user"],
        "deny": [{"uri": "chat.send", "actions": ["call"]}],
    }
    doc["realms"][0]["roles"]["quiet"] = {"inherits": ["muted"]}
    roles = parse_config(doc, base_dir=Path("/cfg")).realms[0].roles
    assert roles["user"].allow == roles["anonymous"].allow
    assert roles["quiet"].allow == roles["anonymous"].allow
    assert [(r.uri, r.actions) for r in roles["quiet"].deny] == [("chat.send", {"call"})]
    assert roles["quiet"].inherits == ("muted",)


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ({"a": {"inherits": ["ghost"]}}, "/realms/0/roles/a/inherits/0: no role 'ghost' in this realm"),
        (
            {"a": {"inherits": ["b"]}, "b": {"inherits": ["a"]}},
            "/realms/0/roles/a/inherits/0: inheritance cycle: a -> b -> a",
        ),
        ({"a": {"inherits": ["a"]}}, "/realms/0/roles/a/inherits/0: inheritance cycle: a -> a"),
        (
            {"a": {"deny": [{"uri": "x..y", "actions": ["call"]}]}},
            '/realms/0/roles/a/deny/0/uri: empty URI components are only allowed with "match": "wildcard" '
            "(got 'exact')",
        ),
    ],
)
def test_inheritance_and_deny_errors(roles: dict[str, Any], expected: str) -> None:
    """Unknown parents, cycles and bad deny URIs are config errors at the offending key."""
    doc = demo()
    doc["realms"][0]["roles"].update(roles)
    assert expected in problems_of(doc)


def test_limits_and_trusted_proxies_default_and_override() -> None:
    """Every limit has its schema default; given values and trusted proxies reach the model."""
    config = parse_config(demo(), base_dir=Path("/cfg"))
    assert (config.limits.max_nesting, config.limits.http_timeout, config.trusted_proxies) == (64, 10, ())
    doc = demo()
    doc["limits"] = {"max_pending_calls": 3, "call_timeout": 2.5}
    doc["trusted_proxies"] = ["127.0.0.1", "10.0.0.0/8"]
    config = parse_config(doc, base_dir=Path("/cfg"))
    assert (config.limits.max_pending_calls, config.limits.call_timeout) == (3, 2.5)
    assert config.limits.authorization_cache == 10000
    assert config.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d.__setitem__("trusted_proxies", ["10.0.0.0/8", "proxy.example"]),
            "/trusted_proxies/1: 'proxy.example' is not an IP address or network (e.g. 10.0.0.0/8)",
        ),
        (
            lambda d: d.__setitem__("limits", {"max_send_buffer": 65536}),
            "/limits/max_send_buffer: 65536 is less than /listen/0/max_message_size (1048576): one message must fit",
        ),
        (lambda d: d.__setitem__("limits", {"max_nesting": 2}), "/limits/max_nesting: 2 is less than the minimum of 8"),
    ],
)
def test_limit_errors_point_at_the_key(mutate: Any, expected: str) -> None:
    """Bad limits and proxy entries are reported at their own key."""
    doc = demo()
    mutate(doc)
    assert problems_of(doc) == [expected]
