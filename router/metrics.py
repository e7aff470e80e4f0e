"""
Prometheus metrics of the router worker: plain counts, turned into metric families only when ``/metrics``
is scraped.

Nothing is added per message. What the router routes is read at scrape time from Crossbar's own per-router
counts (messages by type, hence publishes and deliveries per realm) and from the routers' sessions
(:mod:`router.seam.metrics`). What happens once per call (the procedure's count, a callee's error) is
counted by hooks :func:`enable` installs, into plain dicts held here (no lock, no ``prometheus_client``
object on the hot path: the worker is single-threaded). Joins and leaves, and the rare events (logins,
throttle and connection refusals), are counted whether or not metrics are enabled, by the code that decides
them. :class:`Collector` also reads the channel history and presence of every realm
(:func:`watch_channels`), and ``prometheus_client``'s ``ProcessCollector`` the worker's RSS, CPU time and
open file descriptors.

Every label has a bounded set of values (docs/operations.md#metrics): realms, roles and auth methods come
from the configuration, message types from WAMP, refusal causes from this code, and procedures are the URIs
of registrations, at most ``max_procedures`` of them (first come), every other one ``procedure="other"``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from autobahn.wamp import message as wamp_message
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector as _Collector

__all__ = [
    "OTHER",
    "Collector",
    "Counts",
    "counts",
    "enable",
    "enabled",
    "exposition",
    "merged",
    "note_connection_refused",
    "note_login",
    "note_throttle_refusal",
    "watch_channels",
]

#: The classic text format (what ``generate_latest`` writes for these names), read by every Prometheus.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

#: The label value of every procedure beyond the first ``max_procedures``.
OTHER = "other"

#: Crossbar's name of a WAMP message type (its class name in lower case) -> the WAMP name (``CALL``, ...).
MESSAGE_NAMES: dict[str, str] = {
    cls.__name__.lower(): cls.__name__.upper()
    for cls in vars(wamp_message).values()
    if isinstance(cls, type) and issubclass(cls, wamp_message.Message) and isinstance(cls.MESSAGE_TYPE, int)
}

#: (realm, received, sent): the WAMP messages a realm's router processed and sent, by Crossbar's type name.
Routed = tuple[str, Mapping[str, int], Mapping[str, int]]


class Counts:
    """Everything counted since the worker started (one instance, :data:`counts`)."""

    def __init__(self, max_procedures: int = 0) -> None:
        self.joins: dict[str, int] = {}
        self.leaves: dict[str, int] = {}
        #: Calls dispatched to a registration / answered with an error by the callee, by registration URI.
        self.calls: dict[str, int] = {}
        self.call_errors: dict[str, int] = {}
        self.max_procedures = max_procedures
        self._labelled: set[str] = set()
        self.logins: dict[tuple[str, str], int] = {}
        self.throttle_refusals = 0
        self.connection_refusals: dict[str, int] = {}

    def procedure(self, uri: str) -> str:
        """The label ``uri`` is counted under: itself if it has one or there is room for one, else :data:`OTHER`."""
        labelled = self._labelled
        if uri in labelled:
            return uri
        if len(labelled) < self.max_procedures:
            labelled.add(uri)
            return uri
        return OTHER

    def call(self, uri: str) -> None:
        """Count a call dispatched to the registration ``uri``."""
        calls = self.calls
        if uri in calls:
            calls[uri] += 1
        else:
            label = self.procedure(uri)
            calls[label] = calls.get(label, 0) + 1

    def call_error(self, uri: str) -> None:
        """Count a call of the registration ``uri`` answered with an error."""
        label = self.procedure(uri)
        self.call_errors[label] = self.call_errors.get(label, 0) + 1


#: The worker's counts.
counts = Counts()


def _add(table: dict[Any, int], key: Any) -> None:
    table[key] = table.get(key, 0) + 1


def note_login(method: str, ok: bool) -> None:
    """Count an authentication verdict for ``method`` (``ticket``, ``wampcra``, ``cryptosign``, ``scram``)."""
    _add(counts.logins, (method, "success" if ok else "failure"))


def note_throttle_refusal() -> None:
    """Count a login attempt the throttle refused."""
    counts.throttle_refusals += 1


def note_connection_refused(cause: str) -> None:
    """Count a client connection refused or closed by a limit (``cause``: a fixed name, see the docs)."""
    _add(counts.connection_refusals, cause)


#: Per realm, the channel history and presence of its :class:`~router.channels.service.ChannelComponent`.
_channels: dict[str, tuple[Any, Any]] = {}


def watch_channels(realm: str, history: Any, presence: Any) -> None:
    """Report ``realm``'s channel ``history`` (a ``History`` or None) and ``presence`` (or None)."""
    _channels[realm] = (history, presence)


