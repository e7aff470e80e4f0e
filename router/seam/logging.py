"""
Crossbar's log output as records, and secrets kept out of it.

**Controller.** ``switchboard run`` starts the Crossbar controller through :func:`controller_main` rather
than the ``crossbar`` script. It replaces Crossbar's ``_start_logging`` (which prints text, info on stdout
and warnings on stderr, so the level is lost) by one that writes each event the controller logs, its
own and those its workers forward to it, as one record line on stdout (:func:`router.logs.encode_record`),
with its level, source (worker type and PID) and namespace, ANSI colours removed, and only if
:func:`router.logs.shown` at the level Crossbar was given. ``switchboard run`` (:mod:`router.process`)
formats the records as ``text`` or ``json``. When the seam's policy says no (other versions, a name
gone), Crossbar logs as it always does and ``run`` shows its lines as raw lines.

**Router worker** (:func:`install`). At ``debug`` Crossbar's ``RouterSession.onAuthenticate`` logs the
client's AUTHENTICATE signature as it is: for WAMP-Ticket that is the password. (For WAMP-CRA and SCRAM
it is a proof that allows an offline guess of the password.) The replacement logs the method and the
signature's length instead and then does what Crossbar does.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any, cast

from autobahn.wamp.types import Deny
from crossbar._log_categories import log_categories
from crossbar._logging import strip_ansi
from crossbar.router import auth as crossbar_auth
from crossbar.router.session import RouterSession
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher

from router import logs

__all__ = ["RELIED_ON", "SIGNATURES", "controller_main", "install", "record_observer"]

#: Crossbar names this module relies on (checked by tests/unit/test_seam_canary.py and, on unverified
#: versions, before installing).
RELIED_ON = [
    "crossbar.node.main._start_logging",
    "crossbar._log_categories.log_categories",
    "crossbar._logging.strip_ansi",
    "crossbar.router.session.RouterSession.onAuthenticate",
    "crossbar.router.session.RouterSession._pending_auth",
    "crossbar.router.auth.PendingAuthTicket",
    "crossbar.router.auth.PendingAuthWampCra",
    "crossbar.router.auth.PendingAuthScram",
    "crossbar.router.auth.PendingAuthCryptosign",
    "crossbar.router.auth.PendingAuthCryptosignProxy",
    "crossbar.router.auth.PendingAuth.authenticate",
    "crossbar.router.auth.PendingAuth.AUTHMETHOD",
]

#: Functions replaced or wrapped here: the parameters they are expected to take.
SIGNATURES = {
    "crossbar.node.main._start_logging": ("options", "reactor"),
    "crossbar.router.session.RouterSession.onAuthenticate": ("self", "signature", "extra"),
}

_ORIGINAL_ON_AUTHENTICATE = RouterSession.onAuthenticate


def record_observer(
    out: IO[str], level: str, pid: int, budget: logs.LineBudget | None = None, call_later: Any = None
) -> Callable[[dict[str, Any]], None]:
    """A Twisted log observer writing each event :func:`router.logs.shown` at ``level`` to ``out`` as a record
    line; ``pid`` is the controller's own (the source of events without a worker's ``log_system``).

    With ``budget``, records beyond it are left out (Switchboard's event lines excepted: they have a budget of
    their own in the worker), and one warning per kind says how many, when the second ends
    (``call_later(seconds, f)`` schedules that, else it comes with the next record)."""
    reporting: list[bool] = []

    def write(record: logs.Record) -> None:
        out.write(logs.encode_record(record) + "\n")
        out.flush()

    def report() -> None:
        reporting.clear()
        if budget is None:
            return
        for kind, n in budget.overflow().items():
            write(
                logs.Record(
                    time=time.time(),
                    message=f"left out {n} log lines like {kind!r}: more than {budget.per_second} a second "
                    "(limits.max_log_events)",
                    level="warn",
                    source="controller",
                    pid=pid,
                    namespace="switchboard.logs",
                )
            )

    def observe(event: dict[str, Any]) -> None:
        if event.get("txaio_trace"):
            return
        level_name = event["log_level"].name
        if logs.rank(level_name) > logs.rank(level):
            return
        if event.get("log_category") in log_categories:
            event = dict(event, log_format=log_categories[event["log_category"]])
        text = formatEvent(event) if event.get("log_format") is not None else ""
        if "log_failure" in event:
            text += "\n" + event["log_failure"].getTraceback().rstrip("\n")
        source, source_pid = logs.source_of(str(event.get("log_system", "-")), pid)
        record = logs.Record(
            time=float(event.get("log_time") or time.time()),
            message=strip_ansi(text),
            level=level_name,
            source=source,
            pid=source_pid,
            namespace=event.get("cb_namespace") or event.get("log_namespace"),
        )
        if not logs.shown(record, level):
            return
        if budget is not None:
            if call_later is None:
                report()
            if record.namespace != logs.EVENTS_NAMESPACE:
                kind = f"{source} {event.get('log_format') or text[:80]}"
                if not budget.admit(kind):
                    if call_later is not None and not reporting:
                        reporting.append(True)
                        call_later(1.0, report)
                    return
        write(record)

    return observe


def _start_logging(options: Any, reactor: Any) -> None:
    """Crossbar's ``_start_logging`` for ``crossbar start``: record lines on stdout (see the docstring)."""
    from txaio import tx

    level = getattr(options, "loglevel", "info")
    tx.set_global_log_level(level)
    per_second = int(os.environ.get(logs.MAX_LINES_ENV, "100"))
    budget = logs.LineBudget(per_second, time.time)
    out = sys.__stdout__ or sys.stdout
    observer = cast(ILogObserver, record_observer(out, level, os.getpid(), budget, reactor.callLater))
    globalLogPublisher.addObserver(observer)
    reactor.addSystemEventTrigger("after", "shutdown", globalLogPublisher.removeObserver, observer)
    tx.start_logging(None, level)


