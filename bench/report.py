"""Medians of the benchmark samples, as Markdown tables (the format of ``docs/performance.md``)."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Callable
from typing import Any

Key = tuple[str, str, str]  # group, case, system

# Per group: (column title, metric, format) and whether a higher value of the headline metric is better.
COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "rpc": [("calls/s", "rate", "{:.0f}"), ("p50 ms", "p50_ms", "{:.2f}"), ("p99 ms", "p99_ms", "{:.2f}"),
            ("router CPU µs/call", "cpu_us", "{:.0f}"), ("router CPU %", "router_cpu_pct", "{:.0f}"),
            ("load CPU %", "load_cpu_pct", "{:.0f}"), ("router RSS MiB", "rss_mib", "{:.0f}")],
    "fanout": [("deliveries/s", "rate", "{:.0f}"), ("p50 ms", "p50_ms", "{:.2f}"), ("p99 ms", "p99_ms", "{:.2f}"),
               ("router CPU µs/delivery", "cpu_us", "{:.1f}"), ("router CPU %", "router_cpu_pct", "{:.0f}"),
               ("load CPU %", "load_cpu_pct", "{:.0f}"), ("router RSS MiB", "rss_mib", "{:.0f}")],
    "idle": [("joins/s", "rate", "{:.0f}"), ("router RSS KiB/session", "rss_per_session_kib", "{:.1f}"),
             ("router RSS MiB", "rss_mib", "{:.0f}")],
    "login": [("logins/s", "rate", "{:.0f}"), ("router CPU µs/login", "cpu_us", "{:.0f}"),
              ("canary p50 ms", "canary_p50_ms", "{:.2f}"), ("canary p99 ms", "canary_p99_ms", "{:.2f}")],
    "startup": [("ready in s", "seconds", "{:.2f}"), ("node RSS MiB", "rss_mib", "{:.0f}")],
    "channels": [("deliveries/s", "rate", "{:.0f}"), ("p50 ms", "p50_ms", "{:.2f}"), ("p99 ms", "p99_ms", "{:.2f}"),
                 ("router CPU µs/delivery", "cpu_us", "{:.1f}"), ("router CPU %", "router_cpu_pct", "{:.0f}"),
                 ("presence members", "members", "{:.0f}")],
    "history": [("publishes/s (acknowledged)", "rate", "{:.0f}"), ("RSS before MiB", "rss_before_mib", "{:.1f}"),
                ("RSS after MiB", "rss_after_mib", "{:.1f}"), ("router RSS KiB per 10k events", "rss_per_10k_kib",
                "{:.0f}"), ("history file KiB", "file_kib", "{:.0f}")],
    "scale": [("offered ops/s", "offered", "{:.0f}"), ("done ops/s", "rate", "{:.0f}"), ("p50 ms", "p50_ms", "{:.2f}"),
              ("p99 ms", "p99_ms", "{:.2f}"), ("router CPU µs/op", "cpu_us", "{:.1f}"),
              ("router CPU %", "router_cpu_pct", "{:.0f}"), ("ops/s per core", "per_core", "{:.0f}"),
              ("ops/s, a core per worker", "per_node", "{:.0f}")],
}  # fmt: skip
TITLES = {
    "rpc": "RPC: one callee, one caller, N calls in flight",
    "fanout": "Pub/sub fan-out over WebSocket/JSON",
    "idle": "Joined idle sessions (fresh node each time)",
    "login": "Login storm (join + leave, per method) with a canary RPC every 5 ms",
    "startup": "Startup to ready (from the idle runs' fresh starts)",
    "channels": "Channels: fan-out to a channel topic (history + presence) vs a plain topic, same node",
    "history": "Channel history: router RSS before and after storing events (fresh node each time)",
    "scale": "Scale-out: router CPU per operation at a fixed offered rate, 1, 2 and 4 router workers",
}
# The metric the ratio columns compare, and whether lower is better for it.
HEADLINE = {
    "rpc": ("rate", False),
    "fanout": ("rate", False),
    "idle": ("rss_per_session_kib", True),
    "login": ("rate", False),
    "startup": ("seconds", True),
    "channels": ("rate", False),
    "history": ("rss_per_10k_kib", True),
    "scale": ("per_node", False),
}
PLAIN_TOPIC_CASE = "plain topic"


def _system(other: str) -> Callable[[Key], Key]:
    return lambda key: (key[0], key[1], other)


def _plain_topic(key: Key) -> Key:
    """The plain-topic row with as many subscribers: cases are "<n> subscribers, <topic kind>"."""
    return key[0], f"{key[1].split(', ')[0]}, {PLAIN_TOPIC_CASE}", key[2]


# Per group, its ratio columns: title, and the row each row is compared with (none for itself).
RATIOS: dict[str, list[tuple[str, Callable[[Key], Key]]]] = {
    "channels": [("x plain topic", _plain_topic)],
    "history": [],
    "scale": [("x 1 worker", _system("switchboard"))],
}
SYSTEM_RATIOS = [("x crossbar", _system("crossbar")), ("x echo", _system("echo"))]


def medians(samples: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, float | None]]:
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for s in samples:
        grouped.setdefault((s["group"], s["case"], s["system"]), []).append(s)
    out: dict[tuple[str, str, str], dict[str, float | None]] = {}
    for key, runs in grouped.items():
        metrics = {k for r in runs for k in r} - {"group", "case", "system"}
        values = {m: [r[m] for r in runs if r.get(m) is not None] for m in metrics}
        out[key] = {m: statistics.median(v) if v else None for m, v in values.items()}
        out[key]["runs"] = len(runs)
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} x {cpu}, Linux {platform.release()}, Python {platform.python_version()}"


def render(samples: list[dict[str, Any]], command: str, reps: int, duration: float) -> tuple[str, list[dict[str, Any]]]:
    table = medians(samples)
    lines = [f"Machine: {machine()}", f"Command: `{command}`",
             f"Medians of {reps} interleaved repetitions, {duration:g} s measured per load.", ""]  # fmt: skip
    for group, columns in COLUMNS.items():
        keys = [k for k in table if k[0] == group]
        if not keys:
            continue
        metric, lower_better = HEADLINE[group]
        ratios = RATIOS.get(group, SYSTEM_RATIOS)
        head = ["case", "system", *(c[0] for c in columns), *(title for title, _ in ratios)]
        lines += [f"### {TITLES[group]}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        cases = list(dict.fromkeys(k[1] for k in keys))
        for case in cases:
            for system in dict.fromkeys(k[2] for k in keys):
                row = table.get((group, case, system))
                if row is None:
                    continue
                cells = [case, system, *(_fmt(row.get(m), f) for _, m, f in columns)]
                for _, compared in ratios:
                    base_key = compared((group, case, system))
                    base = table.get(base_key)
                    cells.append(_ratio(row.get(metric), base.get(metric) if base else None, lower_better)
                                 if base_key != (group, case, system) else "")  # fmt: skip
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if any(k[0] == "idle" for k in table) or any(k[0] == "login" for k in table):
        lines.append("Ratios: x crossbar / x echo are this system's figure over theirs for rates, and theirs over "
                     "this system's for RSS and startup time, so above 1 is always better.")  # fmt: skip
    flat = [{"group": g, "case": c, "system": s, **m} for (g, c, s), m in table.items()]
    return "\n".join(lines), flat


def _fmt(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _ratio(value: float | None, base: float | None, lower_better: bool) -> str:
    if not value or not base:
        return ""
    return f"{(base / value) if lower_better else (value / base):.2f}"


def profile_summary(collapsed: str, top: int = 25) -> str:
    """The frames of a py-spy ``raw`` (collapsed stacks) profile taking the most samples, as text lines: by own
    time (the innermost frame) and by total time (anywhere on the stack, counted once per stack), in percent
    of the samples in which the process was busy (a stack ending in the reactor's poll is idle)."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    busy = idle = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[-1].split(" ")[0].endswith((".doPoll", ".doIteration")):
            idle += count
            continue
        busy += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + count
    lines = [f"{busy} busy samples ({idle} idle in the reactor's poll left out)", "", "own time:"]
    for frame, count in sorted(own.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"  {100 * count / max(1, busy):5.1f} %  {frame}")
    lines += ["", "total time:"]
    for frame, count in sorted(total.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"  {100 * count / max(1, busy):5.1f} %  {frame}")
    return "\n".join(lines)