def _by(name: str, documentation: str, label: str, table: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, n in sorted(table.items()):
        family.add_metric([value], n)
    return family


class Collector(_Collector):
    """Builds every ``switchboard_*`` family from :data:`counts` and the live state, at each scrape."""

    def __init__(
        self,
        sessions: Callable[[], Iterable[tuple[str, str, str]]] = lambda: (),
        routed: Callable[[], Iterable[Routed]] = lambda: (),
    ) -> None:
        #: Yields (realm, authrole, transport type) of each joined client session.
        self._sessions = sessions
        #: Yields each realm's :data:`Routed` counts.
        self._routed = routed
        #: Every label set of the sessions gauge seen so far: shown as 0 once its sessions are gone.
        self._seen: set[tuple[str, str, str]] = set()

    def collect(self) -> Iterator[Metric]:
        """The metric families (``prometheus_client`` calls this for each exposition)."""
        c = counts
        live = dict.fromkeys(self._seen, 0)
        for key in self._sessions():
            _add(live, key)
        self._seen.update(live)
        sessions = GaugeMetricFamily(
            "switchboard_sessions",
            "Client sessions joined now, by realm, role and transport type.",
            labels=["realm", "authrole", "transport"],
        )
        for key, n in sorted(live.items()):
            sessions.add_metric(list(key), n)
        yield sessions
        yield _by("switchboard_session_joins", "Client sessions joined, by realm.", "realm", c.joins)
        yield _by("switchboard_session_leaves", "Client sessions left (or dropped), by realm.", "realm", c.leaves)
        yield from self._routed_families()
        yield _by(
            "switchboard_calls",
            "Calls routed to a registered procedure, by the registration's URI (beyond the first"
            ' max_procedure_labels procedures: procedure="other"). Calls to no registration are CALL messages'
            " in switchboard_messages_in not counted here.",
            "procedure",
            c.calls,
        )
        yield _by(
            "switchboard_call_errors",
            "Calls of a registered procedure its callee answered with an error, by procedure (as switchboard_calls).",
            "procedure",
            c.call_errors,
        )
        logins = CounterMetricFamily(
            "switchboard_logins",
            "Authentications against the user store, by method and result (success, failure).",
            labels=["method", "result"],
        )
        for (method, result), n in sorted(c.logins.items()):
            logins.add_metric([method, result], n)
        yield logins
        yield CounterMetricFamily(
            "switchboard_login_throttle_refusals",
            "Login attempts the throttle refused (the client was answered as for a wrong secret).",
            value=c.throttle_refusals,
        )
        yield _by(
            "switchboard_connection_refusals",
            "Client connections refused or closed by a limit, by cause.",
            "cause",
            c.connection_refusals,
        )
        yield from self._channel_families()

    def _routed_families(self) -> Iterator[Metric]:
        received: Counter[str] = Counter()
        sent: Counter[str] = Counter()
        publishes, deliveries = {}, {}
        for realm, realm_received, realm_sent in self._routed():
            received.update(realm_received)
            sent.update(realm_sent)
            publishes[realm] = realm_received.get("publish", 0)
            deliveries[realm] = realm_sent.get("event", 0)
        for direction, table in (("in", received), ("out", sent)):
            family = CounterMetricFamily(
                f"switchboard_messages_{direction}",
                f"WAMP messages the router {'processed' if direction == 'in' else 'sent'} for sessions (clients and"
                " the router's components), by message type; the opening and closing of sessions (HELLO, WELCOME,"
                " CHALLENGE, AUTHENTICATE, ABORT, GOODBYE) are not counted here.",
                labels=["type"],
            )
            for name, n in sorted(table.items()):
                family.add_metric([MESSAGE_NAMES.get(name, name.upper())], n)
            yield family
        yield _by("switchboard_publishes", "PUBLISH messages the router processed, by realm.", "realm", publishes)
        yield _by("switchboard_deliveries", "Events the router delivered to sessions, by realm.", "realm", deliveries)

    def _channel_families(self) -> Iterator[Metric]:
        topics = GaugeMetricFamily(
            "switchboard_channel_history_topics", "Topics with channel history kept, by realm.", labels=["realm"]
        )
        unwritten = GaugeMetricFamily(
            "switchboard_channel_history_unwritten_events",
            "Channel events recorded and not yet written to the history file, by realm.",
            labels=["realm"],
        )
        members = GaugeMetricFamily(
            "switchboard_channel_presence_members",
            "Presence members of all channel topics, by realm.",
            labels=["realm"],
        )
        for realm, (history, presence) in sorted(_channels.items()):
            if history is not None:
                stats = history.stats()
                topics.add_metric([realm], stats["topics"])
                unwritten.add_metric([realm], stats["pending"])
            if presence is not None:
                members.add_metric([realm], presence.member_count())
        yield from (topics, unwritten, members)


_registry: CollectorRegistry | None = None


def enabled() -> bool:
    """Whether :func:`enable` ran in this process."""
    return _registry is not None


def enable(max_procedures: int) -> None:
    """Count calls and call errors by procedure from now on, and serve every metric (idempotent).

    The hooks install under the version policy of :mod:`router.seam` (``allowed("metrics")``); where it
    skips them, everything but the calls and call errors is served.
    """
    global _registry
    if _registry is not None:
        return
    from router.seam import metrics as seam_metrics

    counts.max_procedures = max_procedures
    seam_metrics.install_counters(counts)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(seam_metrics.client_sessions, seam_metrics.routed_messages))
    ProcessCollector(namespace="switchboard", registry=registry)
    _registry = registry


