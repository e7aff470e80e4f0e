"""Who may use the channel URIs (router.channels.access) and which channel a topic belongs to
(router.channels.index), against tables written by hand."""

from __future__ import annotations

import pytest

from router.channels.access import Decision, exact_decision, pattern_reaches_channels, presence_pattern
from router.channels.index import ChannelIndex
from router.config import Channel
from router.uris import PRESENCE_PREFIX

PROCEDURES = (
    "switchboard.history.get",
    "switchboard.history.lookup",
    "switchboard.presence.get",
    "switchboard.presence.update",
)
ACTIONS = ("call", "register", "publish", "subscribe")


@pytest.mark.parametrize("procedure", PROCEDURES)
def test_channel_procedures_may_be_called_and_not_registered_or_published(procedure: str) -> None:
    """Anyone may call a channel procedure; no one may register it or publish to it."""
    assert exact_decision(procedure, "call") == "allow"
    assert exact_decision(procedure, "register") == "deny"
    assert exact_decision(procedure, "publish") == "deny"


@pytest.mark.parametrize(
    ("procedure", "expected"),
    [
        ("switchboard.history.get", "deny"),
        ("switchboard.history.lookup", "deny"),
        # The presence procedures' URIs are also the presence topics of the topics "get" and "update".
        ("switchboard.presence.get", ("as", "get")),
        ("switchboard.presence.update", ("as", "update")),
    ],
)
def test_subscribing_to_a_channel_procedure_uri(procedure: str, expected: Decision) -> None:
    """A history procedure's URI may not be subscribed to; a presence procedure's is the presence topic of a
    one-component topic, decided as subscribing to that topic."""
    assert exact_decision(procedure, "subscribe") == expected


@pytest.mark.parametrize(
    ("uri", "topic"),
    [
        ("switchboard.presence.chat.room", "chat.room"),
        ("switchboard.presence.chat.room.lobby", "chat.room.lobby"),
        ("switchboard.presence.x", "x"),
    ],
)
def test_presence_topic_is_subscribed_as_the_topic(uri: str, topic: str) -> None:
    """Subscribing to switchboard.presence.<t> is decided as subscribing to <t>; every other action is denied."""
    assert exact_decision(uri, "subscribe") == ("as", topic)
    for action in ("call", "register", "publish"):
        assert exact_decision(uri, action) == "deny"


@pytest.mark.parametrize("uri", ["switchboard.history.chat.room", "switchboard.history.x", "switchboard.history.get.x"])
@pytest.mark.parametrize("action", ACTIONS)
def test_history_namespace_is_closed(uri: str, action: str) -> None:
    """Nothing below switchboard.history. but calling its procedures is allowed."""
    assert exact_decision(uri, action) == "deny"


@pytest.mark.parametrize(
    "uri",
    [
        "chat.room",
        "switchboard.admin.role.list",
        "switchboard.presence",  # no trailing dot: not below the namespace
        "switchboard.historyx.get",
        "switchboard.presences.chat",
        "wamp.session.count",
    ],
)
@pytest.mark.parametrize("action", ACTIONS)
def test_other_uris_are_not_channel_uris(uri: str, action: str) -> None:
    """URIs outside the channel namespaces are left to the role's rules (None)."""
    assert exact_decision(uri, action) is None


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # wholly inside the presence namespace: the rest is a prefix on the topics
        ("switchboard.presence.", ("", True)),
        ("switchboard.presence.chat.room.", ("chat.room.", True)),
        ("switchboard.presence.chat.ro", ("chat.ro", True)),
        # reaching in partially: every presence topic, among other URIs
        ("switchboard.presence", ("", False)),
        ("switchboard.pre", ("", False)),
        ("switchboard.", ("", False)),
        ("switch", ("", False)),
        ("", ("", False)),
        # not reaching in
        ("chat.", None),
        ("switchboard.history.", None),
        ("switchboard.admin", None),
        ("switchboard.presencex", None),
    ],
)
def test_presence_pattern_of_prefixes(pattern: str, expected: tuple[str, bool] | None) -> None:
    """A prefix reaches presence topics when it starts with switchboard.presence. or is a prefix of it."""
    assert presence_pattern(pattern, "prefix") == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("switchboard.presence.chat", ("chat", True)),
        ("switchboard.presence..x", (".x", True)),
        ("switchboard.presence.chat..lobby", ("chat..lobby", True)),
        ("switchboard.presence.", ("", True)),
        ("..chat.room", ("chat.room", False)),
        ("switchboard..chat", ("chat", False)),
        (".presence.chat", ("chat", False)),
        ("..", ("", False)),
        ("a.b.c", None),
        ("switchboard.history.chat", None),
        ("x.presence.chat", None),
        ("switchboard.x.chat", None),
        # two components cannot be switchboard.presence.<topic>
        ("switchboard.presence", None),
        (".", None),
        ("switchboard", None),
    ],
)
def test_presence_pattern_of_wildcards(pattern: str, expected: tuple[str, bool] | None) -> None:
    """A wildcard reaches presence topics when its first two components can be switchboard and presence
    and it has a third; the rest is a wildcard on the topics."""
    assert presence_pattern(pattern, "wildcard") == expected


