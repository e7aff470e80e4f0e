"""
The three systems under test, started as real processes, and what /proc says about them.

- ``switchboard``: ``switchboard run`` on the demo config, plus what the benchmark needs: a RawSocket
  listener and a ``bench`` URI prefix the anonymous role may use (every other setting is the demo's).
- ``crossbar``: a hand-written ``crossbar start`` config: one router worker, one allow-all static role,
  the same transports (WebSocket and RawSocket, json/msgpack/cbor), static principals for the login storm.
- ``echo``: ``bench/echo.py``, autobahn's WebSocket protocol and a RawSocket-framed echo, no WAMP.

All bind 127.0.0.1 on ports chosen at run time. ``router_pids`` are the processes doing the routing
(Crossbar's router workers, or the echo process), whose CPU and RSS the report quotes.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
START_TIMEOUT = 120.0
REALM = "demo"

# The login-storm user, on every node.
AUTHID = "bench"
PASSWORD = "bench-password-1"
SEED = "9" * 64  # Ed25519 seed (hex); the public key is derived from it
WAMPCRA_SALT, WAMPCRA_ITERATIONS, WAMPCRA_KEYLEN = "bench-salt", 100000, 32
LOGIN_METHODS = ("anonymous", "ticket", "wampcra", "cryptosign")


@dataclass
class Target:
    name: str
    kind: str  # "wamp" or "echo"
    process: subprocess.Popen[bytes]
    host: str
    websocket: int
    rawsocket: int
    startup_s: float
    path: str = "ws"
    workdir: Path | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.websocket}/{self.path}"

    def describe(self) -> dict[str, Any]:
        """What the Node load generator needs to connect."""
        return {"kind": self.kind, "url": self.url, "host": self.host, "rawsocket": self.rawsocket, "realm": REALM}

    def router_pids(self) -> list[int]:
        """Processes that route: Crossbar router workers (not the controller), or the echo server."""
        if self.kind == "echo":
            return [self.process.pid]
        return [
            p
            for p in descendants(self.process.pid)
            if _title(p).startswith((b"switchboard router", b"crossbar-worker"))
        ]

    def rss_kib(self) -> int:
        """RSS of every process of this target (for Switchboard: the CLI, Crossbar's controller and workers)."""
        return rss_kib([self.process.pid, *descendants(self.process.pid)])

    def pin(self, cpus: set[int]) -> None:
        """Pin every thread of every process of this target to ``cpus``."""
        for pid in [self.process.pid, *descendants(self.process.pid)]:
            pin_process(pid, cpus)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=10)