#: Sample name endings whose values are times: merged by the earliest, not summed.
_EARLIEST = ("_created", "_start_time_seconds")
#: Sample name endings whose values are per-process limits: merged by the largest, not summed.
_LARGEST = ("_max_fds",)


def merged(texts: Iterable[str]) -> bytes:
    """One exposition of the router workers' (:mod:`router.workers`) text expositions ``texts``: every sample
    with the same name and labels summed (counts, sessions, RSS, CPU, open fds: node totals), except creation
    and start times, which take the earliest, and the per-process fd limit, which takes the largest. Families
    keep their order of first appearance, help and type."""
    from prometheus_client.parser import text_string_to_metric_families

    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            if family.name not in families:
                families[family.name] = Metric(family.name, family.documentation, family.type)
                values[family.name] = {}
            kept = values[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key not in kept:
                    kept[key] = sample.value
                elif sample.name.endswith(_EARLIEST):
                    kept[key] = min(kept[key], sample.value)
                elif sample.name.endswith(_LARGEST):
                    kept[key] = max(kept[key], sample.value)
                else:
                    kept[key] += sample.value
    for name, family in families.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families.values())))
    return generate_latest(registry)


class _Fixed(_Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric (body, content type); empty before :func:`enable`."""
    if _registry is None:
        return b"", CONTENT_TYPE
    return generate_latest(_registry), CONTENT_TYPE
