"""Chat rooms domain logic (no router, no clock)."""

from __future__ import annotations

import itertools

import pytest

from components.chat.core import ChatRooms, InvalidArgument, Message


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
