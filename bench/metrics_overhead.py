"""
What the metrics cost: RPC calls/s and fan-out deliveries/s of Switchboard with ``/metrics`` served (every
message counted, ``router/metrics.py``) and without (``"operations": {"metrics": null}``), on two nodes
started side by side and loaded in turns (the order alternating between repetitions), medians compared.

    .venv/bin/python bench/metrics_overhead.py                    # 5 repetitions of 5 s
    .venv/bin/python bench/metrics_overhead.py --reps 1 --duration 0.5   # smoke run

The ratio is metrics on / metrics off: for throughput, at least 0.95 is the target (issue 13); for the router's
CPU time per operation, at most 1.05.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import PLANS, LoadError, Plan, Suite

ON, OFF = "switchboard", "switchboard-nometrics"


def ratios(samples: list[dict[str, Any]]) -> list[tuple[str, str, float, float, float, float]]:
    """Per (group, case): median rate with and without metrics, their ratio, and the CPU-per-op ratio."""
    rows = []
    for group, case in dict.fromkeys((s["group"], s["case"]) for s in samples):

        def median(system: str, metric: str, group: str = group, case: str = case) -> float:
            values = [s[metric] for s in samples if (s["group"], s["case"], s["system"]) == (group, case, system)]
            return statistics.median(values) if values else float("nan")

        on, off = median(ON, "rate"), median(OFF, "rate")
        rows.append((group, case, on, off, on / off, median(ON, "cpu_us") / median(OFF, "cpu_us")))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="repetitions per case and system (default 5)")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per load (default 5)")
    args = parser.parse_args()
    plan = Plan(**{**PLANS["full"].__dict__, "reps": args.reps, "duration": args.duration,
                   "rpc_windows": (16,), "fanout": (100,)})  # fmt: skip
    command = shlex.join([".venv/bin/python", "bench/metrics_overhead.py", *sys.argv[1:]])
    print(f"command: {command}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sb-bench-metrics-") as tmp:
        suite = Suite(plan, {"rpc", "fanout"}, Path(tmp), (ON, OFF))
        targets = {system: suite.start(system) for system in (ON, OFF)}
        try:
            for rep in range(plan.reps):
                order = (ON, OFF) if rep % 2 == 0 else (OFF, ON)
                print(f"repetition {rep + 1}/{plan.reps}: {', '.join(order)}", flush=True)
                for system in order:
                    for measure in (suite.rpc, suite.fanout):
                        try:
                            measure(targets[system])
                        except LoadError as e:  # a load that could not join in time: that sample is missing
                            print(f"  {measure.__name__} on {system} not measured: {e}", flush=True)
        finally:
            for target in targets.values():
                target.stop()
    print(f"\nCommand: `{command}` ({plan.reps} repetitions of {plan.duration:g} s, medians)\n")
    print("| load | case | metrics on /s | metrics off /s | on / off | router CPU per op, on / off |")
    print("|---|---|---|---|---|---|")
    for group, case, on, off, ratio, cpu in ratios(suite.samples):
        print(f"| {group} | {case} | {on:.0f} | {off:.0f} | {ratio:.3f} | {cpu:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
