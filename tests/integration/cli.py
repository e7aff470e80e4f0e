"""Run the ``switchboard`` command as a user would, with bounded waits and orphan detection."""

from __future__ import annotations

import contextlib
import os
import queue
import select
import subprocess
import sys
import threading
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

    Its stderr (the node's log at ``info``: a line per session joined and left) is read all the time by a
    thread, whether or not the test reads it: a full pipe would block the command, and with it the node.
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
        self._err_lines: queue.Queue[str] = queue.Queue()
        self._err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_reader.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._err_lines.put(line)
        self._err_lines.put("")  # closed

    def read_line(self, timeout: float = 90) -> str:
        """The next stdout line; '' once stdout closed. Fails after ``timeout`` seconds.

        Reads the raw pipe (not Python's buffered reader), so select() sees every byte not yet consumed.
        """
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
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

    def read_err_line(self, timeout: float = 90) -> str:
        """The next stderr line, like :meth:`read_line` ('' once closed). What it reads is no longer in
        :meth:`wait`'s answer."""
        try:
            line = self._err_lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no output within {timeout} s") from None
        if line == "":
            self._err_lines.put("")  # stays closed for the next reader
        return line

    def wait(self, timeout: float = 60) -> tuple[int, str]:
        """Wait for exit; return the exit code and everything printed on stderr (not yet read)."""
        self.proc.wait(timeout=timeout)  # (stdout holds a few lines: no pipe to drain)
        self._close(timeout)
        err = []
        while True:
            line = self._err_lines.get_nowait() if not self._err_lines.empty() else ""
            if line == "":
                break
            err.append(line)
        return self.proc.returncode, "".join(err)

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
            self.proc.wait(timeout=10)
        self._close(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def _close(self, timeout: float) -> None:
        """Once stderr is read to its end, close both pipes (stdout's unread rest is :meth:`read_line`'s)."""
        self._err_reader.join(timeout=timeout)
        if not self._err_reader.is_alive() and self.proc.stderr is not None:
            self.proc.stderr.close()
