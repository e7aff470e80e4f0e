"""The metrics of router.metrics: bounded procedure labels, the families built at scrape time, enable()."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from router import metrics
from router.metrics import OTHER, Collector, Counts


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Counts:
    """Empty counts and no channels for the duration of a test (restored after)."""
    counts = Counts(max_procedures=2)
    monkeypatch.setattr(metrics, "counts", counts)
    monkeypatch.setattr(metrics, "_channels", {})
    return counts


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the text exposition, keyed by (name, sorted labels): parsed back from the text."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_procedure_labels_are_bounded_first_come() -> None:
    """The first max_procedures registration URIs get their own label, every other one 'other', errors too."""
    counts = Counts(max_procedures=2)
    for uri in ["a.one", "a.two", "a.three", "a.one", "a.four"]:
        counts.call(uri)
    counts.call_error("a.three")
    counts.call_error("a.two")
    assert counts.calls == {"a.one": 2, "a.two": 1, OTHER: 2}
    assert counts.call_errors == {OTHER: 1, "a.two": 1}


def test_no_procedure_label_at_all_with_zero() -> None:
    """max_procedures 0: every call is counted under 'other'."""
    counts = Counts(max_procedures=0)
    counts.call("a.one")
    counts.call_error("a.one")
    assert (counts.calls, counts.call_errors) == ({OTHER: 1}, {OTHER: 1})


class History:
    """What the collector reads of a channel history."""

    def stats(self) -> dict[str, int]:
        return {"topics": 4, "pending": 2}


class Presence:
    """What the collector reads of channel presence."""

    def member_count(self) -> int:
        return 3


def test_scrape_builds_every_family_from_the_counts(fresh: Counts) -> None:
    """Counts, live sessions and channels become the documented samples (expected values by hand)."""
    fresh.joins["demo"] = 3
    fresh.leaves["demo"] = 1
    fresh.call("chat.send")
    fresh.call_error("chat.send")
    metrics.note_login("ticket", True)
    metrics.note_login("ticket", False)
    metrics.note_login("ticket", False)
    metrics.note_throttle_refusal()
    metrics.note_connection_refused("http_timeout")
    metrics.watch_channels("demo", History(), Presence())
    metrics.watch_channels("other", None, None)
    registry = CollectorRegistry(auto_describe=False)
    live = [("demo", "user", "websocket"), ("demo", "user", "websocket"), ("demo", "anonymous", "rawsocket")]
    routed = [
        ("demo", {"call": 5, "publish": 2}, {"event": 7, "result": 4}),
        ("other", {"call": 1}, {"result": 1}),
    ]
    registry.register(Collector(lambda: live, lambda: routed))
    got = samples(registry)
    expected = {
        ("switchboard_sessions", (("authrole", "user"), ("realm", "demo"), ("transport", "websocket"))): 2,
        ("switchboard_sessions", (("authrole", "anonymous"), ("realm", "demo"), ("transport", "rawsocket"))): 1,
        ("switchboard_session_joins_total", (("realm", "demo"),)): 3,
        ("switchboard_session_leaves_total", (("realm", "demo"),)): 1,
        ("switchboard_messages_in_total", (("type", "CALL"),)): 6,
        ("switchboard_messages_in_total", (("type", "PUBLISH"),)): 2,
        ("switchboard_messages_out_total", (("type", "EVENT"),)): 7,
        ("switchboard_messages_out_total", (("type", "RESULT"),)): 5,
        ("switchboard_calls_total", (("procedure", "chat.send"),)): 1,
        ("switchboard_call_errors_total", (("procedure", "chat.send"),)): 1,
        ("switchboard_publishes_total", (("realm", "demo"),)): 2,
        ("switchboard_publishes_total", (("realm", "other"),)): 0,
        ("switchboard_deliveries_total", (("realm", "demo"),)): 7,
        ("switchboard_deliveries_total", (("realm", "other"),)): 0,
        ("switchboard_logins_total", (("method", "ticket"), ("result", "success"))): 1,
        ("switchboard_logins_total", (("method", "ticket"), ("result", "failure"))): 2,
        ("switchboard_login_throttle_refusals_total", ()): 1,
        ("switchboard_connection_refusals_total", (("cause", "http_timeout"),)): 1,
        ("switchboard_channel_history_topics", (("realm", "demo"),)): 4,
        ("switchboard_channel_history_unwritten_events", (("realm", "demo"),)): 2,
        ("switchboard_channel_presence_members", (("realm", "demo"),)): 3,
    }
    assert {key: value for key, value in got.items() if not key[0].endswith("_created")} == expected


def test_every_family_is_documented(fresh: Counts) -> None:
    """Each family has HELP text, and docs/operations.md names each one."""
    from tests.conftest import ROOT

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    assert len(families) == 15
    docs = (ROOT / "docs" / "operations.md").read_text()
    for family in families:
        assert family.documentation
        assert f"`{family.name}" in docs, family.name


def test_enable_serves_the_process_metrics_and_the_hooks(monkeypatch: pytest.MonkeyPatch, fresh: Counts) -> None:
    """After enable(), the exposition is Prometheus text with the worker's RSS, CPU and fds and the
    switchboard families; before, it is empty; enable() is idempotent."""
    from crossbar.router.dealer import Dealer

    from router.seam import metrics as seam_metrics

    monkeypatch.setattr(metrics, "_registry", None)
    assert metrics.exposition()[0] == b""
    original = Dealer.__dict__["_call"]
    try:
        metrics.enable(max_procedures=5)
        wrapped = Dealer.__dict__["_call"]
        metrics.enable(max_procedures=5)
        assert Dealer.__dict__["_call"] is wrapped is not original
        body, content_type = metrics.exposition()
    finally:
        seam_metrics.uninstall()
    assert Dealer.__dict__["_call"] is original
    assert content_type.startswith("text/plain; version=0.0.4")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    expected: set[Any] = {
        "switchboard_process_resident_memory_bytes",
        "switchboard_process_cpu_seconds",
        "switchboard_process_open_fds",
        "switchboard_sessions",
        "switchboard_calls",
    }
    assert expected <= names
    assert fresh.max_procedures == 5


def test_a_session_label_set_stays_at_zero_when_its_sessions_leave(fresh: Counts) -> None:
    """Once seen, a (realm, authrole, transport) series reads 0 when its last session is gone, instead of
    vanishing (dashboards and rate() see the drop)."""
    live = [("demo", "user", "websocket")]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(lambda: list(live)))
    key = ("switchboard_sessions", (("authrole", "user"), ("realm", "demo"), ("transport", "websocket")))
    assert samples(registry)[key] == 1
    live.clear()
    assert samples(registry)[key] == 0


def test_the_grafana_dashboard_queries_only_served_metrics(fresh: Counts) -> None:
    """Every switchboard_* name in docs/grafana-switchboard.json is a metric the exposition serves."""
    import json
    import re

    from prometheus_client import ProcessCollector

    from tests.conftest import ROOT

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(lambda: [("demo", "user", "websocket")]))
    ProcessCollector(namespace="switchboard", registry=registry)
    metrics.watch_channels("demo", History(), Presence())
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    served = {f.name + ("_total" if f.type == "counter" else "") for f in families}
    dashboard = json.loads((ROOT / "docs" / "grafana-switchboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"switchboard_[a-z_]+", target["expr"])
    }
    assert len(queried) >= 15
    assert queried - served == set()


class Router:
    """What the message counts are read from: Crossbar's ``Router.stats()``."""

    def __init__(self, received: dict[str, int], sent: dict[str, int]) -> None:
        self.messages = {"received": received, "sent": sent}

    def stats(self) -> dict[str, Any]:
        return {"messages": self.messages}


