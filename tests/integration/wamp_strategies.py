"""
Hypothesis strategies for hostile WAMP traffic: generated messages of every WAMP type (and bogus ones), with
valid and invalid ids, URIs, options and payloads, plus raw WebSocket frames no serializer would produce.

A :class:`Case` is one client's traffic: a serializer, whether to join realm ``demo`` anonymously first,
and a batch of :class:`Message` (a Python value the case's serializer encodes), :class:`Deep` (a message
nested ``depth`` levels deep, rendered straight to bytes because no recursive encoder could build it) and
:class:`Raw` (a WebSocket frame written byte by byte) items. Everything here is pure:
:mod:`tests.integration.test_fuzz` sends it.

Most fields are drawn :func:`mostly` valid: a wrong type anywhere makes autobahn's parser refuse the whole
message, and the broker, dealer and authorizer would never see the hostile option values. Large values
(long URIs) are built from a small draw and a repeat count, so generating them costs Hypothesis little.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from typing import Any

import cbor2
import msgpack
from hypothesis import strategies as st

__all__ = [
    "CODES",
    "SERIALIZERS",
    "Case",
    "Deep",
    "Message",
    "Raw",
    "cases",
    "encode",
    "frame",
    "mostly",
    "render",
    "weighted",
]

#: WAMP message type codes (WAMP v2 basic + advanced profile).
CODES = {
    "HELLO": 1,
    "WELCOME": 2,
    "ABORT": 3,
    "CHALLENGE": 4,
    "AUTHENTICATE": 5,
    "GOODBYE": 6,
    "ERROR": 8,
    "PUBLISH": 16,
    "PUBLISHED": 17,
    "SUBSCRIBE": 32,
    "SUBSCRIBED": 33,
    "UNSUBSCRIBE": 34,
    "UNSUBSCRIBED": 35,
    "EVENT": 36,
    "CALL": 48,
    "CANCEL": 49,
    "RESULT": 50,
    "REGISTER": 64,
    "REGISTERED": 65,
    "UNREGISTER": 66,
    "UNREGISTERED": 67,
    "INVOCATION": 68,
    "INTERRUPT": 69,
    "YIELD": 70,
}

SERIALIZERS = ("json", "msgpack", "cbor")
MAX_ID = 2**53

# WebSocket opcodes.
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


@dataclass(frozen=True)
class Message:
    """A WAMP message (any Python value) that the case's serializer encodes into one frame."""

    value: Any


@dataclass(frozen=True)
class Deep:
    """A CALL whose ``where`` (``args``, ``kwargs`` or ``options``) holds a ``container`` (``list`` or
    ``dict``) nested ``depth`` levels deep, rendered directly to the serializer's bytes."""

    depth: int
    container: str
    where: str


@dataclass(frozen=True)
class Raw:
    """A WebSocket frame written as is: ``opcode``, ``payload``, FIN and RSV bits, masked or not, its
    length header optionally lying (``claimed_length``) and the bytes cut after ``truncate`` (then the
    connection is abandoned: the frame can never complete)."""

    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0
    masked: bool = True
    claimed_length: int | None = None
    truncate: int | None = None


@dataclass(frozen=True)
class Case:
    """One connection: ``serializer``, ``join`` (anonymous HELLO on ``demo`` before the batch) and the
    ``items`` sent in order."""

    serializer: str
    join: bool
    items: tuple[Message | Deep | Raw, ...]


# -- scalar pieces ---------------------------------------------------------------------------------------------

HUGE_NUMBERS = st.sampled_from(
    [2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30, -1, 0]
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e308, -1e308, 5e-324, 0.5, -0.0])
SHORT_TEXT = st.text(max_size=12)
HOSTILE_CHARS = st.sampled_from(
    ["\x00", "\n", "\r", "\t", "\x1b", "\u2028", "\ud7ff", "\ufeff", "\uffff", "é", "日本", "🙂", "#", "*", " ", "."]
)


@st.composite
def mostly(draw: st.DrawFn, valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any], percent: int = 85) -> Any:
    """A draw from ``valid`` about ``percent`` % of the time, else from ``invalid``. (``one_of`` would pick each
    alternative equally often: with a wrong type in any field a message dies in autobahn's parser and never
    reaches the broker, dealer or authorizer.)"""
    return draw(valid if draw(st.integers(min_value=0, max_value=99)) < percent else invalid)


