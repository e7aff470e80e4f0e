"""Chat rooms domain logic (no router, no clock)."""

from __future__ import annotations

import itertools

import pytest

from components.chat.core import MAX_TEXT_LENGTH, ChatRooms, InvalidArgument, Message


def rooms(size: int = 500) -> ChatRooms:
    counter = itertools.count(1)
    return ChatRooms(history_size=size, new_id=lambda: f"id{next(counter)}")


def test_post_numbers_messages_per_room_from_one() -> None:
    """seq starts at 1 and increases by 1 in each room independently."""
    chat = rooms()
    a1 = chat.post("a", "x", author="ann", now=10.0)
    a2 = chat.post("a", "y", author="bob", now=11.0)
    b1 = chat.post("b", "z", author="ann", now=12.0)
    assert (a1.seq, a2.seq, b1.seq) == (1, 2, 1)
    assert a2 == Message(id="id2", room="a", seq=2, author="bob", text="y", ts=11.0)
    assert a2.to_dict() == {"id": "id2", "room": "a", "seq": 2, "author": "bob", "text": "y", "ts": 11.0}


def test_history_is_the_last_limit_messages_oldest_first() -> None:
    """history returns the newest `limit` messages in the order they were posted."""
    chat = rooms()
    for i in range(5):
        chat.post("a", f"m{i}", author="ann", now=float(i))
    assert [m.text for m in chat.history("a", 3)] == ["m2", "m3", "m4"]
    assert [m.text for m in chat.history("a")] == ["m0", "m1", "m2", "m3", "m4"]
    assert chat.history("empty") == []


def test_history_keeps_at_most_history_size_but_seq_keeps_counting() -> None:
    """Old messages fall out of a full history; numbering is unaffected."""
    chat = rooms(size=2)
    for i in range(4):
        chat.post("a", f"m{i}", author="ann", now=0.0)
    assert [(m.seq, m.text) for m in chat.history("a", 10)] == [(3, "m2"), (4, "m3")]


def test_rooms_lists_rooms_with_messages_sorted() -> None:
    """rooms() names every room that has a message, sorted."""
    chat = rooms()
    for room in ("zeta", "alpha", "mid"):
        chat.post(room, "x", author="ann", now=0.0)
    chat.history("never_posted")
    assert chat.rooms() == ["alpha", "mid", "zeta"]


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
def test_post_rejects_bad_input_and_records_nothing(room: object, text: object, argument: str, reason: str) -> None:
    """A rejected post names the argument and the reason, and leaves no trace (no room, no seq used)."""
    chat = rooms()
    with pytest.raises(InvalidArgument) as caught:
        chat.post(room, text, author="ann", now=0.0)
    assert caught.value.argument == argument
    assert reason in caught.value.reason
    assert chat.rooms() == []
    assert chat.post("a", "ok", author="ann", now=0.0).seq == 1


def test_boundaries_are_accepted() -> None:
    """64-character rooms, 4096-character texts and limits 1 and 500 are valid."""
    chat = rooms()
    chat.post("r" * 64, "x" * 4096, author="ann", now=0.0)
    assert len(chat.history("r" * 64, 1)) == 1
    assert len(chat.history("r" * 64, 500)) == 1


@pytest.mark.parametrize(
    ("limit", "reason"),
    [(0, "between 1 and 500"), (501, "between 1 and 500"), (True, "not bool"), (2.0, "not float"), ("3", "not str")],
)
def test_history_rejects_bad_limits(limit: object, reason: str) -> None:
    """limit must be an int in 1..500 (bool is not an int here)."""
    with pytest.raises(InvalidArgument) as caught:
        rooms().history("a", limit)
    assert caught.value.argument == "limit"
    assert reason in caught.value.reason


def test_history_size_must_be_positive() -> None:
    """A history of zero messages is a programming error, refused at construction."""
    with pytest.raises(ValueError, match="history_size"):
        ChatRooms(history_size=0)


def bounded(max_rooms: int, room_ttl: float = 100.0) -> ChatRooms:
    counter = itertools.count(1)
    return ChatRooms(history_size=10, new_id=lambda: f"id{next(counter)}", max_rooms=max_rooms, room_ttl=room_ttl)


def test_a_new_room_beyond_max_rooms_evicts_the_least_recently_active() -> None:
    """With max_rooms rooms kept, a message to a new room forgets the room whose last message is oldest
    (not the oldest room): its history is gone and it starts again at seq 1."""
    chat = bounded(max_rooms=3)
    chat.post("a", "1", author="ann", now=1.0)
    chat.post("b", "1", author="ann", now=2.0)
    chat.post("c", "1", author="ann", now=3.0)
    chat.post("a", "2", author="ann", now=4.0)  # a is now the most recently active
    chat.post("d", "1", author="ann", now=5.0)
    assert chat.rooms() == ["a", "c", "d"]
    assert chat.history("b") == []
    assert chat.post("b", "again", author="ann", now=6.0).seq == 1
    assert chat.rooms() == ["a", "b", "d"]  # c was the least recently active now
    assert [m.seq for m in chat.history("a")] == [1, 2]


