"""Listener keys for the browser (web, tls, allowed_origins): validation, the model, the compiled node and the
development certificate."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from router.compile import compile_node, origin_pattern
from router.config import ConfigError, parse_config
from router.launch import with_port
from router.tls import certificate_problems, dev_certificate
from tests.conftest import demo_document


def problems(doc: dict[str, Any], base: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(doc, base_dir=base)
    return [str(p) for p in caught.value.problems]


def test_web_tls_and_origins_reach_the_compiled_listener(tmp_path: Path) -> None:
    """Directories resolve against the config's directory; TLS files and origins go to Crossbar's endpoint
    and WebSocket options, null origins refused; each mount is a static resource next to the WebSocket."""
    (tmp_path / "site" / "assets").mkdir(parents=True)
    cert, key = dev_certificate(tmp_path / "tls")
    doc = demo_document()
    main = doc["listen"][0]
    main["web"] = {"/": "site", "/assets": "site/assets"}
    main["tls"] = {"cert": "tls/dev-cert.pem", "key": "tls/dev-key.pem"}
    main["allowed_origins"] = ["https://app.example.com"]
    config = parse_config(doc, base_dir=tmp_path)
    transport = config.main_transport
    assert transport.web == (("/", str(tmp_path / "site")), ("/assets", str(tmp_path / "site" / "assets")))
    assert transport.url.startswith("wss://")
    assert transport.web_url == f"https://127.0.0.1:{transport.port}/"
    compiled = compile_node(with_port(config, 1234), control_socket="/run/c.sock", store_path="/srv/d/u.db")
    listener = compiled["workers"][0]["transports"][0]
    assert listener["endpoint"]["tls"] == {"certificate": str(cert), "key": str(key)}
    paths = listener["paths"]
    assert paths["ws"]["options"]["allowed_origins"] == ["https://app.example.com:443"]
    assert paths["ws"]["options"]["allow_null_origin"] is False
    assert paths["/"] == {
        "type": "resource",
        "classname": "router.web.static_directory",
        "extra": {"directory": str(tmp_path / "site")},
    }
    assert paths["assets"]["extra"] == {"directory": str(tmp_path / "site" / "assets")}


@pytest.mark.parametrize(
    ("given", "matched"),
    [
        ("https://app.example.com", "https://app.example.com:443"),
        ("http://app.example.com", "http://app.example.com:80"),
        ("http://localhost:*", "http://localhost:*"),
        ("https://*.example.com:8443", "https://*.example.com:8443"),
        ("*", "*"),
    ],
)
def test_an_origin_without_a_port_means_its_default_port(given: str, matched: str) -> None:
    """autobahn matches patterns against `scheme://host:port` with the port written out: an entry without a
    port gets its scheme's default one, so `https://app.example.com` allows that page."""
    assert origin_pattern(given) == matched


def test_without_the_keys_nothing_changes(tmp_path: Path) -> None:
    """No web, no TLS, no origins: a plain ws:// listener with only the WebSocket path, any origin."""
    doc = demo_document()
    doc["listen"][0].pop("allowed_origins", None)
    doc["listen"][0].pop("web", None)
    doc.pop("operations", None)
    config = parse_config(doc, base_dir=tmp_path)
    listener = compile_node(with_port(config, 1), control_socket="/c", store_path="/d/u")["workers"][0]["transports"][0]
    assert list(listener["paths"]) == ["ws"]
    assert "tls" not in listener["endpoint"]
    assert "allowed_origins" not in listener["paths"]["ws"]["options"]
    assert config.main_transport.web_url is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.__setitem__("web", {"/": "missing"}), "/listen/0/web/~1: no such directory"),
        (lambda t: t.__setitem__("web", {"/ws": "."}), "/listen/0/web/~1ws: is the listener's WebSocket path"),
        (lambda t: t.__setitem__("web", {"/a/b": "."}), "/listen/0/web/~1a~1b: invalid name"),
        (lambda t: t.__setitem__("tls", {"cert": "c.pem"}), "/listen/0/tls/key: is required"),
        (lambda t: t.__setitem__("allowed_origins", "*"), "/listen/0/allowed_origins: '*' is not of type 'array'"),
        (lambda t: t.__setitem__("allowed_origins", ["https://App.example.com"]), "/listen/0/allowed_origins/0: "),
        (lambda t: t.__setitem__("allowed_origins", ["https://a.example.com/"]), "/listen/0/allowed_origins/0: "),
        (lambda t: t.__setitem__("allowed_origins", ["ftp://a.example.com"]), "/listen/0/allowed_origins/0: "),
        (lambda t: t.__setitem__("web", {"/app.v2": "."}), "/listen/0/web/~1app.v2: invalid name"),
    ],
)
def test_bad_browser_keys_point_at_the_key(tmp_path: Path, change: Any, expected: str) -> None:
    """Each mistake is reported at its JSON pointer."""
    doc = demo_document()
    change(doc["listen"][0])
    assert any(p.startswith(expected) for p in problems(doc, tmp_path)), problems(doc, tmp_path)


def test_rawsocket_listeners_take_no_web_or_origins(tmp_path: Path) -> None:
    """web and allowed_origins are WebSocket keys."""
    doc = demo_document()
    doc["listen"].append(
        {
            "name": "raw",
            "type": "rawsocket",
            "port": 0,
            "web": {"/": "."},
            "allowed_origins": ["x"],
            "auth": {"anonymous": {"role": "anonymous"}},
        }
    )
    found = problems(doc, tmp_path)
    assert "/listen/1/web: only valid for websocket transports" in found
    assert "/listen/1/allowed_origins: only valid for websocket transports" in found


def test_the_development_certificate_is_for_localhost_and_reused(tmp_path: Path) -> None:
    """dev_certificate makes a usable localhost certificate with an owner-only key, reuses it, and renews it
    when less than a week is left."""
    cert, key = dev_certificate(tmp_path)
    assert certificate_problems(cert, key) == []
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    names = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    first = cert.read_bytes()
    assert dev_certificate(tmp_path) == (cert, key)
    assert cert.read_bytes() == first
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=85)
    dev_certificate(tmp_path, now=later)
    assert cert.read_bytes() != first


def test_join_timeout_must_leave_room_for_the_handshake_and_the_login_throttle(tmp_path: Path) -> None:
    """join_timeout at or below http_timeout or throttle.max_delay is refused at its key."""
    doc = demo_document()
    doc["limits"] = {"join_timeout": 8}
    assert problems(doc, tmp_path) == [
        "/limits/join_timeout: 8 must exceed http_timeout (10) and throttle.max_delay (8): a login must fit in it"
    ]
    doc["limits"] = {"join_timeout": 12, "http_timeout": 5}
    doc["throttle"] = {"max_delay": 4}
    assert parse_config(doc, base_dir=tmp_path).limits.join_timeout == 12
