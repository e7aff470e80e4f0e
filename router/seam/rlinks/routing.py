"""
The router's side of the links (:mod:`router.seam.rlinks`): which sessions are links, what the router is
interested in, what a link receives (``Router.send``, ``Broker._filter_publish_receivers``) and what it
sends (``Router.process``, ``Dealer._call``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from autobahn import util
from autobahn.exception import PayloadExceededError
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from twisted.logger import Logger

from router.patches import Patches
from router.seam import DEALER_CALL, OBSERVERS
from router.workers import LINK_ROLE

if TYPE_CHECKING:
    from router.seam.rlinks.legs import Mirror

__all__ = [
    "FILTERS",
    "INTEREST_TOPIC",
    "MARK",
    "RELIED_ON",
    "SIGNATURES",
    "Interest",
    "Key",
    "deliver",
    "interest_of",
    "is_link",
    "marked",
]

#: Crossbar/autobahn names this module relies on (``tests/unit/test_seam_canary.py`` checks them).
RELIED_ON = [
    "crossbar.router.router.Router.attach",
    "crossbar.router.router.Router.detach",
    "crossbar.router.router.Router.send",
    "crossbar.router.router.Router.process",
    "crossbar.router.router.Router._broker",
    "crossbar.router.router.Router._dealer",
    "crossbar.router.router.Router._session_id_to_session",
    "crossbar.router.router.Router._authid_to_sessions",
    "crossbar.router.router.Router._authrole_to_sessions",
    "crossbar.router.broker.Broker._filter_publish_receivers",
    "crossbar.router.broker.Broker._subscription_map",
    "crossbar.router.broker.Broker._event_store",
    "crossbar.router.broker.Broker._reactor",
    "crossbar.router.dealer.Dealer._call",
    "crossbar.router.dealer.Dealer._registration_map",
    "crossbar.router.dealer.Dealer._router",
    "crossbar.router.dealer.RegistrationExtra.invoke",
    "crossbar.router.observation.UriObservationMap.add_observer",
    "crossbar.router.observation.UriObservationMap.drop_observer",
    "crossbar.router.observation.UriObservationMap.match_observations",
    "crossbar.router.observation.UriObservationMap.get_observation",
    "crossbar.router.observation.UriObservationMap._observation_id_to_observation",
    "crossbar.router.observation.OrderedSet",
    "crossbar.router.session.RouterSession._authrole",
    "autobahn.wamp.message.Message._router_internal",
    "autobahn.wamp.message.Invocation.forward_for",
    "autobahn.wamp.message.Event.forward_for",
]

#: Methods wrapped or called here with positional arguments: the parameters they are expected to take.
SIGNATURES = {
    "crossbar.router.router.Router.attach": ("self", "session"),
    "crossbar.router.router.Router.detach": ("self", "session"),
    "crossbar.router.router.Router.send": ("self", "session", "msg"),
    "crossbar.router.router.Router.process": ("self", "session", "msg"),
    "crossbar.router.broker.Broker._filter_publish_receivers": ("self", "receivers", "publish"),
    **DEALER_CALL,
    **OBSERVERS,
}

#: The topic on which a router tells the remote legs of other workers what it is interested in; only
#: link sessions get its events. Payload: ``("snapshot", [key, ...])`` first, then ``("add"|"remove", key)``
#: with ``key = [kind ("sub"|"reg"), uri, match, invoke]``.
INTEREST_TOPIC = "wamp.switchboard.link.interest"

#: The key, in the one ``forward_for`` entry of what a link forwards, of the original's identity and options.
MARK = "switchboard"

#: PUBLISH options applied on the worker that receives a forwarded event.
FILTERS = ("exclude", "exclude_authid", "exclude_authrole", "eligible", "eligible_authid", "eligible_authrole")

_log = Logger(namespace="switchboard.rlinks")
_hooks = Patches()

Key = tuple[str, str, str, "str | None"]


def _meta(uri: str) -> bool:
    return uri.startswith(("wamp.", "crossbar."))


def _key(kind: str, observation: Any) -> Key:
    invoke = getattr(observation.extra, "invoke", None) if kind == "reg" else None
    return (kind, observation.uri, observation.match or "exact", invoke)


class Interest:
    """A router's links and what it is interested in: per subscription/registration, how many observers
    that are not links it has (:func:`interest_of` attaches one to a router)."""

    def __init__(self, router: Any) -> None:
        self.router = router
        #: The link sessions attached to the router (remote legs of other workers, local legs here).
        self.sessions: set[Any] = set()
        #: The mirrors of the local legs hosted here, told directly.
        self.mirrors: list[Mirror] = []
        self.counts: dict[tuple[str, int], int] = {}
        self.maps = {"sub": router._broker._subscription_map, "reg": router._dealer._registration_map}
        for kind, observations in self.maps.items():
            for observation in list(observations._observation_id_to_observation.values()):
                for observer in list(observation.observers):
                    self.added(kind, observation, observer)

    def snapshot(self) -> list[Key]:
        """Every key this router is interested in now."""
        keys = []
        for kind, observations in self.maps.items():
            for observation in observations._observation_id_to_observation.values():
                if self.counts.get((kind, observation.id), 0) > 0:
                    keys.append(_key(kind, observation))
        return keys

    def added(self, kind: str, observation: Any, observer: Any) -> None:
        """``observer`` now observes ``observation`` (it did not before)."""
        if observer in self.sessions:
            if kind == "sub" and observation.uri == INTEREST_TOPIC:
                self.router._broker._reactor.callLater(0, self._send_snapshot, observer, observation)
            return
        if _meta(observation.uri):
            return
        slot = (kind, observation.id)
        count = self.counts.get(slot, 0) + 1
        self.counts[slot] = count
        if count == 1:
            self._announce("add", _key(kind, observation))

    def dropped(self, kind: str, observation: Any, observer: Any) -> None:
        """``observer`` no longer observes ``observation``."""
        if observer in self.sessions or _meta(observation.uri):
            return
        slot = (kind, observation.id)
        count = self.counts.get(slot, 0) - 1
        if count > 0:
            self.counts[slot] = count
            return
        self.counts.pop(slot, None)
        self._announce("remove", _key(kind, observation))

    def _remote_legs(self) -> tuple[Any, list[Any]]:
        observation = self.maps["sub"].get_observation(INTEREST_TOPIC)
        if observation is None:
            return None, []
        return observation, [s for s in observation.observers if s in self.sessions]

    def _announce(self, op: str, key: Key) -> None:
        for mirror in list(self.mirrors):
            mirror.interest(op, key)
        observation, legs = self._remote_legs()
        for session in legs:
            self.router.send(session, message.Event(observation.id, util.id(), args=[op, list(key)]))

    def _send_snapshot(self, session: Any, observation: Any) -> None:
        if session in self.sessions and session in observation.observers:
            keys = [list(key) for key in self.snapshot()]
            self.router.send(session, message.Event(observation.id, util.id(), args=["snapshot", keys]))


_WATCHED: dict[Any, tuple[Interest, str]] = {}
_ORIGINAL: dict[str, Callable[..., Any]] = {}
#: The class of the links' legs (``BridgeSession``), set by :func:`router.seam.rlinks.install`.
LEGS: list[type] = []


def interest_of(router: Any) -> Interest:
    """The :class:`Interest` of ``router``, created (and its maps watched) on first use."""
    found: Interest | None = router.__dict__.get("_sb_interest")
    if found is None:
        _install_hooks()
        found = Interest(router)
        router._sb_interest = found
        for kind, observations in found.maps.items():
            _WATCHED[observations] = (found, kind)
    return found


def is_link(session: Any) -> bool:
    """Whether ``session`` (as the router sees it) is a link: a leg hosted here or a remote leg of another
    worker or node (authrole :data:`router.workers.LINK_ROLE`)."""
    return isinstance(session, tuple(LEGS)) or getattr(session, "_authrole", None) == LINK_ROLE


# --- what a link receives -----------------------------------------------------------------------------


def _origin(mark: dict[str, Any], session: int, authid: str | None, authrole: str | None) -> dict[str, Any]:
    """The ``forward_for`` entry of a forwarded message: autobahn wants strings in the first three fields."""
    mark.update(authid=authid, authrole=authrole)
    return {"session": session, "authid": authid or "", "authrole": authrole or "", MARK: mark}


def _marked_event(router: Any, msg: Any) -> Any:
    """A copy of EVENT ``msg`` for a link: with the real publisher, the publication and the PUBLISH options."""
    origin = msg._router_internal
    publish = router._broker.__dict__.get("_sb_publish")
    if origin is None or publish is None:
        return msg  # the router's own (the interest events)
    mark: dict[str, Any] = {"disclose": msg.publisher is not None, "publication": msg.publication}
    for name in FILTERS:
        value = getattr(publish, name)
        if value:
            mark[name] = value
    # Copies: a leg in this process gets the message object itself, and autobahn adds its details to the kwargs.
    return message.Event(
        msg.subscription,
        msg.publication,
        args=list(msg.args) if msg.args is not None else None,
        kwargs=dict(msg.kwargs) if msg.kwargs is not None else None,
        topic=publish.topic,
        forward_for=[_origin(mark, *origin)],
    )


def _mark_invocation(msg: Any) -> None:
    caller = msg._router_internal
    msg.forward_for = [_origin({"disclose": msg.caller is not None}, *caller)]
    if msg.kwargs is not None:  # the CALL's own dict: a leg in this process would get autobahn's details in it
        msg.kwargs = dict(msg.kwargs)


def _make_send(original: Callable[..., Any]) -> Callable[..., Any]:
    def send(self: Any, session: Any, msg: Any) -> Any:
        interest = self.__dict__.get("_sb_interest")
        if interest is not None:
            cls = msg.__class__
            if cls is message.Invocation:
                if session in interest.sessions:
                    _mark_invocation(msg)
                elif msg.forward_for is not None:
                    msg.forward_for = None  # a forwarded call: the callee sees what a local callee sees
            elif cls is message.Event and session in interest.sessions:
                msg = _marked_event(self, msg)
        return original(self, session, msg)

    return send


def _make_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    _ORIGINAL["filter"] = original

    def _filter_publish_receivers(self: Any, receivers: Any, publish: Any) -> Any:
        result = original(self, receivers, publish)
        interest = self._router.__dict__.get("_sb_interest")
        if interest is None or not interest.sessions:
            return result
        links = [s for s in interest.sessions if s in receivers]
        if not links:
            return result
        if _meta(publish.topic):  # the meta API's own events: as Crossbar sends them
            self._sb_publish = None
            return result
        # Called once per matching subscription: a link gets each publication once (the other side
        # matches it against all of its own subscriptions).
        if self.__dict__.get("_sb_publish") is not publish:
            self._sb_publish = publish  # read by Router.send for these links, in this same dispatch
            self._sb_forwarded = set()
        forwarded = self._sb_forwarded
        links = [s for s in links if s not in forwarded]
        forwarded.update(links)
        # Links first: the broker dispatches the first chunk of receivers synchronously.
        return links + [r for r in result if r not in interest.sessions]

    return _filter_publish_receivers


# --- what a link sends --------------------------------------------------------------------------------


class _Origin:
    """The original publisher, as the realm store sees a publishing session."""

    def __init__(self, realm: str | None, session: int, authid: str | None, authrole: str | None) -> None:
        self._realm = realm
        self._session_id = session
        self._authid = authid
        self._authrole = authrole


class _Forwarded:
    """A forwarded publication as the broker's filters and the realm store read a PUBLISH."""

    def __init__(self, publish: Any, mark: dict[str, Any]) -> None:
        self.topic = publish.topic
        self.args = publish.args
        self.kwargs = publish.kwargs
        self.payload = None
        self.retain = None
        for name in FILTERS:
            setattr(self, name, mark.get(name))


