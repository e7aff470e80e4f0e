"""A listener's static files, TLS and allowed origins, on real nodes: HTTP(S) with the standard library, WAMP
over ws/wss with autobahn."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.types import ComponentConfig
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import threads
from twisted.internet.ssl import Certificate, optionsForClientTLS

from components import uris
from router.launch import RunningNode
from router.testkit import JoinRefused, session, start_node
from router.tls import dev_certificate
from tests.conftest import demo_document, running, write_config
from tests.integration.cli import SWITCHBOARD, RunningCommand

pytestmark = pytest.mark.integration

SECRET = "secret outside the web directory"


def site(tmp: Path) -> Path:
    """A web directory with files of several types, a directory without an index, a symbolic link out of
    it and one inside it; and a secret file next to it."""
    web = tmp / "web"
    (web / "sub").mkdir(parents=True)
    (web / "assets").mkdir()
    (web / "index.html").write_text("<!doctype html><title>demo</title>")
    (web / "app.js").write_text("export const x = 1;")
    (web / "style.css").write_text("body{}")
    (web / "sub" / "page.html").write_text("<p>page</p>")
    (web / "assets" / "logo.svg").write_text("<svg/>")
    (web / "data.bin").write_bytes(b"\x00\x01")
    (tmp / "secret.txt").write_text(SECRET)
    os.symlink(tmp / "secret.txt", web / "link-out.txt")
    os.symlink(web / "app.js", web / "link-in.js")
    return web


@pytest.fixture(scope="module")
def web_node(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """The demo config with `web` at `/` and `/assets`, and allowed origins."""
    tmp = tmp_path_factory.mktemp("web")
    web = site(tmp)
    doc = demo_document()
    doc["listen"][0]["web"] = {"/": str(web), "/assets": str(web / "assets")}
    doc["listen"][0]["allowed_origins"] = ["http://good.example:*", "http://127.0.0.1:*", "https://app.example.com"]
    with running(start_node(reactor, write_config(tmp, doc), tmp / "data")) as node:
        yield node


def get(node: RunningNode, path: str, method: str = "GET", headers: dict[str, str] | None = None, **tls: Any) -> Any:
    """One HTTP(S) request to the node's main listener, sent as is (no path normalization): a Deferred of
    ``(status, headers, body)``."""
    transport = node.config.main_transport

    def request() -> tuple[int, dict[str, str], bytes]:
        if tls:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                transport.host, transport.port, timeout=10, **tls
            )
        else:
            conn = http.client.HTTPConnection(transport.host, transport.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    return threads.deferToThread(request)


@pytest_twisted.ensureDeferred
async def test_files_are_served_with_their_type_and_caching_headers(web_node: RunningNode) -> None:
    """Each file of the directory, at its path, with an explicit MIME type, nosniff and no-cache plus
    Last-Modified; a directory gives its index.html; a second mount serves its own directory."""
    expected = {
        "/": ("text/html; charset=utf-8", b"<!doctype html><title>demo</title>"),
        "/app.js": ("text/javascript; charset=utf-8", b"export const x = 1;"),
        "/style.css": ("text/css; charset=utf-8", b"body{}"),
        "/sub/page.html": ("text/html; charset=utf-8", b"<p>page</p>"),
        "/assets/logo.svg": ("image/svg+xml", b"<svg/>"),
        "/data.bin": ("application/octet-stream", b"\x00\x01"),
        "/link-in.js": ("text/javascript; charset=utf-8", b"export const x = 1;"),
    }
    for path, (kind, body) in expected.items():
        status, headers, content = await get(web_node, path)
        assert (status, headers["content-type"], content) == (200, kind, body), path
        assert headers["cache-control"] == "no-cache", path
        assert headers["x-content-type-options"] == "nosniff", path
        assert "last-modified" in headers, path
    status, _, _ = await get(web_node, "/", headers={"If-Modified-Since": headers["last-modified"]})
    assert status == 304


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/link-out.txt",
        "/assets/../../secret.txt",
        "/sub/",
        "/nothing-here.html",
    ],
)
@pytest_twisted.ensureDeferred
async def test_nothing_outside_the_directory_and_no_listing(web_node: RunningNode, path: str) -> None:
    """`..` in any encoding, a symbolic link out of the directory, a directory without an index and a
    missing file: never 200, never the secret, never a listing."""
    status, _, content = await get(web_node, path)
    assert status in (400, 404), (path, status)
    assert SECRET.encode() not in content
    assert b"page.html" not in content


@pytest_twisted.ensureDeferred
async def test_only_get_and_head(web_node: RunningNode) -> None:
    """POST, PUT and DELETE are refused; HEAD gives the headers without a body."""
    for method in ("POST", "PUT", "DELETE"):
        assert (await get(web_node, "/", method=method))[0] in (405, 501)  # 501: not an HTTP method here
    status, headers, content = await get(web_node, "/app.js", method="HEAD")
    assert (status, headers["content-type"], content) == (200, "text/javascript; charset=utf-8", b"")


async def handshake(node: RunningNode, origin: str | None) -> int:
    """The HTTP status of a WebSocket opening handshake to the node's WAMP path with ``origin``."""
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": "wamp.2.json",
    }
    if origin is not None:
        headers["Origin"] = origin
    status: int = (await get(node, "/" + node.config.main_transport.path, headers=headers))[0]
    return status


