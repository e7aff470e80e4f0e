"""
The links' side (:mod:`router.seam.rlinks`): Crossbar's ``BridgeSession`` forwarding replaced by a
:class:`Mirror` per leg, and the leg's incoming INVOCATION keeping its ``forward_for``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, PublishOptions, RegisterOptions, SubscribeOptions
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger

from router.seam.rlinks.routing import INTEREST_TOPIC, Key, interest_of, marked

__all__ = ["RELIED_ON", "SIGNATURES", "Mirror", "on_message", "setup_event_forwarding", "setup_invocation_forwarding"]

#: Crossbar names this module relies on (``tests/unit/test_seam_canary.py`` checks them).
RELIED_ON = [
    # The node key the links log in with: made and read by router.launch.node_public_key before the node starts.
    "crossbar.common.key._maybe_generate_node_key",
    "crossbar.common.key._read_node_key",
    "crossbar.worker.rlink.BridgeSession.onMessage",
    "crossbar.worker.rlink.BridgeSession._setup_event_forwarding",
    "crossbar.worker.rlink.BridgeSession._setup_invocation_forwarding",
    "crossbar.worker.rlink.RLinkLocalSession.IS_REMOTE_LEG",
    "crossbar.worker.rlink.RLinkRemoteSession.IS_REMOTE_LEG",
    "crossbar.router.session.RouterApplicationSession._router",
]

#: Methods replaced here: the parameters they are expected to take.
SIGNATURES = {
    "crossbar.worker.rlink.BridgeSession.onMessage": ("self", "msg"),
    "crossbar.worker.rlink.BridgeSession._setup_event_forwarding": ("self", "other"),
    "crossbar.worker.rlink.BridgeSession._setup_invocation_forwarding": ("self", "other"),
}

_log = Logger(namespace="switchboard.rlinks")


class Mirror:
    """One leg's mirror: subscribes and registers through the ``other`` leg what the leg's own router is
    interested in, and forwards what arrives there through the leg.

    At most one subscribe/register or unsubscribe/unregister per key is under way: autobahn gives every
    SUBSCRIBE of one session to one URI the same subscription, so overlapping ones would undo each other.
    When one completes, the key is brought in line with what is wanted then. A key the other router refused
    (e.g. a ``single`` procedure registered there already) is tried again only once it was no longer wanted,
    or after the other leg rejoined."""

    def __init__(self, leg: Any, other: Any) -> None:
        self.leg = leg
        self.other = other
        self.kinds: set[str] = set()
        self.wanted: set[Key] = set()
        #: What is made through the other leg (its subscription or registration), by key.
        self.made: dict[Key, Any] = {}
        self.busy: set[Key] = set()
        self.refused: set[Key] = set()
        self.other_joined = False
        self.stopped = False
        self._generation = 0  # what completes after the other leg left (or this one stopped) is stale

    # what the leg's router wants
    def interest(self, op: str, key: Key) -> None:
        """Apply one change (``"add"``/``"remove"``) of the router's interest."""
        if op == "add":
            self.wanted.add(key)
        else:
            self.wanted.discard(key)
            self.refused.discard(key)
        self.sync()

    def snapshot(self, keys: list[Key]) -> None:
        """Replace the router's interest with ``keys``."""
        self.wanted = set(keys)
        self.refused &= self.wanted
        self.sync()

    def on_interest_event(self, op: str, payload: Any) -> None:
        """An EVENT of :data:`INTEREST_TOPIC` (the remote leg's router)."""
        if op == "snapshot":
            self.snapshot([_as_key(k) for k in payload])
        else:
            self.interest(op, _as_key(payload))

    def sync(self) -> None:
        """Start making what is wanted and undoing what is not (while the other leg is joined), one operation
        per key at a time."""
        if self.stopped or not self.other_joined:
            return
        for key in list(self.made):
            if key not in self.wanted and key not in self.busy:
                self.busy.add(key)
                ensureDeferred(self._undo(key, self.made.pop(key), self._generation))
        for key in self.wanted:
            if key in self.made or key in self.busy or key in self.refused or key[0] not in self.kinds:
                continue
            self.busy.add(key)
            ensureDeferred(self._make(key, self._generation))

    def other_up(self) -> None:
        """The other leg joined (again): everything is to be made there."""
        self._forget()
        self.other_joined = True
        self.sync()

    def other_down(self) -> None:
        """The other leg left: what was made there went with its session."""
        self._forget()
        self.other_joined = False

    def stop(self) -> None:
        """The leg left: undo everything made through the other leg."""
        made = list(self.made.values())
        self._forget()
        self.stopped = True
        for handle in made:
            ensureDeferred(_release(handle))

    def _forget(self) -> None:
        self._generation += 1
        self.made.clear()
        self.busy.clear()
        self.refused.clear()

    async def _make(self, key: Key, generation: int) -> None:
        kind, uri, match, invoke = key
        handle = None
        try:
            if kind == "sub":
                handle = await self.other.subscribe(
                    self._forward_event(uri), uri, options=SubscribeOptions(match=match, details=True)
                )
            else:
                handle = await self.other.register(
                    self._forward_call(uri), uri, options=RegisterOptions(match=match, invoke=invoke, details=True)
                )
        except Exception as e:
            _log.info("rlink: {kind} {uri} ({match}) not mirrored: {error}", kind=kind, uri=uri, match=match, error=e)
        if generation != self._generation:
            if handle is not None and self.stopped:
                await _release(handle)
            return
        self.busy.discard(key)
        if handle is None:
            self.refused.add(key)
        else:
            self.made[key] = handle
        self.sync()

    async def _undo(self, key: Key, handle: Any, generation: int) -> None:
        await _release(handle)
        if generation == self._generation:
            self.busy.discard(key)
            self.sync()

    def _forward_event(self, uri: str) -> Callable[..., None]:
        def on_event(*_: Any, details: Any, **__: Any) -> None:
            entry = marked(details.forward_for)
            payload = self.other.__dict__.get("_sb_payload")
            if entry is None or payload is None or self.stopped:
                return
            args, kwargs = payload
            options = PublishOptions(acknowledge=False, forward_for=[entry])
            self.leg.publish(details.topic or uri, *args, options=options, **kwargs)

        return on_event

    def _forward_call(self, uri: str) -> Callable[..., Any]:
        async def on_call(*_: Any, details: Any, **__: Any) -> Any:
            # autobahn's CallDetails has no forward_for, and its details replace a kwarg of that name: on_message
            # keeps both while the INVOCATION is handled (before this coroutine's first await).
            entry = self.other.__dict__.get("_sb_invocation")
            payload = self.other.__dict__.get("_sb_payload")
            if entry is None or payload is None:
                raise ApplicationError(ApplicationError.NO_SUCH_PROCEDURE, "not a forwarded call")
            args, kwargs = payload
            progress = details.progress
            options = CallOptions(
                forward_for=[entry],
                on_progress=(lambda *a, **kw: progress(*a, **kw)) if progress is not None else None,
            )
            return await self.leg.call(details.procedure or uri, *args, options=options, **kwargs)

        return on_call


