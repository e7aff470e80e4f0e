"""Run the ``switchboard`` command as a user would, with bounded waits and orphan detection."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
from pathlib import Path

from tests.conftest import DEMO_CONFIG

SWITCHBOARD = str(Path(sys.executable).parent / "switchboard")


def switchboard(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a switchboard command to completion."""
    return subprocess.run(
        [SWITCHBOARD, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def sb(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a store command (``user ...``, ``key ...``) on ``data_dir`` with the demo config."""
    return subprocess.run(
        [SWITCHBOARD, *args, "--config", str(DEMO_CONFIG), "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class RunningCommand:
    """A ``switchboard run`` in the background, started in its own directory ``cwd``.

    Crossbar's controller inherits that working directory and its workers run in the node directory below
    the data directory, so every process the command started has its working directory under ``cwd``
    (process titles and environments are rewritten by Crossbar, working directories are not). ``env``, when
    given, is the command's whole environment.
    """

    def __init__(self, *args: str, cwd: Path, umask: int = -1, env: dict[str, str] | None = None) -> None:
        self.cwd = cwd.resolve()
        self._pending: dict[int, bytes] = {}
        self.proc = subprocess.Popen(
            [SWITCHBOARD, "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=self.cwd,
            umask=umask,
            env=env,
        )

    def read_line(self, timeout: float = 90) -> str:
        """The next stdout line; '' once stdout closed. Fails after ``timeout`` seconds.

        Reads the raw pipe (not Python's buffered reader), so select() sees every byte not yet consumed.
        """
        assert self.proc.stdout is not None
        return self._read_line(self.proc.stdout.fileno(), timeout)

    def read_err_line(self, timeout: float = 90) -> str:
        """The next stderr line, like :meth:`read_line`. What it reads is no longer in :meth:`wait`'s answer."""
        assert self.proc.stderr is not None
        return self._read_line(self.proc.stderr.fileno(), timeout)

    def _read_line(self, fd: int, timeout: float) -> str:
        pending = self._pending.get(fd, b"")
        while b"\n" not in pending:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                self._pending[fd] = pending
                raise TimeoutError(f"no output within {timeout} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                self._pending[fd] = b""
                return pending.decode()
            pending += chunk
        line, _, self._pending[fd] = pending.partition(b"\n")
        return line.decode() + "\n"

    def wait(self, timeout: float = 60) -> tuple[int, str]:
        """Wait for exit; return the exit code and everything printed on stderr."""
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err

    def processes(self) -> list[int]:
        """PIDs of live processes working in or below ``cwd`` (the command and what it started)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cwd = Path(os.readlink(entry / "cwd"))
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z" and (cwd == self.cwd or self.cwd in cwd.parents):
                found.append(int(entry.name))
        return found

    def kill(self) -> None:
        """Last-resort cleanup for a failed test: kill whatever is left and reap the command."""
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.communicate(timeout=10)
