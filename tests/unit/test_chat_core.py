"""Chat rooms domain logic (no router, no clock)."""

from __future__ import annotations

from typing import Any

import pytest

from components.chat.core import ActiveRooms, InvalidArgument, Message, check_limit, message_from_event, new_message


def test_new_message_is_the_published_payload() -> None:
    """new_message takes its id from new_id, the author and time from the arguments; to_dict is exactly the
    payload published (no seq: the channel history numbers it)."""
    message = new_message("lobby", "hi", author="ann", now=11.0, new_id=lambda: "id1")
    assert message == Message(id="id1", room="lobby", author="ann", text="hi", ts=11.0)
    assert message.to_dict() == {"id": "id1", "room": "lobby", "author": "ann", "text": "hi", "ts": 11.0}


def test_new_message_ids_differ() -> None:
    """Without new_id, every message gets a fresh id."""
    assert new_message("a", "x", author="ann", now=0.0).id != new_message("a", "x", author="ann", now=0.0).id


@pytest.mark.parametrize(
    ("room", "text", "argument", "reason"),
    [
        ("", "x", "room", "must match"),
        ("A", "x", "room", "must match"),
        ("a.b", "x", "room", "must match"),
        ("r" * 65, "x", "room", "must match"),
        (None, "x", "room", "must be a string, not NoneType"),
        ("a", "", "text", "must not be empty"),
        ("a", "x" * 4097, "text", "must be at most 4096 characters (got 4097)"),
        ("a", 5, "text", "must be a string, not int"),
    ],
)
def test_new_message_rejects_bad_input(room: object, text: object, argument: str, reason: str) -> None:
    """A rejected message names the argument and the reason."""
    with pytest.raises(InvalidArgument) as caught:
        new_message(room, text, author="ann", now=0.0)
    assert caught.value.argument == argument
    assert reason in caught.value.reason


def test_boundaries_are_accepted() -> None:
    """64-character rooms, 4096-character texts and limits 1 and 500 are valid."""
    assert new_message("r" * 64, "x" * 4096, author="ann", now=0.0).room == "r" * 64
    assert (check_limit(1), check_limit(500)) == (1, 500)


@pytest.mark.parametrize(
    ("limit", "reason"),
    [(0, "between 1 and 500"), (501, "between 1 and 500"), (True, "not bool"), (2.0, "not float"), ("3", "not str")],
)
def test_history_limit_is_an_int_from_1_to_500(limit: object, reason: str) -> None:
    """limit must be an int in 1..500 (bool is not an int here)."""
    with pytest.raises(InvalidArgument) as caught:
        check_limit(limit)
    assert caught.value.argument == "limit"
    assert reason in caught.value.reason


MESSAGE = {"id": "id1", "room": "a", "author": "ann", "text": "hi", "ts": 1.5}


def event(seq: int, *args: Any) -> dict[str, Any]:
    """A history event as switchboard.history.get returns it."""
    return {"publication": 99, "seq": seq, "ts": 1.5, "args": list(args), "kwargs": {}, "publisher_authid": None}


def test_message_from_event_adds_the_events_seq() -> None:
    """A history event whose first argument is a message gives that message plus the event's seq."""
    assert message_from_event(event(7, MESSAGE)) == {
        "id": "id1",
        "room": "a",
        "author": "ann",
        "text": "hi",
        "ts": 1.5,
        "seq": 7,
    }


def test_message_from_event_keeps_only_the_message_keys() -> None:
    """Keys a publisher added beyond the message's (a seq of its own included) are not returned."""
    assert message_from_event(event(3, MESSAGE | {"seq": 1, "colour": "red"})) == MESSAGE | {"seq": 3}


@pytest.mark.parametrize(
    "args",
    [(), ("hi",), (None,), ([MESSAGE],), ({k: v for k, v in MESSAGE.items() if k != "text"},)],
    ids=["no-args", "string", "null", "list", "missing-key"],
)
def test_message_from_event_skips_events_that_are_not_messages(args: tuple[Any, ...]) -> None:
    """An event without a message (a mapping with every message key) as first argument gives None."""
    assert message_from_event(event(1, *args)) is None


def test_names_lists_rooms_with_messages_sorted() -> None:
    """names() lists every room touched, sorted, each once."""
    rooms = ActiveRooms()
    for room in ("zeta", "alpha", "mid", "alpha"):
        rooms.touch(room, now=0.0)
    assert rooms.names() == ["alpha", "mid", "zeta"]
    assert ActiveRooms().names() == []


