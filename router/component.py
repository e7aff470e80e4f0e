"""
The component API: what a component hosted by Switchboard subclasses and decorates.

- :class:`ComponentSession`, an autobahn ``ApplicationSession`` that *fails loudly*: if its ``onJoin``
  raises, or a ``register``/``subscribe`` it makes while starting is refused, the component is recorded
  as failed with a one-line reason, and ``switchboard run`` stops with that line instead of printing ready.
  An ``ApplicationError`` a procedure raises on purpose is logged at debug level (it is the caller's
  problem), unexpected exceptions with their traceback.
- :func:`procedure`, a method decorator: it marks the method for ``await self.register(self)`` and binds
  each call's arguments to the method's own signature, so a caller with missing, extra or unknown arguments
  gets ``wamp.error.invalid_argument`` naming the procedure and the argument (autobahn would answer a
  ``TypeError`` from the call with ``wamp.error.runtime_error``).
- :func:`invalid_argument`, the error for bad input.

The start of every ``ComponentSession`` in the router worker is recorded here; :func:`serve_component_report`
(hosted by :class:`router.worker.WorkerBootstrap`) answers ``switchboard.node.components`` from that
record, and the readiness probe (:mod:`router.probe`) waits on it. Components that do not subclass
``ComponentSession`` are reported as ``unchecked``: Crossbar starts them, nothing watches them.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from autobahn import wamp
from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, RegisterOptions
from twisted.internet import defer
from twisted.python.failure import Failure

from router import uris
from router.workers import meta_uri

__all__ = [
    "FAILED",
    "LEFT",
    "READY",
    "STARTING",
    "UNCHECKED",
    "ComponentSession",
    "StartRecord",
    "component_report",
    "invalid_argument",
    "node_stopping",
    "procedure",
    "refusal_reason",
    "serve_component_report",
    "start_records",
]

STARTING: Final = "starting"
READY: Final = "ready"
FAILED: Final = "failed"
#: Started, then left its realm (its session closed or was lost): no longer serving.
LEFT: Final = "left"
#: Not a ComponentSession: its start is not watched.
UNCHECKED: Final = "unchecked"

F = TypeVar("F", bound=Callable[..., Any])


def invalid_argument(procedure: str, reason: str) -> ApplicationError:
    """The error a procedure raises for bad input: ``wamp.error.invalid_argument`` with a readable reason."""
    return ApplicationError(uris.INVALID_ARGUMENT, f"{procedure}: {reason}")


def procedure(uri: str) -> Callable[[F], F]:
    """Declare a method as the WAMP procedure ``uri``, its arguments bound to the method's own signature.

    The parameters other than ``self`` and ``details`` are what callers pass, by position or by name;
    defaults apply. A call that does not fit gets ``wamp.error.invalid_argument`` reading
    ``<uri>: <reason>`` (e.g. ``chat.send: missing a required argument: 'text'``). A method with a
    ``details`` parameter receives the call's :class:`~autobahn.wamp.types.CallDetails` there (a caller
    cannot pass ``details`` itself). ``await self.register(self)`` in ``onJoin`` registers every such method.
    """

    def decorate(handler: F) -> F:
        signature = inspect.signature(handler)
        parameters = list(signature.parameters.values())[1:]  # without self
        wants_details = "details" in signature.parameters
        call_signature = signature.replace(parameters=[p for p in parameters if p.name != "details"])

        @functools.wraps(handler)
        def bound(self: Any, *args: Any, details: CallDetails | None = None, **kwargs: Any) -> Any:
            try:
                arguments = call_signature.bind(*args, **kwargs)
            except TypeError as e:
                raise invalid_argument(uri, str(e)) from None
            arguments.apply_defaults()
            if wants_details:
                return handler(self, *arguments.args, details=details, **arguments.kwargs)
            return handler(self, *arguments.args, **arguments.kwargs)

        bound.__dict__.pop("_wampuris", None)  # copied from handler by wraps: not ours to extend
        # Always with details: autobahn then sets the ``details`` keyword itself, whatever the caller sends.
        wamp.register(uri, RegisterOptions(details=True))(bound)
        return cast(F, bound)

    return decorate


@dataclass
class StartRecord:
    """How the start of one ComponentSession went: ``state`` is STARTING, READY or FAILED (with ``reason``),
    and LEFT (with ``reason``) once a started component has left its realm."""

    cls: type
    realm: str | None
    state: str = STARTING
    reason: str | None = None


# Every ComponentSession created in this process (in the node: the router worker), in order.
_records: list[StartRecord] = []
# Set when the worker stops (node_stopping): components then leave as they should, and that is not news.
_stopping: list[bool] = []


def node_stopping() -> None:
    """Tell the components of this process that the node is stopping (a reactor "before shutdown" trigger
    :class:`router.worker.WorkerBootstrap` installs): their leaving is then not reported."""
    _stopping.append(True)


def start_records() -> tuple[StartRecord, ...]:
    """The start records of this process's components, in the order they were created."""
    return tuple(_records)


