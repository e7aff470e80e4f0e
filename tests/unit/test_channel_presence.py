"""Channel presence (router.channels.presence) with an injected clock and a list collecting what is announced:
joins, leaves, counts, member data, hidden members and the grace period of dropped members."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import task

from router.channels.index import ChannelIndex
from router.channels.presence import NotMember, Presence, TooLarge
from router.config import Channel

ROOMS = Channel(topic="chat.room", match="prefix", presence=True)
HIDDEN = Channel(topic="secret", presence=True, presence_members=False)
GRACEFUL = Channel(topic="lobby", presence=True, presence_grace=5.0)
HISTORY_ONLY = Channel(topic="log", history_size=10)

START = 1_000.0


class Room:
    """A Presence over the test channels, its clock and everything it announced."""

    def __init__(self, max_data: int = 1024) -> None:
        self.clock = task.Clock()
        self.clock.advance(START)
        self.announced: list[tuple[str, dict[str, Any]]] = []
        self.presence = Presence(
            ChannelIndex([ROOMS, HIDDEN, GRACEFUL, HISTORY_ONLY]),
            clock=self.clock,
            announce=lambda topic, kwargs: self.announced.append((topic, kwargs)),
            max_data=max_data,
        )

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        """What was announced since the last call."""
        out, self.announced = self.announced, []
        return out


def member(session: int, authid: str, authrole: str, since: float = START, data: Any = None) -> dict[str, Any]:
    """The member dict the presence gives for these values (written out by hand as the oracle)."""
    return {"session": session, "authid": authid, "authrole": authrole, "since": since, "data": data}


@pytest.fixture
def room() -> Room:
    """A fresh Presence for each test."""
    return Room()


def test_join_and_leave_are_announced_with_counts(room: Room) -> None:
    """Each exact subscription is a join, each unsubscription a leave; users counts distinct authid+authrole."""
    p = room.presence
    p.joined("chat.room.a", 1, "alice", "user")
    room.clock.advance(1)
    p.joined("chat.room.a", 2, "alice", "user")
    p.joined("chat.room.a", 3, "alice", "admin")
    p.joined("chat.room.a", 4, "bob", "user")
    assert room.take() == [
        (
            "chat.room.a",
            {"event": "join", "topic": "chat.room.a", "sessions": 1, "users": 1, "member": member(1, "alice", "user")},
        ),
        (
            "chat.room.a",
            {
                "event": "join",
                "topic": "chat.room.a",
                "sessions": 2,
                "users": 1,
                "member": member(2, "alice", "user", START + 1),
            },
        ),
        (
            "chat.room.a",
            {
                "event": "join",
                "topic": "chat.room.a",
                "sessions": 3,
                "users": 2,
                "member": member(3, "alice", "admin", START + 1),
            },
        ),
        (
            "chat.room.a",
            {
                "event": "join",
                "topic": "chat.room.a",
                "sessions": 4,
                "users": 3,
                "member": member(4, "bob", "user", START + 1),
            },
        ),
    ]
    p.left("chat.room.a", 1)
    p.left("chat.room.a", 4)
    assert room.take() == [
        (
            "chat.room.a",
            {"event": "leave", "topic": "chat.room.a", "sessions": 3, "users": 3, "member": member(1, "alice", "user")},
        ),
        (
            "chat.room.a",
            {
                "event": "leave",
                "topic": "chat.room.a",
                "sessions": 2,
                "users": 2,
                "member": member(4, "bob", "user", START + 1),
            },
        ),
    ]
    assert (p.get("chat.room.a", 10)["sessions"], p.get("chat.room.a", 10)["users"]) == (2, 2)
    assert p.member_count() == 2


def test_topics_are_counted_separately(room: Room) -> None:
    """Two topics of one prefix channel have their own members and counts."""
    room.presence.joined("chat.room.a", 1, "alice", "user")
    room.presence.joined("chat.room.b", 2, "bob", "user")
    assert [(t, k["sessions"], k["member"]["session"]) for t, k in room.take()] == [
        ("chat.room.a", 1, 1),
        ("chat.room.b", 1, 2),
    ]
    assert [m["session"] for m in room.presence.get("chat.room.b", 10)["members"]] == [2]


def test_second_subscription_of_a_session_is_no_second_join(room: Room) -> None:
    """A session already a member of a topic does not join it again."""
    room.presence.joined("chat.room", 1, "alice", "user")
    room.take()
    room.presence.joined("chat.room", 1, "alice", "user")
    assert room.take() == []
    assert room.presence.get("chat.room", 10)["sessions"] == 1


def test_leave_of_a_non_member_is_ignored(room: Room) -> None:
    """Unsubscribing a session that is not a member announces nothing."""
    room.presence.joined("chat.room", 1, "alice", "user")
    room.take()
    room.presence.left("chat.room", 2)
    room.presence.left("chat.room.other", 1)
    assert room.take() == []
    assert room.presence.member_count() == 1


def test_topics_that_are_not_presence_channels_are_ignored(room: Room) -> None:
    """Subscriptions to topics outside every channel, or in a channel without presence, make no member."""
    for topic in ("chat.roomy", "chat", "log", "other.topic"):
        room.presence.joined(topic, 1, "alice", "user")
        room.presence.left(topic, 1)
        assert room.presence.tracks(topic) is None
    assert room.take() == []
    assert room.presence.member_count() == 0
    assert room.presence.get("log", 10) == {"topic": "log", "sessions": 0, "users": 0, "members": [], "more": False}
    with pytest.raises(NotMember):
        room.presence.update("log", 1, "x")


def test_update_sets_data_and_announces_it(room: Room) -> None:
    """update stores the data on the member, announces an update and returns the member."""
    room.presence.joined("chat.room", 1, "alice", "user")
    room.take()
    room.clock.advance(3)
    returned = room.presence.update("chat.room", 1, {"status": "away", "n": [1, 2]})
    expected = member(1, "alice", "user", data={"status": "away", "n": [1, 2]})
    assert returned == expected
    assert room.take() == [
        ("chat.room", {"event": "update", "topic": "chat.room", "sessions": 1, "users": 1, "member": expected})
    ]
    assert room.presence.get("chat.room", 10)["members"] == [expected]


def test_update_by_a_non_member_is_refused(room: Room) -> None:
    """A session not subscribed to the topic (or to another topic only) gets NotMember; nothing is announced."""
    room.presence.joined("chat.room.a", 1, "alice", "user")
    room.take()
    with pytest.raises(NotMember):
        room.presence.update("chat.room.a", 2, "x")
    with pytest.raises(NotMember):
        room.presence.update("chat.room.b", 1, "x")
    assert room.take() == []


@pytest.mark.parametrize(
    "data",
    [
        "x" * 1023,  # 1025 bytes with its quotes
        {"k": "x" * 1020},
        "é" * 512,  # 1024 bytes of UTF-8 plus the quotes
        b"bytes",
        {1, 2},
        {"k": object()},
    ],
    ids=["long-string", "long-object", "utf8-bytes-counted", "bytes", "set", "object"],
)
def test_update_with_too_large_or_non_json_data_is_refused(room: Room, data: Any) -> None:
    """Data over max_data bytes of compact UTF-8 JSON, or not JSON, is TooLarge and leaves the member as it was."""
    room.presence.joined("chat.room", 1, "alice", "user")
    room.take()
    with pytest.raises(TooLarge):
        room.presence.update("chat.room", 1, data)
    assert room.take() == []
    assert room.presence.get("chat.room", 10)["members"][0]["data"] is None


@pytest.mark.parametrize("data", [float("nan"), float("inf"), {"x": [float("-inf")]}], ids=["nan", "inf", "nested"])
def test_update_with_non_finite_numbers_is_refused(room: Room, data: Any) -> None:
    """NaN and the infinities are not JSON: update refuses them as TooLarge."""
    room.presence.joined("chat.room", 1, "alice", "user")
    with pytest.raises(TooLarge):
        room.presence.update("chat.room", 1, data)


def test_update_at_exactly_max_data_is_accepted(room: Room) -> None:
    """Data of exactly max_data bytes as compact JSON is accepted."""
    room.presence.joined("chat.room", 1, "alice", "user")
    data = "x" * 1022  # plus two quotes: 1024 bytes
    assert room.presence.update("chat.room", 1, data)["data"] == data
    assert room.presence.update("chat.room", 1, None)["data"] is None


def test_get_lists_at_most_limit_members_and_says_more(room: Room) -> None:
    """get gives the first ``limit`` members in joining order and ``more`` when some were left out."""
    for session in range(1, 6):
        room.presence.joined("chat.room", session, f"u{session}", "user")
    page = room.presence.get("chat.room", 3)
    assert [m["session"] for m in page["members"]] == [1, 2, 3]
    assert (page["topic"], page["sessions"], page["users"], page["more"]) == ("chat.room", 5, 5, True)
    everyone = room.presence.get("chat.room", 5)
    assert ([m["session"] for m in everyone["members"]], everyone["more"]) == ([1, 2, 3, 4, 5], False)


def test_get_of_a_topic_without_members(room: Room) -> None:
    """A presence topic nobody is subscribed to has zero counts and no members."""
    assert room.presence.get("chat.room.empty", 10) == {
        "topic": "chat.room.empty",
        "sessions": 0,
        "users": 0,
        "members": [],
        "more": False,
    }


def test_hidden_members_give_counts_only(room: Room) -> None:
    """With members hidden, events carry no member and get lists none (and never says more)."""
    p = room.presence
    p.joined("secret", 1, "alice", "user")
    p.joined("secret", 2, "bob", "user")
    assert p.update("secret", 1, {"x": 1})["data"] == {"x": 1}
    p.left("secret", 2)
    assert room.take() == [
        ("secret", {"event": "join", "topic": "secret", "sessions": 1, "users": 1}),
        ("secret", {"event": "join", "topic": "secret", "sessions": 2, "users": 2}),
        ("secret", {"event": "update", "topic": "secret", "sessions": 2, "users": 2}),
        ("secret", {"event": "leave", "topic": "secret", "sessions": 1, "users": 1}),
    ]
    assert p.get("secret", 0) == {"topic": "secret", "sessions": 1, "users": 1, "members": [], "more": False}


def test_dropped_member_stays_for_grace_then_leaves(room: Room) -> None:
    """A member whose connection dropped stays listed for ``grace`` seconds, then leaves."""
    p = room.presence
    p.joined("lobby", 1, "alice", "user")
    room.take()
    room.clock.advance(2)
    p.left("lobby", 1, dropped=True)
    assert room.take() == []
    room.clock.advance(4.9)
    assert room.take() == []
    assert [m["session"] for m in p.get("lobby", 10)["members"]] == [1]
    room.clock.advance(0.1)
    assert room.take() == [
        ("lobby", {"event": "leave", "topic": "lobby", "sessions": 0, "users": 0, "member": member(1, "alice", "user")})
    ]
    assert p.get("lobby", 10)["members"] == []
    assert p.member_count() == 0


def test_waiting_member_cannot_update(room: Room) -> None:
    """A dropped member waiting out its grace is no longer a member for update."""
    room.presence.joined("lobby", 1, "alice", "user")
    room.presence.left("lobby", 1, dropped=True)
    with pytest.raises(NotMember):
        room.presence.update("lobby", 1, "x")


def test_same_user_within_grace_takes_the_member_over(room: Room) -> None:
    """A session of the same authid and authrole joining within grace takes over: one update naming the
    replaced session, since and data kept, no join and no leave (not even when the grace time passes)."""
    p = room.presence
    p.joined("lobby", 1, "alice", "user")
    p.update("lobby", 1, {"status": "typing"})
    room.take()
    room.clock.advance(1)
    p.left("lobby", 1, dropped=True)
    room.clock.advance(3)
    p.joined("lobby", 7, "alice", "user")
    taken_over = member(7, "alice", "user", data={"status": "typing"})
    assert room.take() == [
        (
            "lobby",
            {"event": "update", "topic": "lobby", "sessions": 1, "users": 1, "member": {**taken_over, "replaces": 1}},
        )
    ]
    room.clock.advance(10)
    assert room.take() == []
    assert p.get("lobby", 10)["members"] == [taken_over]
    assert p.get("lobby", 10)["users"] == 1
    p.left("lobby", 7)
    assert room.take() == [
        ("lobby", {"event": "leave", "topic": "lobby", "sessions": 0, "users": 0, "member": taken_over})
    ]


@pytest.mark.parametrize(("authid", "authrole"), [("bob", "user"), ("alice", "admin")])
def test_other_user_within_grace_joins_as_new_member(room: Room, authid: str, authrole: str) -> None:
    """A session with a different authid or authrole does not take over: it joins, the dropped one leaves later."""
    p = room.presence
    p.joined("lobby", 1, "alice", "user")
    p.left("lobby", 1, dropped=True)
    room.take()
    p.joined("lobby", 2, authid, authrole)
    assert [(k["event"], k["member"]["session"], k["sessions"], k["users"]) for _, k in room.take()] == [
        ("join", 2, 2, 2)
    ]
    room.clock.advance(5)
    assert [(k["event"], k["member"]["session"], k["sessions"], k["users"]) for _, k in room.take()] == [
        ("leave", 1, 1, 1)
    ]


def test_clean_leave_is_immediate_even_with_grace(room: Room) -> None:
    """An unsubscribe or clean leave (not dropped) is announced at once on a channel with grace."""
    room.presence.joined("lobby", 1, "alice", "user")
    room.take()
    room.presence.left("lobby", 1)
    assert [k["event"] for _, k in room.take()] == ["leave"]
    room.presence.joined("lobby", 2, "alice", "user")
    assert [(k["event"], "replaces" in k["member"]) for _, k in room.take()] == [("join", False)]
    room.clock.advance(10)
    assert room.take() == []


def test_dropped_member_without_grace_leaves_at_once(room: Room) -> None:
    """On a channel without grace a dropped connection is a leave at once."""
    room.presence.joined("chat.room", 1, "alice", "user")
    room.take()
    room.presence.left("chat.room", 1, dropped=True)
    assert [k["event"] for _, k in room.take()] == ["leave"]
    assert room.clock.getDelayedCalls() == []
