"""
Channels in a running router: history through Crossbar's realm-store interface, presence from the broker's
subscription map.

**History.** Crossbar's broker calls its realm store's ``store_event(session, publication, publish)`` once
per publication, after authorization and payload validation and before any delivery, for every topic on
which the store observes a subscription, whether or not a client subscribes. :class:`ChannelStore`
implements ``crossbar.interfaces.IRealmStore`` that way: it observes each history channel (``topic``
exact, and ``topic.`` as a prefix for a prefix channel) and hands every publication with the publication
id subscribers receive to :meth:`router.channels.history.History.record`. A rejected publish never gets
there. Crossbar chooses the store at realm start from the realm's ``store`` config, with no way to name a
class, so :func:`attach` sets it on the realm's router and broker before any transport opens. The
broker then calls ``store_event_history`` for each delivery (a no-op here).

**Presence.** The realm broker's ``UriObservationMap`` is the one place every subscription and
unsubscription passes (SUBSCRIBE, UNSUBSCRIBE, a session leaving, a subscription revoked);
:func:`attach` makes that one instance (it has ``__slots__``) a subclass overriding ``add_observer`` and
``drop_observer``, and wraps the broker's ``detach`` to
tell a dropped connection (no GOODBYE: ``RouterSession._goodbye_sent`` is false) from a clean leave.

**Publisher identity.** ``store_event`` does not receive the broker's disclosure decision; it is the same
function of the role's rules (:func:`router.authz.rules.discloses`), ``trusted`` always disclosed.
"""

from __future__ import annotations

from typing import Any

from autobahn import util
from autobahn.wamp import message
from crossbar.interfaces import IRealmStore
from twisted.internet import defer

from router.authz.rules import discloses
from router.channels.history import History
from router.channels.index import ChannelIndex
from router.channels.presence import Presence
from router.seam import OBSERVERS
from router.seam.authorization import CHANNELS_ATTRIBUTE, role_model

__all__ = ["RELIED_ON", "SIGNATURES", "ChannelStore", "attach", "may_subscribe", "publish_kwargs"]

RELIED_ON = [
    "crossbar.router.router.Router._broker",
    "crossbar.router.router.Router._store",
    "crossbar.router.router.Router.authorize",
    "crossbar.router.broker.Broker._event_store",
    "crossbar.router.broker.Broker._subscription_map",
    "crossbar.router.broker.Broker.detach",
    "crossbar.router.observation.UriObservationMap.add_observer",
    "crossbar.router.observation.UriObservationMap.drop_observer",
    "crossbar.router.observation.ExactUriObservation.match",
    "crossbar.router.observation.UriObservation.uri",
    "crossbar.router.session.RouterSession._goodbye_sent",
    "crossbar.router.session.RouterSession._session_id",
    "crossbar.router.session.RouterSession._authid",
    "crossbar.router.session.RouterSession._authrole",
    "crossbar.interfaces.IRealmStore.store_event",
    "crossbar.interfaces.IRealmStore.store_event_history",
    "crossbar.interfaces.IRealmStore.attach_subscription_map",
    "crossbar.interfaces.IRealmStore.store_session_joined",
    "crossbar.interfaces.IRealmStore.store_session_left",
    "autobahn.wamp.protocol.ApplicationSession._transport",
    "autobahn.wamp.message.Publish.args",
    "autobahn.wamp.message.Publish.kwargs",
    "autobahn.wamp.message.Publish.eligible",
    "autobahn.wamp.message.Publish.eligible_authid",
    "autobahn.wamp.message.Publish.eligible_authrole",
    "autobahn.wamp.message.Publish.exclude",
    "autobahn.wamp.message.Publish.exclude_authid",
    "autobahn.wamp.message.Publish.exclude_authrole",
]

SIGNATURES = {
    "crossbar.router.broker.Broker.detach": ("self", "session"),
    **OBSERVERS,
    "crossbar.interfaces.IRealmStore.store_event": ("self", "session", "publication_id", "publish"),
}