async def _release(handle: Any) -> None:
    """Unsubscribe or unregister ``handle`` if it is still active; a failure means its session is gone,
    and what it held with it."""
    try:
        if getattr(handle, "active", False):
            await (handle.unsubscribe() if hasattr(handle, "unsubscribe") else handle.unregister())
    except Exception:
        return


def _as_key(value: Any) -> Key:
    kind, uri, match, invoke = value
    return (str(kind), str(uri), str(match), None if invoke is None else str(invoke))


async def _start(leg: Any, other: Any, kind: str) -> None:
    mirror: Mirror | None = leg.__dict__.get("_sb_mirror")
    first = mirror is None or mirror.stopped
    if mirror is None or mirror.stopped:
        mirror = Mirror(leg, other)
        leg._sb_mirror = mirror
    mirror.kinds.add(kind)
    if not first:
        mirror.sync()
        return
    this = mirror

    def left(*_: Any) -> None:
        leg.off("leave", left)
        this.stop()

    leg.on("leave", left)
    if leg.IS_REMOTE_LEG:
        # The other worker's interest arrives as events; the local leg (this worker) is joined already.
        mirror.other_joined = True
        await leg.subscribe(lambda op, payload: this.on_interest_event(op, payload), INTEREST_TOPIC)
    else:
        router = leg._transport._router
        interest = interest_of(router)
        interest.mirrors.append(mirror)

        def up(*_: Any) -> None:
            this.other_up()

        def down(*_: Any) -> None:
            this.other_down()

        def gone(*_: Any) -> None:
            if this in interest.mirrors:
                interest.mirrors.remove(this)

        leg.on("leave", gone)
        other.on("join", up)
        other.on("leave", down)
        mirror.wanted = set(interest.snapshot())
        if other.is_attached():
            mirror.other_up()


def on_message(self: Any, msg: Any) -> Any:
    """A leg's incoming message. An INVOCATION's ``forward_for`` is kept on the leg while its endpoint starts
    (autobahn's ``CallDetails`` leaves it out). Crossbar's version also copied ``_router_internal`` into
    the (shared) message; what a link receives here carries the identity itself (see :func:`_make_send`)."""
    from autobahn.wamp.protocol import ApplicationSession

    on_message: Any = ApplicationSession.onMessage
    if msg.__class__ is message.Invocation or msg.__class__ is message.Event:
        # The payload as sent: autobahn adds its details object to the kwargs it hands a handler, under the
        # name "details", which a client's own keyword argument may have.
        self._sb_payload = (list(msg.args or ()), dict(msg.kwargs or {}))
        self._sb_invocation = marked(msg.forward_for) if msg.__class__ is message.Invocation else None
        try:
            return on_message(self, msg)
        finally:
            self._sb_invocation = None
            self._sb_payload = None
    return on_message(self, msg)


def setup_event_forwarding(self: Any, other: Any) -> Deferred[None]:
    """Replaces ``BridgeSession._setup_event_forwarding``: the leg mirrors its router's subscriptions."""
    return ensureDeferred(_start(self, other, "sub"))


def setup_invocation_forwarding(self: Any, other: Any) -> Deferred[None]:
    """Replaces ``BridgeSession._setup_invocation_forwarding``: the leg mirrors its router's registrations."""
    return ensureDeferred(_start(self, other, "reg"))
