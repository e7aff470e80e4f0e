"""node.log is appended to and rotated by size, keeping a bounded number of files (no sockets, no node)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from router import datadir
from router.logs import RotatingFile


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_the_layout_names_the_logs_in_the_data_directory(tmp_path: Path) -> None:
    """node.log and its rotated files node.log.1, node.log.2 ... live in the data directory itself."""
    assert datadir.log_path(tmp_path) == tmp_path / "node.log"
    assert datadir.rotated_log_path(tmp_path, 1) == tmp_path / "node.log.1"
    assert datadir.rotated_log_path(tmp_path, 12) == tmp_path / "node.log.12"


def test_a_new_run_appends_to_the_log_of_the_last(tmp_path: Path) -> None:
    """Opening the log again continues it (a restart keeps the history) and makes it owner-only."""
    path = datadir.log_path(tmp_path)
    path.write_text("the last run\n")
    path.chmod(0o644)
    log = RotatingFile(path, max_size=1000, keep=2)
    log.write("this run\n")
    log.close()
    assert path.read_text() == "the last run\nthis run\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_rotation_by_size_keeps_at_most_keep_files(tmp_path: Path) -> None:
    """Writing past max_size moves node.log to node.log.1 (.1 to .2, ...); beyond keep the oldest is gone.
    Every file stays owner-only and no record is split."""
    path = datadir.log_path(tmp_path)
    log = RotatingFile(path, max_size=20, keep=2)
    for n in range(1, 8):
        log.write(f"record {n:02d} ....\n")  # 17 bytes: one per file
    log.close()
    assert names(tmp_path) == ["node.log", "node.log.1", "node.log.2"]
    assert path.read_text() == "record 07 ....\n"
    assert datadir.rotated_log_path(tmp_path, 1).read_text() == "record 06 ....\n"
    assert datadir.rotated_log_path(tmp_path, 2).read_text() == "record 05 ....\n"
    assert {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {0o600}


def test_records_fill_a_file_up_to_max_size(tmp_path: Path) -> None:
    """A file takes records until the next would pass max_size; the size counts bytes, not characters."""
    path = datadir.log_path(tmp_path)
    log = RotatingFile(path, max_size=10, keep=1)
    log.write("\u00e9\u00e9\n")  # 5 bytes
    log.write("abcd\n")  # 5 bytes: 10 in all, fits
    log.write("x\n")  # would make 12: rotate first
    log.close()
    assert datadir.rotated_log_path(tmp_path, 1).read_text() == "\u00e9\u00e9\nabcd\n"
    assert path.read_text() == "x\n"


def test_a_record_larger_than_max_size_is_written_whole(tmp_path: Path) -> None:
    """A record bigger than max_size gets a file of its own, not cut."""
    path = datadir.log_path(tmp_path)
    log = RotatingFile(path, max_size=10, keep=3)
    log.write("small\n")
    log.write("y" * 50 + "\n")
    log.write("after\n")
    log.close()
    assert datadir.rotated_log_path(tmp_path, 2).read_text() == "small\n"
    assert datadir.rotated_log_path(tmp_path, 1).read_text() == "y" * 50 + "\n"
    assert path.read_text() == "after\n"


def test_keep_zero_keeps_no_history(tmp_path: Path) -> None:
    """With keep=0 a full node.log is started afresh and no node.log.N appears."""
    path = datadir.log_path(tmp_path)
    log = RotatingFile(path, max_size=8, keep=0)
    log.write("first..\n")
    log.write("second.\n")
    log.close()
    assert names(tmp_path) == ["node.log"]
    assert path.read_text() == "second.\n"


def test_a_smaller_keep_than_before_removes_the_extra_files(tmp_path: Path) -> None:
    """Files beyond keep that an earlier run with a larger --log-keep left go at the next rotation."""
    for n in range(1, 6):
        datadir.rotated_log_path(tmp_path, n).write_text(f"old {n}\n")
    path = datadir.log_path(tmp_path)
    path.write_text("full......\n")
    log = RotatingFile(path, max_size=10, keep=2)
    log.write("new\n")
    log.close()
    assert names(tmp_path) == ["node.log", "node.log.1", "node.log.2"]
    assert datadir.rotated_log_path(tmp_path, 1).read_text() == "full......\n"
    assert datadir.rotated_log_path(tmp_path, 2).read_text() == "old 1\n"


@pytest.mark.parametrize(("max_size", "keep"), [(0, 1), (-5, 1), (10, -1)])
def test_bad_limits_are_refused(tmp_path: Path, max_size: int, keep: int) -> None:
    """A size below one byte or a negative count is a programming error."""
    with pytest.raises(ValueError, match="max_size must be positive"):
        RotatingFile(datadir.log_path(tmp_path), max_size=max_size, keep=keep)
