"""
How long one deeply nested message freezes a node (issue 9, finding 1). Not part of CI.

    .venv/bin/python bench/attack_nesting.py [--depth 60000] [--serializer json|msgpack|cbor]
                                             [--transport websocket|rawsocket]
    .venv/bin/python bench/attack_nesting.py --parse-cost
    .venv/bin/python bench/attack_nesting.py --bad-messages 200 [--loglevel warn|info]

Starts a node on the demo config (plus a RawSocket listener), joins a canary session that calls
``sys.info`` in a loop, then sends one message nested ``--depth`` deep before HELLO and waits (at most
``--wait`` seconds) until the router drops that connection. Prints one JSON line: the canary's worst
call latency while the attack ran (the freeze), how the attacker's connection ended, how long that took,
and how many bytes of traceback the node log gained. Clients are blocking sockets in threads, so the
measurement does not depend on the reactor it measures.

``--bad-messages N`` sends N invalid WAMP messages instead, each on its own connection (the router
closes it on the first), and prints the node-log bytes they cost at ``--loglevel`` (``switchboard run``'s
default is ``warn``).

``--parse-cost`` starts no node: it prints the µs autobahn's serializer takes to read one typical CALL,
per serializer, without and with :mod:`router.seam.parsing` installed (speed-ups on, as in the worker).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, task, threads

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import rawws  # noqa: E402

from router.config import load_config  # noqa: E402
from router.launch import launch  # noqa: E402

DEEP = {
    "json": lambda n: b"[" * n + b"]" * n,
    "msgpack": lambda n: b"\x91" * n + b"\xc0",
    "cbor": lambda n: b"\x81" * n + b"\xf6",
}
RAWSOCKET_ID = {"json": 1, "msgpack": 2, "cbor": 3}


def wait_closed(sock: socket.socket, transport: str) -> str:
    """How the router ended the connection: ``close <code>`` (WebSocket) or ``dropped``."""
    try:
        if transport == "websocket":
            while True:
                opcode, payload = rawws.read_frame(sock)
                if opcode == 8:
                    return f"close {struct.unpack('!H', payload[:2])[0] if len(payload) >= 2 else None}"
        while sock.recv(65536):
            pass
    except (ConnectionError, OSError):
        pass
    return "dropped"


class Canary(threading.Thread):
    """A WAMP-JSON session over a blocking WebSocket calling ``sys.info`` back to back."""

    def __init__(self, port: int, path: str) -> None:
        super().__init__(daemon=True)
        self.sock = rawws.connect(port, path, "wamp.2.json", timeout=120)
        self.sock.sendall(rawws.frame(json.dumps([1, "demo", {"roles": {"caller": {}}}]).encode(), 1))
        assert json.loads(rawws.read_frame(self.sock)[1])[0] == 2, "canary not welcomed"
        self.worst = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        request = 0
        while not self.stop.is_set():
            request += 1
            started = time.monotonic()
            self.sock.sendall(rawws.frame(json.dumps([48, request, {}, "sys.info"]).encode(), 1))
            reply = json.loads(rawws.read_frame(self.sock)[1])
            assert reply[0] == 50, reply
            self.worst = max(self.worst, time.monotonic() - started)


def attack(port: int, rs_port: int, path: str, serializer: str, transport: str, depth: int, wait: float) -> Any:
    canary = Canary(port, path)
    canary.start()
    payload = DEEP[serializer](depth)
    started = time.monotonic()
    if transport == "websocket":
        sock = rawws.connect(port, path, f"wamp.2.{serializer}", timeout=wait)
        sock.sendall(rawws.frame(payload, 1 if serializer == "json" else 2))
    else:
        sock = socket.create_connection(("127.0.0.1", rs_port), timeout=wait)
        sock.sendall(bytes([0x7F, 0xF0 | RAWSOCKET_ID[serializer], 0, 0]))
        rawws.recv_exact(sock, 4)
        sock.sendall(len(payload).to_bytes(4, "big") + payload)
    ended = wait_closed(sock, transport)
    closed_after = time.monotonic() - started
    canary.stop.set()
    canary.join(timeout=wait)
    return {"closed_after_s": round(closed_after, 3), "ended": ended, "freeze_s": round(canary.worst, 3)}


def bad_messages(port: int, path: str, count: int, wait: float) -> Any:
    started = time.monotonic()
    for _ in range(count):
        sock = rawws.connect(port, path, "wamp.2.json", timeout=wait)
        # A HELLO for a realm that is not a URI: autobahn's error text quotes it.
        sock.sendall(rawws.frame(b'[1, "SECRET realm!", {"roles": {"caller": {}}}]', 1))
        wait_closed(sock, "websocket")
        sock.close()
    return {"bad_messages": count, "seconds": round(time.monotonic() - started, 3)}


async def settled(reactor: Any, log: Path, quiet: float = 1.0, limit: float = 30.0) -> None:
    """Wait until the node log has not grown for ``quiet`` seconds (at most ``limit``): workers log via the
    controller, so lines about the attack arrive after the connection is gone."""
    size, deadline = -1, reactor.seconds() + limit
    while reactor.seconds() < deadline and log.stat().st_size != size:
        size = log.stat().st_size
        await task.deferLater(reactor, quiet, lambda: None)


async def main(reactor: Any, args: argparse.Namespace) -> None:
    config = load_config(ROOT / "config" / "switchboard.json")
    raw = dataclasses.replace(config.main_transport, name="raw", type="rawsocket", port=0)
    config = dataclasses.replace(config, transports=(*config.transports, raw))
    with tempfile.TemporaryDirectory() as tmp:
        config = dataclasses.replace(
            config, transports=tuple(dataclasses.replace(t, port=0) for t in config.transports)
        )
        node = await launch(reactor, config, Path(tmp) / "data", loglevel=args.loglevel)
        try:
            log = node.process.log_path
            before = log.read_text(errors="replace")
            main_port = node.config.main_transport.port
            rs_port = next(t.port for t in node.config.transports if t.type == "rawsocket")
            path = node.config.main_transport.path
            if args.bad_messages:
                result = await threads.deferToThread(bad_messages, main_port, path, args.bad_messages, args.wait)
            else:
                result = await threads.deferToThread(
                    attack, main_port, rs_port, path, args.serializer, args.transport, args.depth, args.wait
                )
            await settled(reactor, log)
            added = log.read_text(errors="replace")[len(before) :]
            result["traceback_bytes_logged"] = sum(
                len(line) + 1 for line in added.splitlines() if "Traceback" in line or line.startswith("  File ")
            )
            result["log_bytes"] = len(added)
            if args.bad_messages:
                result["log_bytes_per_bad_message"] = round(len(added) / args.bad_messages, 1)
                result["payload_echoed"] = "SECRET" in added
        finally:
            await node.stop()
    if not args.bad_messages:
        result.update(depth=args.depth, serializer=args.serializer, transport=args.transport)
    result["loglevel"] = args.loglevel
    result["command"] = " ".join(["bench/attack_nesting.py", *sys.argv[1:]])
    print(json.dumps(result))


def parse_cost(rounds: int = 50_000, alternations: int = 10) -> None:
    """Print the µs per read of one typical CALL, per serializer, without and with the nesting check."""
    import timeit

    import cbor2
    import msgpack
    from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer

    from router.seam import parsing, speedups

    speedups.install()
    call = [48, 7, {"timeout": 1000}, "com.example.add", [1, 2, "three"], {"details": {"a": [1, 2], "b": "x"}}]
    cases = {
        "json": (JsonSerializer(), json.dumps(call).encode(), False),
        "msgpack": (MsgPackSerializer(), msgpack.packb(call), True),
        "cbor": (CBORSerializer(), cbor2.dumps(call), True),
    }
    limits = load_config(ROOT / "config" / "switchboard.json").limits
    best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    # Alternate without/with, keep each one's best: the machine is shared, the minimum is the cost.
    for _ in range(alternations):
        for phase in ("before", "after"):
            if phase == "after":
                parsing.install(limits)
            for name, (ser, data, binary) in cases.items():
                seconds = timeit.timeit(lambda s=ser, d=data, b=binary: s.unserialize(d, b), number=rounds)
                best[phase][name] = min(best[phase].get(name, 1e9), seconds / rounds * 1e6)
            parsing.uninstall()
    rounded = {phase: {k: round(v, 2) for k, v in costs.items()} for phase, costs in best.items()}
    print(json.dumps({"us_per_call": rounded, "command": "bench/attack_nesting.py --parse-cost"}))


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=60000)
    parser.add_argument("--serializer", choices=sorted(DEEP), default="json")
    parser.add_argument("--transport", choices=["websocket", "rawsocket"], default="websocket")
    parser.add_argument("--wait", type=float, default=180.0, help="seconds to wait for the router to drop the attacker")
    parser.add_argument("--bad-messages", type=int, default=0, help="send this many unparseable messages instead")
    parser.add_argument("--loglevel", choices=["warn", "info", "debug"], default="warn", help="the node's log level")
    parser.add_argument("--parse-cost", action="store_true", help="measure the per-message cost of the check instead")
    args = parser.parse_args()
    if args.parse_cost:
        parse_cost()
        return
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, args)))


if __name__ == "__main__":
    run()
