"""
Soak: what each attack class costs the router worker (RSS, open file descriptors), on loopback. Not in CI.

    .venv/bin/python bench/soak.py                          # every attack, default sizes (about 2 minutes)
    .venv/bin/python bench/soak.py --only silent,slow --scale 0.25
    .venv/bin/python bench/soak.py --router-from /tmp/before   # a modified copy of router/ (see --help)

Starts ``switchboard run --port 0`` on the demo config plus a RawSocket listener and a ``bench`` URI prefix
for anonymous sessions (``bench/targets.py``), with the default ``limits``, and runs the attacks one after
the other against that one node, from 127.0.0.1 (the silent connections from 127.0.0.2). For each it prints
the router worker's RSS (from ``/proc``; the worker is the child of Crossbar's controller titled
``switchboard router``) and open file descriptors before, at the peak and after, and whether a fresh client
(from 127.0.0.1) could still join and call.

Attacks (sizes at ``--scale 1``):

- ``silent``: 20,000 TCP connections to the WebSocket port that never send a byte, held for 13 s
  (``http_timeout`` is 10 s by default);
- ``slow``: 20 WebSocket subscribers that stop reading (4 KiB receive buffer) while 600 events of 32 KiB
  are published to their topic (19 MiB per subscriber);
- ``denied``: 50,000 calls to distinct URIs the role may not call (the authorization cache);
- ``longuri``: 200 calls to distinct denied URIs of 900 kB each;
- ``pending``: 5,000 calls (1 KiB argument each) to a callee that never answers, not awaited;
- ``login``: 200 ticket logins with 1 MB authids (the login throttle);
- ``rooms``: 20,000 ``chat.send`` calls to distinct rooms (64-character names, the longest allowed) from
  one anonymous session, then ``chat.rooms()`` with no argument (its answer's size in JSON bytes, and
  whether it answers at all);
- ``refusals``: the timing of a refused ticket login (AUTHENTICATE to ABORT), median of 20 each: a real
  user's wrong password, an unknown user, and a real user's wrong password once the client address is over
  the throttle (after 60 more failures); from 127.0.0.3 so no other attack shares its throttle state;
- ``restart``: ``kill -9`` of the router worker, then the seconds until a fresh session calls ``sys.info``
  again on the same URL (``switchboard run`` restarts the node); always run last.

``--node-path DIR`` runs the whole node (``switchboard`` CLI, Crossbar controller and workers, the hosted
components) from another checkout, e.g. ``git worktree add /tmp/sb-before <commit>``, to measure the code
before a change; the attacking clients stay this checkout's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rawws
import targets
from targets import Target, start_switchboard
from twisted.internet import defer, task

#: Source address of the silent connections (a loopback address of its own, so the per-address cap applies to
#: it and not to the canary client on 127.0.0.1).
ATTACKER = "127.0.0.2"

#: Source address of the refusal-timing logins (a throttle state of its own).
PROBER = "127.0.0.3"

ATTACKS = ("silent", "slow", "denied", "longuri", "pending", "login", "rooms", "refusals", "restart")


def worker_pid(target: Target) -> int:
    pids = target.router_pids()
    if len(pids) != 1:
        raise RuntimeError(f"expected one router worker, found {pids}")
    return pids[0]


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Probe:
    """Samples the worker: RSS and fds now, and the peak seen by :meth:`sample`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss = self.peak_fds = 0.0

    def sample(self) -> tuple[float, int]:
        try:
            rss, n = rss_mb(self.pid), fds(self.pid)
        except OSError:  # the worker is gone (restart)
            return float("nan"), -1
        self.peak_rss, self.peak_fds = max(self.peak_rss, rss), max(self.peak_fds, n)
        return rss, n


def raw_subscriber(port: int, topic: str) -> socket.socket:
    """A blocking WebSocket/WAMP client subscribed to ``topic`` with a tiny receive buffer (then never read)."""
    sock = rawws.connect(port, rcvbuf=4096, timeout=10)
    sock.sendall(rawws.frame(json.dumps([1, "demo", {"roles": {"subscriber": {}}}]).encode()))
    if (_ws_message(sock) or [None])[0] != 2:
        raise RuntimeError("not welcomed")
    sock.sendall(rawws.frame(json.dumps([32, 1, {}, topic]).encode()))
    if (_ws_message(sock) or [None])[0] != 33:
        raise RuntimeError("not subscribed")
    return sock


