"""The shipped nginx recipe (deploy/nginx.conf, deploy/nginx-proxy.conf) in front of a real node (issue 13).

A real Debian nginx runs unprivileged in the foreground with the shipped files, changed only where
:data:`TEMPLATE` says (ports, certificate, include path), in front of a node on the demo config that lists
127.0.0.1 (nginx's address towards it) in ``trusted_proxies``. The shipped HTTPS server is used as it is;
plain ``ws://`` goes through a server of the test's own that includes the shipped locations (the shipped
port-80 server only redirects). Clients reach nginx from 127.0.0.2, so the address the node logs tells
whether it saw the client or the proxy.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.auth import create_authenticator
from autobahn.wamp.serializer import JsonSerializer
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer, threads
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.ssl import Certificate, optionsForClientTLS

from router.config import load_config
from router.launch import RunningNode, launch, with_port
from router.testkit import session
from router.tls import dev_certificate
from tests.conftest import ROOT, demo_document, running, write_config
from tests.integration.test_hardening_auth import NodeLines
from tests.integration.test_js_clients import run_node_tests

pytestmark = pytest.mark.integration

DEPLOY = ROOT / "deploy"
TIMEOUT = 15.0
#: Where the test's clients connect from: not nginx's address (127.0.0.1), so the node's view tells them apart.
CLIENT_ADDRESS = "127.0.0.2"

#: The only changes made to the shipped files: each text must be in the file (else the recipe changed and
#: this table with it). Values are formatted with the run's ports and paths.
TEMPLATE = {
    "nginx.conf": {
        "server 127.0.0.1:8080;": "server 127.0.0.1:{node_port};",
        "listen 443 ssl;": "listen 127.0.0.1:{https_port} ssl;",
        "listen [::]:443 ssl;": "",
        "listen 80;": "listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "/etc/letsencrypt/live/switchboard.example.com/fullchain.pem": "{cert}",
        "/etc/letsencrypt/live/switchboard.example.com/privkey.pem": "{key}",
        "include snippets/switchboard-proxy.conf;": "include {proxy_conf};",
    },
    "nginx-proxy.conf": {},
}

MAIN_CONF = """\
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site_conf};
    # The test's own plain-HTTP server, with the shipped locations.
    server {{
        listen 127.0.0.1:{ws_port};
        include {proxy_conf};
    }}
}}
"""


def render(name: str, values: dict[str, Any]) -> str:
    """The shipped file ``deploy/<name>`` with the :data:`TEMPLATE` replacements made."""
    text = (DEPLOY / name).read_text()
    for old, new in TEMPLATE[name].items():
        assert old in text, f"deploy/{name} no longer contains {old!r}: update TEMPLATE"
        text = text.replace(old, new.format(**values))
    return text


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (nginx binds it moments later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, deadline: float = 10.0) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; fail with nginx's log if it exits or times out."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            pytest.fail(f"nginx exited with {process.returncode}:\n{log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nginx did not listen on {port} within {deadline} s:\n{log.read_text() if log.exists() else ''}")


@dataclass
class Proxy:
    """nginx in front of a node: its URLs and the certificate its HTTPS server presents."""

    ws_url: str
    wss_url: str
    https_url: str
    http_url: str
    cert: Path
    node: RunningNode
    lines: NodeLines


@pytest.fixture(scope="module")
def proxy(reactor: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """A node on the demo config trusting 127.0.0.1 as its proxy (logging at info: failed logins are logged
    with the client's address), and nginx in front of it with the shipped files."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(nginx), "nginx is required (Debian: apt-get install nginx; .ci/run installs it)"
    doc = demo_document()
    doc["trusted_proxies"] = ["127.0.0.1"]
    tmp = tmp_path_factory.mktemp("nginx")
    lines = NodeLines()
    config = with_port(load_config(write_config(tmp, doc)), 0)
    with running(launch(reactor, config, tmp / "data", loglevel="info", on_line=lines.feed)) as node:
        prefix = tmp / "nginx"
        prefix.mkdir()
        cert, key = dev_certificate(tmp / "tls")
        values: dict[str, Any] = {
            "node_port": node.config.main_transport.port,
            "https_port": free_port(),
            "http_port": free_port(),
            "ws_port": free_port(),
            "cert": cert,
            "key": key,
            "prefix": prefix,
            "proxy_conf": prefix / "switchboard-proxy.conf",
            "site_conf": prefix / "switchboard.conf",
            # As root, nginx's workers would become `nobody`, who cannot enter the test's private directories.
            "user": f"user {pwd.getpwuid(0).pw_name};" if os.geteuid() == 0 else "",
        }
        values["proxy_conf"].write_text(render("nginx-proxy.conf", values))
        values["site_conf"].write_text(render("nginx.conf", values))
        main = prefix / "nginx.conf"
        main.write_text(MAIN_CONF.format(**values))
        log = prefix / "error.log"
        process = subprocess.Popen(
            [nginx, "-p", str(prefix), "-c", str(main), "-e", str(log), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            for port in ("https_port", "http_port", "ws_port"):
                wait_for_port(values[port], process, log)
            yield Proxy(
                ws_url=f"ws://127.0.0.1:{values['ws_port']}/ws",
                wss_url=f"wss://127.0.0.1:{values['https_port']}/ws",
                https_url=f"https://127.0.0.1:{values['https_port']}",
                http_url=f"http://127.0.0.1:{values['http_port']}",
                cert=cert,
                node=node,
                lines=lines,
            )
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def trust(proxy: Proxy) -> Any:
    """TLS options for Python clients that trust the proxy's test certificate."""
    return optionsForClientTLS("localhost", trustRoot=Certificate.loadPEM(proxy.cert.read_bytes()))


def fetch(url: str, cafile: Path | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` without following redirects (blocking: run it in a thread): status, headers, body."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(url, timeout=TIMEOUT) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest_twisted.ensureDeferred
async def test_python_client_calls_through_nginx_over_ws(reactor: Any, proxy: Proxy) -> None:
    """An autobahn session joins through nginx over ws:// and its call comes back from the hosted component."""
    async with session(reactor, proxy.ws_url) as s:
        sent = await s.call("chat.send", "nginx_ws", "hello through nginx")
        info = await s.call("sys.info")
    assert (sent["room"], sent["text"]) == ("nginx_ws", "hello through nginx")
    assert info["authrole"] == "anonymous"


@pytest_twisted.ensureDeferred
async def test_python_client_calls_through_nginx_over_wss(reactor: Any, proxy: Proxy) -> None:
    """An autobahn session joins through the shipped HTTPS server over wss:// (TLS ends at nginx)."""
    async with session(reactor, proxy.wss_url, tls=trust(proxy)) as s:
        sent = await s.call("chat.send", "nginx_wss", "hello through TLS")
    assert (sent["room"], sent["text"]) == ("nginx_wss", "hello through TLS")


@pytest_twisted.ensureDeferred
async def test_js_client_through_nginx_over_ws(reactor: Any, proxy: Proxy) -> None:
    """autobahn-js (Node) passes its whole test file (calls, events, errors) through nginx over ws://."""
    await run_node_tests(reactor, "autobahn.test.js", {"SWITCHBOARD_URL": proxy.ws_url})


@pytest_twisted.ensureDeferred
async def test_js_client_through_nginx_over_wss(reactor: Any, proxy: Proxy) -> None:
    """autobahn-js passes its test file through the shipped HTTPS server over wss://, trusting the test
    certificate (NODE_EXTRA_CA_CERTS)."""
    await run_node_tests(
        reactor, "autobahn.test.js", {"SWITCHBOARD_URL": proxy.wss_url, "NODE_EXTRA_CA_CERTS": str(proxy.cert)}
    )


class _FailedLogin(ApplicationSession):
    """Logs in with a wrong ticket; ``done`` fires with the router's refusal reason."""

    def __init__(self, done: defer.Deferred[str]) -> None:
        super().__init__(ComponentConfig(realm="demo"))
        self._done = done
        self._client = create_authenticator("ticket", ticket="not-the-password")

    def onConnect(self) -> None:
        self.join("demo", authmethods=["ticket"], authid="nginx_visitor")

    def onChallenge(self, challenge: Any) -> Any:
        return self._client.on_challenge(self, challenge)

    def onLeave(self, details: Any) -> None:
        if not self._done.called:
            self._done.callback(details.reason)
        super().onLeave(details)

    def onDisconnect(self) -> None:
        if not self._done.called:
            self._done.callback("disconnected")


@pytest_twisted.ensureDeferred
async def test_node_sees_the_client_address_nginx_forwards(reactor: Any, proxy: Proxy) -> None:
    """A failed login through nginx is logged with the client's own address (from nginx's X-Forwarded-For,
    believed because nginx is a trusted proxy), not nginx's, nor what the client wrote in the header."""
    done: defer.Deferred[str] = defer.Deferred()
    factory: Any = WampWebSocketClientFactory(
        lambda: _FailedLogin(done),
        url=proxy.ws_url,
        serializers=[JsonSerializer()],
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    port = int(proxy.ws_url.split(":")[2].split("/")[0])
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=TIMEOUT, bindAddress=(CLIENT_ADDRESS, 0))
    connected = await endpoint.connect(factory).addTimeout(TIMEOUT, reactor)
    try:
        assert await done.addTimeout(TIMEOUT, reactor) == "wamp.error.not_authorized"
    finally:
        connected.transport.loseConnection()
    # The failure's log line, whatever its wording: the one naming this authid and a peer.
    line = await proxy.lines.first(lambda text: "authid=nginx_visitor" in text and "peer=" in text).addTimeout(
        TIMEOUT, reactor
    )
    assert f"peer={CLIENT_ADDRESS}" in line
    assert "203.0.113.9" not in line


@pytest_twisted.ensureDeferred
async def test_web_app_is_served_through_nginx(reactor: Any, proxy: Proxy) -> None:
    """The demo web app's index.html comes through the HTTPS server byte for byte, with the node's
    nosniff header."""
    status, headers, body = await threads.deferToThread(fetch, proxy.https_url + "/", proxy.cert)
    assert status == 200
    assert body == (ROOT / "web" / "index.html").read_bytes()
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest_twisted.ensureDeferred
async def test_plain_http_redirects_to_https(reactor: Any, proxy: Proxy) -> None:
    """The shipped port-80 server answers every request with a permanent redirect to the same URL over HTTPS."""
    status, headers, _ = await threads.deferToThread(fetch, proxy.http_url + "/ws?x=1")
    assert status == 301
    assert headers["Location"].startswith("https://")
    assert headers["Location"].endswith("/ws?x=1")


@pytest_twisted.ensureDeferred
async def test_metrics_are_not_served_through_nginx(reactor: Any, proxy: Proxy) -> None:
    """/metrics is refused by nginx itself (403): Prometheus scrapes the node, not the public proxy."""
    status, _, _ = await threads.deferToThread(fetch, proxy.https_url + "/metrics", proxy.cert)
    assert status == 403