def controller_main() -> None:
    """Run ``crossbar`` with the arguments of this process (``sys.argv[1:]``), logging records if allowed."""
    from router import seam

    try:
        use = seam.allowed("logging")
    except seam.UnverifiedVersion:
        use = False  # the router worker refuses to start and says why
    if use:
        import crossbar.node.main

        crossbar.node.main._start_logging = _start_logging
    import crossbar

    sys.argv = ["crossbar", *sys.argv[1:]]
    sys.exit(crossbar.run())


def install() -> None:
    """Make ``RouterSession.onAuthenticate`` log no secret (idempotent)."""
    RouterSession.onAuthenticate = _on_authenticate  # type: ignore[method-assign]


def uninstall() -> None:
    """Put Crossbar's ``onAuthenticate`` back (tests)."""
    RouterSession.onAuthenticate = _ORIGINAL_ON_AUTHENTICATE  # type: ignore[method-assign]


_CHECKED = tuple(
    cls
    for cls in (
        getattr(crossbar_auth, "PendingAuthTicket", None),
        getattr(crossbar_auth, "PendingAuthWampCra", None),
        getattr(crossbar_auth, "PendingAuthCryptosign", None),
        getattr(crossbar_auth, "PendingAuthCryptosignProxy", None),
        getattr(crossbar_auth, "PendingAuthScram", None),
    )
    if isinstance(cls, type)
)


def _on_authenticate(self: Any, signature: str, extra: dict[str, Any]) -> Any:
    # Crossbar's onAuthenticate without its first line, which logs the signature itself.
    pending: Any = self._pending_auth
    self.log.debug(
        "onAuthenticate: {method} signature of {size} characters",
        method=getattr(pending, "AUTHMETHOD", None),
        size=len(signature) if isinstance(signature, str) else None,
    )
    if isinstance(pending, _CHECKED):
        try:
            return cast(Any, pending).authenticate(signature)
        except Exception as e:
            self.log.failure()
            return Deny(message=f"internal error: {e}")
    # No pending authentication, or one Crossbar does not expect: it denies without using the signature.
    return _ORIGINAL_ON_AUTHENTICATE(self, "", extra)
