"""
The Crossbar node as a child process: spawn it, collect its output, stop it.

Crossbar is started in a session of its own (``setsid``), so a Ctrl-C on the terminal reaches only
Switchboard, which then stops the node with SIGTERM, waits a bounded time, and SIGKILLs the whole process
group (controller and workers) if it must. No worker outlives ``switchboard run``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from twisted.internet import defer, error, protocol
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from router.datadir import open_private

__all__ = ["NodeProcess", "crossbar_executable", "keep_previous_log"]

# Start crossbar in a new session (and process group) so terminal signals go to us, not to it, and with an
# owner-only umask: everything it creates in the data directory (node key, pid file, control socket, the
# store's -wal/-shm) is the owner's alone.
_SETSID_EXEC = "import os, sys; os.setsid(); os.umask(0o077); os.execv(sys.argv[1], sys.argv[1:])"


def crossbar_executable() -> str:
    """The ``crossbar`` script installed beside the running Python (the pinned one)."""
    candidate = Path(sys.executable).parent / "crossbar"
    if not candidate.exists():
        raise FileNotFoundError(f"crossbar is not installed beside {sys.executable}")
    return str(candidate)


def keep_previous_log(log_path: Path, previous: Path) -> None:
    """Move the log of the previous run to ``previous`` (replacing what it held), so a new run starts a new
    log and the last one stays readable. Nothing to do when there is no log yet."""
    with contextlib.suppress(FileNotFoundError):
        os.replace(log_path, previous)


class _NodeProtocol(protocol.ProcessProtocol):
    def __init__(self, log_file: IO[str], on_line: Callable[[str], None] | None, hold: bool) -> None:
        self.exited: defer.Deferred[int] = defer.Deferred()
        self._log_file = log_file
        self._on_line = on_line
        self._partial = ""
        self._held: list[str] | None = [] if hold else None

    def outReceived(self, data: bytes) -> None:
        text = self._partial + data.decode("utf-8", "replace")
        *lines, self._partial = text.split("\n")
        for line in lines:
            self._log_file.write(line + "\n")
            if self._held is not None:
                self._held.append(line)
            elif self._on_line is not None:
                self._on_line(line)
        self._log_file.flush()

    def release(self, forward: bool) -> None:
        held, self._held = self._held or [], None
        if forward and self._on_line is not None:
            for line in held:
                self._on_line(line)
        if not forward:
            self._on_line = None

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        if self._partial:
            self._log_file.write(self._partial + "\n")
        self._log_file.close()
        value = reason.value
        code = value.exitCode if isinstance(value, error.ProcessTerminated) else 0
        if code is None:  # killed by a signal
            code = -int(getattr(value, "signal", 0) or 0)
        self.exited.callback(code)


class NodeProcess:
    """One ``crossbar start`` child process writing its output to ``log_path``."""

    def __init__(
        self,
        reactor: Any,
        cbdir: Path,
        log_path: Path,
        loglevel: str = "warn",
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self._reactor = reactor
        self.cbdir = cbdir
        self.log_path = log_path
        self._loglevel = loglevel
        self._on_line = on_line
        self._protocol: _NodeProtocol | None = None
        self._transport: Any = None
        self._pgid: int | None = None
        self.exit_code: int | None = None

    @property
    def pid(self) -> int | None:
        """The controller's PID while it runs."""
        return None if self._transport is None else self._transport.pid

    @property
    def exited(self) -> defer.Deferred[int]:
        """Fires with the exit code when the node has exited (a new Deferred on each access)."""
        if self._protocol is None:
            raise RuntimeError("NodeProcess.start() has not been called")
        d: defer.Deferred[int] = defer.Deferred()
        if self.exit_code is not None:
            d.callback(self.exit_code)
        else:
            self._protocol.exited.addBoth(_chain_copy(d))
        return d

    def start(self, hold_output: bool = False, append_log: bool = False) -> None:
        """Spawn the node; returns at once (readiness is the probe's business).

        With ``hold_output``, its lines go to the log file only until :meth:`release_output`. With
        ``append_log`` the log file is continued (a restart keeps the output of the run that died).
        """
        log_file = open(open_private(self.log_path, append=append_log), "a", encoding="utf-8")  # noqa: SIM115 (closed at exit)
        self._protocol = _NodeProtocol(log_file, self._on_line, hold_output)
        self._protocol.exited.addCallback(self._record_exit)
        args = [
            sys.executable,
            "-c",
            _SETSID_EXEC,
            crossbar_executable(),
            "start",
            "--cbdir",
            str(self.cbdir),
            "--loglevel",
            self._loglevel,
            "--color",
            "false",
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._transport = self._reactor.spawnProcess(self._protocol, sys.executable, args, env=env)
        # setsid made the child the leader of a new process group whose id is its pid.
        self._pgid = self._transport.pid

    def release_output(self, forward: bool = True) -> None:
        """Forward the lines held since :meth:`start` and all later ones, or (``forward=False``) none at all."""
        if self._protocol is not None:
            self._protocol.release(forward)

    def _record_exit(self, code: int) -> int:
        self.exit_code = code
        return code

    async def stop(self, grace: float = 10.0) -> int:
        """SIGTERM the node, SIGKILL its process group after ``grace`` seconds; return the exit code."""
        if self._protocol is None:
            return 0
        if self.exit_code is None:
            self._signal_group(signal.SIGTERM)
            clock: IReactorTime = self._reactor
            waiting = self.exited
            waiting.addTimeout(grace, clock)
            try:
                await waiting
            except defer.TimeoutError:
                self._signal_group(signal.SIGKILL)
                await self.exited
        else:
            # The controller is gone; make sure no worker of its group lingers.
            self._signal_group(signal.SIGKILL)
        return self.exit_code if self.exit_code is not None else 0

    def _signal_group(self, signum: int) -> None:
        if self._pgid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._pgid, signum)


def _chain_copy(target: defer.Deferred[int]) -> Callable[[Any], Any]:
    def forward(result: Any) -> Any:
        if isinstance(result, Failure):
            target.errback(result)
        else:
            target.callback(result)
        return result

    return forward
