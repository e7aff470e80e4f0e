"""The deployment recipes (deploy/, Dockerfile): quoted whole in docs/deployment.md, consistent with the
router's own settings, and the systemd unit accepted by ``systemd-analyze verify``.

The nginx recipe itself runs against a real nginx in tests/integration/test_nginx.py.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from router.config import load_config
from router.launch import component_import_problems
from router.process import NodeProcess

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = ROOT / "docs" / "deployment.md"
SCHEMA = json.loads((ROOT / "config" / "switchboard.schema.json").read_text())
UNIT = ROOT / "deploy" / "switchboard.service"

#: Every shipped recipe file and the fence language it is quoted with in the guide.
QUOTED = {
    "deploy/switchboard.service": "ini",
    "deploy/nginx.conf": "nginx",
    "deploy/nginx-proxy.conf": "nginx",
    "Dockerfile": "dockerfile",
}


def unit_settings() -> dict[str, list[str]]:
    """The unit file's ``Key=value`` settings (all sections), each key with all its values in order."""
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


@pytest.mark.parametrize("name", sorted(QUOTED))
def test_the_guide_quotes_each_recipe_file_whole(name: str) -> None:
    """docs/deployment.md contains each shipped recipe file, byte for byte, as one fenced block."""
    text = (ROOT / name).read_text()
    assert f"```{QUOTED[name]}\n{text}```\n" in DOC.read_text()


def test_nginx_keeps_an_idle_websocket_open_longer_than_the_router_pings() -> None:
    """nginx's read and send timeouts exceed the default ping interval plus ping timeout (the schema's),
    so the router's pings keep an idle WebSocket open through the proxy."""
    listener = SCHEMA["$defs"]["transport"]["properties"]
    ping = listener["ping_interval"]["default"] + listener["ping_timeout"]["default"]
    conf = (ROOT / "deploy" / "nginx-proxy.conf").read_text()
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        values = re.findall(rf"^\s*{directive} (\d+)s;", conf, re.MULTILINE)
        assert values, directive
        assert all(int(v) > ping for v in values), (directive, values, ping)


def test_unit_stops_the_node_within_its_own_grace() -> None:
    """systemd signals only ``switchboard run`` (KillMode=mixed) and waits longer than run's grace for
    Crossbar (NodeProcess.stop's default) before killing what is left."""
    settings = unit_settings()
    grace = inspect.signature(NodeProcess.stop).parameters["grace"].default
    assert settings["KillMode"] == ["mixed"]
    assert int(settings["TimeoutStopSec"][0]) > grace
    assert settings["Restart"] == ["on-failure"]
    assert "ExecReload" not in settings


def test_unit_checks_the_config_it_runs() -> None:
    """ExecStartPre runs ``switchboard check`` on the very config ExecStart runs, with the data directory
    systemd creates (StateDirectory)."""
    settings = unit_settings()
    check, run = settings["ExecStartPre"][0].split(), settings["ExecStart"][0].split()
    assert check[1] == "check"
    assert run[1] == "run"
    assert check[0] == run[0]
    assert check[check.index("--config") + 1] == run[run.index("--config") + 1]
    assert run[run.index("--data-dir") + 1] == "/var/lib/" + settings["StateDirectory"][0]


def test_unit_sandbox_allows_what_the_node_needs() -> None:
    """The unit keeps AF_UNIX (control and probe sockets), a read-only system, and leaves out
    MemoryDenyWriteExecute (Crossbar's zlmdb cffi callback needs W+X memory: the node does not start)."""
    settings = unit_settings()
    assert set(settings["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert settings["ProtectSystem"] == ["strict"]
    assert settings["NoNewPrivileges"] == ["yes"]
    assert settings["PrivateTmp"] == ["yes"]
    assert "MemoryDenyWriteExecute" not in settings
    assert "DynamicUser" not in settings
    assert settings["User"] == ["switchboard"]


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify`` reports nothing about the unit (unknown keys and bad values are only
    warnings, so its output must be empty). The program path is the venv's, which exists here."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is required (Debian: apt-get install systemd; .ci/run does)"
    executable = Path(shutil.which("switchboard") or ROOT / ".venv" / "bin" / "switchboard")
    assert executable.exists()
    unit = tmp_path / "switchboard.service"
    unit.write_text(UNIT.read_text().replace("/opt/switchboard/venv/bin/switchboard", str(executable)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_container_config_is_the_demo_listening_on_every_interface() -> None:
    """deploy/container.json is config/switchboard.json but for the main listener's host (0.0.0.0), the
    operations endpoints on a loopback port of their own (not published with the WebSocket port: /metrics
    would be public) and its schema path; it validates and its components import."""
    container = json.loads((ROOT / "deploy" / "container.json").read_text())
    demo = json.loads((ROOT / "config" / "switchboard.json").read_text())
    assert container["listen"][0]["host"] == "0.0.0.0"  # noqa: S104 (what the container config must say)
    assert container["operations"] == {"port": 9100}  # host: the default, 127.0.0.1
    container["listen"][0]["host"] = demo["listen"][0]["host"]
    container["operations"] = demo["operations"]
    container["$schema"] = demo["$schema"]
    assert container == demo
    config = load_config(ROOT / "deploy" / "container.json")
    assert component_import_problems(config) == []


def test_dockerfile_runs_unprivileged_on_a_volume_and_checks_health() -> None:
    """The image: python:3.11-slim, a non-root user, /data as a volume and the data directory, and a
    HEALTHCHECK on the container config's operations port at the default health path."""
    text = (ROOT / "Dockerfile").read_text()
    container = json.loads((ROOT / "deploy" / "container.json").read_text())
    health = SCHEMA["properties"]["operations"]["properties"]["health"]["default"]
    assert re.search(r"^FROM python:3\.11-slim$", text, re.MULTILINE)
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")
    assert "VOLUME /data" in text
    assert '"--data-dir", "/data"' in text
    assert '"/app/deploy/container.json"' in text
    assert f"http://127.0.0.1:{container['operations']['port']}{health}" in text


def test_dockerignore_keeps_local_state_out() -> None:
    """.dockerignore excludes the venv, node_modules, the data directories and .git from the build context."""
    entries = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "**/node_modules", ".switchboard", ".crossbar"} <= entries