def test_a_new_room_beyond_max_rooms_evicts_the_least_recently_active() -> None:
    """With max_rooms rooms known, a message to a new room forgets the room whose last message is oldest
    (not the oldest room)."""
    rooms = ActiveRooms(max_rooms=3, room_ttl=100.0)
    for room, now in (("a", 1.0), ("b", 2.0), ("c", 3.0), ("a", 4.0), ("d", 5.0)):
        rooms.touch(room, now)
    assert rooms.names() == ["a", "c", "d"]
    rooms.touch("b", now=6.0)
    assert rooms.names() == ["a", "b", "d"]  # c was the least recently active now


def test_touching_a_known_room_when_full_evicts_nothing() -> None:
    """max_rooms counts rooms, not messages: more messages to known rooms forget no room."""
    rooms = ActiveRooms(max_rooms=2)
    rooms.touch("a", now=1.0)
    rooms.touch("b", now=2.0)
    for i in range(5):
        rooms.touch("a", now=3.0 + i)
    assert rooms.names() == ["a", "b"]


def test_many_rooms_keep_at_most_max_rooms() -> None:
    """Touching 10,000 distinct rooms keeps exactly max_rooms of them: the last ones touched."""
    rooms = ActiveRooms(max_rooms=50, room_ttl=1e9)
    names = [f"r{i:05d}" for i in range(10_000)]
    for i, name in enumerate(names):
        rooms.touch(name, now=float(i))
    assert rooms.names(limit=1000) == names[-50:]


def test_idle_rooms_expire_after_room_ttl() -> None:
    """A room without a message for room_ttl seconds is forgotten at the next touch or expire(now); a room
    with a recent message is kept."""
    rooms = ActiveRooms(max_rooms=10, room_ttl=100.0)
    rooms.touch("old", now=0.0)
    rooms.touch("busy", now=0.0)
    rooms.touch("busy", now=60.0)
    assert rooms.expire(99.9) == []
    assert rooms.expire(100.0) == ["old"]
    assert rooms.names() == ["busy"]
    rooms.touch("new", now=170.0)  # busy's last message was at 60: 110 s ago
    assert rooms.names() == ["new"]


def test_names_pages_by_limit_and_after() -> None:
    """names(limit, after) returns at most `limit` sorted names strictly after `after`; paging with the last
    name of each page visits every room once."""
    rooms = ActiveRooms(max_rooms=100)
    names = sorted(f"room{i:02d}" for i in range(25))
    for name in reversed(names):
        rooms.touch(name, now=0.0)
    assert rooms.names(limit=3) == ["room00", "room01", "room02"]
    assert rooms.names(limit=3, after="room05") == ["room06", "room07", "room08"]
    assert rooms.names(after="room24") == []
    seen: list[str] = []
    page = rooms.names(limit=10)
    while page:
        seen.extend(page)
        page = rooms.names(limit=10, after=page[-1])
    assert seen == names


def test_names_default_answer_is_capped() -> None:
    """names() with no argument returns the first 100 names, never every room."""
    rooms = ActiveRooms(max_rooms=1000)
    for i in range(150):
        rooms.touch(f"r{i:03d}", now=0.0)
    assert rooms.names() == [f"r{i:03d}" for i in range(100)]


@pytest.mark.parametrize(
    ("limit", "after", "argument", "reason"),
    [
        (0, None, "limit", "between 1 and 1000"),
        (1001, None, "limit", "between 1 and 1000"),
        (True, None, "limit", "not bool"),
        (10, 3, "after", "must be a string or null, not int"),
    ],
)
def test_names_rejects_bad_arguments(limit: object, after: object, argument: str, reason: str) -> None:
    """limit is an int in 1..1000; after is a string or None."""
    with pytest.raises(InvalidArgument) as caught:
        ActiveRooms().names(limit, after)
    assert caught.value.argument == argument
    assert reason in caught.value.reason


@pytest.mark.parametrize(("max_rooms", "room_ttl", "message"), [(0, 1.0, "max_rooms"), (1, 0.0, "room_ttl")])
def test_room_bounds_must_be_positive(max_rooms: int, room_ttl: float, message: str) -> None:
    """max_rooms below 1 or a room_ttl that is not positive are refused at construction."""
    with pytest.raises(ValueError, match=message):
        ActiveRooms(max_rooms=max_rooms, room_ttl=room_ttl)