def marked(forward_for: Any) -> dict[str, Any] | None:
    """The ``forward_for`` entry of a message a link forwarded (with :data:`MARK`), else None."""
    if forward_for and isinstance(forward_for[0], dict) and isinstance(forward_for[0].get(MARK), dict):
        entry: dict[str, Any] = forward_for[0]
        return entry
    return None


def deliver(router: Any, publish: Any, entry: dict[str, Any]) -> None:
    """Deliver a PUBLISH forwarded by a link to this router's subscribers (never to a link): with the
    original publication id, the publisher if it was disclosed, the ``exclude``/``eligible`` options applied
    to this router's sessions, and to the realm store if it keeps history for the topic."""
    mark = entry[MARK]
    broker = router._broker
    links = router._sb_interest.sessions
    publication = mark["publication"]
    if mark.get("disclose"):
        publisher, authid, authrole = entry["session"], mark.get("authid"), mark.get("authrole")
    else:
        publisher = authid = authrole = None
    forwarded = _Forwarded(publish, mark)
    store = broker._event_store
    subscriptions = broker._subscription_map.match_observations(publish.topic)
    if store is not None and any(store in s.observers for s in subscriptions):
        realm = getattr(getattr(router, "_realm", None), "config", {}).get("name")
        origin = _Origin(realm, entry["session"], mark.get("authid"), mark.get("authrole"))
        store.store_event(origin, publication, forwarded)
    for subscription in subscriptions:
        receivers = _ORIGINAL["filter"](broker, subscription.observers, forwarded)
        event = message.Event(
            subscription.id,
            publication,
            args=publish.args,
            kwargs=publish.kwargs,
            publisher=publisher,
            publisher_authid=authid,
            publisher_authrole=authrole,
            topic=publish.topic if subscription.match != "exact" else None,
        )
        for receiver in receivers:
            if receiver in links or receiver is store or not getattr(receiver, "_transport", None):
                continue
            try:
                router.send(receiver, event)
            except PayloadExceededError as e:  # as Crossbar's broker: the others still get it
                _log.warn("forwarded event not sent to {session}: {error}", session=receiver._session_id, error=e)
            if store is not None:
                store.store_event_history(publication, subscription.id, receiver)


