"""
Startup time and memory: ``switchboard run`` vs a bare ``crossbar start``, interleaved, medians.

    .venv/bin/python bench/startup.py [--runs 3]

Bare Crossbar gets one router worker, one allow-all static role and one WebSocket transport; it counts as
ready when its port accepts a TCP connection. Switchboard (demo config) counts as ready when it prints its
ready line, i.e. after its probe session joined. RSS is the sum over the node's processes (controller and
router worker) once ready.
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

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEADLINE = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_rss_kib(root_pid: int) -> int:
    """RSS of root_pid's session (crossbar runs its controller and workers in one)."""
    total = 0
    sid = os.getsid(root_pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != sid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ProcessLookupError):
            continue
    return total


def bare_crossbar(workdir: Path) -> tuple[float, int]:
    port = free_port()
    cbdir = workdir / ".crossbar"
    cbdir.mkdir(parents=True)
    allow_all = {"call": True, "register": True, "publish": True, "subscribe": True}
    config = {
        "version": 2,
        "workers": [
            {
                "type": "router",
                "realms": [
                    {
                        "name": "demo",
                        "roles": [
                            {
                                "name": "anonymous",
                                "permissions": [{"uri": "", "match": "prefix", "allow": allow_all, "cache": True}],
                            }
                        ],
                    }
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
    start = time.monotonic()
    proc = subprocess.Popen(
        [str(BIN / "crossbar"), "start", "--cbdir", str(cbdir), "--loglevel", "warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.monotonic() - start < DEADLINE:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)
        elapsed = time.monotonic() - start
        return elapsed, tree_rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def switchboard(workdir: Path) -> tuple[float, int]:
    start = time.monotonic()
    proc = subprocess.Popen(
        [
            str(BIN / "switchboard"),
            "run",
            "--config",
            str(ROOT / "config" / "switchboard.json"),
            "--port",
            "0",
            "--data-dir",
            str(workdir / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        elapsed = time.monotonic() - start
        if not line.startswith("Switchboard ready"):
            raise RuntimeError(f"switchboard did not start: {line!r}")
        # The node runs in its own session; find it through the CLI's children.
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        rss = sum(tree_rss_kib(int(c)) for c in children)
        return elapsed, rss
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, int]]] = {"crossbar": [], "switchboard": []}
    for _ in range(args.runs):
        for name, fn in (("crossbar", bare_crossbar), ("switchboard", switchboard)):
            with tempfile.TemporaryDirectory() as tmp:
                results[name].append(fn(Path(tmp)))
    command = f".venv/bin/python bench/startup.py --runs {args.runs}"
    print(f"startup, median of {args.runs} interleaved runs (command: {command})")
    medians = {}
    for name, runs in results.items():
        t = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        medians[name] = (t, rss)
        each = ", ".join(f"{r[0]:.2f}" for r in runs)
        print(f"  {name:12s} ready in {t:5.2f} s   RSS {rss / 1024:6.1f} MiB   (runs: {each})")
    ratio = medians["switchboard"][0] / medians["crossbar"][0]
    print(f"  ratio switchboard/crossbar startup: {ratio:.2f}x")


if __name__ == "__main__":
    main()
