"""
The benchmark suite: Switchboard vs a bare Crossbar node vs an echo server, in one run, interleaved.

    .venv/bin/python bench/run.py                 # full run, 3 repetitions (about 15 minutes)
    .venv/bin/python bench/run.py --quick         # every scenario once with tiny sizes (the CI smoke run)
    .venv/bin/python bench/run.py --only rpc,fanout --reps 5 --json results.json

Scenarios (load from Node, bench/js: for ``rpc`` and ``fanout`` a lean WAMP client over WebSocket/JSON and
RawSocket/msgpack, so the load generator is not the bottleneck, and autobahn-js as a second case; autobahn-js
for the others):

- ``rpc``: one callee and one caller session, 1/16/64 calls in flight, WebSocket/JSON and RawSocket/msgpack,
  and WebSocket/JSON with autobahn-js at 16 in flight;
- ``fanout``: one publisher, 1/10/100/1000 subscribers (deliveries/s, publish-to-receive latency), and
  100 subscribers with autobahn-js;
- ``idle``: 1k and 10k joined idle sessions on a freshly started node (join rate, router RSS per session);
  these fresh starts also give the startup time (ready line vs. port open) and RSS at ready;
- ``login``: join + leave in a loop, per auth method, with a canary session calling an RPC every 5 ms;
- ``channels`` (Switchboard only): on one node, fan-out to 100 subscribers of a channel topic with history
  and presence and of a plain topic, taking turns; then, on fresh nodes, router RSS before and after
  10k events stored in the channel's history.

``--profile DIR`` samples each router worker with py-spy (the ``bench`` extra) over every measured
``rpc`` and ``fanout`` load and writes a flame graph (``.svg``), its collapsed stacks (``.txt``) and a
summary of the top frames (``.top.txt``) per system and case, the last repetition's winning; py-spy runs
on the load's CPU, so the rates of such a run are not the figures to quote.

For each scenario the systems take turns (switchboard, crossbar, echo, switchboard, ...), each repetition
in a fresh load process; the report gives medians. The router is pinned to CPU 0 and the load to CPU 1
(when there are two). "router CPU" is the CPU time of the routing processes over the measured interval,
divided by the operations completed in it.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import profile_summary, render
from targets import (
    AUTHID,
    CHANNEL_HISTORY_SIZE,
    CHANNEL_PREFIX,
    LOGIN_METHODS,
    PASSWORD,
    ROOT,
    SEED,
    STARTERS,
    Target,
    cpu_seconds,
    rss_kib,
    start_switchboard_channels,
)

LOAD_JS = ROOT / "bench" / "js" / "load.js"
BIN_DIR = Path(sys.executable).parent
SYSTEMS = ("switchboard", "crossbar", "echo")
ECHO_SCENARIOS = {"rpc", "idle"}  # the echo server has no pub/sub and no login
VARIANT_SCENARIOS = {"rpc", "fanout"}  # where the --systems variants of Switchboard are measured too
SCENARIOS = ("rpc", "fanout", "idle", "login", "channels", "scale")
#: The systems of the ``scale`` scenario: one router worker, two, four (docs/scaling.md).
SCALE_SYSTEMS = ("switchboard", "switchboard-2w", "switchboard-4w")
SCALE_WORKERS = {"switchboard": 1, "switchboard-2w": 2, "switchboard-4w": 4}
PLAIN_TOPIC = "bench.fanout"
CHANNEL_TOPIC = f"{CHANNEL_PREFIX}.fanout"
#: Events per topic in the RSS measurement: the channel's history size, so every event stays stored.
EVENTS_PER_TOPIC = CHANNEL_HISTORY_SIZE
#: The WebSocket/JSON client of the rpc and fanout cases (bench/js/clients.js), and the second one's case suffix.
LEAN, AUTOBAHN = "lean", "autobahn"
AUTOBAHN_CASE = " autobahn-js"


@dataclass(frozen=True)
class Plan:
    reps: int
    duration: float
    warmup_ms: int
    rpc_windows: tuple[int, ...]
    transports: tuple[str, ...]
    fanout: tuple[int, ...]
    autobahn_rpc_windows: tuple[int, ...]  # the WebSocket/JSON rpc cases also run with autobahn-js
    autobahn_fanout: tuple[int, ...]  # the fan-out cases also run with autobahn-js
    idle: tuple[int, ...]
    logins: tuple[str, ...]
    login_concurrency: int
    channel_subscribers: int
    channel_events: int  # a multiple of EVENTS_PER_TOPIC
    # The scale cases: ("rpc", callers, calls/s) or ("fanout", subscribers, publications/s), fixed offered rates.
    scale: tuple[tuple[str, int, int], ...] = ()
    scale_systems: tuple[str, ...] = SCALE_SYSTEMS


PLANS = {
    "full": Plan(3, 5.0, 1000, (1, 16, 64), ("websocket", "rawsocket"), (1, 10, 100, 1000), (16,), (100,),
                 (1000, 10000), LOGIN_METHODS, 8, 100, 10000,
                 (("rpc", 8, 2000), ("fanout", 10, 1000), ("fanout", 100, 200), ("fanout", 1000, 20))),
    "quick": Plan(1, 0.5, 200, (16,), ("websocket", "rawsocket"), (10,), (), (), (100,), ("anonymous", "ticket"),
                  2, 10, 2000, (("rpc", 4, 200), ("fanout", 10, 50)), SCALE_SYSTEMS[:2]),
}  # fmt: skip


class LoadError(RuntimeError):
    pass


class Cpus:
    """Which CPUs the router and the load run on: apart when there are at least two."""

    def __init__(self) -> None:
        available = sorted(os.sched_getaffinity(0))
        self.router = {available[0]} if len(available) > 1 else set(available)
        self.load = set(available[1:]) if len(available) > 1 else set(available)


class Load:
    """One Node load-generator process, read line by line with a deadline."""

    def __init__(self, options: dict[str, Any], cpus: set[int], timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.process = subprocess.Popen(
            ["node", str(LOAD_JS), json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )
        self._selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self._selector.register(self.process.stdout, selectors.EVENT_READ)

    def next_event(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        if not self._selector.select(max(0.0, self.deadline - time.monotonic())):
            raise LoadError("load generator timed out")
        line = self.process.stdout.readline()
        if not line:
            raise LoadError(f"load generator exited with code {self.process.wait(timeout=10)}")
        event: dict[str, Any] = json.loads(line)
        return event

    def expect(self, name: str) -> dict[str, Any]:
        event = self.next_event()
        if event["event"] != name:
            raise LoadError(f"expected {name!r} from the load generator, got {event}")
        return event

    def send(self, line: str) -> None:
        """Write one line to its stdin: the signal to go on."""
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def release(self) -> None:
        """Close its stdin: the signal to stop holding sessions or calling."""
        assert self.process.stdin is not None
        self.process.stdin.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self._selector.close()


@contextmanager
def load(options: dict[str, Any], cpus: set[int], timeout: float) -> Iterator[Load]:
    proc = Load(options, cpus, timeout)
    try:
        yield proc
    finally:
        proc.kill()


class Suite:
    """Runs the chosen scenarios against the chosen systems, taking turns, and collects one sample each."""

    def __init__(
        self,
        plan: Plan,
        only: set[str],
        workdir: Path,
        systems: tuple[str, ...] = SYSTEMS,
        profile: Path | None = None,
    ) -> None:
        self.plan = plan
        self.profile = profile
        self.only = only
        self.all_systems = systems
        self.workdir = workdir
        self.cpus = Cpus()
        self.samples: list[dict[str, Any]] = []
        self._started = 0

    def start(self, system: str, starter: Callable[[Path], Target] | None = None) -> Target:
        self._started += 1
        target = (starter or STARTERS[system])(self.workdir / f"{system}-{self._started}")
        target.pin(self.cpus.router)
        return target

    def record(self, group: str, case: str, target: Target, **metrics: Any) -> None:
        sample = {"group": group, "case": case, "system": target.name, **metrics}
        self.samples.append(sample)
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
        print(f"  {group:7s} {case:22s} {target.name:12s} {shown}", flush=True)

    def options(self, target: Target, scenario: str, **extra: Any) -> dict[str, Any]:
        return {"scenario": scenario, "target": target.describe(), "warmup_ms": self.plan.warmup_ms, **extra}

    def measured(self, target: Target, options: dict[str, Any], label: str = "") -> dict[str, Any]:
        """Run one load to its result; add the router CPU per operation over the measured interval (and,
        with ``--profile``, sample the router with py-spy over it; ``label`` names the files)."""
        pids = target.router_pids()
        with load(options, self.cpus.load, timeout=self.plan.duration + 120) as proc:
            proc.expect("ready")
            proc.expect("measure")
            cpu0, load0 = cpu_seconds(pids), cpu_seconds([proc.process.pid])
            with self.profiled(target, pids, label):
                proc.expect("stop")
                cpu, load_cpu = cpu_seconds(pids) - cpu0, cpu_seconds([proc.process.pid]) - load0
            result = proc.expect("result")
        result["cpu_us"] = cpu * 1e6 / max(1, result["ops"])
        result["router_cpu_pct"] = 100 * cpu / result["seconds"]
        result["load_cpu_pct"] = 100 * load_cpu / result["seconds"]
        result["rss_mib"] = rss_kib(pids) / 1024
        return result

    @contextmanager
    def profiled(self, target: Target, pids: list[int], label: str) -> Iterator[None]:
        """With ``--profile`` and a ``label``: py-spy on each router process while the body runs."""
        if self.profile is None or not label or target.kind != "wamp":
            yield
            return
        self.profile.mkdir(parents=True, exist_ok=True)
        spy = str(BIN_DIR / "py-spy")
        seconds = str(max(1, int(self.plan.duration)))
        runs: list[tuple[Path, subprocess.Popen[bytes]]] = []
        for n, pid in enumerate(pids):
            stem = f"{target.name}-{label}" + (f"-{n}" if len(pids) > 1 else "")
            for fmt, suffix in (("flamegraph", ".svg"), ("raw", ".txt")):
                out = self.profile / (stem.replace(" ", "-") + suffix)
                command = [spy, "record", "--pid", str(pid), "--format", fmt, "--output", str(out), "--duration",
                           seconds, "--rate", "250", "--nonblocking", "--function"]  # fmt: skip
                spying = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          preexec_fn=lambda: os.sched_setaffinity(0, self.cpus.load))  # fmt: skip
                runs.append((out, spying))
        try:
            yield
        finally:
            for out, run in runs:
                try:
                    run.wait(timeout=self.plan.duration + 30)
                except subprocess.TimeoutExpired:
                    run.kill()
                    run.wait(timeout=10)
                if out.suffix == ".txt" and out.exists():
                    out.with_suffix(".top.txt").write_text(profile_summary(out.read_text()) + "\n")

    # -- scenarios ---------------------------------------------------------------------------------------

    def rpc(self, target: Target) -> None:
        cases = [(t, w, LEAN) for t in self.plan.transports for w in self.plan.rpc_windows]
        cases += [("websocket", w, AUTOBAHN) for w in self.plan.autobahn_rpc_windows]
        for transport, window, client in cases:
            case = f"{transport} w{window}" + (AUTOBAHN_CASE if client == AUTOBAHN else "")
            options = self.options(target, "rpc", transport=transport, window=window, duration=self.plan.duration,
                                   client=client)  # fmt: skip
            r = self.measured(target, options, "rpc-" + case)
            self.record("rpc", case, target, rate=r["rate"], p50_ms=r["p50_ms"], p99_ms=r["p99_ms"],
                        cpu_us=r["cpu_us"], router_cpu_pct=r["router_cpu_pct"], load_cpu_pct=r["load_cpu_pct"],
                        rss_mib=r["rss_mib"])  # fmt: skip

    def fanout(self, target: Target) -> None:
        cases = [(n, LEAN) for n in self.plan.fanout] + [(n, AUTOBAHN) for n in self.plan.autobahn_fanout]
        for n, client in cases:
            case = f"{n} subscribers" + (AUTOBAHN_CASE if client == AUTOBAHN else "")
            options = self.options(target, "fanout", transport="websocket", subscribers=n, duration=self.plan.duration,
                                   client=client)  # fmt: skip
            r = self.measured(target, options, "fanout-" + case)
            self.record("fanout", case, target, rate=r["rate"], p50_ms=r["p50_ms"], p99_ms=r["p99_ms"],
                        cpu_us=r["cpu_us"], router_cpu_pct=r["router_cpu_pct"], load_cpu_pct=r["load_cpu_pct"],
                        rss_mib=r["rss_mib"])  # fmt: skip

    def login_options(self, target: Target, method: str) -> dict[str, Any]:
        credentials = {"authid": AUTHID, "password": PASSWORD, "seed": SEED}
        concurrency, duration = self.plan.login_concurrency, self.plan.duration
        return self.options(target, "login", method=method, credentials=credentials, concurrency=concurrency,
                            duration=duration)  # fmt: skip

    def login(self, target: Target) -> None:
        for method in self.plan.logins:
            with load(self.options(target, "canary"), self.cpus.load, timeout=self.plan.duration + 120) as canary:
                canary.expect("ready")
                r = self.measured(target, self.login_options(target, method))
                canary.release()
                c = canary.expect("result")
            if r["failures"]:
                raise LoadError(f"{r['failures']} {method} logins failed on {target.name}")
            self.record("login", method, target, rate=r["rate"], p50_ms=r["p50_ms"], p99_ms=r["p99_ms"],
                        cpu_us=r["cpu_us"], canary_p50_ms=c["p50_ms"], canary_p99_ms=c["p99_ms"])  # fmt: skip

    def idle(self, target: Target, sessions: int) -> None:
        pids = target.router_pids()
        before = rss_kib(pids)
        options = self.options(target, "idle", sessions=sessions)
        with load(options, self.cpus.load, timeout=600) as proc:
            joined = proc.expect("joined")
            time.sleep(1.0)  # let the router settle after the last join
            after = rss_kib(pids)
        per_session = (after - before) * 1024 / sessions
        self.record("idle", f"{sessions} sessions", target, rate=joined["rate"], rss_per_session_kib=per_session / 1024,
                    rss_mib=after / 1024)  # fmt: skip

    def channel_fanout(self, target: Target, rep: int) -> None:
        """Fan-out to the plain topic and to the channel topic, in turns (which goes first alternates)."""
        n = self.plan.channel_subscribers
        cases = [("plain topic", PLAIN_TOPIC, False), ("channel (history + presence)", CHANNEL_TOPIC, True)]
        for case, topic, presence in cases if rep % 2 == 0 else cases[::-1]:
            options = self.options(target, "fanout", transport="websocket", subscribers=n, duration=self.plan.duration,
                                   topic=topic, presence=presence)  # fmt: skip
            r = self.measured(target, options)
            members = {"members": r["members"]} if presence else {}
            self.record("channels", f"{n} subscribers, {case}", target, rate=r["rate"], p50_ms=r["p50_ms"],
                        p99_ms=r["p99_ms"], cpu_us=r["cpu_us"], router_cpu_pct=r["router_cpu_pct"],
                        rss_mib=r["rss_mib"], **members)  # fmt: skip

    def stored(self, target: Target) -> None:
        """Router RSS before and after the channel's history takes ``channel_events`` events."""
        events = self.plan.channel_events
        topics = events // EVENTS_PER_TOPIC
        pids = target.router_pids()
        options = self.options(target, "store", prefix=CHANNEL_PREFIX, topics=topics, events=events)
        with load(options, self.cpus.load, timeout=300) as proc:
            proc.expect("ready")
            before = rss_kib(pids)
            proc.send("go")
            stored = proc.expect("stored")
            time.sleep(1.0)  # the history is written every 0.05 s; let the router settle as for idle sessions
            after = rss_kib(pids)
            proc.release()
            proc.expect("result")
        assert target.workdir is not None
        database = sum(f.stat().st_size for f in (target.workdir / "data").rglob("history.*.sqlite*"))
        self.record("history", f"{events} events in {topics} topics", target, rate=stored["rate"],
                    rss_per_10k_kib=(after - before) * 10000 / events, rss_before_mib=before / 1024,
                    rss_after_mib=after / 1024, file_kib=database / 1024)  # fmt: skip

    # -- the run -----------------------------------------------------------------------------------------

    def systems(self, scenario: str) -> tuple[str, ...]:
        """The systems of ``scenario``: variants of Switchboard (C framing off, several workers, ...) take part
        in the per-message scenarios only, where they differ."""
        return tuple(
            s
            for s in self.all_systems
            if (s != "echo" or scenario in ECHO_SCENARIOS) and (s in SYSTEMS or scenario in VARIANT_SCENARIOS)
        )

    def run(self) -> None:
        plan = self.plan
        if "idle" in self.only:
            # Fresh nodes per measurement: RSS only grows, and reused memory would hide the cost of a session.
            for rep in range(plan.reps):
                for sessions in plan.idle:
                    print(f"idle, {sessions} sessions, repetition {rep + 1}/{plan.reps}", flush=True)
                    for system in self.systems("idle"):
                        target = self.start(system)
                        try:
                            self.record("startup", "ready", target, seconds=target.startup_s,
                                        rss_mib=target.rss_kib() / 1024)  # fmt: skip
                            self.idle(target, sessions)
                        finally:
                            target.stop()
        if "channels" in self.only and "switchboard" in self.all_systems:
            self.run_channels()
        if "scale" in self.only and plan.scale:
            self.run_scale()
        shared = [s for s in ("rpc", "fanout", "login") if s in self.only]
        if not shared:
            return
        targets = {system: self.start(system) for system in self.all_systems}
        try:
            for scenario in shared:
                method: Callable[[Target], None] = getattr(self, scenario)
                for rep in range(plan.reps):
                    print(f"{scenario}, repetition {rep + 1}/{plan.reps}", flush=True)
                    for system in self.systems(scenario):
                        method(targets[system])
        finally:
            for target in targets.values():
                target.stop()

    def scale(self, target: Target, load_kind: str, size: int, rate: int) -> None:
        """One fixed offered rate on ``target``: router CPU per operation in all its workers, and what that
        projects per core and for the node with one core per worker."""
        sizes = {"callers": size} if load_kind == "rpc" else {"subscribers": size}
        options = self.options(target, "scale", load=load_kind, rate=rate, duration=self.plan.duration, **sizes)
        r = self.measured(target, options)
        workers = SCALE_WORKERS.get(target.name, 1)
        offered = rate if load_kind == "rpc" else rate * size
        case = (f"rpc, {size} callers, {rate} calls/s" if load_kind == "rpc"
                else f"fanout, {size} subscribers, {rate} events/s")  # fmt: skip
        per_core = 1e6 / r["cpu_us"] if r["cpu_us"] else None
        self.record("scale", case, target, offered=offered, rate=r["rate"], p50_ms=r["p50_ms"], p99_ms=r["p99_ms"],
                    cpu_us=r["cpu_us"], router_cpu_pct=r["router_cpu_pct"], workers=workers, per_core=per_core,
                    per_node=per_core * workers if per_core else None)  # fmt: skip

    def run_scale(self) -> None:
        """The ``scale`` cases on one, two and four router workers, taking turns on the same nodes."""
        plan = self.plan
        systems = plan.scale_systems
        targets = {system: self.start(system) for system in systems}
        try:
            for rep in range(plan.reps):
                print(f"scale, repetition {rep + 1}/{plan.reps}", flush=True)
                for load_kind, size, rate in plan.scale:
                    for system in systems:
                        self.scale(targets[system], load_kind, size, rate)
        finally:
            for target in targets.values():
                target.stop()

    def run_channels(self) -> None:
        plan = self.plan
        target = self.start("switchboard", start_switchboard_channels)
        try:
            for rep in range(plan.reps):
                print(f"channels, repetition {rep + 1}/{plan.reps}", flush=True)
                self.channel_fanout(target, rep)
        finally:
            target.stop()
        # Fresh nodes, as for idle sessions: memory freed by the fan-out would hide what the history costs.
        for rep in range(plan.reps):
            print(f"channel history, repetition {rep + 1}/{plan.reps}", flush=True)
            target = self.start("switchboard", start_switchboard_channels)
            try:
                self.stored(target)
            finally:
                target.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every scenario once, tiny sizes (CI smoke run)")
    parser.add_argument("--reps", type=int, help="repetitions per scenario and system (default 3; quick 1)")
    parser.add_argument("--duration", type=float, help="measured seconds per load (default 5; quick 0.5)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--json", type=Path, help="also write every sample and the medians to this file")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, from {', '.join(STARTERS)}")
    parser.add_argument("--profile", type=Path, help="py-spy flame graphs of the router workers into this directory")
    args = parser.parse_args()
    plan = PLANS["quick" if args.quick else "full"]
    if args.reps or args.duration:
        plan = Plan(**{**plan.__dict__, "reps": args.reps or plan.reps, "duration": args.duration or plan.duration})
    only = set(args.only.split(","))
    unknown = only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    systems = tuple(args.systems.split(","))
    if set(systems) - set(STARTERS):
        parser.error(f"unknown system(s): {', '.join(sorted(set(systems) - set(STARTERS)))}")
    command = shlex.join([".venv/bin/python", "bench/run.py", *sys.argv[1:]])
    print(f"command: {command}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
        suite = Suite(plan, only, Path(tmp), systems, args.profile)
        suite.run()
    text, medians = render(suite.samples, command, plan.reps, plan.duration)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"command": command, "samples": suite.samples, "medians": medians}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
