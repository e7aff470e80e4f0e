"""The component API (router.component): argument binding, start records, the component report."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import ComponentConfig

from router import component
from router.component import (
    FAILED,
    LEFT,
    READY,
    STARTING,
    UNCHECKED,
    ComponentSession,
    StartRecord,
    component_report,
    procedure,
    refusal_reason,
)

DETAILS = object()  # stands for the CallDetails autobahn passes


class Rooms(ComponentSession):
    """Handlers with and without ``details``, positional and keyword parameters, defaults."""

    @procedure("chat.history")
    def history(self, room: object, limit: object = 50) -> dict[str, object]:
        return {"room": room, "limit": limit}

    @procedure("chat.send")
    def send(self, room: object, *, text: object, details: Any) -> tuple[object, object, Any]:
        return room, text, details

    @procedure("sys.info")
    async def info(self) -> str:
        return "info"


@pytest.fixture(autouse=True)
def fresh_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no start records (and the module's list is put back afterwards)."""
    monkeypatch.setattr(component, "_records", [])


def rooms() -> Rooms:
    return Rooms(ComponentConfig(realm="demo"))


def test_binds_positional_and_keyword_arguments_with_defaults() -> None:
    """Arguments bind by position or by name to the handler's own parameters; defaults fill the rest."""
    s = rooms()
    assert Rooms.history(s, "a", details=DETAILS) == {"room": "a", "limit": 50}
    assert Rooms.history(s, room="a", limit=3, details=DETAILS) == {"room": "a", "limit": 3}
    assert Rooms.history(s, "a", 7, details=DETAILS) == {"room": "a", "limit": 7}


def test_details_reach_only_handlers_that_declare_them() -> None:
    """A handler with a ``details`` parameter receives autobahn's details; one without never sees them."""
    s = rooms()
    assert Rooms.send(s, "lobby", text="hi", details=DETAILS) == ("lobby", "hi", DETAILS)
    assert Rooms.history(s, "lobby", details=DETAILS) == {"room": "lobby", "limit": 50}


@pytest.mark.parametrize(
    ("args", "kwargs", "reason"),
    [
        ((), {}, "missing a required argument: 'room'"),
        (("a", 1, 2), {}, "too many positional arguments"),
        (("a",), {"x": 1}, "got an unexpected keyword argument 'x'"),
        (("a",), {"room": "b"}, "multiple values for argument 'room'"),
    ],
)
def test_mismatch_is_invalid_argument(args: tuple[object, ...], kwargs: dict[str, object], reason: str) -> None:
    """Arguments that do not fit raise wamp.error.invalid_argument naming the procedure and the argument."""
    with pytest.raises(ApplicationError) as caught:
        Rooms.history(rooms(), *args, details=DETAILS, **kwargs)
    assert caught.value.error == "wamp.error.invalid_argument"
    assert caught.value.args[0] == f"chat.history: {reason}"


def test_keyword_only_parameter_is_required_by_name() -> None:
    """A keyword-only parameter cannot be passed by position: the caller is told which one is missing."""
    with pytest.raises(ApplicationError) as caught:
        Rooms.send(rooms(), "lobby", "hi", details=DETAILS)
    assert caught.value.args[0] == "chat.send: too many positional arguments"


def test_no_parameters_refuses_any_argument() -> None:
    """A handler without parameters refuses positional and keyword arguments alike."""
    with pytest.raises(ApplicationError) as caught:
        Rooms.info(rooms(), "x", details=DETAILS)
    assert caught.value.args[0] == "sys.info: too many positional arguments"


def test_decorated_methods_are_marked_for_registration_with_details() -> None:
    """``register(self)`` finds each decorated method under its URI, registered with details."""
    patterns = {name: getattr(Rooms, name)._wampuris for name in ("history", "send", "info")}
    assert {name: [p.uri() for p in ps] for name, ps in patterns.items()} == {
        "history": ["chat.history"],
        "send": ["chat.send"],
        "info": ["sys.info"],
    }
    assert all(ps[0].is_endpoint() and ps[0].options.details for ps in patterns.values())


