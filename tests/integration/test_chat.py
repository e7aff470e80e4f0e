"""The demo chat application on a real node, driven by autobahn-python clients."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from components import uris
from router.testkit import Inbox, session, start_node
from tests.conftest import demo_document, write_config

pytestmark = pytest.mark.integration


def new_room() -> str:
    return f"r_{uuid.uuid4().hex[:12]}"


def without_seq(message: dict[str, Any]) -> dict[str, Any]:
    """The message as published: what chat.send returned, minus its seq."""
    return {k: v for k, v in message.items() if k != "seq"}


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
@pytest_twisted.ensureDeferred
async def test_send_publishes_and_returns_the_message(reactor: Any, demo_node: Any, serializer: str) -> None:
    """chat.send returns the message with its seq; a subscriber of chat.room.<room> receives that message
    without seq, and the channel history holds it under that seq."""
    room = new_room()
    async with session(reactor, demo_node.url, serializer=serializer) as s:
        inbox = Inbox(reactor)
        await s.subscribe(inbox, uris.room_topic(room))
        sent = await s.call(uris.CHAT_SEND, room, "hello")
        assert set(sent) == {"id", "room", "seq", "author", "text", "ts"}
        assert (sent["room"], sent["seq"], sent["text"]) == (room, 1, "hello")
        assert sent["author"] == s.details.authid
        assert isinstance(sent["id"], str)
        assert sent["id"]
        assert isinstance(sent["ts"], float)
        assert await inbox.next() == without_seq(sent)
        kept = await s.call(uris.HISTORY_GET, uris.room_topic(room))
        assert [(e["seq"], e["args"]) for e in kept["events"]] == [(1, [without_seq(sent)])]


@pytest_twisted.ensureDeferred
async def test_seq_counts_per_room_and_history_is_oldest_first(reactor: Any, demo_node: Any) -> None:
    """seq increases by one per room from 1 in a fresh room; chat.history returns the last `limit` messages,
    oldest first, each as chat.send returned it."""
    room_a, room_b = new_room(), new_room()
    async with session(reactor, demo_node.url) as s:
        sent = [await s.call(uris.CHAT_SEND, room_a, f"a{i}") for i in range(3)]
        other = await s.call(uris.CHAT_SEND, room_b, "b0")
        assert other["seq"] == 1
        history = await s.call(uris.CHAT_HISTORY, room_a)
        assert [(m["seq"], m["text"]) for m in history] == [(1, "a0"), (2, "a1"), (3, "a2")]
        assert history == sent
        last_two = await s.call(uris.CHAT_HISTORY, room_a, limit=2)
        assert [m["text"] for m in last_two] == ["a1", "a2"]
        assert await s.call(uris.CHAT_HISTORY, new_room()) == []
        rooms = await s.call(uris.CHAT_ROOMS)
        assert {room_a, room_b} <= set(rooms)
        assert rooms == sorted(rooms)


@pytest_twisted.ensureDeferred
async def test_history_skips_events_that_are_not_messages(reactor: Any, demo_node: Any, wamp_session: Any) -> None:
    """Another publisher's event in a room's channel that is not a message is left out of chat.history; the
    messages around it keep their channel seq (it took one)."""
    room = new_room()
    async with session(reactor, demo_node.url) as s, wamp_session(role="backend") as backend:
        first = await s.call(uris.CHAT_SEND, room, "one")
        await backend.publish(uris.room_topic(room), {"text": "no id"}, options=PublishOptions(acknowledge=True))
        await backend.publish(uris.room_topic(room), options=PublishOptions(acknowledge=True))
        last = await s.call(uris.CHAT_SEND, room, "two")
        assert (first["seq"], last["seq"]) == (1, 4)
        assert await s.call(uris.CHAT_HISTORY, room) == [first, last]


@pytest_twisted.ensureDeferred
async def test_seq_and_history_continue_across_a_restart(reactor: Any, tmp_path: Path) -> None:
    """The channel history outlives the node: after a stop and a start on the same data directory, a room's
    seq goes on where it was and chat.history returns the messages sent before the restart too."""
    config, data = write_config(tmp_path, demo_document()), tmp_path / "data"
    room = new_room()
    node = await start_node(reactor, config, data)
    try:
        async with session(reactor, node.url) as s:
            before = [await s.call(uris.CHAT_SEND, room, text) for text in ("a", "b")]
    finally:
        await node.stop()
    node = await start_node(reactor, config, data)
    try:
        async with session(reactor, node.url) as s:
            after = await s.call(uris.CHAT_SEND, room, "c")
            history = await s.call(uris.CHAT_HISTORY, room)
    finally:
        await node.stop()
    assert [m["seq"] for m in before] == [1, 2]
    assert after["seq"] == 3
    assert history == [*before, after]


@pytest_twisted.ensureDeferred
async def test_sys_info_describes_the_caller(reactor: Any, demo_node: Any) -> None:
    """sys.info returns the Switchboard version and the caller's realm, authid and authrole."""
    from router import __version__

    async with session(reactor, demo_node.url) as s:
        info = await s.call(uris.SYS_INFO)
    assert info == {
        "version": __version__,
        "realm": "demo",
        "authid": s.details.authid,
        "authrole": "anonymous",
    }


