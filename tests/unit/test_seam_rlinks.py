"""The pure parts of :mod:`router.seam.rlinks`: a router's interest (what its links must mirror) counted on
Crossbar's own observation maps, and a leg's :class:`~router.seam.rlinks.legs.Mirror` making and undoing
subscriptions and registrations through the other leg. The rest runs on real nodes:
``tests/integration/test_rlinks.py``."""

from __future__ import annotations

from typing import Any

from autobahn.wamp.exception import ApplicationError
from crossbar.router.dealer import RegistrationExtra
from crossbar.router.observation import UriObservationMap
from twisted.internet import defer, task

from router.seam.rlinks.legs import Mirror
from router.seam.rlinks.routing import INTEREST_TOPIC, MARK, Interest, marked


class Session:
    """A stand-in for a router-side session (only its identity matters here)."""

    def __init__(self, name: str) -> None:
        self.name = name


class Router:
    """What :class:`Interest` reads of Crossbar's router: the broker's and dealer's maps, send()."""

    def __init__(self) -> None:
        self.clock = task.Clock()
        self._broker = type("Broker", (), {})()
        self._broker._subscription_map = UriObservationMap()
        self._broker._reactor = self.clock
        self._dealer = type("Dealer", (), {})()
        self._dealer._registration_map = UriObservationMap(ordered=True)
        self.sent: list[tuple[Session, Any]] = []

    def send(self, session: Session, msg: Any) -> None:
        self.sent.append((session, msg))


class Recorder:
    """A mirror that records what it is told."""

    def __init__(self) -> None:
        self.told: list[tuple[str, Any]] = []

    def interest(self, op: str, key: Any) -> None:
        self.told.append((op, key))


def subscribe(interest: Interest, session: Session, uri: str, match: str = "exact") -> Any:
    observation, already, _ = interest.maps["sub"].add_observer(session, uri, match)
    if not already:
        interest.added("sub", observation, session)
    return observation


def unsubscribe(interest: Interest, session: Session, observation: Any) -> None:
    was, _ = interest.maps["sub"].drop_observer(session, observation)
    if was:
        interest.dropped("sub", observation, session)


def test_only_the_first_and_last_real_observer_change_the_interest() -> None:
    """Two clients on a topic: interest is announced when the first comes and when the last goes; a
    link's own subscription never counts (so links cannot keep each other's alive)."""
    interest = Interest(Router())
    link = Session("link")
    interest.sessions.add(link)
    told = Recorder()
    interest.mirrors.append(told)  # type: ignore[arg-type]
    a, b = Session("a"), Session("b")
    observation = subscribe(interest, link, "x.y")
    assert told.told == []
    subscribe(interest, a, "x.y")
    subscribe(interest, b, "x.y")
    unsubscribe(interest, a, observation)
    assert told.told == [("add", ("sub", "x.y", "exact", None))]
    unsubscribe(interest, b, observation)
    assert told.told[1:] == [("remove", ("sub", "x.y", "exact", None))]
    unsubscribe(interest, link, observation)
    assert len(told.told) == 2


def test_meta_uris_are_never_mirrored() -> None:
    """Subscriptions to ``wamp.*`` and ``crossbar.*`` are no interest of the links."""
    interest = Interest(Router())
    told = Recorder()
    interest.mirrors.append(told)  # type: ignore[arg-type]
    subscribe(interest, Session("a"), "wamp.session.on_join")
    subscribe(interest, Session("a"), "crossbar.node.x", "prefix")
    assert told.told == []
    assert interest.snapshot() == []


def test_keys_carry_match_and_invocation_policy() -> None:
    """A pattern subscription keys with its match, a registration with its invocation policy."""
    interest = Interest(Router())
    subscribe(interest, Session("a"), "p.", "prefix")
    callee = Session("c")
    registration, _, _ = interest.maps["reg"].add_observer(callee, "r..w", "wildcard", RegistrationExtra("roundrobin"))
    interest.added("reg", registration, callee)
    assert sorted(interest.snapshot(), key=str) == [
        ("reg", "r..w", "wildcard", "roundrobin"),
        ("sub", "p.", "prefix", None),
    ]


def test_what_was_observed_before_the_first_link_counts() -> None:
    """Interest made when the router already has subscribers counts them (the first link attaches late)."""
    router = Router()
    router._broker._subscription_map.add_observer(Session("early"), "e.t")
    interest = Interest(router)
    assert interest.snapshot() == [("sub", "e.t", "exact", None)]


def test_a_remote_leg_gets_the_whole_state_then_each_change() -> None:
    """A link session subscribing to the interest topic gets a snapshot event (after its SUBSCRIBED), then
    one event per change, on its subscription; other sessions get nothing."""
    router = Router()
    interest = Interest(router)
    subscribe(interest, Session("a"), "before")
    leg = Session("leg")
    interest.sessions.add(leg)
    topic = subscribe(interest, leg, INTEREST_TOPIC)
    subscribe(interest, Session("nosy"), INTEREST_TOPIC)
    assert router.sent == []
    router.clock.advance(0)
    subscribe(interest, Session("b"), "after", "wildcard")
    assert [(s.name, m.subscription, m.args) for s, m in router.sent] == [
        ("leg", topic.id, ["snapshot", [["sub", "before", "exact", None]]]),
        ("leg", topic.id, ["add", ["sub", "after", "wildcard", None]]),
    ]