def test_a_replaced_router_keeps_its_counts() -> None:
    """When a realm gets a new router (Crossbar drops one whose last session left), the old one's counts
    are kept and added to the new one's, so the counters never go back."""
    from router.seam import metrics as seam_metrics

    old, new = Router({"call": 3}, {"result": 3}), Router({"call": 1}, {"event": 2})
    try:
        seam_metrics._remember("demo", old)
        seam_metrics._remember("demo", old)
        assert [(r, dict(i), dict(o)) for r, i, o in seam_metrics.routed_messages()] == [
            ("demo", {"call": 3}, {"result": 3})
        ]
        seam_metrics._remember("demo", new)
        assert [(r, dict(i), dict(o)) for r, i, o in seam_metrics.routed_messages()] == [
            ("demo", {"call": 4}, {"result": 3, "event": 2})
        ]
    finally:
        seam_metrics._routers.clear()
        seam_metrics._retired.clear()


def test_worker_expositions_merge_into_node_totals() -> None:
    """Samples with the same name and labels are summed across workers; creation and start times take the
    earliest, the per-process fd limit the largest; a family only one worker has is kept."""
    from prometheus_client.parser import text_string_to_metric_families

    from router.metrics import merged

    first = (
        "# HELP switchboard_calls_total Calls.\n# TYPE switchboard_calls_total counter\n"
        'switchboard_calls_total{procedure="a"} 3.0\n'
        "# HELP switchboard_process_start_time_seconds Start.\n# TYPE switchboard_process_start_time_seconds gauge\n"
        "switchboard_process_start_time_seconds 200.0\n"
        "# HELP switchboard_process_max_fds Limit.\n# TYPE switchboard_process_max_fds gauge\n"
        "switchboard_process_max_fds 1024.0\n"
    )
    second = (
        "# HELP switchboard_calls_total Calls.\n# TYPE switchboard_calls_total counter\n"
        'switchboard_calls_total{procedure="a"} 4.0\nswitchboard_calls_total{procedure="b"} 1.0\n'
        "# HELP switchboard_process_start_time_seconds Start.\n# TYPE switchboard_process_start_time_seconds gauge\n"
        "switchboard_process_start_time_seconds 100.0\n"
        "# HELP switchboard_process_max_fds Limit.\n# TYPE switchboard_process_max_fds gauge\n"
        "switchboard_process_max_fds 4096.0\n"
        "# HELP switchboard_only_here Only here.\n# TYPE switchboard_only_here gauge\nswitchboard_only_here 5.0\n"
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(merged([first, second]).decode())
        for s in family.samples
    }
    assert samples == {
        ("switchboard_calls_total", (("procedure", "a"),)): 7.0,
        ("switchboard_calls_total", (("procedure", "b"),)): 1.0,
        ("switchboard_process_start_time_seconds", ()): 100.0,
        ("switchboard_process_max_fds", ()): 4096.0,
        ("switchboard_only_here", ()): 5.0,
    }