def pin_process(pid: int, cpus: set[int]) -> None:
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except (OSError, ValueError):
            continue


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _title(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return b""


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` (all their threads), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} (exit code {process.poll()})") from None
            time.sleep(0.02)


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """One line of ``process``'s stdout, or RuntimeError after ``timeout`` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(process.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise RuntimeError(f"no output within {timeout:g} s")
    return process.stdout.readline().decode()


def _drain(process: subprocess.Popen[bytes]) -> None:
    """Read (and drop) the rest of ``process``'s output: a full pipe would block the node (its log lines
    at info, session joins and leaves among them, go to that output too; node.log keeps them)."""
    stdout = process.stdout
    assert stdout is not None

    def drop() -> None:
        while stdout.read1(65536):
            pass

    threading.Thread(target=drop, daemon=True, name="bench-drain").start()


def public_key(seed_hex: str) -> str:
    from nacl.signing import SigningKey

    return SigningKey(bytes.fromhex(seed_hex)).verify_key.encode().hex()


#: The benchmark's load comes from one address (127.0.0.1): up to 10k sessions at once and login storms.
#: Its Switchboard node lifts the per-address caps that would otherwise (rightly) refuse such a client;
#: everything else, the throttle's bookkeeping included, runs as in production.
ONE_LOAD_ADDRESS = {
    "limits": {"max_connections": 20_000, "max_connections_per_peer": 20_000},
    # The login storm logs one user in from one address, many at once: logins in flight count.
    "throttle": {"per_peer": 1_000_000, "per_authid": 1_000_000},
}


#: :data:`ONE_LOAD_ADDRESS` without ``/metrics`` (the demo config serves it): the per-message counts are off.
NO_METRICS = {**ONE_LOAD_ADDRESS, "operations": {"metrics": None}}


#: The channel of the ``channels`` scenario: every topic under ``bench.channel`` keeps 1 000 events and lists its
#: subscribers (the demo's ``bench`` rule lets the anonymous role publish and subscribe there).
CHANNEL_PREFIX = "bench.channel"
CHANNEL_HISTORY_SIZE = 1000
BENCH_CHANNEL: dict[str, Any] = {
    "topic": CHANNEL_PREFIX,
    "match": "prefix",
    "history": {"size": CHANNEL_HISTORY_SIZE},
    "presence": True,
}


def bench_config(overrides: dict[str, Any] | None = None, channels: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """The demo config, plus a RawSocket listener, the ``bench`` prefix for anonymous sessions and
    ``channels`` in the demo realm (after the demo's own). With ``workers`` above 1 in ``overrides`` the
    demo's channels lose their presence (docs/scaling.md)."""
    config: dict[str, Any] = json.loads((ROOT / "config" / "switchboard.json").read_text())
    config.update(overrides or {})
    if config.get("workers", 1) > 1:
        for realm in config["realms"]:
            for channel in realm.get("channels", []):
                channel.pop("presence", None)
    config.pop("$schema", None)
    main = config["listen"][0]
    main["port"] = 0
    main.pop("web", None)  # the demo's pages are relative to config/, and no load fetches them
    config["listen"].append({"name": "raw", "type": "rawsocket", "host": main["host"], "port": 0, "auth": main["auth"]})
    bench_rule = {"uri": "bench", "match": "prefix", "actions": ["call", "register", "publish", "subscribe"]}
    config["realms"][0]["roles"]["anonymous"]["allow"].append(bench_rule)
    config["realms"][0].setdefault("channels", []).extend(channels)
    return config


def start_switchboard(
    workdir: Path,
    speedups: bool = True,
    overrides: dict[str, Any] | None = None,
    channels: tuple[dict[str, Any], ...] = (),
    name: str | None = None,
    env: dict[str, str] | None = None,
) -> Target:
    """``switchboard run`` on :func:`bench_config` (with ``overrides`` of top-level keys, and ``channels``;
    ``env`` adds to the environment)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "switchboard.json"
    config_path.write_text(json.dumps(bench_config(overrides, channels), indent=2))
    data = workdir / "data"
    common = ["--config", str(config_path), "--data-dir", str(data)]
    sb = str(BIN / "switchboard")
    subprocess.run([sb, "user", "add", AUTHID, "--role", "user", "--password-stdin", *common],
                   input=PASSWORD.encode(), check=True, capture_output=True)  # fmt: skip
    subprocess.run([sb, "key", "add", AUTHID, public_key(SEED), *common], check=True, capture_output=True)
    start = time.monotonic()
    process_env = dict(os.environ, SWITCHBOARD_SPEEDUPS="1" if speedups else "0", **(env or {}))
    process = subprocess.Popen(
        [sb, "run", "--port", "0", *common],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=process_env,
    )
    try:
        line = _read_line(process, START_TIMEOUT)
        while line and not line.startswith("Switchboard ready"):
            line = _read_line(process, START_TIMEOUT)
        if not line:
            raise RuntimeError(f"switchboard did not start; see {data / 'node.log'}")
    except BaseException:
        process.kill()
        raise
    _drain(process)
    startup = time.monotonic() - start
    compiled = json.loads((data / ".crossbar" / "config.json").read_text())
    websocket, rawsocket = _ports(compiled)
    name = name or ("switchboard" if speedups else "switchboard-nospeedups")
    return Target(name, "wamp", process, "127.0.0.1", websocket, rawsocket, startup, workdir=workdir)


def _ports(compiled: dict[str, Any]) -> tuple[int, int]:
    transports = compiled["workers"][0]["transports"]
    websocket = next(t["endpoint"]["port"] for t in transports if t["type"] in ("web", "websocket"))
    rawsocket = next(t["endpoint"]["port"] for t in transports if t["type"] == "rawsocket" and "port" in t["endpoint"])
    return websocket, rawsocket


def crossbar_config(websocket: int, rawsocket: int) -> dict[str, Any]:
    """What a Crossbar user would write by hand: allow-all, static principals, library defaults."""
    allow = {"call": True, "register": True, "publish": True, "subscribe": True}
    permission = {"uri": "", "match": "prefix", "allow": allow, "disclose": {"caller": True, "publisher": True}}
    auth = {
        "anonymous": {"type": "static", "role": "anonymous"},
        "ticket": {"type": "static", "principals": {AUTHID: {"ticket": PASSWORD, "role": "anonymous"}}},
        "wampcra": {
            "type": "static",
            "users": {
                AUTHID: {
                    "secret": PASSWORD,
                    "role": "anonymous",
                    "salt": WAMPCRA_SALT,
                    "iterations": WAMPCRA_ITERATIONS,
                    "keylen": WAMPCRA_KEYLEN,
                }
            },
        },
        "cryptosign": {
            "type": "static",
            "principals": {AUTHID: {"realm": REALM, "role": "anonymous", "authorized_keys": [public_key(SEED)]}},
        },
    }
    serializers = ["json", "msgpack", "cbor"]
    return {
        "version": 2,
        "workers": [
            {
                "type": "router",
                "realms": [
                    {"name": REALM, "roles": [{"name": "anonymous", "permissions": [{**permission, "cache": True}]}]}
                ],
                "transports": [
                    {
                        "type": "websocket",
                        "endpoint": {"type": "tcp", "port": websocket, "interface": "127.0.0.1"},
                        "serializers": serializers,
                        "auth": auth,
                    },
                    {
                        "type": "rawsocket",
                        "endpoint": {"type": "tcp", "port": rawsocket, "interface": "127.0.0.1"},
                        "serializers": serializers,
                        "auth": {"anonymous": auth["anonymous"]},
                    },
                ],
            }
        ],
    }


def start_crossbar(workdir: Path) -> Target:
    cbdir = workdir / ".crossbar"
    cbdir.mkdir(parents=True, exist_ok=True)
    websocket, rawsocket = free_port(), free_port()
    (cbdir / "config.json").write_text(json.dumps(crossbar_config(websocket, rawsocket), indent=2))
    start = time.monotonic()
    process = subprocess.Popen(
        [str(BIN / "crossbar"), "start", "--cbdir", str(cbdir), "--loglevel", "warn"],
        stdout=(workdir / "node.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = start + START_TIMEOUT
    try:
        _wait_port(websocket, process, deadline)
        _wait_port(rawsocket, process, deadline)
    except BaseException:
        os.killpg(process.pid, 9)
        raise
    return Target("crossbar", "wamp", process, "127.0.0.1", websocket, rawsocket, time.monotonic() - start,
                  path="", workdir=workdir)  # fmt: skip


def start_echo(workdir: Path) -> Target:
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "echo.py")], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        ports = json.loads(_read_line(process, START_TIMEOUT))
    except BaseException:
        process.kill()
        raise
    return Target("echo", "echo", process, "127.0.0.1", ports["websocket"], ports["rawsocket"],
                  time.monotonic() - start, path="", workdir=workdir)  # fmt: skip


def start_switchboard_channels(workdir: Path) -> Target:
    """The ``switchboard`` system with :data:`BENCH_CHANNEL` added: ``bench.fanout`` stays a plain topic."""
    return start_switchboard(workdir, overrides=ONE_LOAD_ADDRESS, channels=(BENCH_CHANNEL,))


STARTERS: dict[str, Callable[[Path], Target]] = {
    "switchboard": lambda workdir: start_switchboard(workdir, overrides=ONE_LOAD_ADDRESS),
    "crossbar": start_crossbar,
    "echo": start_echo,
    # router/seam/speedups.py switched off: what the speed-ups are worth.
    "switchboard-nospeedups": lambda workdir: start_switchboard(workdir, False, ONE_LOAD_ADDRESS),
    # router/seam/framing.py and the C extension switched off: what C WebSocket framing is worth.
    "switchboard-nowsframe": lambda workdir: start_switchboard(
        workdir, overrides=ONE_LOAD_ADDRESS, name="switchboard-nowsframe", env={"SWITCHBOARD_WSFRAME": "0"}
    ),
    # router/seam/fastpath.py switched off: what the synchronous fast paths are worth.
    "switchboard-nofastpath": lambda workdir: start_switchboard(
        workdir, overrides=ONE_LOAD_ADDRESS, name="switchboard-nofastpath", env={"SWITCHBOARD_FASTPATH": "0"}
    ),
    # Several router workers sharing the ports, linked by rlinks (docs/scaling.md); the operations endpoints on
    # a port of their own, as required with more than one worker.
    "switchboard-2w": lambda workdir: start_switchboard(
        workdir, overrides={**ONE_LOAD_ADDRESS, "workers": 2, "operations": {"port": 0}}, name="switchboard-2w"
    ),
    "switchboard-4w": lambda workdir: start_switchboard(
        workdir, overrides={**ONE_LOAD_ADDRESS, "workers": 4, "operations": {"port": 0}}, name="switchboard-4w"
    ),
    # /metrics not served, so nothing counted per message: what the metrics cost (bench/metrics_overhead.py).
    "switchboard-nometrics": lambda workdir: start_switchboard(
        workdir, overrides=NO_METRICS, name="switchboard-nometrics"
    ),
}