@pytest.mark.parametrize("match", ["exact", "glob"])
def test_presence_pattern_of_other_matches_is_none(match: str) -> None:
    """Only prefix and wildcard patterns are patterns."""
    assert presence_pattern("switchboard.presence.chat", match) is None


ROOMS = Channel(topic="chat.room", match="prefix", presence=True)
FEED = Channel(topic="feed", history_size=10)
DEEP = Channel(topic="a.b.c", match="prefix", presence=True)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("chat.room", ROOMS),
        ("chat.room.lobby", ROOMS),
        ("chat.room.x.y", ROOMS),
        ("chat.roomy", None),
        ("chat.roomy.x", None),
        ("chat", None),
        ("chat.", None),
        ("feed", FEED),
        ("feed.x", None),
        ("fee", None),
        ("a.b.c", DEEP),
        ("a.b.c.d", DEEP),
        ("a.b", None),
        ("a.b.cd", None),
        ("", None),
    ],
)
def test_channel_index_finds_by_exact_topic_and_whole_prefix_components(topic: str, expected: Channel | None) -> None:
    """Exact channels match only their topic; prefix channels their topic and what lies below it, whole
    components only."""
    assert ChannelIndex([ROOMS, FEED, DEEP]).find(topic) is expected


def test_empty_channel_index() -> None:
    """An index without channels is false and finds nothing."""
    index = ChannelIndex([])
    assert not index
    assert index.find("chat.room") is None
    assert ChannelIndex([FEED])


def test_presence_of_a_presence_topic_is_denied_at_once() -> None:
    """No channel lives under switchboard.: a presence URI of one is denied without peeling prefixes one at a
    time (a megabyte of repeated prefixes costs one comparison, not a recursion per repetition)."""
    assert exact_decision("switchboard.presence.switchboard.presence.chat.room", "subscribe") == "deny"
    assert exact_decision(PRESENCE_PREFIX * 50_000 + "chat.room", "subscribe") == "deny"
    assert exact_decision("switchboard.presence.switchboard.admin.x", "subscribe") == "deny"


@pytest.mark.parametrize(
    ("pattern", "match", "reaches"),
    [
        ("switchboard.history.", "prefix", True),
        ("switchboard.presence.chat", "prefix", True),
        ("switchboard.", "prefix", True),
        ("", "prefix", True),
        ("switchboard.admin.", "prefix", False),
        ("chat.", "prefix", False),
        ("switchboard..get", "wildcard", True),
        ("..get", "wildcard", True),
        ("switchboard.admin.get", "wildcard", False),
        ("a.b", "wildcard", False),
        ("switchboard.history.get", "exact", False),
    ],
)
def test_pattern_registrations_reaching_the_channel_namespaces(pattern: str, match: str, reaches: bool) -> None:
    """A registration pattern that can match a URI under switchboard.history. or switchboard.presence. is
    recognised (and refused by the authorization seam)."""
    assert pattern_reaches_channels(pattern, match) is reaches


def test_the_channel_of_a_huge_topic_is_found_by_its_first_components() -> None:
    """find() looks only at as many characters as the longest prefix channel has: a 400 KB topic is
    matched (or not) like a short one."""
    index = ChannelIndex([Channel(topic="chat.room", match="prefix")])
    huge = "a." * 200_000 + "a"
    assert index.find("chat.room." + huge) is not None
    assert index.find("chat.roomy." + huge) is None
    assert index.find(huge) is None