@pytest_twisted.ensureDeferred
async def test_only_allowed_origins_may_open_a_websocket(reactor: Any, web_node: RunningNode) -> None:
    """An allowed origin (any port by its pattern) and a client without Origin get 101; another origin and
    the `null` origin of file:// pages are refused; WAMP still works for clients without Origin."""
    assert await handshake(web_node, "http://good.example:8080") == 101
    assert await handshake(web_node, "https://app.example.com") == 101  # the default port, written out
    assert await handshake(web_node, "https://app.example.com:8443") not in (101, 200)
    assert await handshake(web_node, None) == 101
    for origin in ("http://evil.example", "https://good.example.evil:1", "null", "file://"):
        assert await handshake(web_node, origin) not in (101, 200), origin
    async with session(reactor, web_node.url) as s:
        assert (await s.call(uris.CHAT_SEND, "weborigins", "hi"))["text"] == "hi"


def self_signed(directory: Path, *, days: int, offset: int = 0) -> tuple[Path, Path]:
    """A certificate valid from ``offset`` days from now for ``days`` days, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=offset)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return directory / "cert.pem", directory / "key.pem"


@pytest_twisted.ensureDeferred
async def test_a_tls_listener_serves_https_and_wss(reactor: Any, tmp_path: Path) -> None:
    """With `tls`, the page comes over HTTPS and WAMP over wss:// (TLS 1.3), checked against the
    certificate; a plain-text client gets nothing."""
    web = site(tmp_path)
    cert, key = dev_certificate(tmp_path / "tls")
    doc = demo_document()
    doc["listen"][0]["web"] = {"/": str(web)}
    doc["listen"][0]["tls"] = {"cert": str(cert), "key": str(key)}
    node = await start_node(reactor, write_config(tmp_path, doc), tmp_path / "data")
    try:
        assert node.url.startswith("wss://")
        context = ssl.create_default_context(cafile=str(cert))
        status, _, content = await get(node, "/", context=context)
        assert (status, content) == (200, b"<!doctype html><title>demo</title>")
        trust = optionsForClientTLS("localhost", trustRoot=Certificate.loadPEM(cert.read_bytes()))
        async with session(reactor, node.url, tls=trust) as s:
            assert s._transport.transport.getHandle().get_protocol_version_name() == "TLSv1.3"
            assert (await s.call(uris.CHAT_SEND, "tls", "over tls"))["text"] == "over tls"
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            await get(node, "/")
        with pytest.raises((JoinRefused, Exception)):
            async with session(reactor, node.url.replace("wss://", "ws://"), timeout=3):
                pass
    finally:
        await node.stop()


@pytest.mark.parametrize(
    ("damage", "pointer", "words"),
    [
        ("missing cert", "/listen/0/tls/cert", "cannot read"),
        ("not pem", "/listen/0/tls/cert", "is not a PEM certificate"),
        ("other key", "/listen/0/tls/key", "does not match the certificate"),
        ("expired", "/listen/0/tls/cert", "expired on"),
        ("not yet valid", "/listen/0/tls/cert", "is not valid before"),
        ("missing key", "/listen/0/tls/key", "cannot read"),
    ],
)
def test_check_names_the_bad_tls_file(tmp_path: Path, damage: str, pointer: str, words: str) -> None:
    """`switchboard check` exits 2 with one line at the TLS key naming the file and what is wrong."""
    cert, key = self_signed(tmp_path / "good", days=30)
    if damage == "missing cert":
        cert = tmp_path / "nope.pem"
    elif damage == "missing key":
        key = tmp_path / "nokey.pem"
    elif damage == "not pem":
        cert.write_text("hello")
    elif damage == "other key":
        _, key = self_signed(tmp_path / "other", days=30)
    elif damage == "expired":
        cert, key = self_signed(tmp_path / "old", days=1, offset=-10)
    elif damage == "not yet valid":
        cert, key = self_signed(tmp_path / "future", days=30, offset=10)
    doc = demo_document()
    doc["listen"][0]["tls"] = {"cert": str(cert), "key": str(key)}
    result = subprocess.run(
        [SWITCHBOARD, "check", "--config", str(write_config(tmp_path, doc))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    problem = [line for line in lines if line.startswith(pointer)]
    assert len(problem) == 1, result.stderr
    assert words in problem[0]
    assert (str(key) if pointer.endswith("key") else str(cert)) in problem[0]


def test_run_dev_tls_makes_a_localhost_certificate_and_serves_wss(
    tmp_path: Path, command: list[RunningCommand]
) -> None:
    """`switchboard run --dev-tls` prints a wss:// URL, and the certificate (for localhost and 127.0.0.1)
    and its owner-only key are in the data directory, reused by the next run."""
    from tests.conftest import DEMO_CONFIG

    run = RunningCommand("--config", str(DEMO_CONFIG), "--port", "0", "--data-dir", "data", "--dev-tls", cwd=tmp_path)
    command.append(run)
    ready = run.read_line()
    assert ready.startswith("Switchboard ready: wss://127.0.0.1:"), ready
    cert, key = tmp_path / "data" / "tls" / "dev-cert.pem", tmp_path / "data" / "tls" / "dev-key.pem"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    names = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    before = cert.read_bytes()
    assert dev_certificate(tmp_path / "data" / "tls") == (cert, key)
    assert cert.read_bytes() == before


@pytest_twisted.ensureDeferred
async def test_a_tls_rawsocket_listener(reactor: Any, tmp_path: Path) -> None:
    """A RawSocket listener with `tls` takes WAMP over TLS 1.3 (rss://), checked against its certificate."""
    from autobahn.twisted.rawsocket import WampRawSocketClientFactory
    from autobahn.twisted.wamp import ApplicationSession
    from twisted.internet import defer
    from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS

    cert, key = dev_certificate(tmp_path / "tls")
    doc = demo_document()
    doc["listen"].append(
        {
            "name": "raw",
            "type": "rawsocket",
            "port": 0,
            "tls": {"cert": str(cert), "key": str(key)},
            "auth": {"anonymous": {"role": "anonymous"}},
        }
    )
    node = await start_node(reactor, write_config(tmp_path, doc), tmp_path / "data")
    joined: defer.Deferred[Any] = defer.Deferred()

    class Client(ApplicationSession):
        async def onJoin(self, details: Any) -> None:
            joined.callback(self)

    try:
        raw = next(t for t in node.config.transports if t.name == "raw")
        assert raw.url.startswith("rss://")
        trust = optionsForClientTLS("localhost", trustRoot=Certificate.loadPEM(cert.read_bytes()))
        endpoint = wrapClientTLS(trust, TCP4ClientEndpoint(reactor, raw.host, raw.port, timeout=10))
        factory = WampRawSocketClientFactory(lambda: Client(ComponentConfig(realm="demo")))
        protocol = await endpoint.connect(factory)
        joined.addTimeout(10, reactor)
        s = await joined
        try:
            assert (await s.call(uris.CHAT_SEND, "rawtls", "over rss"))["text"] == "over rss"
        finally:
            s.leave()
            protocol.transport.loseConnection()
    finally:
        await node.stop()


def chain(directory: Path) -> tuple[Path, Path, Path]:
    """A root CA, an intermediate signed by it and a localhost leaf signed by the intermediate: the root's
    file, the leaf followed by the intermediate (as a public CA delivers it), the leaf's key."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def make(name: str, issuer: Any, issuer_key: Any, ca: bool) -> tuple[x509.Certificate, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer is not None else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256()), key

    root, root_key = make("root", None, None, True)
    middle, middle_key = make("intermediate", root, root_key, True)
    leaf, leaf_key = make("localhost", middle, middle_key, False)
    pem = serialization.Encoding.PEM
    (directory / "root.pem").write_bytes(root.public_bytes(pem))
    (directory / "fullchain.pem").write_bytes(leaf.public_bytes(pem) + middle.public_bytes(pem))
    (directory / "leaf-key.pem").write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return directory / "root.pem", directory / "fullchain.pem", directory / "leaf-key.pem"


@pytest_twisted.ensureDeferred
async def test_the_whole_certificate_chain_is_sent(tmp_path: Path) -> None:
    """A certificate file with its intermediate after it (as public CAs deliver them): a client that
    trusts only the root verifies the listener (Crossbar alone sends the first certificate only)."""
    from twisted.internet import reactor

    root, fullchain, key = chain(tmp_path / "pki")
    web = site(tmp_path)
    doc = demo_document()
    doc["listen"][0]["web"] = {"/": str(web)}
    doc["listen"][0]["tls"] = {"cert": str(fullchain), "key": str(key)}
    node = await start_node(reactor, write_config(tmp_path, doc), tmp_path / "data")
    try:
        context = ssl.create_default_context(cafile=str(root))
        status, _, _ = await get(node, "/", context=context)
        assert status == 200
    finally:
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_dotfiles_and_special_files_are_not_served(reactor: Any, tmp_path: Path) -> None:
    """Names starting with a dot (.env, .git/config) and a FIFO answer 404; the router keeps answering."""
    web = site(tmp_path)
    (web / ".env").write_text("SECRET=1")
    (web / ".git").mkdir()
    (web / ".git" / "config").write_text("[core]")
    os.mkfifo(web / "pipe")
    doc = demo_document()
    doc["listen"][0]["web"] = {"/": str(web)}
    node = await start_node(reactor, write_config(tmp_path, doc), tmp_path / "data")
    try:
        for path in ("/.env", "/.git/config", "/%2eenv", "/pipe"):
            status, _, content = await get(node, path)
            assert status == 404, path
            assert b"SECRET" not in content
        assert (await get(node, "/app.js"))[0] == 200
    finally:
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_a_websocket_that_never_joins_is_closed_at_the_join_timeout(reactor: Any, tmp_path: Path) -> None:
    """A client past the WebSocket handshake that never sends HELLO is closed at `join_timeout` (4 s here);
    a joined session on the same node outlives it."""
    import socket
    import time

    from twisted.internet import task

    doc = demo_document()
    doc["limits"] = {"http_timeout": 2, "join_timeout": 4}
    doc["throttle"] = {"max_delay": 1}
    node = await start_node(reactor, write_config(tmp_path, doc), tmp_path / "data")
    transport = node.config.main_transport

    def silent_client() -> tuple[bytes, float]:
        started = time.monotonic()
        with socket.create_connection((transport.host, transport.port), timeout=15) as sock:
            sock.sendall(
                b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n"
            )
            status = sock.recv(12)
            try:
                while sock.recv(4096):  # until the router closes it (its pings are answered by no one)
                    pass
            except ConnectionResetError:
                pass  # closed by an abort
        return status, time.monotonic() - started

    try:
        async with session(reactor, node.url) as joined:
            status, lasted = await threads.deferToThread(silent_client)
            assert status == b"HTTP/1.1 101"
            assert 3 <= lasted < 12
            await task.deferLater(reactor, 1, lambda: None)
            assert (await joined.call(uris.CHAT_SEND, "joined", "still here"))["text"] == "still here"
    finally:
        await node.stop()