async def settle(reactor: Any, seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


async def still_serves(reactor: Any, url: str) -> str:
    """Whether a fresh client can join and call sys.info (within 10 s)."""
    from router.testkit import session

    try:
        async with session(reactor, url) as s:
            await s.call("sys.info")
        return "yes"
    except Exception as e:  # reported, not raised
        return f"NO ({type(e).__name__})"


async def silent(reactor: Any, target: Target, probe: Probe, scale: float) -> str:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    count = min(int(20_000 * scale), hard - 200)
    socks, failed = [], 0
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind((ATTACKER, 0))  # the canary (sys.info from 127.0.0.1) is another client
            s.connect_ex(("127.0.0.1", target.websocket))
            socks.append(s)
        except OSError:
            failed += 1
            s.close()
    await settle(reactor, 2)
    probe.sample()
    mid = await still_serves(reactor, target.url)
    await settle(reactor, 11)
    probe.sample()
    for s in socks:
        s.close()
    return f"{count} opened; fresh client during attack: {mid}"


async def slow(reactor: Any, target: Target, probe: Probe, scale: float) -> str:
    from autobahn.wamp.types import PublishOptions

    from router.testkit import session

    topic = "bench.soak.slow"
    subscribers = [raw_subscriber(target.websocket, topic) for _ in range(max(1, int(20 * scale)))]
    events, blob = int(600 * scale) or 1, "x" * 32 * 1024
    async with session(reactor, target.url) as pub:
        for i in range(events):
            await pub.publish(topic, blob, options=PublishOptions(acknowledge=True))
            if i % 50 == 0:
                probe.sample()
    await settle(reactor, 1)
    probe.sample()
    dropped = 0
    for s in subscribers:
        s.setblocking(False)
        try:
            while s.recv(1 << 20):
                pass
        except BlockingIOError:
            pass  # still open: data pending or nothing more
        except OSError:
            dropped += 1
        s.close()
    return f"{len(subscribers)} slow subscribers ({dropped} dropped by the router), {events} x 32 KiB events"


async def _calls(reactor: Any, target: Target, probe: Probe, uris: Callable[[int], str], n: int, window: int) -> str:
    from router.testkit import session

    refused = 0
    async with session(reactor, target.url) as s:
        for start in range(0, n, window):
            batch = [s.call(uris(i)) for i in range(start, min(n, start + window))]
            results = await defer.DeferredList(batch, consumeErrors=True)
            refused += sum(1 for ok, _ in results if not ok)
            probe.sample()
    return f"{n} calls, {refused} refused"


async def denied(reactor: Any, target: Target, probe: Probe, scale: float) -> str:
    return await _calls(reactor, target, probe, lambda i: f"denied.soak.u{i}", int(50_000 * scale) or 1, 500)


async def longuri(reactor: Any, target: Target, probe: Probe, scale: float) -> str:
    body = "a" * 900_000
    return await _calls(reactor, target, probe, lambda i: f"denied.{body}{i}", int(200 * scale) or 1, 1)


async def pending(reactor: Any, target: Target, probe: Probe, scale: float) -> str:
    from router.testkit import session

    n, arg = int(5000 * scale) or 1, "p" * 1024
    async with session(reactor, target.url) as callee, session(reactor, target.url) as caller:
        await callee.register(lambda *a: defer.Deferred(), "bench.soak.never")
        calls = [caller.call("bench.soak.never", arg) for _ in range(n)]
        answered: list[bool] = []
        for d in calls:
            d.addBoth(lambda r: answered.append(True))
            d.addErrback(lambda f: None)
        await settle(reactor, 3)
        probe.sample()
        quick = len(answered)
        return f"{n} calls, {quick} answered (refused) within 3 s, {n - quick} pending"


async def login(reactor: Any, target: Target, probe: Probe, scale: float) -> str:
    from router.testkit import JoinRefused, session

    n, refused = int(200 * scale) or 1, 0
    for i in range(n):
        try:
            async with session(reactor, target.url, authmethod="ticket", authid=f"{'u' * 1_000_000}{i}", ticket="x"):
                pass
        except (JoinRefused, RuntimeError):
            refused += 1
        if i % 20 == 0:
            probe.sample()
    return f"{n} logins, {refused} refused"


async def rooms(reactor: Any, target: Target, probe: Probe, scale: float) -> str:
    from router.testkit import session

    n, refused = int(20_000 * scale) or 1, 0
    async with session(reactor, target.url) as s:
        for start in range(0, n, 500):
            batch = [s.call("chat.send", f"soak{i:060d}", "hi") for i in range(start, min(n, start + 500))]
            results = await defer.DeferredList(batch, consumeErrors=True)
            refused += sum(1 for ok, _ in results if not ok)
            probe.sample()
    async with session(reactor, target.url) as s:
        try:
            listed = await s.call("chat.rooms")
        except Exception as e:  # reported, not raised
            answer = f"chat.rooms() FAILED ({type(e).__name__}: {str(getattr(e, 'error', e))[:80]})"
        else:
            answer = f"chat.rooms() answered {len(listed)} rooms, {len(json.dumps(listed).encode())} bytes (JSON)"
    return f"{n} sends, {refused} refused; {answer}"


def _ws_message(sock: socket.socket) -> Any:
    """The next WAMP message from the router, or None on a close frame."""
    opcode, payload = rawws.read_frame(sock)
    return None if opcode == 8 else json.loads(payload)


def ticket_login(port: int, authid: str, ticket: str) -> tuple[str, float]:
    """One ticket login from :data:`PROBER`: its outcome (``welcome``/``abort``) and the seconds from the
    client's last message (AUTHENTICATE, or HELLO if no challenge came) to the router's answer."""
    sock = rawws.connect(port, source=PROBER)
    try:
        hello = [1, "demo", {"roles": {"caller": {}}, "authmethods": ["ticket"], "authid": authid}]
        started = time.perf_counter()
        sock.sendall(rawws.frame(json.dumps(hello).encode()))
        message = _ws_message(sock)
        if message is not None and message[0] == 4:
            started = time.perf_counter()
            sock.sendall(rawws.frame(json.dumps([5, ticket, {}]).encode()))
            message = _ws_message(sock)
        elapsed = time.perf_counter() - started
        return ("welcome" if message is not None and message[0] == 2 else "abort"), elapsed
    finally:
        sock.close()


#: Adds users (argv: store path, authid prefix, count, password) with the node's own ``router``.
ADD_USERS = """
import sys
from pathlib import Path
from router.credentials import password_credentials
from router.store import UserStore
store = UserStore(Path(sys.argv[1]))
for i in range(int(sys.argv[3])):
    store.add_user("demo", f"{sys.argv[2]}{i}", "user", password_credentials(sys.argv[4]))
store.close()
"""


def add_users(store: Path, prefix: str, n: int, password: str) -> None:
    """``n`` users ``<prefix>0``... in the store, by the node's own code (PYTHONPATH is the node's)."""
    subprocess.run([sys.executable, "-c", ADD_USERS, str(store), prefix, str(n), password], check=True)


async def refusals(reactor: Any, target: Target, probe: Probe, scale: float) -> str:
    assert target.workdir is not None
    n = max(3, int(20 * scale))
    # Users the node already knows, written to its store by its own code (the store's schema is its own).
    store = target.workdir / "data" / "users.sqlite3"
    add_users(store, "soakuser", n, "right-password-1")
    port = target.websocket

    def median_ms(authids: list[str], ticket: str) -> tuple[float, set[str]]:
        results = [ticket_login(port, a, ticket) for a in authids]
        return statistics.median(t for _, t in results) * 1000, {outcome for outcome, _ in results}

    # One attempt per user and per case: under every per-authid limit (old and new), 2 n failures in all
    # from PROBER, under the per-address limit (50).
    real, real_outcomes = median_ms([f"soakuser{i}" for i in range(n)], "wrong-password")
    unknown, unknown_outcomes = median_ms([f"soaknobody{i}" for i in range(n)], "wrong-password")
    for i in range(60):  # over the per-address limit (50 a minute by default) from PROBER
        ticket_login(port, f"soakfill{i}", "wrong-password")
    state, _ = ticket_login(port, "soakuser0", "right-password-1")
    throttled, throttled_outcomes = median_ms([f"soakuser{i}" for i in range(n)], "wrong-password")
    probe.sample()
    outcomes = real_outcomes | unknown_outcomes | throttled_outcomes
    return (
        f"median ms to the ABORT over {n}: real user wrong password {real:.1f}, unknown user {unknown:.1f}, "
        f"throttled {throttled:.1f} (right password once throttled: {state}); "
        f"throttled/real {throttled / real:.2f}; outcomes {sorted(outcomes)}"
    )


def sys_info_once(port: int) -> bool:
    """Whether a fresh anonymous session (blocking socket, 2 s per step) joins and calls ``sys.info``."""
    try:
        sock = rawws.connect(port)
    except OSError:
        return False
    try:
        sock.settimeout(2)
        sock.sendall(rawws.frame(json.dumps([1, "demo", {"roles": {"caller": {}}}]).encode()))
        if (_ws_message(sock) or [None])[0] != 2:
            return False
        sock.sendall(rawws.frame(json.dumps([48, 1, {}, "sys.info"]).encode()))
        return (_ws_message(sock) or [None])[0] == 50
    except (OSError, ValueError):
        return False
    finally:
        sock.close()


async def restart(reactor: Any, target: Target, probe: Probe, scale: float) -> str:
    old = worker_pid(target)
    os.kill(old, signal.SIGKILL)
    started = time.monotonic()
    while time.monotonic() < started + 60:
        if sys_info_once(target.websocket):
            back = time.monotonic() - started
            probe.pid = worker_pid(target)
            return (
                f"worker {old} killed (SIGKILL); a fresh session called sys.info again after {back:.1f} s "
                f"(first start took {target.startup_s:.1f} s)"
            )
        await settle(reactor, 0.1)
    code = target.process.poll()
    return f"worker {old} killed (SIGKILL); NOT back within 60 s (switchboard run exit code {code})"


RUNNERS: dict[str, Callable[[Any, Target, Probe, float], Awaitable[str]]] = {
    "silent": silent,
    "slow": slow,
    "denied": denied,
    "longuri": longuri,
    "pending": pending,
    "login": login,
    "rooms": rooms,
    "refusals": refusals,
    "restart": restart,
}


async def run(reactor: Any, only: list[str], scale: float, extra: str = "") -> None:
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-soak-"))
    # Crossbar starts its workers with `python -m`, which puts the current directory first on their path:
    # outside the repository, so that --router-from (the worker's pythonpath) decides which router loads.
    os.chdir(workdir)
    target = start_switchboard(workdir)
    rows = []
    try:
        for name in only:
            probe = Probe(worker_pid(target))
            before_rss, before_fds = probe.sample()
            started = time.monotonic()
            note = await RUNNERS[name](reactor, target, probe, scale)
            await settle(reactor, 1)
            after_rss, after_fds = probe.sample()
            serves = await still_serves(reactor, target.url)
            rows.append(
                (
                    name,
                    before_rss,
                    probe.peak_rss,
                    after_rss,
                    before_fds,
                    probe.peak_fds,
                    after_fds,
                    time.monotonic() - started,
                    serves,
                    note,
                )
            )
            print(f"  {name}: done ({note})", flush=True)
    finally:
        target.stop()
    header = "| attack | RSS before MB | peak MB | after MB | fds before | peak | after | s | serves after | notes |"
    print("\n" + header + "\n" + "|---" * 10 + "|")
    for name, b, p, a, fb, fp, fa, secs, serves, note in rows:
        print(f"| {name} | {b:.0f} | {p:.0f} | {a:.0f} | {fb} | {fp:.0f} | {fa} | {secs:.0f} | {serves} | {note} |")
    print(f"\nreproduce: .venv/bin/python bench/soak.py --only {','.join(only)} --scale {scale:g}{extra}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(ATTACKS), help="comma-separated attacks (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every attack's size (default 1)")
    parser.add_argument(
        "--router-from",
        metavar="DIR",
        help="a directory holding another copy of the `router` package, put first on the router worker's "
        "pythonpath (to measure a modified router, e.g. with some of router.seam not installed)",
    )
    parser.add_argument(
        "--node-path",
        metavar="DIR",
        help="run the node (CLI, controller, workers, components) from another checkout's `router` and "
        "`components` (put first on PYTHONPATH), e.g. a `git worktree` of the commit before a change",
    )
    args = parser.parse_args()
    if args.node_path:
        os.environ["PYTHONPATH"] = str(Path(args.node_path).resolve())
    if args.router_from:
        base = targets.bench_config
        targets.bench_config = lambda overrides=None: {
            **base(overrides),
            "pythonpath": [str(Path(args.router_from).resolve())],
        }
    only = [a for a in args.only.split(",") if a]
    only = [a for a in only if a != "restart"] + [a for a in only if a == "restart"]  # the node must survive
    unknown = set(only) - set(ATTACKS)
    if unknown or not 0 < args.scale <= 1:
        parser.error(f"unknown attacks {sorted(unknown)} or scale not in (0, 1]")
    extra = f" --router-from {args.router_from}" if args.router_from else ""
    extra += f" --node-path {args.node_path}" if args.node_path else ""
    task.react(lambda reactor: defer.ensureDeferred(run(reactor, only, args.scale, extra)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