def refusal_reason(action: str, uri: str, error: ApplicationError, role: str | None) -> str:
    """One line for a refused ``register``/``subscribe``, e.g.
    ``register 'counter.incr' refused: not_authorized (role 'backend' has no register permission on it)``."""
    name = error.error.removeprefix("wamp.error.")
    if error.error == uris.NOT_AUTHORIZED:
        why = f"role {role!r} has no {action} permission on it"
    else:
        why = str(error.args[0]) if error.args else ""
    return f"{action} {uri!r} refused: {name}" + (f" ({why})" if why else "")


class ComponentSession(ApplicationSession):
    """Base class for hosted components; see the module docstring."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("onJoin")
        if own is not None and not getattr(own, "_switchboard_watched", False):
            cls.onJoin = _watched_on_join(own)  # type: ignore[method-assign]

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._start = StartRecord(type(self), getattr(config, "realm", None))
        _records.append(self._start)
        self.on("ready", self._on_ready)
        self.on("leave", self._on_leave)

    def start_failed(self, reason: str) -> None:
        """Record that this component could not start (the first reason is kept); no-op once started."""
        if self._start.state != STARTING:
            return
        self._start.state, self._start.reason = FAILED, reason
        self.log.error("component {klass} failed to start: {reason}", klass=_class_path(type(self)), reason=reason)

    def _on_ready(self, session: Any) -> None:
        if self._start.state == STARTING:
            self._start.state = READY

    def _on_leave(self, session: Any, details: Any) -> None:
        reason = getattr(details, "reason", details)
        if self._start.state == READY:
            self._start.state, self._start.reason = LEFT, f"left the realm: {reason}"
            if not _stopping:
                self.log.warn(
                    "component {klass} left the realm: {reason}", klass=_class_path(type(self)), reason=reason
                )
            return
        self.start_failed(f"left the realm while starting: {reason}")

    def register(
        self,
        endpoint: Callable[..., Any] | Any,
        procedure: str | None = None,
        options: RegisterOptions | None = None,
        prefix: str | None = None,
        check_types: bool | None = None,
    ) -> Any:
        """autobahn's ``register``, except that a refusal while starting fails the component, and that
        registering an object registers its decorated methods one by one (autobahn's own loop collects
        refusals in its result list, silently)."""
        if not callable(endpoint):
            return defer.ensureDeferred(self._each(endpoint, "register", options))
        d = super().register(endpoint, procedure, options, prefix, check_types)
        return self._watch(d, "register", f"{prefix or ''}{procedure}")

    def subscribe(
        self, handler: Any, topic: str | None = None, options: Any = None, check_types: bool | None = None
    ) -> Any:
        """autobahn's ``subscribe``, with refusals handled like :meth:`register`'s."""
        if not callable(handler):
            return defer.ensureDeferred(self._each(handler, "subscribe", options))
        return self._watch(super().subscribe(handler, topic, options, check_types), "subscribe", str(topic))

    async def _each(self, obj: Any, action: str, options: Any) -> list[Any]:
        done = []
        for name, member in inspect.getmembers(type(obj), callable):
            for pattern in getattr(member, "_wampuris", ()):
                if pattern.is_endpoint() if action == "register" else pattern.is_handler():
                    method = getattr(self, action)
                    done.append(await method(getattr(obj, name), pattern.uri(), options=pattern.options or options))
        return done

    def _watch(self, d: defer.Deferred[Any], action: str, uri: str) -> defer.Deferred[Any]:
        def refused(failure: Failure) -> Failure:
            if isinstance(failure.value, ApplicationError):
                self.start_failed(refusal_reason(action, uri, failure.value, self.authrole))
            return failure

        return d.addErrback(refused)

    def onUserError(self, fail: Any, msg: str) -> None:
        if isinstance(getattr(fail, "value", None), ApplicationError):
            self.log.debug(
                "{klass} answered with an error: {error}",
                klass=type(self).__name__,
                error=fail.value.error_message(),
            )
            return
        super().onUserError(fail, msg)


def _watched_on_join(on_join: Callable[..., Any]) -> Callable[..., Any]:
    """``on_join`` recording its failure on the component (then raising it on, to autobahn's log)."""

    @functools.wraps(on_join)
    async def watched(self: ComponentSession, details: Any) -> None:
        try:
            result = on_join(self, details)
            if inspect.isawaitable(result):
                await result
        except Exception as e:
            self.start_failed(f"onJoin raised {type(e).__name__}: {e}")
            raise

    watched._switchboard_watched = True  # type: ignore[attr-defined]
    return watched


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _resolve(class_path: str) -> type | None:
    module_name, _, name = class_path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name, None)
    except Exception:
        return None
    return found if isinstance(found, type) else None


