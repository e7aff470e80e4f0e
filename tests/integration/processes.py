"""The processes of a running node, read from /proc: its router worker, and whether a process still lives."""

from __future__ import annotations

from pathlib import Path

__all__ = ["alive", "children", "router_worker"]


def children(pid: int) -> list[int]:
    """Direct children of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat_line = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat_line.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def router_worker(pids: list[int]) -> int:
    """The router worker among ``pids`` (its process title is set by the compiled config)."""
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"switchboard router"):
            return pid
    raise AssertionError(f"no router worker among {pids}")


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"
