"""router.seam.speedups: the orjson WAMP JSON codec against autobahn's own, value by value and message by message.

Every test that installs the speed-ups or changes txaio's log level puts both back as they were."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import txaio
from autobahn.wamp import message
from autobahn.wamp import serializer as autobahn_serializer
from autobahn.wamp.exception import ProtocolError
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from router.seam import speedups

autobahn_dumps = autobahn_serializer._dumps
autobahn_loads = autobahn_serializer._loads

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.integers()  # beyond 64 bits: autobahn's code path
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.binary()
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True would hide a changed type)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


class Same:
    """Wraps a decoded value so == compares with :func:`same`."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and same(self.value, other.value)


def outcome(decode: Any) -> Any:
    """The decoded value, or the kind of error decoding raised."""
    try:
        return Same(decode())
    except (ValueError, TypeError) as e:  # binascii.Error is a ValueError
        return type(e)


def has_float(value: Any) -> bool:
    if isinstance(value, list):
        return any(has_float(v) for v in value)
    if isinstance(value, dict):
        return any(has_float(v) for v in value.values())
    return isinstance(value, float)


def encodable(value: Any) -> bool:
    try:
        autobahn_dumps(value).encode("utf8")
    except UnicodeEncodeError:  # lone surrogates: neither side can send them
        return False
    return True


def round_trips(value: Any) -> bool:
    """autobahn can read back what it wrote (not so for a text starting with NUL that is not base64)."""
    if not encodable(value):
        return False
    try:
        autobahn_loads(autobahn_dumps(value))
    except ValueError:
        return False
    return True


@settings(max_examples=400)
@given(values)
def test_writes_what_autobahn_writes(value: Any) -> None:
    """Byte for byte autobahn's JSON (binary as "\\u0000" + base64); with floats, the same values."""
    assume(encodable(value))
    ours = speedups.dumps(value)
    theirs = autobahn_dumps(value).encode("utf8")
    if has_float(value) and round_trips(value):
        assert same(autobahn_loads(ours.decode()), autobahn_loads(theirs.decode()))
    elif not has_float(value):
        assert ours == theirs


@settings(max_examples=400)
@given(values)
def test_reads_what_autobahn_reads(value: Any) -> None:
    """Whatever autobahn wrote, including binary values, reads back to exactly what autobahn reads; where
    autobahn cannot read it (a text starting with NUL that is not base64), neither can we."""
    assume(encodable(value))
    text = autobahn_dumps(value)
    assert outcome(lambda: speedups.loads(text.encode("utf8"))) == outcome(lambda: autobahn_loads(text))


@given(st.binary())
def test_binary_convention_is_nul_prefixed_standard_base64(data: bytes) -> None:
    """bytes travel as "\\u0000" + padded standard base64, in both directions."""
    import base64

    encoded = speedups.dumps([data])
    assert encoded == b'["\\u0000' + base64.b64encode(data) + b'"]'
    assert same(speedups.loads(encoded), [data])


def test_object_keys_are_never_turned_into_bytes() -> None:
    """Like autobahn, only string values carry binary; a key starting with NUL stays a string."""
    payload = b'{"\\u0000AQ==": "\\u0000AQ=="}'
    assert same(speedups.loads(payload), {"\x00AQ==": b"\x01"})
    assert same(speedups.loads(payload), autobahn_loads(payload.decode()))


@pytest.mark.parametrize(
    "payload",
    [b"[18446744073709551616]", b'["12345678901234567890", 1]', b"[NaN, Infinity, -Infinity]", b"[1e400]"],
)
def test_numbers_beyond_orjson_are_read_by_autobahn_rules(payload: bytes) -> None:
    """Integers beyond 64 bits stay exact integers; NaN and Infinity tokens are read as autobahn reads them."""
    ours, theirs = speedups.loads(payload), autobahn_loads(payload.decode())
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert type(a) is type(b)
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def test_non_string_keys_and_huge_integers_are_written_by_autobahn_rules() -> None:
    """What orjson refuses is handed to autobahn's encoder, which decides as before."""
    value = {1: 2**80, "k": [None, True]}
    assert speedups.dumps(value) == autobahn_dumps(value).encode()


def test_nan_is_written_as_null() -> None:
    """The one documented difference: NaN/Infinity become null instead of tokens no client can parse."""
    assert speedups.dumps([math.nan, math.inf, 1.0]) == b"[null,null,1.0]"


