"""
Login storm: handshakes/s per auth method, the router's CPU per login, and whether the reactor stays
responsive (RPC latency of a canary session during the storm vs idle).

    .venv/bin/python bench/login_storm.py [--duration 5] [--concurrency 8] [--methods ticket,wampcra,...]

A Switchboard node on the demo config (plus scram, throttle off) is started on a free port. The storm runs
in a separate process (its clients compute KDFs too and must not slow the canary): CONCURRENCY loops that
connect, authenticate, join and leave, as fast as they can, for DURATION seconds. Meanwhile the canary, in
this process, calls ``sys.info`` back to back over one anonymous session and records each round trip.
Router CPU comes from /proc for the router worker. Figures are printed with the command that made them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey
from twisted.internet import defer, task, utils

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from router.credentials import password_credentials  # noqa: E402
from router.store import UserStore  # noqa: E402
from router.testing import session, start_node  # noqa: E402

METHODS = ("anonymous", "ticket", "wampcra", "scram", "cryptosign")
PASSWORD = "storm-password-1234"


def credentials(method: str, seed: str) -> dict[str, Any]:
    return {
        "anonymous": {},
        "ticket": {"ticket": PASSWORD},
        "wampcra": {"secret": PASSWORD},
        "scram": {"password": PASSWORD, "kdf": "argon2id13"},
        "cryptosign": {"privkey": seed},
    }[method]


async def storm(reactor: Any, args: argparse.Namespace) -> None:
    """Child process: login loops until the deadline; print counts as JSON."""
    deadline = reactor.seconds() + args.duration
    counts = {"ok": 0, "failed": 0}
    method = args.storm
    auth: dict[str, Any] = {} if method == "anonymous" else {"authmethod": method, "authid": "storm"}

    async def loop() -> None:
        while reactor.seconds() < deadline:
            try:
                async with session(reactor, args.url, **auth, **credentials(method, args.seed)):
                    pass
                counts["ok"] += 1
            except Exception:
                counts["failed"] += 1

    await defer.gatherResults([defer.ensureDeferred(loop()) for _ in range(args.concurrency)])
    print(json.dumps(counts))


async def canary(reactor: Any, url: str, duration: float) -> list[float]:
    """Back-to-back sys.info calls for ``duration`` seconds; round-trip times in ms."""
    times: list[float] = []
    async with session(reactor, url) as s:
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            start = time.perf_counter()
            await s.call("sys.info")
            times.append((time.perf_counter() - start) * 1000)
    return times


def router_cpu_seconds(pgid: int) -> float:
    """utime + stime of the router worker in the node's session."""
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != pgid:
                continue
            if (entry / "cmdline").read_bytes().split(b"\0")[0] != b"switchboard router":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ProcessLookupError):
            continue
    raise RuntimeError("router worker not found")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def orchestrate(reactor: Any, args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sb-storm-"))
    doc = json.loads((ROOT / "config" / "switchboard.json").read_text())
    doc["listen"][0]["auth"]["scram"] = {}
    doc["throttle"] = {"per_authid": 10**9, "per_peer": 10**9, "window": 1}
    doc.pop("$schema")
    config = tmp / "switchboard.json"
    config.write_text(json.dumps(doc))
    node = await start_node(reactor, config, tmp / "data")
    try:
        seed = SigningKey.generate()
        store = UserStore(node.store_path)
        store.add_user("demo", "storm", "user", password_credentials(PASSWORD))
        store.add_key("demo", "storm", seed.verify_key.encode().hex())
        store.close()
        pgid = node.process._pgid
        assert pgid is not None
        idle = await canary(reactor, node.url, args.duration)
        print(
            f"login storm (command: .venv/bin/python bench/login_storm.py --duration {args.duration:g} "
            f"--concurrency {args.concurrency} --methods {','.join(args.methods)})"
        )
        print(
            f"  canary sys.info idle: p50 {statistics.median(idle):.2f} ms, p99 {pct(idle, 0.99):.2f} ms "
            f"({len(idle)} calls)"
        )
        print(
            f"  {'method':<11} {'logins/s':>9} {'failed':>6} {'router ms/login':>16} {'canary p50':>11} "
            f"{'canary p99':>11} {'p99 vs idle':>12}"
        )
        for method in args.methods:
            cpu0 = router_cpu_seconds(pgid)
            child = utils.getProcessOutputAndValue(
                sys.executable,
                [
                    __file__,
                    "--storm",
                    method,
                    "--url",
                    node.url,
                    "--seed",
                    bytes(seed).hex(),
                    "--duration",
                    str(args.duration),
                    "--concurrency",
                    str(args.concurrency),
                ],
                env=dict(os.environ),
                reactor=reactor,
            )
            await task.deferLater(reactor, 0.5, lambda: None)  # let the storm ramp up
            during = await canary(reactor, node.url, max(1.0, args.duration - 1.0))
            out, err, code = await child
            cpu = router_cpu_seconds(pgid) - cpu0
            if code != 0:
                raise RuntimeError(f"storm process failed: {err.decode()[-2000:]}")
            counts = json.loads(out.decode().strip().splitlines()[-1])
            rate = counts["ok"] / args.duration
            per_login = cpu * 1000 / max(1, counts["ok"])
            ratio = pct(during, 0.99) / pct(idle, 0.99)
            print(
                f"  {method:<11} {rate:>9.1f} {counts['failed']:>6} {per_login:>16.2f} "
                f"{statistics.median(during):>9.2f}ms {pct(during, 0.99):>9.2f}ms {ratio:>11.1f}x"
            )
    finally:
        await node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS))
    parser.add_argument("--storm", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.storm:
        task.react(lambda reactor: defer.ensureDeferred(storm(reactor, args)))
    else:
        task.react(lambda reactor: defer.ensureDeferred(orchestrate(reactor, args)))


if __name__ == "__main__":
    main()