VALID_IDS = st.one_of(st.integers(min_value=1, max_value=MAX_ID), st.integers(min_value=1, max_value=10))
ids = mostly(
    VALID_IDS,
    st.one_of(HUGE_NUMBERS, FLOATS, st.none(), st.booleans(), SHORT_TEXT, st.lists(st.integers(), max_size=2)),
)

_COMPONENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8)
KNOWN_URIS = st.sampled_from(
    [
        "sys.info",
        "chat.send",
        "chat.history",
        "chat.rooms",
        "chat.room.lobby",
        "chat.room",
        "chat.roomy",
        "chat",
        "sys",
        "wamp.session.list",
        "wamp.session.kill",
        "wamp.registration.list",
        "wamp.subscription.get_events",
        "wamp.error.canceled",
        "switchboard.admin.user.list",
        "switchboard.admin.role.set",
        "switchboard.admin.on_change",
        "crossbar.worker.worker001.get_status",
        "wamp.error.not_authorized",
    ]
)


def _repeat(piece: str, count: int) -> str:
    return piece * count


VALID_URIS = st.one_of(
    KNOWN_URIS,
    st.lists(_COMPONENT, min_size=1, max_size=6).map(".".join),
    # empty components (valid for wildcard matching) and prefixes of allowed URIs
    st.sampled_from(["chat..send", "chat.room.", "chat.", "", "sys.", "..", "wamp.", "switchboard."]),
    # unicode inside components
    st.tuples(_COMPONENT, st.sampled_from(["é", "日本", "🙂", "\ufeff", "\uffff", "\x7f", "\x01"]), _COMPONENT).map(
        lambda t: f"fz.{t[0]}{t[1]}{t[2]}"
    ),
    # long, not oversize
    st.builds(_repeat, st.sampled_from(["a", "fz.", "日"]), st.sampled_from([300, 5000, 50_000])),
)
uris = mostly(
    VALID_URIS,
    st.one_of(
        # whitespace, '#', control characters
        st.tuples(_COMPONENT, HOSTILE_CHARS, _COMPONENT).map(lambda t: f"fz.{t[0]}{t[1]}{t[2]}"),
        st.sampled_from([".", ".a", "a.", "*", "a.*", "a.b.*.c", "a b", "a#b"]),
        # oversize: past max_message_size (1 MiB), the connection is dropped
        st.builds(_repeat, st.sampled_from(["fz.", "日", "\x01"]), st.sampled_from([400_000, 600_000])),
        st.none(),
        st.integers(),
        st.booleans(),
        st.lists(SHORT_TEXT, max_size=2),
    ),
)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), FLOATS, SHORT_TEXT, HUGE_NUMBERS)
json_values = st.recursive(
    json_scalars | st.binary(max_size=16),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(SHORT_TEXT, children, max_size=4),
    max_leaves=20,
)
# maps whose keys are not strings: msgpack and CBOR can carry them; JSON turns ints into strings
odd_keys = st.dictionaries(st.integers() | st.binary(max_size=4) | st.booleans(), json_scalars, min_size=1, max_size=3)


def _nest(depth: int, container: str) -> Any:
    value: Any = [] if container == "list" else {}
    for _ in range(depth - 1):
        value = [value] if container == "list" else {"k": value}
    return value


# moderately deep values built as Python objects (encodable by every serializer), around the default limit 64
nested_values = st.builds(
    _nest, st.sampled_from([2, 10, 40, 61, 62, 63, 64, 65, 66, 80, 120]), st.sampled_from(["list", "dict"])
)
payload_values = st.one_of(json_values, nested_values, odd_keys)
args_lists = mostly(
    st.lists(payload_values, max_size=4),
    # a string or bytes is a payload-passthru payload; anything else is a protocol error
    st.one_of(SHORT_TEXT, st.binary(max_size=16), payload_values),
)
kwargs_dicts = mostly(st.dictionaries(SHORT_TEXT, payload_values, max_size=4), payload_values)

BOOL = mostly(st.booleans(), json_scalars)
SESSION_IDS = mostly(VALID_IDS | HUGE_NUMBERS, json_values)
AUTHIDS = st.sampled_from(["admin", "", "x" * 300, "anonymous", "trusted"]) | SHORT_TEXT
ROLES = st.sampled_from(["admin", "trusted", "anonymous", "backend", "user", "nope", ""])