def test_refusal_reason_for_a_missing_permission_names_the_role() -> None:
    """A not_authorized refusal reads as the example in docs/components.md."""
    error = ApplicationError("wamp.error.not_authorized", "session is not authorized to register 'counter.incr'")
    assert refusal_reason("register", "counter.incr", error, "backend") == (
        "register 'counter.incr' refused: not_authorized (role 'backend' has no register permission on it)"
    )


def test_refusal_reason_for_other_errors_keeps_the_routers_message() -> None:
    """Other refusals name the error and carry the router's message."""
    error = ApplicationError("wamp.error.procedure_already_exists", "register for already registered procedure 'x'")
    assert refusal_reason("register", "x", error, "backend") == (
        "register 'x' refused: procedure_already_exists (register for already registered procedure 'x')"
    )
    assert (
        refusal_reason("subscribe", "t", ApplicationError("app.error.no"), None)
        == "subscribe 't' refused: app.error.no"
    )


class Broken(ComponentSession):
    async def onJoin(self, details: Any) -> None:
        raise RuntimeError("database unreachable")


class BrokenChild(Broken):
    async def onJoin(self, details: Any) -> None:
        await super().onJoin(details)


@pytest_twisted.ensureDeferred
async def test_on_join_failure_is_recorded_and_raised_on() -> None:
    """An onJoin that raises marks the component failed (first reason kept) and still raises to autobahn."""
    for cls in (Broken, BrokenChild):
        session = cls(ComponentConfig(realm="demo"))
        with pytest.raises(RuntimeError):
            await session.onJoin(None)
        session.fire("ready", session)  # autobahn fires ready even after onJoin failed
        assert [(r.cls, r.state, r.reason) for r in component.start_records()][-1] == (
            cls,
            FAILED,
            "onJoin raised RuntimeError: database unreachable",
        )


def test_ready_and_leave_while_starting() -> None:
    """'ready' marks a starting component ready; leaving before that marks it failed with the reason, and
    leaving after it marks it LEFT (no longer serving: the node is not ready, router.operations)."""
    ready, left = rooms(), rooms()
    ready.fire("ready", ready)
    assert [r.state for r in component.start_records()] == [READY, STARTING]
    ready.fire("leave", ready, None)  # after ready: not a start failure
    left.fire("leave", left, type("CloseDetails", (), {"reason": "wamp.close.killed"})())
    assert [(r.state, r.reason) for r in component.start_records()] == [
        (LEFT, "left the realm: None"),
        (FAILED, "left the realm while starting: wamp.close.killed"),
    ]


class Plain(ApplicationSession):
    pass


def test_component_report_matches_configured_components_to_records() -> None:
    """The n-th configured component of a class and realm gets the n-th record of that class and realm;
    one with no record yet is starting, one that is not a ComponentSession is unchecked."""
    classes: dict[str, type] = {"a.Rooms": Rooms, "a.Broken": Broken, "a.Plain": Plain}
    records = [
        StartRecord(Rooms, "demo", READY),
        StartRecord(Broken, "demo", FAILED, "onJoin raised RuntimeError: x"),
        StartRecord(Rooms, "other", READY),
    ]
    configured = [
        {"class": "a.Rooms", "realm": "demo"},
        {"class": "a.Broken", "realm": "demo"},
        {"class": "a.Plain", "realm": "demo"},
        {"class": "a.Rooms", "realm": "demo"},
        {"class": "a.Rooms", "realm": "other"},
        {"class": "a.Missing", "realm": "demo"},
    ]
    report = component_report(configured, records, resolve=classes.get)
    assert [(row["class"], row["realm"], row["state"], row["reason"]) for row in report] == [
        ("a.Rooms", "demo", READY, None),
        ("a.Broken", "demo", FAILED, "onJoin raised RuntimeError: x"),
        ("a.Plain", "demo", UNCHECKED, None),
        ("a.Rooms", "demo", STARTING, None),
        ("a.Rooms", "other", READY, None),
        ("a.Missing", "demo", UNCHECKED, None),
    ]


def test_component_report_resolves_configured_class_paths() -> None:
    """By default class paths are imported, so a re-exported path (package.Class) finds the class."""
    report = component_report([{"class": "components.chat.ChatComponent", "realm": "demo"}], [])
    assert report[0]["state"] == STARTING