INVALID_CALLS = [
    pytest.param(uris.CHAT_SEND, ("Lobby", "x"), {}, "room: must match", id="send-room-uppercase"),
    pytest.param(uris.CHAT_SEND, ("a-b", "x"), {}, "room: must match", id="send-room-dash"),
    pytest.param(uris.CHAT_SEND, ("", "x"), {}, "room: must match", id="send-room-empty"),
    pytest.param(uris.CHAT_SEND, ("r" * 65, "x"), {}, "room: must match", id="send-room-too-long"),
    pytest.param(uris.CHAT_SEND, (7, "x"), {}, "room: must be a string, not int", id="send-room-int"),
    pytest.param(uris.CHAT_SEND, ("lobby", ""), {}, "text: must not be empty", id="send-text-empty"),
    pytest.param(uris.CHAT_SEND, ("lobby", "x" * 4097), {}, "text: must be at most 4096", id="send-text-long"),
    pytest.param(uris.CHAT_SEND, ("lobby", ["x"]), {}, "text: must be a string, not list", id="send-text-list"),
    pytest.param(uris.CHAT_SEND, ("lobby",), {}, "missing a required argument: 'text'", id="send-missing"),
    pytest.param(uris.CHAT_SEND, ("lobby", "x", "y"), {}, "too many positional arguments", id="send-extra"),
    pytest.param(uris.CHAT_SEND, ("lobby", "x"), {"colour": 1}, "unexpected keyword", id="send-unknown-kw"),
    pytest.param(uris.CHAT_HISTORY, ("lobby",), {"limit": 0}, "limit: must be between 1 and 500", id="hist-0"),
    pytest.param(uris.CHAT_HISTORY, ("lobby", 501), {}, "limit: must be between 1 and 500", id="hist-501"),
    pytest.param(uris.CHAT_HISTORY, ("lobby", "5"), {}, "limit: must be an integer, not str", id="hist-str"),
    pytest.param(uris.CHAT_HISTORY, ("lobby", True), {}, "limit: must be an integer, not bool", id="hist-bool"),
    pytest.param(uris.CHAT_HISTORY, ("Lobby",), {}, "room: must match", id="hist-room"),
    pytest.param(uris.CHAT_HISTORY, (), {}, "missing a required argument: 'room'", id="hist-missing"),
    pytest.param(uris.CHAT_ROOMS, (1, None, 3), {}, "too many positional arguments", id="rooms-extra"),
    pytest.param(uris.CHAT_ROOMS, (0,), {}, "limit: must be between 1 and 1000", id="rooms-limit-0"),
    pytest.param(uris.CHAT_ROOMS, (1001,), {}, "limit: must be between 1 and 1000", id="rooms-limit-1001"),
    pytest.param(uris.CHAT_ROOMS, (), {"after": 5}, "after: must be a string or null, not int", id="rooms-after"),
    pytest.param(uris.SYS_INFO, (), {"x": 1}, "unexpected keyword", id="info-unknown-kw"),
]


@pytest.mark.parametrize(("procedure", "args", "kwargs", "reason"), INVALID_CALLS)
@pytest_twisted.ensureDeferred
async def test_bad_input_is_invalid_argument(
    reactor: Any, demo_node: Any, procedure: str, args: tuple[Any, ...], kwargs: dict[str, Any], reason: str
) -> None:
    """Every bad argument gets wamp.error.invalid_argument naming the procedure and the argument."""
    async with session(reactor, demo_node.url) as s:
        with pytest.raises(ApplicationError) as caught:
            await s.call(procedure, *args, **kwargs)
    assert caught.value.error == uris.INVALID_ARGUMENT
    message = caught.value.args[0]
    assert message.startswith(f"{procedure}: ")
    assert reason in message


