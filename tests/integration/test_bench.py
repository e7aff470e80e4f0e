"""The benchmark suite's quick mode (the CI smoke run): it runs every scenario against all three systems (the
channels scenario against Switchboard) and prints its tables. It asserts that things were measured, never how
fast they were."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Run by the tox env `bench` (`./dev test` runs it after py311), not by the default one.
pytestmark = [pytest.mark.integration, pytest.mark.bench]

ROOT = Path(__file__).resolve().parent.parent.parent


def test_quick_benchmark_measures_every_scenario_on_every_system(tmp_path: Path) -> None:
    """`bench/run.py --quick` exits 0, prints each table with its command, and every cell has a measured rate;
    the channel fan-out had every subscriber as a presence member, the history run measured the router's RSS,
    and the scale run served its offered rates on one and two router workers."""
    assert shutil.which("node"), "Node.js is required for the load generators"
    assert (ROOT / "bench" / "js" / "node_modules").is_dir(), "run `npm install --prefix bench/js` first (tox does)"
    out = tmp_path / "quick.json"
    run = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    titles = ("### RPC", "### Pub/sub fan-out", "### Joined idle sessions", "### Login storm", "### Startup",
              "### Channels: fan-out", "### Channel history", "### Scale-out")  # fmt: skip
    for title in titles:
        assert title in run.stdout, run.stdout
    assert "Command: `.venv/bin/python bench/run.py --quick" in run.stdout

    medians = json.loads(out.read_text())["medians"]
    cells = {(m["group"], m["case"], m["system"]): m for m in medians}
    expected = (
        [("rpc", f"{t} w16", s) for t in ("websocket", "rawsocket") for s in ("switchboard", "crossbar", "echo")]
        + [("fanout", "10 subscribers", s) for s in ("switchboard", "crossbar")]
        + [("idle", "100 sessions", s) for s in ("switchboard", "crossbar", "echo")]
        + [("login", m, s) for m in ("anonymous", "ticket") for s in ("switchboard", "crossbar")]
        + [("startup", "ready", s) for s in ("switchboard", "crossbar", "echo")]
        + [("channels", f"10 subscribers, {c}", "switchboard") for c in ("plain topic", "channel (history + presence)")]
        + [("history", "2000 events in 2 topics", "switchboard")]
        + [("scale", c, s) for c in ("rpc, 4 callers, 200 calls/s", "fanout, 10 subscribers, 50 events/s")
           for s in ("switchboard", "switchboard-2w")]
    )  # fmt: skip
    assert sorted(cells) == sorted(expected)
    for key, cell in cells.items():
        headline = cell["seconds"] if key[0] == "startup" else cell["rate"]
        assert headline > 0, key
        if key[0] in ("rpc", "fanout", "login", "channels", "scale"):
            assert cell["cpu_us"] > 0, key  # the routing process was found and did the work
        if key[0] == "scale":  # the offered rate was served, by every worker's CPU counted
            assert cell["rate"] >= 0.9 * cell["offered"], key
            assert cell["per_node"] == pytest.approx(cell["workers"] * 1e6 / cell["cpu_us"], rel=0.5), key
        if key[0] in ("rpc", "fanout", "channels"):
            assert 0 < cell["p50_ms"] <= cell["p99_ms"], key
    # The load generator checked the presence list before measuring; the report carries what it found.
    assert cells[("channels", "10 subscribers, channel (history + presence)", "switchboard")]["members"] == 10
    history = cells[("history", "2000 events in 2 topics", "switchboard")]
    assert history["rss_before_mib"] > 0
    assert history["rss_after_mib"] > 0
    assert history["rss_per_10k_kib"] is not None
    assert history["file_kib"] > 0  # the events reached history.<realm>.sqlite
    assert "| x plain topic |" in run.stdout
