"""The node log of the previous run is kept once, as ``node.log.1`` (no sockets, no node)."""

from __future__ import annotations

import stat
from pathlib import Path

from router import datadir
from router.process import keep_previous_log


def test_the_previous_log_moves_aside_replacing_the_older_one(tmp_path: Path) -> None:
    """node.log becomes node.log.1 (its mode kept), and what node.log.1 held before is gone: one previous
    run is kept, not a growing history."""
    log, previous = datadir.log_path(tmp_path), datadir.previous_log_path(tmp_path)
    previous.write_text("two runs ago\n")
    log.write_text("the last run\n")
    log.chmod(0o600)
    keep_previous_log(log, previous)
    assert not log.exists()
    assert previous.read_text() == "the last run\n"
    assert stat.S_IMODE(previous.stat().st_mode) == 0o600


def test_no_log_yet_leaves_everything_as_it_is(tmp_path: Path) -> None:
    """A first run (no node.log) moves nothing, and an existing node.log.1 stays as it is."""
    log, previous = datadir.log_path(tmp_path), datadir.previous_log_path(tmp_path)
    keep_previous_log(log, previous)
    assert not log.exists()
    assert not previous.exists()
    previous.write_text("older\n")
    keep_previous_log(log, previous)
    assert previous.read_text() == "older\n"


def test_the_layout_names_both_logs_in_the_data_directory(tmp_path: Path) -> None:
    """Both logs live in the data directory itself, beside each other."""
    assert datadir.log_path(tmp_path) == tmp_path / "node.log"
    assert datadir.previous_log_path(tmp_path) == tmp_path / "node.log.1"