@pytest_twisted.ensureDeferred
async def test_rejected_message_is_not_published_or_kept(reactor: Any, demo_node: Any) -> None:
    """A rejected chat.send publishes nothing and takes no seq: the next good message is seq 1, first event."""
    room = new_room()
    async with session(reactor, demo_node.url) as s:
        inbox = Inbox(reactor)
        await s.subscribe(inbox, uris.room_topic(room))
        with pytest.raises(ApplicationError):
            await s.call(uris.CHAT_SEND, room, "x" * 5000)
        good = await s.call(uris.CHAT_SEND, room, "fine")
        # Events from one publisher arrive in order, so a published reject would come first.
        first = await inbox.next()
        assert first == without_seq(good)
        assert good["seq"] == 1
        assert await s.call(uris.CHAT_HISTORY, room) == [good]


@pytest_twisted.ensureDeferred
async def test_anonymous_cannot_register_or_publish(reactor: Any, demo_node: Any) -> None:
    """anonymous may not register (even under chat.*) nor publish to a room: wamp.error.not_authorized."""
    room = new_room()
    async with session(reactor, demo_node.url) as s:
        for uri in (f"chat.{room}", "chat.room", "sys.info2"):
            with pytest.raises(ApplicationError) as caught:
                await s.register(lambda: None, uri)
            assert caught.value.error == uris.NOT_AUTHORIZED, uri
        with pytest.raises(ApplicationError) as caught:
            await s.publish(uris.room_topic(room), {"text": "forged"}, options=PublishOptions(acknowledge=True))
        assert caught.value.error == uris.NOT_AUTHORIZED


@pytest.mark.parametrize(
    ("action", "uri"),
    [
        ("call", "chat.nope"),  # not registered
        ("call", "wamp.session.list"),  # meta API, not granted
        ("subscribe", "chat.roomy"),  # near miss of the chat.room prefix
        ("subscribe", "chat"),  # above the prefix
    ],
)
@pytest_twisted.ensureDeferred
async def test_anonymous_is_denied_outside_its_rules(reactor: Any, demo_node: Any, action: str, uri: str) -> None:
    """Anything the anonymous rules do not cover is wamp.error.not_authorized."""
    async with session(reactor, demo_node.url) as s:
        attempt = s.call(uri) if action == "call" else s.subscribe(lambda *a: None, uri)
        with pytest.raises(ApplicationError) as caught:
            await attempt
    assert caught.value.error == uris.NOT_AUTHORIZED


@pytest.mark.parametrize("uri", ["chat.room", "chat.room.lobby", "chat.room.lobby.sub"])
@pytest_twisted.ensureDeferred
async def test_anonymous_may_subscribe_under_chat_room(reactor: Any, demo_node: Any, uri: str) -> None:
    """The chat.room prefix rule covers chat.room itself and every URI below it."""
    async with session(reactor, demo_node.url) as s:
        subscription = await s.subscribe(lambda *a: None, uri)
        assert subscription.active


@pytest_twisted.ensureDeferred
async def test_register_of_an_existing_procedure_is_not_authorized(reactor: Any, demo_node: Any) -> None:
    """Registering an already registered URI without permission is not_authorized, not already_exists:
    a denied session cannot learn which procedures exist (crossbar#1463, fixed in router.seam.denials)."""
    async with session(reactor, demo_node.url) as s:
        with pytest.raises(ApplicationError) as caught:
            await s.register(lambda: None, uris.CHAT_SEND)
    assert caught.value.error == uris.NOT_AUTHORIZED


@pytest_twisted.ensureDeferred
async def test_sys_stats_counts_sessions_and_chat_messages_every_second(reactor: Any, demo_node: Any) -> None:
    """sys.stats comes every second with the realm's session count and the chat messages of the last
    second."""
    async with session(reactor, demo_node.url) as s:
        stats = Inbox(reactor)
        await s.subscribe(stats, uris.SYS_STATS)
        first = await stats.next(timeout=5)
        assert first["sessions"] >= 1
        for i in range(3):
            await s.call(uris.CHAT_SEND, new_room(), f"m{i}")
        seen = [await stats.next(timeout=5) for _ in range(3)]
    assert sum(e["messages_per_second"] for e in seen) >= 3
    assert all(b["ts"] > a["ts"] for a, b in zip([first, *seen], seen, strict=False))