@pytest.mark.parametrize("payload", [b"[1,", b'["\\ud800"]' + b"x", b"\xff\xfe", b'{"a":}'])
def test_invalid_messages_are_protocol_errors(payload: bytes) -> None:
    """Invalid JSON or UTF-8 is a ProtocolError through the patched serializer, as without it."""
    with installed(), pytest.raises(ProtocolError):
        autobahn_serializer.JsonSerializer().unserialize(payload)


def wamp_messages(args: list[Any], kwargs: dict[str, Any]) -> list[message.Message]:
    return [
        message.Call(7, "com.example.echo", args=args, kwargs=kwargs),
        message.Event(1, 2, args=args, kwargs=kwargs),
        message.Result(7, args=args, kwargs=kwargs),
    ]


@settings(max_examples=150)
@given(st.lists(values, max_size=3), st.dictionaries(st.text(min_size=1), values, max_size=3), st.booleans())
def test_installed_serializer_round_trips_wamp_messages_with_autobahn(
    args: list[Any], kwargs: dict[str, Any], batched: bool
) -> None:
    """Installed into autobahn, WAMP messages go both ways between the patched and the original codec."""
    assume(round_trips([args, kwargs]))
    with installed():
        cls = autobahn_serializer.JsonObjectSerializer
        original = dict(speedups._original)
        ours, theirs = cls(batched=batched), cls(batched=batched)
        for msg in wamp_messages(args, kwargs):
            raw = msg.marshal()
            expected = original["unserialize"](theirs, original["serialize"](theirs, raw))
            assert same(original["unserialize"](theirs, ours.serialize(raw)), expected)
            assert same(ours.unserialize(original["serialize"](theirs, raw)), [autobahn_loads(autobahn_dumps(raw))])


@contextmanager
def restored() -> Iterator[None]:
    """Afterwards, the speed-ups installed or not and txaio's log level exactly as before."""
    was_installed, level = speedups.installed(), txaio.get_global_log_level()
    try:
        yield
    finally:
        speedups.uninstall()
        txaio.set_global_log_level(level)
        if was_installed:
            speedups.install()


@contextmanager
def installed() -> Iterator[None]:
    """The speed-ups installed for the block (a context manager, since Hypothesis tests cannot take
    function-scoped fixtures), and the process restored afterwards."""
    with restored():
        assert speedups.install()
        yield


@pytest.fixture
def fresh_install() -> Iterator[Any]:
    """Speed-ups not installed (the test installs them at the level it sets); the installation state and
    the global log level restored after the test."""
    with restored():
        speedups.uninstall()
        yield speedups


@given(st.binary(min_size=4, max_size=4), st.binary(max_size=300))
def test_wsaccel_masker_unmasks_like_autobahn(mask: bytes, data: bytes) -> None:
    """The C masker gives the bytes autobahn's own masker gives, for any mask and payload."""
    from autobahn.websocket.xormasker import create_xor_masker
    from wsaccel.xormask import createXorMasker

    assert createXorMasker(mask, len(data)).process(data) == create_xor_masker(mask, len(data)).process(data)


@given(st.lists(st.binary(max_size=40), max_size=4))
def test_wsaccel_utf8_validator_agrees_with_autobahn(chunks: list[bytes]) -> None:
    """Fed the same chunks, both report the same (valid, ends on code point, positions) up to the first invalid
    byte, where autobahn fails the connection and validates no further."""
    from autobahn.nvx._utf8validator import Utf8Validator as Nvx
    from wsaccel.utf8validator import Utf8Validator

    ours, theirs = Utf8Validator(), Nvx()
    for chunk in chunks:
        verdict = tuple(theirs.validate(chunk))
        assert tuple(ours.validate(chunk)) == verdict
        if not verdict[0]:
            break


def test_log_helpers_are_plain_above_debug(fresh_install: Any) -> None:
    """At level info the per-message modules' hl*/pformat return their argument, with no ANSI colouring."""
    import crossbar.router.router as router_module

    txaio.set_global_log_level("info")
    assert fresh_install.install()
    assert router_module.hlval(42) == 42
    assert (
        router_module.hltype(test_log_helpers_are_plain_above_debug)
        == test_log_helpers_are_plain_above_debug.__qualname__
    )
    assert router_module.pformat({"allow": True}) == {"allow": True}


def test_non_log_uses_keep_working(fresh_install: Any) -> None:
    """autobahn's WebSocket Timings, the one user of a rebound helper outside a log call, still print as text."""
    from autobahn.websocket.protocol import Timings

    txaio.set_global_log_level("info")
    assert fresh_install.install()
    timings = Timings()
    timings.track("onOpen")
    assert isinstance(str(timings), str)
    assert "onOpen" in str(timings)