def test_posting_to_an_existing_room_when_full_evicts_nothing() -> None:
    """max_rooms counts rooms, not messages: more messages to kept rooms forget no room."""
    chat = bounded(max_rooms=2)
    chat.post("a", "1", author="ann", now=1.0)
    chat.post("b", "1", author="ann", now=2.0)
    for i in range(5):
        chat.post("a", str(i), author="ann", now=3.0 + i)
    assert chat.rooms() == ["a", "b"]


def test_many_rooms_keep_at_most_max_rooms() -> None:
    """Posting to 10,000 distinct rooms keeps exactly max_rooms of them: the last ones posted to."""
    chat = bounded(max_rooms=50, room_ttl=1e9)
    names = [f"r{i:05d}" for i in range(10_000)]
    for i, name in enumerate(names):
        chat.post(name, "x", author="ann", now=float(i))
    assert chat.rooms(limit=1000) == names[-50:]


def test_idle_rooms_expire_after_room_ttl() -> None:
    """A room without a message for room_ttl seconds is forgotten at the next post or expire(now); a room
    with a recent message is kept."""
    chat = bounded(max_rooms=10, room_ttl=100.0)
    chat.post("old", "1", author="ann", now=0.0)
    chat.post("busy", "1", author="ann", now=0.0)
    chat.post("busy", "2", author="ann", now=60.0)
    assert chat.expire(99.9) == []
    assert chat.expire(100.0) == ["old"]
    assert chat.rooms() == ["busy"]
    assert chat.history("old") == []
    chat.post("new", "1", author="ann", now=170.0)  # busy's last message was at 60: 110 s ago
    assert chat.rooms() == ["new"]


def test_rooms_pages_by_limit_and_after() -> None:
    """rooms(limit, after) returns at most `limit` sorted names strictly after `after`; paging with the last
    name of each page visits every room once."""
    chat = bounded(max_rooms=100)
    names = sorted(f"room{i:02d}" for i in range(25))
    for name in reversed(names):
        chat.post(name, "x", author="ann", now=0.0)
    assert chat.rooms(limit=3) == names[:3]
    assert chat.rooms(limit=3, after="room05") == ["room06", "room07", "room08"]
    assert chat.rooms(after="room24") == []
    seen: list[str] = []
    page = chat.rooms(limit=10)
    while page:
        seen.extend(page)
        page = chat.rooms(limit=10, after=page[-1])
    assert seen == names


def test_rooms_default_answer_is_capped() -> None:
    """rooms() with no argument returns the first 100 names, never every room."""
    chat = bounded(max_rooms=1000)
    for i in range(150):
        chat.post(f"r{i:03d}", "x", author="ann", now=0.0)
    assert chat.rooms() == [f"r{i:03d}" for i in range(100)]


@pytest.mark.parametrize(
    ("limit", "after", "argument", "reason"),
    [
        (0, None, "limit", "between 1 and 1000"),
        (1001, None, "limit", "between 1 and 1000"),
        (True, None, "limit", "not bool"),
        (10, 3, "after", "must be a string or null, not int"),
    ],
)
def test_rooms_rejects_bad_arguments(limit: object, after: object, argument: str, reason: str) -> None:
    """limit is an int in 1..1000; after is a string or None."""
    with pytest.raises(InvalidArgument) as caught:
        rooms().rooms(limit, after)
    assert caught.value.argument == argument
    assert reason in caught.value.reason


@pytest.mark.parametrize(("max_rooms", "room_ttl", "message"), [(0, 1.0, "max_rooms"), (1, 0.0, "room_ttl")])
def test_room_bounds_must_be_positive(max_rooms: int, room_ttl: float, message: str) -> None:
    """max_rooms below 1 or a room_ttl that is not positive are refused at construction."""
    with pytest.raises(ValueError, match=message):
        ChatRooms(max_rooms=max_rooms, room_ttl=room_ttl)


def test_kept_text_is_bounded_across_rooms() -> None:
    """Many rooms of long messages keep at most max_text_kept characters; the active room keeps its newest."""
    rooms = ChatRooms(history_size=500, max_rooms=1000, max_text_kept=5 * MAX_TEXT_LENGTH)
    long_text = "x" * MAX_TEXT_LENGTH
    for i in range(50):
        for _ in range(3):
            rooms.post(f"r{i}", long_text, author="a", now=float(i))
    kept = sum(len(m.text) for room in rooms.rooms(limit=1000) for m in rooms.history(room, limit=500))
    assert kept <= 5 * MAX_TEXT_LENGTH
    newest = rooms.history("r49", limit=500)
    assert [m.seq for m in newest] == [1, 2, 3]
    assert rooms.history("r0", limit=500) == []  # the least recently active room lost its text first
    assert rooms.post("r0", "again", author="a", now=99.0).seq == 4  # but keeps counting