HOSTILE_OPTIONS = {
    "match": mostly(
        st.sampled_from(["exact", "prefix", "wildcard"]), st.sampled_from(["", "PREFIX", "regex"]) | json_scalars
    ),
    "forward_for": mostly(
        st.lists(
            st.fixed_dictionaries({"session": VALID_IDS, "authid": AUTHIDS, "authrole": ROLES}), min_size=1, max_size=3
        ),
        json_values,
    ),
    "timeout": mostly(
        st.sampled_from([0, 1, 10, 1000, 60_000, 2**31, 2**53, 2**63 - 1]), HUGE_NUMBERS | FLOATS | SHORT_TEXT
    ),
    "exclude": mostly(st.lists(SESSION_IDS, max_size=5), json_values),
    "eligible": mostly(st.lists(SESSION_IDS, max_size=5), json_values),
    "exclude_authid": mostly(st.lists(AUTHIDS, max_size=3), json_values),
    "eligible_authid": mostly(st.lists(AUTHIDS, max_size=3), json_values),
    "exclude_authrole": mostly(st.lists(ROLES, max_size=3), json_values),
    "eligible_authrole": mostly(st.lists(ROLES, max_size=3), json_values),
    "disclose_me": BOOL,
    "acknowledge": BOOL,
    "exclude_me": BOOL,
    "receive_progress": BOOL,
    "progress": BOOL,
    "retain": BOOL,
    "get_retained": BOOL,
    "invoke": mostly(
        st.sampled_from(["single", "roundrobin", "random", "first", "last"]),
        st.sampled_from(["all", ""]) | json_scalars,
    ),
    "mode": mostly(st.sampled_from(["skip", "kill", "killnowait"]), st.just("nope") | json_scalars),
    "concurrency": mostly(st.integers(min_value=1, max_value=2**31), HUGE_NUMBERS | json_scalars),
    "caller": SESSION_IDS,
    "caller_authid": mostly(AUTHIDS, json_scalars),
    "caller_authrole": mostly(ROLES, json_scalars),
    "publisher": SESSION_IDS,
    "publisher_authid": mostly(AUTHIDS, json_scalars),
    "transaction_hash": mostly(SHORT_TEXT, json_scalars),
    "ppt_scheme": mostly(st.sampled_from(["wamp", "mqtt", "x_custom"]), SHORT_TEXT | json_scalars),
    "ppt_serializer": mostly(st.sampled_from(["native", "json", "msgpack", "cbor"]), SHORT_TEXT | json_scalars),
    "enc_algo": mostly(st.sampled_from(["cryptobox", "mqtt", "xor"]), SHORT_TEXT | json_scalars),
    "x_" + "k" * 200: json_values,
}


@st.composite
def hostile_options(draw: st.DrawFn) -> dict[str, Any]:
    """Up to four of :data:`HOSTILE_OPTIONS`, each most often of the type autobahn accepts."""
    keys = draw(st.lists(st.sampled_from(sorted(HOSTILE_OPTIONS)), max_size=4, unique=True))
    return {key: draw(HOSTILE_OPTIONS[key]) for key in keys}


options = mostly(
    hostile_options(),
    st.one_of(
        st.dictionaries(SHORT_TEXT, json_values, max_size=4),
        odd_keys,
        json_scalars,
        st.lists(json_scalars, max_size=2),
    ),
)

AUTHMETHODS = st.lists(
    mostly(
        st.sampled_from(["anonymous", "ticket", "wampcra", "cryptosign", "wamp-scram", "cookie", "tls"]),
        st.sampled_from(["nope", ""]) | json_scalars,
    ),
    max_size=3,
)
hello_details = mostly(
    st.fixed_dictionaries(
        {
            "roles": mostly(
                st.sampled_from(
                    [{"caller": {}}, {"callee": {"features": {"x": 1}}}, {"subscriber": {}, "publisher": {}}]
                ),
                st.just({}) | json_values,
            )
        },
        optional={
            "authmethods": mostly(AUTHMETHODS, json_scalars),
            "authid": mostly(
                st.text(max_size=20).map(lambda s: "fz_" + s) | st.sampled_from(["admin", "x" * 5000]), json_scalars
            ),
            "authrole": mostly(ROLES, json_scalars),
            "authextra": mostly(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "pubkey": st.sampled_from(["00" * 32, "zz", ""]) | json_scalars,
                        "channel_binding": st.sampled_from(["tls-unique", None, ""]) | json_scalars,
                        "nonce": SHORT_TEXT | json_scalars,
                    },
                ),
                json_values,
            ),
            "agent": mostly(SHORT_TEXT, json_scalars),
            "resumable": BOOL,
        },
    ),
    options,
)
realms = mostly(st.sampled_from(["demo", "nope", "DEMO", "crossbar"]), st.sampled_from(["", "demo\x00"]) | uris)