def test_log_helpers_are_left_alone_at_debug(fresh_install: Any) -> None:
    """When debug messages are emitted, they keep their formatting."""
    import crossbar.router.router as router_module
    from autobahn.util import hlval

    txaio.set_global_log_level("debug")
    assert fresh_install.install()
    assert router_module.hlval is hlval
    assert "\x1b[" in router_module.hlval(42)


def test_uninstall_restores_the_library(fresh_install: Any) -> None:
    """uninstall puts back every function install replaced."""
    import autobahn.websocket.protocol as ws

    before = (ws.create_xor_masker, autobahn_serializer.JsonObjectSerializer.serialize)
    assert fresh_install.install()
    assert ws.create_xor_masker is not before[0]
    fresh_install.uninstall()
    assert (ws.create_xor_masker, autobahn_serializer.JsonObjectSerializer.serialize) == before


def test_environment_switch_turns_them_off(fresh_install: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """SWITCHBOARD_SPEEDUPS=0 leaves autobahn exactly as it is."""
    monkeypatch.setenv("SWITCHBOARD_SPEEDUPS", "0")
    before = autobahn_serializer.JsonObjectSerializer.serialize
    assert not fresh_install.install()
    assert not fresh_install.installed()
    assert autobahn_serializer.JsonObjectSerializer.serialize is before


def test_rebound_helpers_only_feed_log_calls() -> None:
    """In every module whose helpers are rebound, each call of hl*/pformat is an argument of a log call, so
    plain stand-ins change only log output; the one exception, autobahn's ``Timings.__str__``, is replaced."""
    import ast
    import importlib

    names = {"hl", "hlid", "hlval", "hlflag", "hluserid", "hlcontract", "hltype", "pformat"}
    levels = {"trace", "debug", "info", "warn", "warning", "error", "critical", "failure"}
    outside = []
    for module_name in speedups.PLAIN_HELPERS:
        path = importlib.import_module(module_name).__file__
        assert path is not None
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names):
                continue
            parent = parents.get(node)
            while parent is not None and not (
                isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute) and parent.func.attr in levels
            ):
                parent = parents.get(parent)
            if parent is None:
                scope, up = [], parents.get(node)
                while up is not None:
                    if isinstance(up, ast.FunctionDef | ast.ClassDef):
                        scope.insert(0, up.name)
                    up = parents.get(up)
                outside.append(f"{module_name}:{'.'.join(scope)} {node.func.id}")
    assert outside == ["autobahn.websocket.protocol:Timings.__str__ pformat"]


@pytest.mark.parametrize("inner", [b"", b"12345678901234567890"])
def test_nesting_beyond_orjson_never_reaches_the_recursive_parser(
    inner: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message nested deeper than orjson's 1024 levels (with or without a number orjson cannot read) is a
    ValueError, without autobahn's recursive parser running; shallower ones still reach it."""

    def recursive_parser(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("autobahn's recursive parser was called")

    monkeypatch.setattr(autobahn_serializer, "_loads", recursive_parser)
    with pytest.raises(ValueError, match="nested deeper than 1024"):
        speedups.loads(b"[" * 60000 + inner + b"]" * 60000)
    with pytest.raises(AssertionError, match="recursive parser was called"):
        speedups.loads(b"[" * 3 + b"12345678901234567890" + b"]" * 3)


def test_installing_for_a_test_leaves_the_process_as_it_was() -> None:
    """The helpers above put back the installation state and the global log level, whatever the test did."""
    before = (speedups.installed(), txaio.get_global_log_level(), autobahn_serializer.JsonObjectSerializer.serialize)
    with installed():
        txaio.set_global_log_level("debug")
        assert speedups.installed()
    assert (
        speedups.installed(),
        txaio.get_global_log_level(),
        autobahn_serializer.JsonObjectSerializer.serialize,
    ) == before


@pytest.mark.parametrize("number", [-(2**63) - 1, -(10**19) + 1, 2**64, -(2**63), 2**63])
def test_integers_beyond_64_bits_stay_integers(number: int) -> None:
    """orjson reads integers below -2**63 as floats; such numbers go to autobahn's parser and stay exact."""
    assert speedups.loads(str([number]).encode()) == [number]
    assert isinstance(speedups.loads(str(number).encode()), int)