def _make_process(original: Callable[..., Any]) -> Callable[..., Any]:
    def process(self: Any, session: Any, msg: Any) -> Any:
        interest = self.__dict__.get("_sb_interest")
        if interest is not None and session in interest.sessions:
            cls = msg.__class__
            if cls is message.Publish or cls is message.Call:
                entry = marked(msg.forward_for)
                if entry is not None:
                    if cls is message.Publish:
                        deliver(self, msg, entry)
                        return None
                    msg.forward_for = None  # decided by Dealer._call below, not by Crossbar
                    msg._router_internal = entry
        return original(self, session, msg)

    return process


def _make_call(original: Callable[..., Any]) -> Callable[..., Any]:
    from crossbar.router.observation import OrderedSet

    def _call(
        self: Any, session: Any, call: Any, registration: Any, authorization: Any, is_queued_call: bool = False
    ) -> Any:
        entry = call._router_internal
        if entry.__class__ is not dict:
            return original(self, session, call, registration, authorization, is_queued_call)
        call._router_internal = None
        mark = entry[MARK]
        links = self._router._sb_interest.sessions
        callees = [c for c in registration.observers if c not in links]
        if not callees:  # only links: a forwarded call never goes back over a link
            error = message.Error(
                message.Call.MESSAGE_TYPE,
                call.request,
                ApplicationError.NO_SUCH_PROCEDURE,
                [f"no callee for procedure '{call.procedure}'"],
            )
            self._router.send(session, error)
            return False
        call.forward_for = [
            {"session": entry["session"], "authid": mark.get("authid"), "authrole": mark.get("authrole")}
        ]
        authorization = dict(authorization, disclose=bool(mark.get("disclose")))
        observers = registration.observers
        if len(callees) != len(observers):
            only = OrderedSet()
            for callee in callees:
                only.add(callee)
            registration.observers = only
        try:
            return original(self, session, call, registration, authorization, is_queued_call)
        finally:
            registration.observers = observers

    return _call