def _msg(name: str, *fields: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.tuples(st.just(CODES[name]), *fields).map(list)


def _with_payload(head: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[list[Any]]:
    """``head`` followed by nothing, args, or args and kwargs."""
    return st.one_of(
        head,
        st.tuples(head, args_lists).map(lambda t: [*t[0], t[1]]),
        st.tuples(head, args_lists, kwargs_dicts).map(lambda t: [*t[0], t[1], t[2]]),
    )


messages_by_type = {
    "CALL": _with_payload(_msg("CALL", ids, options, uris)),
    "AUTHENTICATE": _msg(
        "AUTHENTICATE", SHORT_TEXT | st.sampled_from(["00" * 64, "x" * 10_000]) | json_scalars, options
    ),
    "GOODBYE": _msg("GOODBYE", options, uris),
    "ABORT": _msg("ABORT", options, uris),
    "SUBSCRIBE": _msg("SUBSCRIBE", ids, options, uris),
    "UNSUBSCRIBE": _msg("UNSUBSCRIBE", ids, ids),
    "PUBLISH": _with_payload(_msg("PUBLISH", ids, options, uris)),
    "REGISTER": _msg("REGISTER", ids, options, uris),
    "UNREGISTER": _msg("UNREGISTER", ids, ids),
    "CANCEL": _msg("CANCEL", ids, options),
    "YIELD": _with_payload(_msg("YIELD", ids, options)),
    "HELLO": _msg("HELLO", realms, hello_details),
    "ERROR": _with_payload(_msg("ERROR", st.sampled_from(list(CODES.values())) | ids, ids, options, uris)),
    # messages only a router sends
    "ROUTER_ONLY": st.tuples(
        st.sampled_from(
            [
                CODES[n]
                for n in (
                    "WELCOME",
                    "CHALLENGE",
                    "PUBLISHED",
                    "SUBSCRIBED",
                    "UNSUBSCRIBED",
                    "EVENT",
                    "RESULT",
                    "REGISTERED",
                    "UNREGISTERED",
                    "INVOCATION",
                    "INTERRUPT",
                )
            ]
        ),
        st.lists(json_values, max_size=5),
    ).map(lambda t: [t[0], *t[1]]),
    # unknown or mistyped type codes
    "BOGUS": st.tuples(
        st.sampled_from([0, 7, 9, 15, 71, 127, 255, 256, -1, 2**64])
        | FLOATS
        | st.sampled_from(["1", "48", None, True, []]),
        st.lists(json_values, max_size=5),
    ).map(lambda t: [t[0], *t[1]]),
}


@st.composite
def weighted(draw: st.DrawFn, choices: tuple[tuple[int, st.SearchStrategy[Any]], ...]) -> Any:
    """A draw from one of ``choices`` (weight, strategy), picked in proportion to the weights."""
    slots = [strategy for w, strategy in choices for _ in range(w)]
    return draw(draw(st.sampled_from(slots)))


# what a client sends most: CALL, PUBLISH, SUBSCRIBE, REGISTER; every type often enough
_WEIGHTS = {"CALL": 6, "PUBLISH": 5, "SUBSCRIBE": 5, "REGISTER": 5, "HELLO": 3, "YIELD": 3, "ERROR": 2}
_well_formed = weighted(tuple((_WEIGHTS.get(name, 1), strategy) for name, strategy in messages_by_type.items()))


def _mutate(message: list[Any], how: str, extra: Any) -> Any:
    if how == "drop_last":
        return message[:-1]
    if how == "extra":
        return [*message, extra]
    if how == "only_type":
        return message[:1]
    if how == "as_dict":
        return {"type": message[0], "rest": message[1:]}
    return message


wamp_messages = mostly(
    _well_formed,
    st.one_of(
        st.builds(_mutate, _well_formed, st.sampled_from(["drop_last", "extra", "only_type", "as_dict"]), json_values),
        # not a message at all
        st.one_of(
            st.just([]),
            json_scalars,
            st.dictionaries(SHORT_TEXT, json_scalars, max_size=3),
            st.lists(st.lists(st.integers(), max_size=3), max_size=3),
        ),
    ),
    percent=90,
)

deep_messages = st.builds(
    Deep,
    depth=st.sampled_from([63, 64, 65, 100, 400, 1025, 5000, 60_000, 100_000]),
    container=st.sampled_from(["list", "dict"]),
    where=st.sampled_from(["args", "kwargs", "options"]),
)

_BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xc0\xaf", b'[1,"\xfe"]']
raw_frames = st.one_of(
    # bad UTF-8 in text frames (also a valid JSON prefix with a bad string)
    st.builds(Raw, opcode=st.just(TEXT), payload=st.sampled_from(_BAD_UTF8)),
    # random bytes, as text or binary
    st.builds(Raw, opcode=st.sampled_from([TEXT, BINARY]), payload=st.binary(max_size=64)),
    # truncated frames: the header promises more than ever arrives
    st.builds(
        Raw,
        opcode=st.sampled_from([TEXT, BINARY]),
        payload=st.binary(min_size=1, max_size=64),
        truncate=st.integers(min_value=0, max_value=8),
    ),
    # lying or absurd length headers (up to 2**63 - 1), then the connection is abandoned
    st.builds(
        Raw,
        opcode=st.sampled_from([TEXT, BINARY]),
        payload=st.binary(max_size=16),
        claimed_length=st.sampled_from([126, 65_536, 2**31, 2**63 - 1]),
        truncate=st.just(10**6),
    ),
    # reserved bits without an extension, unknown opcodes, unmasked client frames
    st.builds(
        Raw, opcode=st.sampled_from([TEXT, BINARY]), payload=st.just(b"[1]"), rsv=st.integers(min_value=1, max_value=7)
    ),
    st.builds(Raw, opcode=st.sampled_from([0x3, 0x7, 0xB, 0xF]), payload=st.binary(max_size=8)),
    st.builds(Raw, opcode=st.sampled_from([TEXT, BINARY]), payload=st.just(b"[1]"), masked=st.just(False)),
    # fragmentation abuse: a continuation with nothing to continue, an unfinished message, fragmented control
    st.builds(Raw, opcode=st.just(CONTINUATION), payload=st.binary(max_size=8)),
    st.builds(Raw, opcode=st.sampled_from([TEXT, BINARY]), payload=st.binary(max_size=8), fin=st.just(False)),
    st.builds(Raw, opcode=st.sampled_from([PING, PONG, CLOSE]), payload=st.binary(max_size=8), fin=st.just(False)),
    # control frames: oversize ping, close with bad codes or bad UTF-8 reasons
    st.builds(Raw, opcode=st.just(PING), payload=st.sampled_from([b"", b"p" * 125, b"p" * 126, b"p" * 4000])),
    st.builds(
        Raw,
        opcode=st.just(CLOSE),
        payload=st.sampled_from(
            [b"\x03", b"\x03\xe8", b"\x00\x00", b"\x03\xec", b"\x0b\xb8", b"\x03\xe8\xff\xfe", b"\xff\xff"]
        ),
    ),
)

items = weighted(((86, wamp_messages.map(Message)), (3, deep_messages), (11, raw_frames)))


@st.composite
def cases(draw: st.DrawFn, min_items: int = 4, max_items: int = 20) -> Case:
    """One case: a serializer, joined or not, and its items (sent one by one, on as many connections as the
    router's closing them takes)."""
    serializer = draw(st.sampled_from(SERIALIZERS))
    join = draw(st.booleans())
    return Case(
        serializer=serializer, join=join, items=tuple(draw(st.lists(items, min_size=min_items, max_size=max_items)))
    )


# -- rendering -------------------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):  # autobahn's convention for binary in JSON
        return "\x00" + base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


def _msgpack_safe(value: Any) -> Any:
    """msgpack has no integers beyond 64 bits: send those as floats (the rest unchanged)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return float(value)
    if isinstance(value, list):
        return [_msgpack_safe(v) for v in value]
    if isinstance(value, dict):
        return {_msgpack_safe(k): _msgpack_safe(v) for k, v in value.items()}
    return value


def encode(serializer: str, value: Any) -> bytes:
    """``value`` in the wire format of ``serializer`` (JSON with NaN and non-string keys as Python writes them)."""
    if serializer == "json":
        if isinstance(value, dict):
            value = {str(k) if not isinstance(k, str) else k: v for k, v in value.items()}
        try:
            return json.dumps(value, default=_json_default, ensure_ascii=False).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError):
            return json.dumps(_stringify_keys(value), default=_json_default, ensure_ascii=False).encode(
                "utf-8", "surrogatepass"
            )
    if serializer == "msgpack":
        return bytes(msgpack.packb(_msgpack_safe(value), use_bin_type=True))
    return bytes(cbor2.dumps(value))


def _stringify_keys(value: Any) -> Any:
    if isinstance(value, list):
        return [_stringify_keys(v) for v in value]
    if isinstance(value, dict):
        return {repr(k) if not isinstance(k, str) else k: _stringify_keys(v) for k, v in value.items()}
    return value


_MSGPACK_K: bytes = bytes(msgpack.packb("k"))


def _deep_bytes(serializer: str, depth: int, container: str) -> bytes:
    """A value nested ``depth`` levels, without recursion."""
    if serializer == "json":
        if container == "list":
            return b"[" * depth + b"]" * depth
        return b'{"k":' * (depth - 1) + b"{}" + b"}" * (depth - 1)
    if serializer == "msgpack":
        if container == "list":
            return b"\x91" * (depth - 1) + b"\x90"
        return (b"\x81" + _MSGPACK_K) * (depth - 1) + b"\x80"
    if container == "list":
        return b"\x81" * (depth - 1) + b"\x80"
    return (b"\xa1" + cbor2.dumps("k")) * (depth - 1) + b"\xa0"


def _deep_call(serializer: str, deep: Deep) -> bytes:
    value = _deep_bytes(serializer, deep.depth, deep.container)
    head: list[Any]
    tail: list[Any]
    if deep.where == "options":
        head, tail = [CODES["CALL"], 1], ["sys.info"]
    elif deep.where == "args":
        head, tail = [CODES["CALL"], 1, {}, "sys.info"], []
    else:
        head, tail = [CODES["CALL"], 1, {}, "sys.info", []], []
    if deep.where == "kwargs":
        # kwargs must be a map: wrap a deep list in one
        value = value if deep.container == "dict" else _wrap_in_map(serializer, value)
    count = len(head) + 1 + len(tail)
    if serializer == "json":
        parts = [json.dumps(x).encode() for x in head] + [value] + [json.dumps(x).encode() for x in tail]
        return b"[" + b",".join(parts) + b"]"
    if serializer == "msgpack":
        return (
            bytes([0x90 + count])
            + b"".join(msgpack.packb(x) for x in head)
            + value
            + b"".join(msgpack.packb(x) for x in tail)
        )
    return (
        bytes([0x80 + count]) + b"".join(cbor2.dumps(x) for x in head) + value + b"".join(cbor2.dumps(x) for x in tail)
    )


def _wrap_in_map(serializer: str, value: bytes) -> bytes:
    if serializer == "json":
        return b'{"k":' + value + b"}"
    if serializer == "msgpack":
        return b"\x81" + _MSGPACK_K + value
    return b"\xa1" + cbor2.dumps("k") + value


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    claimed_length: int | None = None,
    mask_key: bytes = b"\x37\xfa\x21\x3d",
) -> bytes:
    """A client WebSocket frame (RFC 6455 §5.2), honest unless told otherwise."""
    length = len(payload) if claimed_length is None else claimed_length
    head = bytes([(0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)])
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 2**16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not masked:
        return head + payload
    body = bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload)) if len(payload) < 256 else _mask(payload, mask_key)
    return head + mask_key + body


def _mask(payload: bytes, key: bytes) -> bytes:
    # int XOR over the whole payload: linear and fast for the large frames
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def render(serializer: str, item: Message | Deep | Raw) -> tuple[bytes, bool]:
    """The bytes ``item`` puts on the wire, and whether the connection is abandoned after them."""
    if isinstance(item, Raw):
        data = frame(
            item.opcode,
            item.payload,
            fin=item.fin,
            rsv=item.rsv,
            masked=item.masked,
            claimed_length=item.claimed_length,
        )
        if item.truncate is not None:
            return data[: min(len(data) - 1, 2 + item.truncate)], True
        return data, False
    opcode = TEXT if serializer == "json" else BINARY
    payload = encode(serializer, item.value) if isinstance(item, Message) else _deep_call(serializer, item)
    return frame(opcode, payload), False
