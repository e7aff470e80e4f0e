"""
The Crossbar node as a child process: spawn it, collect its output, stop it.

Crossbar is started in a session of its own (``setsid``), so a Ctrl-C on the terminal reaches only
Switchboard, which then stops the node with SIGTERM, waits a bounded time, and SIGKILLs the whole process
group (controller and workers) if it must. No worker outlives ``switchboard run``.

Its output is log records (the controller runs :func:`router.seam.logging.controller_main`), written to
``node.log`` (:class:`router.logs.RotatingFile`) and handed to ``on_line`` formatted as ``text`` or ``json``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer, error, protocol
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from router import logs

__all__ = ["NodeProcess", "crossbar_executable"]

# What the controller runs instead of the `crossbar` script: Crossbar, logging records (router.seam.logging).
_CONTROLLER = "from router.seam.logging import controller_main; controller_main()"
# Lines of the node's output kept in memory, for the cause of a failed start (router.diagnose).
_TAIL_LINES = 2000

# Start crossbar in a new session (and process group) so terminal signals go to us, not to it, and with an
# owner-only umask: everything it creates in the data directory (node key, pid file, control socket, the
# store's -wal/-shm) is the owner's alone. On Linux the controller also gets SIGTERM when we die, however we
# die (kill -9 included: PR_SET_PDEATHSIG, kept across exec), and stops its workers as on any SIGTERM (a
# worker whose controller is gone exits too: its stdio pipes close). We may have died before the prctl took
# effect, so the parent is checked after it (argv[1] is our pid). Elsewhere there is no parent-death
# signal: a Crossbar left by a killed `run` is found by the next `run` and `switchboard stop` stops it.
_SETSID_EXEC = """
import os, sys
os.setsid()
os.umask(0o077)
if sys.platform.startswith("linux"):
    import ctypes, signal
    ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


def crossbar_executable() -> str:
    """The ``crossbar`` script installed beside the running Python (the pinned one)."""
    candidate = Path(sys.executable).parent / "crossbar"
    if not candidate.exists():
        raise FileNotFoundError(f"crossbar is not installed beside {sys.executable}")
    return str(candidate)


class _NodeProtocol(protocol.ProcessProtocol):
    """Each line of the node's output (a record line or a raw one, see :mod:`router.logs`) goes, formatted,
    to the log file and to ``on_line``; the last lines of the run, as text, to ``tail``."""

    def __init__(
        self,
        reactor: Any,
        log_file: logs.RotatingFile,
        log_format: str,
        on_line: Callable[[str], None] | None,
        hold: bool,
    ) -> None:
        self.exited: defer.Deferred[int] = defer.Deferred()
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._reactor = reactor
        self._log_file = log_file
        self._render = logs.format_json if log_format == "json" else logs.format_text
        self._on_line = on_line
        self._partial: dict[int, str] = {}
        self._held: list[str] | None = [] if hold else None

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        text = self._partial.get(childFD, "") + data.decode("utf-8", "replace")
        *lines, partial = text.split("\n")
        if len(partial) > _MAX_LINE:  # output without a newline: cut it into lines rather than hold it all
            lines.append(partial[:_MAX_LINE])
            partial = partial[_MAX_LINE:][-_MAX_LINE:]
        self._partial[childFD] = partial
        for line in lines:
            self._line(line)
        self._log_file.flush()

    def _line(self, line: str) -> None:
        record = logs.decode_line(line, self._reactor.seconds())
        shown = self._render(record)
        self._log_file.write(shown + "\n")
        self.tail.append(shown if self._render is logs.format_text else logs.format_text(record))
        if self._held is not None:
            self._held.append(shown)
        elif self._on_line is not None:
            self._on_line(shown)

    def release(self, forward: bool) -> None:
        held, self._held = self._held or [], None
        if forward and self._on_line is not None:
            for line in held:
                self._on_line(line)
        if not forward:
            self._on_line = None

    def processEnded(self, reason: Failure) -> None:
        for partial in self._partial.values():
            if partial:
                self._line(partial)
        self._log_file.close()
        value = reason.value
        code = value.exitCode if isinstance(value, error.ProcessTerminated) else 0
        if code is None:  # killed by a signal
            code = -int(getattr(value, "signal", 0) or 0)
        self.exited.callback(code)


#: Characters of one output line held while its newline has not come (a longer one is cut).
_MAX_LINE = 1 << 20
#: Seconds to wait for the node's exit to be reported after its process group was SIGKILLed.
_KILLED_WAIT = 10.0


class NodeProcess:
    """One ``crossbar start`` child process writing its output to ``log_path``."""

    def __init__(
        self,
        reactor: Any,
        cbdir: Path,
        log_path: Path,
        loglevel: str = "warn",
        on_line: Callable[[str], None] | None = None,
        *,
        log_format: str = logs.DEFAULT_FORMAT,
        log_max_size: int = logs.DEFAULT_MAX_SIZE,
        log_keep: int = logs.DEFAULT_KEEP,
        max_log_lines: int = 100,
    ) -> None:
        self._reactor = reactor
        # Records of one kind the controller writes per second (limits.max_log_events; router.logs.LineBudget).
        self._max_log_lines = max_log_lines
        self.cbdir = cbdir
        self.log_path = log_path
        self._loglevel = loglevel
        self._on_line = on_line
        self._log_format = log_format
        self._log_max_size = log_max_size
        self._log_keep = log_keep
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

    def start(self, hold_output: bool = False) -> None:
        """Spawn the node; returns at once (readiness is the probe's business).

        With ``hold_output``, its lines go to the log file only until :meth:`release_output`. The log file
        is continued (earlier runs and a run that died stay), rotated by size.
        """
        crossbar_executable()  # a clear error when Crossbar is not installed beside this Python
        log_file = logs.RotatingFile(self.log_path, self._log_max_size, self._log_keep)
        self._protocol = _NodeProtocol(self._reactor, log_file, self._log_format, self._on_line, hold_output)
        self._protocol.exited.addCallback(self._record_exit)
        args = [
            sys.executable,
            "-c",
            _SETSID_EXEC,
            str(os.getpid()),
            sys.executable,
            "-c",
            _CONTROLLER,
            "start",
            "--cbdir",
            str(self.cbdir),
            "--loglevel",
            self._loglevel,
            "--color",
            "false",
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{logs.MAX_LINES_ENV: str(self._max_log_lines)})
        self._transport = self._reactor.spawnProcess(self._protocol, sys.executable, args, env=env)
        # setsid made the child the leader of a new process group whose id is its pid.
        self._pgid = self._transport.pid

    def recent_output(self) -> str:
        """The last lines of this run's output (at most 2000), as text whatever the log format."""
        return "" if self._protocol is None else "\n".join(self._protocol.tail) + "\n"

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
                killed = self.exited
                # The group is gone at once; only a process that left it (setsid) and still holds our pipes
                # could keep processEnded from firing: do not wait for that for ever.
                killed.addTimeout(_KILLED_WAIT, clock)
                with contextlib.suppress(defer.TimeoutError):
                    await killed
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
