"""The seam's version policy on a real node: ``switchboard run`` on library versions other than
``router.seam.VERIFIED`` refuses to start in one line, unless ``SWITCHBOARD_UNVERIFIED=1``, which starts the
node and skips (with a warning) only the overrides whose internals are gone.

The other versions are simulated in every process of the node by a ``sitecustomize`` module on
``PYTHONPATH`` (Crossbar's workers inherit the environment): it sets ``autobahn.__version__`` (not
Crossbar's, which Crossbar uses to find its own key files) and, for the second test, adds a name that does
not exist to what ``router.seam.denials`` relies on.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from router.seam import VERIFIED
from tests.conftest import DEMO_CONFIG
from tests.integration.cli import RunningCommand

pytestmark = pytest.mark.integration

FAKE_VERSION = "99.0.0"


def other_versions(tmp_path: Path, gone: str | None = None) -> dict[str, str]:
    """An environment whose Python processes see autobahn FAKE_VERSION (and ``gone`` relied on by denials)."""
    site = tmp_path / "site"
    site.mkdir()
    lines = ["import autobahn", f"autobahn.__version__ = {FAKE_VERSION!r}"]
    if gone is not None:
        lines += ["import router.seam.denials", f"router.seam.denials.RELIED_ON.append({gone!r})"]
    (site / "sitecustomize.py").write_text("\n".join(lines) + "\n")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    env.pop("SWITCHBOARD_UNVERIFIED", None)
    return env


def test_run_refuses_unverified_versions_in_one_line(tmp_path: Path, command: list[RunningCommand]) -> None:
    """Without SWITCHBOARD_UNVERIFIED the router worker does not start: exit 1, one error line naming the
    version found, the verified one and the switch, and no process left behind."""
    env = other_versions(tmp_path)
    run = RunningCommand("--config", str(DEMO_CONFIG), "--port", "0", "--data-dir", "d", cwd=tmp_path, env=env)
    command.append(run)
    code, err = run.wait(timeout=90)
    assert code == 1
    error_lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, err
    assert error_lines[0].startswith("error: switchboard.error.unverified_versions: router.seam was not verified")
    assert f"autobahn {FAKE_VERSION} (verified: {VERIFIED['autobahn']})" in error_lines[0]
    assert "SWITCHBOARD_UNVERIFIED=1" in error_lines[0]
    assert run.processes() == []


def test_unverified_switch_starts_and_names_what_it_skips(tmp_path: Path, command: list[RunningCommand]) -> None:
    """With SWITCHBOARD_UNVERIFIED=1 the node starts; the module missing a name is skipped and the node log
    warns naming it and the name, while the modules with everything in place are not named; SIGTERM still
    stops it cleanly."""
    gone = "crossbar.router.dealer.Dealer._gone_in_99"
    env = dict(other_versions(tmp_path, gone=gone), SWITCHBOARD_UNVERIFIED="1")
    run = RunningCommand("--config", str(DEMO_CONFIG), "--port", "0", "--data-dir", "d", cwd=tmp_path, env=env)
    command.append(run)
    line = run.read_line()
    assert line.startswith("Switchboard ready: ws://127.0.0.1:"), line
    log = (tmp_path / "d" / "node.log").read_text()
    skipped = [line for line in log.splitlines() if "skipped on unverified versions" in line]
    assert len(skipped) == 1, log[-3000:]
    assert "router.seam.denials" in skipped[0]
    assert gone in skipped[0]
    assert f"autobahn {FAKE_VERSION}" in skipped[0]
    run.proc.send_signal(signal.SIGTERM)
    code, err = run.wait()
    assert code == 0, err