def component_report(
    configured: Sequence[Mapping[str, str]],
    records: Sequence[StartRecord],
    resolve: Callable[[str], type | None] = _resolve,
) -> list[dict[str, Any]]:
    """The start state of each configured component (``{"class", "realm"}`` in config order), from
    ``records``: ``{"class", "realm", "state", "reason"}``; the n-th component of a class in a realm is the
    n-th record of that class and realm. One not created yet is STARTING; not a ComponentSession, UNCHECKED.
    """
    unclaimed = list(records)
    report = []
    for entry in configured:
        cls = resolve(entry["class"])
        state: str = UNCHECKED
        reason = None
        if cls is not None and issubclass(cls, ComponentSession):
            record = next((r for r in unclaimed if r.cls is cls and r.realm == entry["realm"]), None)
            state = STARTING
            if record is not None:
                unclaimed.remove(record)
                state, reason = record.state, record.reason
        report.append({"class": entry["class"], "realm": entry["realm"], "state": state, "reason": reason})
    return report


async def serve_component_report(
    session: ApplicationSession, configured: Sequence[Mapping[str, str]], workers: int = 1
) -> None:
    """Register ``switchboard.node.components`` on ``session``: :func:`component_report` of ``configured``,
    then, with more than one router worker (:mod:`router.workers`), one entry per other worker, ready once its
    agent's procedures reach ``session``'s realm over the links; for callers with the ``trusted`` role only
    (the control socket)."""

    async def report(*args: Any, details: CallDetails, **kwargs: Any) -> list[dict[str, Any]]:
        if details.caller_authrole != "trusted":
            raise ApplicationError(uris.NOT_AUTHORIZED, f"{uris.NODE_COMPONENTS} is for the node's own use")
        answer = component_report(configured, start_records())
        for worker in range(1, workers):
            linked = await session.call("wamp.registration.lookup", meta_uri(worker))
            state = STARTING if linked is None else READY
            answer.append({"class": f"router worker {worker}", "realm": session.realm, "state": state, "reason": None})
        return answer

    await session.register(report, uris.NODE_COMPONENTS, options=RegisterOptions(details=True))