def test_marked_reads_only_switchboard_entries() -> None:
    """Only a first forward_for entry carrying the mark is a forwarded message of this module."""
    entry = {"session": 1, "authid": "a", "authrole": "r", MARK: {"disclose": False}}
    assert marked([entry]) is entry
    assert marked([{"session": 1, "authid": "a", "authrole": "r"}]) is None
    assert marked(None) is None
    assert marked([{"session": 1, MARK: "not a dict"}]) is None


class Handle:
    """A subscription or registration made through the fake leg."""

    def __init__(self, other: Other, key: tuple[Any, ...]) -> None:
        self.other, self.key, self.active = other, key, True

    async def unsubscribe(self) -> None:
        self.active = False
        self.other.undone.append(self.key)


class Other:
    """The other leg: answers subscribe() when told to (or refuses)."""

    def __init__(self) -> None:
        self.pending: list[tuple[tuple[Any, ...], defer.Deferred[Handle]]] = []
        self.undone: list[tuple[Any, ...]] = []

    def subscribe(self, handler: Any, uri: str, options: Any) -> defer.Deferred[Handle]:
        d: defer.Deferred[Handle] = defer.Deferred()
        self.pending.append(((uri, options.match), d))
        return d

    def answer_all(self, refuse: bool = False) -> None:
        pending, self.pending = self.pending, []
        for key, d in pending:
            if refuse:
                d.errback(ApplicationError("wamp.error.not_authorized"))
            else:
                d.callback(Handle(self, key))


def mirror_of(other: Other) -> Mirror:
    mirror = Mirror(leg=object(), other=other)
    mirror.kinds.add("sub")
    return mirror


def test_a_mirror_acts_only_while_the_other_leg_is_joined() -> None:
    """What is wanted before the other leg joins is made when it joins, and made again after it rejoins."""
    other = Other()
    mirror = mirror_of(other)
    mirror.interest("add", ("sub", "t", "prefix", None))
    assert other.pending == []
    mirror.other_up()
    assert [key for key, _ in other.pending] == [("t", "prefix")]
    other.answer_all()
    mirror.other_down()
    mirror.other_up()
    assert [key for key, _ in other.pending] == [("t", "prefix")]


def test_a_mirror_undoes_what_is_no_longer_wanted_even_when_it_answers_late() -> None:
    """A removal while the subscribe is under way undoes it when the answer comes; one that is made is
    undone at once; stop() undoes the rest."""
    other = Other()
    mirror = mirror_of(other)
    mirror.other_up()
    mirror.snapshot([("sub", "late", "exact", None), ("sub", "kept", "exact", None), ("reg", "r", "exact", None)])
    mirror.interest("remove", ("sub", "late", "exact", None))
    other.answer_all()
    assert other.undone == [("late", "exact")]
    mirror.interest("add", ("sub", "gone", "exact", None))
    other.answer_all()
    mirror.interest("remove", ("sub", "gone", "exact", None))
    assert other.undone[1:] == [("gone", "exact")]
    mirror.stop()
    assert other.undone[2:] == [("kept", "exact")]
    mirror.interest("add", ("sub", "after", "exact", None))
    assert other.pending == []


def test_a_mirror_has_one_operation_per_key_under_way() -> None:
    """Removed and added again while its subscribe is under way, a key is subscribed once (a second SUBSCRIBE
    of the same session would share the subscription, and undoing one would undo both)."""
    other = Other()
    mirror = mirror_of(other)
    mirror.other_up()
    key = ("sub", "t", "exact", None)
    for op in ("add", "remove", "add", "remove", "add"):
        mirror.interest(op, key)
    assert len(other.pending) == 1
    other.answer_all()
    assert other.pending == []
    assert other.undone == []
    assert key in mirror.made


def test_a_refused_key_is_tried_again_only_when_wanted_anew() -> None:
    """A subscribe the other router refuses is not retried in a loop; after the key went and came back, or
    the other leg rejoined, it is."""
    other = Other()
    mirror = mirror_of(other)
    mirror.other_up()
    key = ("sub", "t", "exact", None)
    mirror.interest("add", key)
    other.answer_all(refuse=True)
    mirror.interest("add", ("sub", "other", "exact", None))
    assert [k for k, _ in other.pending] == [("other", "exact")]
    other.answer_all()
    mirror.interest("remove", key)
    mirror.interest("add", key)
    assert [k for k, _ in other.pending] == [("t", "exact")]
    other.answer_all(refuse=True)
    mirror.other_down()
    mirror.other_up()
    assert sorted(k for k, _ in other.pending) == [("other", "exact"), ("t", "exact")]