# --- interest, and which sessions are links -------------------------------------------------------------


def _make_add_observer(original: Callable[..., Any]) -> Callable[..., Any]:
    def add_observer(
        self: Any, observer: Any, uri: str, match: str = "exact", extra: Any = None, observer_extra: Any = None
    ) -> Any:
        result = original(self, observer, uri, match, extra, observer_extra)
        watch = _WATCHED.get(self)
        if watch is not None and not result[1]:
            watch[0].added(watch[1], result[0], observer)
        return result

    return add_observer


def _make_drop_observer(original: Callable[..., Any]) -> Callable[..., Any]:
    def drop_observer(self: Any, observer: Any, observation: Any) -> Any:
        result = original(self, observer, observation)
        watch = _WATCHED.get(self)
        if watch is not None and result[0]:
            watch[0].dropped(watch[1], observation, observer)
        return result

    return drop_observer


def make_attach(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Router.attach`` that notes a link session (and starts watching the router at the first)."""

    def attach(self: Any, session: Any) -> Any:
        roles = original(self, session)
        if is_link(session):
            interest_of(self).sessions.add(session)
        return roles

    return attach


def make_detach(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Router.detach`` that forgets a link session once what it observed is dropped."""

    def detach(self: Any, session: Any) -> Any:
        try:
            return original(self, session)
        finally:
            interest = self.__dict__.get("_sb_interest")
            if interest is not None:
                interest.sessions.discard(session)

    return detach


def _install_hooks() -> None:
    """The message hooks: put in once per process, when the first link session attaches."""
    if _hooks:
        return
    from crossbar.router.broker import Broker
    from crossbar.router.dealer import Dealer
    from crossbar.router.observation import UriObservationMap
    from crossbar.router.router import Router

    _hooks.wrap(Router, "send", _make_send)
    _hooks.wrap(Router, "process", _make_process)
    _hooks.wrap(Broker, "_filter_publish_receivers", _make_filter)
    _hooks.wrap(Dealer, "_call", _make_call)
    _hooks.wrap(UriObservationMap, "add_observer", _make_add_observer)
    _hooks.wrap(UriObservationMap, "drop_observer", _make_drop_observer)


def uninstall() -> None:
    """Put back the message hooks and forget the routers watched (for tests)."""
    _hooks.undo()
    _WATCHED.clear()
