"""The channels of a realm in switchboard.json (router.config): defaults from the schema, overlaps, reserved
topics and unknown keys, each problem at its JSON pointer (no sockets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from router.config import Channel, ConfigError, parse_config
from tests.conftest import demo_document


def with_channels(channels: list[dict[str, Any]]) -> dict[str, Any]:
    """The demo document with ``channels`` as its realm's channels."""
    doc = demo_document()
    doc["realms"][0]["channels"] = channels
    return doc


def channels_of(channels: list[dict[str, Any]]) -> tuple[Channel, ...]:
    """The parsed channels of the demo realm with ``channels`` written in it."""
    return parse_config(with_channels(channels), base_dir=Path("/cfg")).realms[0].channels


def problems_of(channels: list[dict[str, Any]]) -> list[str]:
    """Every problem parse_config reports with ``channels`` written in the demo realm."""
    with pytest.raises(ConfigError) as caught:
        parse_config(with_channels(channels), base_dir=Path("/cfg"))
    return [str(p) for p in caught.value.problems]


def test_demo_channel() -> None:
    """The demo config declares chat.room as a prefix channel with history and presence (grace 5 s)."""
    (realm,) = parse_config(demo_document(), base_dir=Path("/cfg")).realms
    assert realm.channels == (
        Channel(
            topic="chat.room",
            match="prefix",
            history_size=500,
            history_ttl=604800.0,
            max_topics=1000,
            presence=True,
            presence_members=True,
            presence_grace=5.0,
        ),
    )


def test_realm_without_channels_has_none() -> None:
    """A realm without a channels key has no channels."""
    doc = demo_document()
    del doc["realms"][0]["channels"]
    assert parse_config(doc, base_dir=Path("/cfg")).realms[0].channels == ()


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        # only a topic: exact, no history, no presence
        ({"topic": "a"}, Channel("a", "exact", 0, 86400.0, 10000, False, True, 0.0)),
        # history absent -> history_size 0; presence true -> members shown, no grace
        ({"topic": "a", "presence": True}, Channel("a", "exact", 0, 86400.0, 10000, True, True, 0.0)),
        ({"topic": "a", "presence": False}, Channel("a", "exact", 0, 86400.0, 10000, False, True, 0.0)),
        ({"topic": "a", "presence": {}}, Channel("a", "exact", 0, 86400.0, 10000, True, True, 0.0)),
        (
            {"topic": "a", "presence": {"members": False, "grace": 2.5}},
            Channel("a", "exact", 0, 86400.0, 10000, True, False, 2.5),
        ),
        ({"topic": "a", "presence": {"grace": 30}}, Channel("a", "exact", 0, 86400.0, 10000, True, True, 30.0)),
        # history {} -> every history default
        (
            {"topic": "a.b", "match": "prefix", "history": {}},
            Channel("a.b", "prefix", 1000, 86400.0, 10000, False, True, 0.0),
        ),
        (
            {"topic": "a", "history": {"size": 7, "ttl": 60, "max_topics": 3}},
            Channel("a", "exact", 7, 60.0, 3, False, True, 0.0),
        ),
        ({"topic": "a", "history": {"ttl": 1.5}}, Channel("a", "exact", 1000, 1.5, 10000, False, True, 0.0)),
    ],
)
def test_channel_defaults_come_from_the_schema(written: dict[str, Any], expected: Channel) -> None:
    """Omitted channel keys take the schema's defaults."""
    assert channels_of([written]) == (expected,)


def test_channels_that_do_not_overlap_are_accepted() -> None:
    """Prefixes overlap only on whole components: chat.room and chat.roomy, a and b.a are separate."""
    written = [
        {"topic": "chat.room", "match": "prefix"},
        {"topic": "chat.roomy", "match": "prefix"},
        {"topic": "chat"},
        {"topic": "b.a"},
        {"topic": "a", "match": "prefix"},
    ]
    assert [c.topic for c in channels_of(written)] == ["chat.room", "chat.roomy", "chat", "b.a", "a"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"topic": "chat", "match": "prefix"}, {"topic": "chat.room"}),
        ({"topic": "chat.room"}, {"topic": "chat", "match": "prefix"}),
        ({"topic": "chat.room", "match": "prefix"}, {"topic": "chat.room"}),
        ({"topic": "chat.room"}, {"topic": "chat.room"}),
        ({"topic": "chat.room", "match": "prefix"}, {"topic": "chat.room.lobby", "match": "prefix"}),
    ],
)
def test_overlapping_channels_are_reported_at_the_later_topic(first: dict[str, Any], second: dict[str, Any]) -> None:
    """A channel covering (or covered by) an earlier one is reported at its own topic, naming the earlier one."""
    assert problems_of([{"topic": "other"}, first, second]) == [
        f"/realms/0/channels/2/topic: {second['topic']!r} overlaps channel 1 ({first['topic']!r}): "
        "a topic belongs to one channel"
    ]


def test_overlap_is_reported_once_per_channel() -> None:
    """A channel overlapping several earlier ones is reported once, against the first."""
    written = [{"topic": "a.b"}, {"topic": "a.c"}, {"topic": "a", "match": "prefix"}]
    assert problems_of(written) == [
        "/realms/0/channels/2/topic: 'a' overlaps channel 0 ('a.b'): a topic belongs to one channel"
    ]


@pytest.mark.parametrize("topic", ["wamp", "wamp.x", "crossbar.a.b", "switchboard", "switchboard.presence.x"])
def test_reserved_topics_are_schema_errors_at_the_topic(topic: str) -> None:
    """Topics under wamp., crossbar. and switchboard. are refused at the topic's pointer."""
    assert problems_of([{"topic": "ok"}, {"topic": topic}]) == [
        f"/realms/0/channels/1/topic: {topic!r} is a reserved name"
    ]


@pytest.mark.parametrize("topic", ["wampx", "crossbar_x.y", "my.switchboard", "switchboards.a"])
def test_topics_only_resembling_reserved_ones_are_accepted(topic: str) -> None:
    """Only the whole first components wamp, crossbar and switchboard are reserved."""
    assert [c.topic for c in channels_of([{"topic": topic}])] == [topic]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (
            {"topic": "x", "colour": 1},
            "/realms/0/channels/0/colour: unknown key (allowed: history, match, presence, topic)",
        ),
        (
            {"topic": "x", "presence": {"colour": 1}},
            "/realms/0/channels/0/presence/colour: unknown key (allowed: grace, members)",
        ),
        (
            {"topic": "x", "history": {"length": 1}},
            "/realms/0/channels/0/history/length: unknown key (allowed: max_topics, size, ttl)",
        ),
        ({"match": "exact"}, "/realms/0/channels/0/topic: is required"),
        (
            {"topic": "x", "match": "wildcard"},
            "/realms/0/channels/0/match: 'wildcard' is not one of ['exact', 'prefix']",
        ),
        ({"topic": "x", "history": {"size": 0}}, "/realms/0/channels/0/history/size: 0 is less than the minimum of 1"),
        (
            {"topic": "x", "presence": {"grace": -1}},
            "/realms/0/channels/0/presence/grace: -1 is less than the minimum of 0",
        ),
        ({"topic": "x", "presence": "yes"}, "/realms/0/channels/0/presence: 'yes' is not of type 'boolean', 'object'"),
    ],
)
def test_channel_schema_errors_point_at_the_key(written: dict[str, Any], expected: str) -> None:
    """Each invalid channel key is reported at its own JSON pointer."""
    assert problems_of([written]) == [expected]