class ChannelStore:
    """The realm store of a realm with history channels: records publications, keeps nothing else."""

    # Crossbar's meta API lists a subscription's observers as if they were sessions.
    _session_id = None
    _authid = None
    _authrole = None
    _transport = None

    def __init__(self, router: Any, history: History, channels: ChannelIndex) -> None:
        self._router = router
        self._history = history
        self._channels = channels

    # -- IRealmStore: what the broker calls ----------------------------------------------------------------

    @property
    def type(self) -> str:
        return "switchboard"

    @property
    def is_running(self) -> bool:
        return True

    def start(self) -> None:
        """Nothing to start: :class:`History` is opened by the channel component."""

    def stop(self) -> None:
        """Nothing to stop: :class:`History` is closed by the channel component."""

    def attach_subscription_map(self, subscription_map: Any) -> None:
        """Observe every history channel, so the broker hands each of its publications to :meth:`store_event`."""
        for channel in self._channels.channels:
            if channel.history_size:
                subscription_map.add_observer(self, channel.topic, "exact")
                if channel.match == "prefix":
                    subscription_map.add_observer(self, channel.topic + ".", "prefix")

    def store_event(self, session: Any, publication_id: int, publish: Any) -> None:
        """Record one publication (called once per publication, before delivery), unless it is addressed to
        some subscribers only (``eligible``/``exclude`` options): history is for every subscriber."""
        if _addressed(publish):
            return
        authrole = session._authrole
        disclosed = authrole == "trusted" or discloses(role_model(self._router, authrole), publish.topic, "publish")
        self._history.record(
            publish.topic,
            publication_id,
            publish.args,
            publish.kwargs,
            session._authid if disclosed else None,
            authrole if disclosed else None,
        )

    def store_event_history(self, publication_id: int, subscription_id: int, receiver: Any) -> None:
        """Called per delivery: nothing to keep (one record per publication is enough)."""

    def store_session_joined(self, session: Any, details: Any) -> None:
        """Sessions are not recorded."""

    def store_session_left(self, session: Any, details: Any) -> None:
        """Sessions are not recorded."""

    def get_events(self, subscription_id: int, limit: int | None = None) -> list[Any]:
        """Crossbar's ``wamp.subscription.get_events`` is not served from channels: see docs/channels.md."""
        return []

    def get_event_history(self, *args: Any, **kwargs: Any) -> list[Any]:
        """As :meth:`get_events`."""
        return []

    def maybe_queue_call(self, *args: Any) -> bool:
        """Calls are never queued."""
        return False

    def get_queued_call(self, registration: Any) -> None:
        """Calls are never queued."""
        return None

    def pop_queued_call(self, registration: Any) -> None:
        """Calls are never queued."""
        return None

    def get_session_by_session_id(self, session_id: int, joined_at: int | None = None) -> None:
        """Sessions are not recorded."""
        return None

    def get_sessions_by_authid(self, authid: str) -> None:
        """Sessions are not recorded."""
        return None


IRealmStore.register(ChannelStore)


def _addressed(publish: Any) -> bool:
    return bool(
        publish.eligible
        or publish.eligible_authid
        or publish.eligible_authrole
        or publish.exclude
        or publish.exclude_authid
        or publish.exclude_authrole
    )


def attach(router: Any, channels: ChannelIndex, history: History | None, presence: Presence | None) -> None:
    """Make ``router`` (a realm's ``crossbar.router.router.Router``) record its channels' publications in
    ``history`` and tell ``presence`` of subscriptions; call once, before any transport opens."""
    from router.seam import UnverifiedVersion, allowed

    if not allowed("channels"):
        raise UnverifiedVersion("router.seam.channels is skipped on these library versions: no channels")
    broker = router._broker
    setattr(router, CHANNELS_ATTRIBUTE, channels)
    if history is not None:
        store = ChannelStore(router, history, channels)
        router._store = store
        broker._event_store = store
        store.attach_subscription_map(broker._subscription_map)
    if presence is not None:
        _track_members(broker, presence)


def _track_members(broker: Any, presence: Presence) -> None:
    subscriptions = broker._subscription_map
    base = type(subscriptions)
    detach = broker.detach
    dropping: set[Any] = set()

    def add_observer(
        self: Any, observer: Any, uri: str, match: str = "exact", extra: Any = None, observer_extra: Any = None
    ) -> Any:
        result = base.add_observer(self, observer, uri, match, extra, observer_extra)
        if not result[1] and match == "exact" and isinstance(observer._session_id, int):
            presence.joined(uri, observer._session_id, observer._authid, observer._authrole)
        return result

    def drop_observer(self: Any, observer: Any, observation: Any) -> Any:
        result = base.drop_observer(self, observer, observation)
        if result[0] and observation.match == "exact" and isinstance(observer._session_id, int):
            presence.left(observation.uri, observer._session_id, dropped=observer in dropping)
        return result

    def detach_session(session: Any) -> Any:
        if not session._goodbye_sent:
            dropping.add(session)
        try:
            return detach(session)
        finally:
            dropping.discard(session)

    # The map has __slots__: this one instance becomes a subclass with the same layout.
    tracking = type(
        "PresenceTrackingMap", (base,), {"__slots__": (), "add_observer": add_observer, "drop_observer": drop_observer}
    )
    subscriptions.__class__ = tracking
    broker.detach = detach_session


def publish_kwargs(session: Any, topic: str, kwargs: dict[str, Any]) -> None:
    """Publish an event with only keyword arguments from a router component ``session``, any keys allowed:
    autobahn's ``publish(topic, *args, **kwargs)`` cannot carry one named ``topic`` or ``options``."""
    session._transport.send(message.Publish(util.id(), topic, kwargs=kwargs))


def may_subscribe(router: Any, realm: str, authrole: str, topic: str) -> defer.Deferred[bool]:
    """Whether a session of ``authrole`` may subscribe (exact) to ``topic``: the router's own decision."""

    class _Caller:
        _realm = realm
        _authrole = authrole
        _authid = None
        _session_id = None

    decided = defer.maybeDeferred(router.authorize, _Caller(), topic, "subscribe", {"match": "exact"})
    return decided.addCallback(lambda authorization: bool(authorization.get("allow")))
