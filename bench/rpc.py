"""
RPC throughput: a Switchboard node with the demo's roles vs a bare Crossbar node with one allow-all role.

    .venv/bin/python bench/rpc.py [--duration 5] [--window 16] [--runs 3]

Both nodes host the same callee (the demo chat component, in the router worker) and are driven by the same
load: one load-generator process (Python, autobahn over WebSocket/JSON) keeping WINDOW calls of
``chat.history("bench", 1)`` in flight as an anonymous session. Runs alternate between the two nodes;
medians are reported with the router worker's CPU per call (from /proc) and the ratio Switchboard/bare.
The load generator is Python: at these rates it may itself be the bottleneck, for both nodes alike.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, task

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from router.testing import session, start_node  # noqa: E402

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def router_cpu(pgid: int, title: bytes) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != pgid or (entry / "cmdline").read_bytes().split(b"\0")[0] != title:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ProcessLookupError):
            continue
    raise RuntimeError(f"no {title!r} process in session {pgid}")


def bare_crossbar(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A plain ``crossbar start``: one allow-all role, the same components, a plain WebSocket transport."""
    port = free_port()
    cbdir = workdir / ".crossbar"
    cbdir.mkdir(parents=True)
    allow = {"call": True, "register": True, "publish": True, "subscribe": True}
    everything = {"uri": "", "match": "prefix", "allow": allow, "disclose": {"caller": True, "publisher": True}}
    config = {
        "version": 2,
        "workers": [
            {
                "type": "router",
                "realms": [
                    {"name": "demo", "roles": [{"name": "anonymous", "permissions": [{**everything, "cache": True}]}]}
                ],
                "components": [
                    {"type": "class", "classname": c, "realm": "demo", "role": "anonymous"}
                    for c in ("components.chat.ChatComponent", "components.system.SystemComponent")
                ],
                "transports": [
                    {
                        "type": "websocket",
                        "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"},
                        "auth": {"anonymous": {"type": "static", "role": "anonymous"}},
                    }
                ],
            }
        ],
    }
    (cbdir / "config.json").write_text(json.dumps(config))
    proc = subprocess.Popen(
        [str(BIN / "crossbar"), "start", "--cbdir", str(cbdir), "--loglevel", "warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc, f"ws://127.0.0.1:{port}/ws"


async def wait_joinable(reactor: Any, url: str, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            async with session(reactor, url):
                return
        except Exception:
            if time.monotonic() > end:
                raise
            await task.deferLater(reactor, 0.2, lambda: None)


async def load(reactor: Any, url: str, duration: float, window: int) -> int:
    """Calls completed in ``duration`` seconds with ``window`` in flight."""
    done = 0
    async with session(reactor, url) as s:
        await s.call("chat.send", "bench", "warm up")
        deadline = time.monotonic() + duration

        async def caller() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await s.call("chat.history", "bench", 1)
                done += 1

        await defer.gatherResults([defer.ensureDeferred(caller()) for _ in range(window)])
    return done


async def main(reactor: Any, args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sb-rpc-"))
    node = await start_node(reactor, ROOT / "config" / "switchboard.json", tmp / "switchboard")
    bare, bare_url = bare_crossbar(tmp / "bare")
    try:
        await wait_joinable(reactor, bare_url)
        targets = {
            "switchboard": (node.url, node.process._pgid, b"switchboard router"),
            "crossbar": (bare_url, bare.pid, b"crossbar-worker"),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
        for _ in range(args.runs):
            for name, (url, pgid, title) in targets.items():
                title = title if name == "switchboard" else _worker_title(pgid)
                cpu0 = router_cpu(pgid, title)
                calls = await load(reactor, url, args.duration, args.window)
                cpu = router_cpu(pgid, title) - cpu0
                results[name].append((calls / args.duration, cpu * 1e6 / max(1, calls)))
        print(
            f"RPC chat.history, WebSocket/JSON, window {args.window}, {args.duration:g} s x {args.runs} runs, "
            f"medians (command: .venv/bin/python bench/rpc.py --duration {args.duration:g} --window {args.window} "
            f"--runs {args.runs})"
        )
        medians = {}
        for name, runs in results.items():
            rate = statistics.median(r[0] for r in runs)
            cpu_us = statistics.median(r[1] for r in runs)
            medians[name] = rate
            each = ", ".join(f"{r[0]:.0f}" for r in runs)
            print(f"  {name:12s} {rate:8.0f} calls/s   router CPU {cpu_us:6.0f} us/call   (runs: {each})")
        print(f"  ratio switchboard/crossbar: {medians['switchboard'] / medians['crossbar']:.2f}x")
    finally:
        bare.terminate()
        bare.wait(timeout=30)
        await node.stop()


def _worker_title(pgid: int) -> bytes:
    """Crossbar names its router worker process after the worker; find the non-controller one."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != pgid:
            try:
                if os.getsid(int(entry.name)) == pgid:
                    return (entry / "cmdline").read_bytes().split(b"\0")[0]
            except (OSError, ProcessLookupError):
                continue
    raise RuntimeError("bare crossbar router worker not found")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, options)))
