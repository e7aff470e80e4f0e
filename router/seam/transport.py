"""
Connections: a deadline for the HTTP stage, caps on open connections, a bound on unsent bytes.

Crossbar 26.10.1 leaves three doors open at the transport level (issue 9, findings 6 and 7):

1. **No deadline before the WebSocket handshake.** A ``web`` transport is a Twisted ``Site`` created
   without a timeout, and autobahn's ``open_handshake_timeout`` starts only once the HTTP request is
   complete: a connection that sends nothing (or a byte now and then) lives forever. 20,000 of them
   exhausted the worker's file descriptors. A RawSocket connection that never sends its 4-byte handshake
   is the same.
2. **No cap per client address**, and the per-listener ``max_connections`` (50,000 by default) is above
   the worker's file-descriptor limit.
3. **No bound on unsent bytes.** Events for a subscriber that does not read pile up in the Twisted
   transport's buffer until auto-ping drops it (30 such subscribers took a router from 0.3 to 1.55 GB).

What this module overrides, and why there:

- ``crossbar.worker.transport.create_listening_port_from_config`` (the name ``RouterTransport.start`` calls
  to open every listener) is wrapped: the factory of every TCP listener (WebSocket and RawSocket; unix
  sockets, i.e. the private control transport, are exempt) is wrapped in a :class:`GuardFactory`. It is
  the one place that sees every public connection first, before any TLS, HTTP or WAMP code, so a refused
  connection costs one ``accept`` and one ``close``. Its :class:`Guard` is the transport of the wrapped
  protocol (a plain :class:`~twisted.protocols.policies.ProtocolWrapper`; autobahn's ``WebSocketResource``
  already hands a ProtocolWrapper transport over to the WebSocket protocol at the upgrade) and:

  - for a TLS listener, wraps the TLS layer itself (made with Crossbar's own TLS context,
    ``_create_tls_server_context``: TLS 1.3 only, given every certificate of the files, which Crossbar
    reads one of), rather than being wrapped by it: a refused connection costs no TLS handshake, and
    autobahn finds the TLS transport it reads the channel id from;

  - counts the connection in a :class:`ConnectionTable` shared by all listeners: in total (at most
    ``limits.max_connections``, and at most the worker's ``RLIMIT_NOFILE`` minus :data:`FD_MARGIN`) and
    per peer address (``limits.max_connections_per_peer``; a trusted proxy is not counted as a client);
  - closes the connection ``limits.http_timeout`` seconds after it was accepted unless by then it is a
    WebSocket or RawSocket connection past its opening handshake (silent, trickling and plain-HTTP
    keep-alive connections alike: a page load must be done by then), and ``limits.join_timeout`` seconds
    after it was accepted unless it carries a joined WAMP session by then (one that never sends HELLO, or
    never answers its challenge, would otherwise stay open for ever);
  - after each write, compares the bytes the Twisted transport holds but the kernel has not taken
    (``FileDescriptor.dataBuffer`` minus ``offset``, plus ``_tempDataLen``) with ``limits.max_send_buffer``;
    beyond it, it first hands the kernel what it takes now (``doWrite``, what the reactor would do at the
    next write event) and, if still beyond, aborts the connection (reason :data:`SLOW_CONSUMER`). Its
    buffered bytes are freed at once; a WebSocket close frame or a WAMP ABORT would only queue behind the
    bytes the client does not read, so the reason goes to the router log; other sessions are not touched.

- ``crossbar.router.protocol.WampWebSocketServerProtocol.onConnect`` is wrapped when ``trusted_proxies``
  is set: once the upgrade request's headers are known, a connection from a trusted proxy is counted
  against the address the proxy names (:func:`router.peers.client_address`); over the cap the upgrade is
  refused (HTTP 503). RawSocket has no headers: behind a proxy, only the total cap applies to it.

Refusals and closes are logged at info, at most one line per :attr:`RefusalLog.INTERVAL` with counts.
"""

from __future__ import annotations

import ipaddress
import resource
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from autobahn.twisted.rawsocket import WampRawSocketServerProtocol
from autobahn.websocket.protocol import WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from crossbar.common.twisted.endpoint import _create_tls_server_context
from twisted.internet import abstract
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol

from router.config import Limits
from router.metrics import note_connection_refused
from router.peers import MAX_ADDRESS_LENGTH, Networks, client_address, networks
from router.uris import SLOW_CONSUMER

__all__ = [
    "FD_MARGIN",
    "RELIED_ON",
    "SIGNATURES",
    "ConnectionTable",
    "Guard",
    "GuardFactory",
    "GuardPolicy",
    "RefusalLog",
    "install",
    "unsent_bytes",
]


#: File descriptors kept free below ``RLIMIT_NOFILE`` for everything but client connections.
FD_MARGIN = 64

#: Crossbar/autobahn/Twisted names this module relies on (``tests/unit/test_seam_transport.py`` checks them).
#: A name on a class that is not a class attribute must be assigned as ``self.<name>`` in that class.
RELIED_ON = [
    "autobahn.wamp.websocket.WampWebSocketProtocol._session",
    "autobahn.twisted.rawsocket.WampRawSocketProtocol._session",
    "crossbar.router.session.RouterSession._session_id",
    "twisted.internet._sslverify.OpenSSLCertificateOptions.extraCertChain",
    "twisted.internet._sslverify.OpenSSLCertificateOptions.trustRoot",
    "twisted.internet._sslverify.OpenSSLCertificateAuthorities",
    "crossbar.worker.transport.create_listening_port_from_config",
    "crossbar.common.twisted.endpoint._create_tls_server_context",
    "crossbar.router.protocol.WampWebSocketServerProtocol.onConnect",
    "autobahn.twisted.rawsocket.WampRawSocketServerProtocol",
    "autobahn.twisted.rawsocket.WampRawSocketProtocol._handshake_complete",
    "autobahn.twisted.resource.WebSocketResource.render",
    "autobahn.websocket.protocol.WebSocketProtocol.state",
    "autobahn.websocket.protocol.WebSocketProtocol.STATE_CONNECTING",
    "twisted.internet.abstract.FileDescriptor.dataBuffer",
    "twisted.internet.abstract.FileDescriptor.offset",
    "twisted.internet.abstract.FileDescriptor._tempDataLen",
    "twisted.internet.abstract.FileDescriptor.doWrite",
    "twisted.internet.abstract.FileDescriptor.connected",
    "twisted.internet.abstract.FileDescriptor.disconnecting",
    "twisted.protocols.policies.ProtocolWrapper.wrappedProtocol",
]

#: Functions wrapped here and called with positional arguments: the parameters they are expected to take.
SIGNATURES = {
    "crossbar.common.twisted.endpoint._create_tls_server_context": ("config", "cbdir", "log"),
    "crossbar.worker.transport.create_listening_port_from_config": (
        "config",
        "cbdir",
        "factory",
        "reactor",
        "log",
        "max_connections",
        "name",
    ),
    "crossbar.router.protocol.WampWebSocketServerProtocol.onConnect": ("self", "request"),
}

_log = Logger(namespace="switchboard.transport")


def unsent_bytes(descriptor: Any) -> int:
    """Bytes a Twisted ``FileDescriptor`` holds that the kernel has not taken yet."""
    return len(descriptor.dataBuffer) - descriptor.offset + descriptor._tempDataLen  # type: ignore[no-any-return]


class ConnectionTable:
    """Open client connections, in total and per address, across every public listener (bookkeeping only)."""

    def __init__(self, max_total: int, max_per_address: int) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.total = 0
        self._by_address: dict[str, int] = {}

    def count(self, address: str) -> int:
        """Open connections counted for ``address``."""
        return self._by_address.get(address, 0)

    def admit(self, address: str | None) -> str | None:
        """Count a new connection (``address`` None: not counted per address); the refusal reason if not."""
        if self.total >= self.max_total:
            return "max_connections"
        if address is not None and not self._add(address):
            return "max_connections_per_peer"
        self.total += 1
        return None

    def claim(self, address: str) -> bool:
        """Count an admitted, not yet addressed connection for ``address``; False (nothing counted) if full."""
        return self._add(address)

    def release(self, address: str | None) -> None:
        """Forget a connection admitted (and, if ``address``, claimed) before."""
        self.total -= 1
        if address is not None:
            left = self._by_address[address] - 1
            if left:
                self._by_address[address] = left
            else:
                del self._by_address[address]

    def _add(self, address: str) -> bool:
        n = self._by_address.get(address, 0)
        if n >= self.max_per_address:
            return False
        self._by_address[address] = n + 1
        return True


class RefusalLog:
    """Counts refused and closed connections by reason; logs at info, at most one line per interval."""

    INTERVAL = 10.0

    def __init__(self, clock: Any, emit: Callable[..., None] | None = None) -> None:
        self._clock = clock
        self._emit = emit if emit is not None else _log.info
        self._counts: Counter[str] = Counter()
        self._last: str | None = None
        self._next: Any = None

    def count(self, reason: str, address: str | None) -> None:
        """Note one refusal (the first after a quiet interval is logged at once, the rest with counts later)."""
        note_connection_refused(reason.rpartition(".")[2])  # switchboard.close.slow_consumer -> slow_consumer
        self._counts[reason] += 1
        self._last = address
        if self._next is None:
            self._flush()

    def _flush(self) -> None:
        self._next = None
        if not self._counts:
            return
        self._emit(
            "Refused or closed {total} client connection(s) within {interval:g} s: {reasons} (last from {address})",
            total=sum(self._counts.values()),
            interval=self.INTERVAL,
            reasons=", ".join(f"{reason} x{n}" for reason, n in sorted(self._counts.items())),
            address=self._last,
        )
        self._counts.clear()
        self._next = self._clock.callLater(self.INTERVAL, self._flush)


class GuardPolicy:
    """What every :class:`Guard` shares: the limits, the connection table, trusted proxies, the refusal log."""

    def __init__(self, limits: Limits, trusted: Networks, clock: Any, max_total: int | None = None) -> None:
        self.limits = limits
        self.trusted = trusted
        self.clock = clock
        self.table = ConnectionTable(max_total or limits.max_connections, limits.max_connections_per_peer)
        self.refusals = RefusalLog(clock)

    def counted_address(self, host: str) -> str | None:
        """The address a new TCP connection is counted under: None for a trusted proxy."""
        if self.trusted:
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                return host
            if any(ip in network for network in self.trusted):
                return None
        return host


class _Refused(Protocol):
    """A connection over a cap: closed as soon as it is made."""

    def makeConnection(self, transport: Any) -> None:
        transport.abortConnection()


def _handshake_done(protocol: Any) -> bool:
    """Whether ``protocol`` is a WebSocket or RawSocket protocol past its opening handshake.

    Anything else (the HTTP channel of a ``web`` transport before the upgrade, or after a plain HTTP
    request) is not: public listeners serve WAMP only, and a connection must be one within the deadline.
    """
    if isinstance(protocol, TLSMemoryBIOProtocol):
        protocol = protocol.wrappedProtocol
    if isinstance(protocol, WebSocketServerProtocol):
        return bool(protocol.state != WebSocketServerProtocol.STATE_CONNECTING)
    if isinstance(protocol, WampRawSocketServerProtocol):
        return bool(protocol._handshake_complete)
    return False


def _joined(protocol: Any) -> bool:
    """Whether ``protocol`` (past its opening handshake) carries a joined WAMP session."""
    if isinstance(protocol, TLSMemoryBIOProtocol):
        protocol = protocol.wrappedProtocol
    session = getattr(protocol, "_session", None)
    return session is not None and getattr(session, "_session_id", None) is not None


class Guard(ProtocolWrapper):
    """One public connection: counted, closed if not open within the HTTP deadline or if it stops reading."""

    factory: GuardFactory

    def __init__(self, factory: GuardFactory, wrappedProtocol: Any, address: str | None, host: str) -> None:
        super().__init__(cast(Any, factory), wrappedProtocol)
        #: The address this connection is counted under (None: not per address, e.g. a trusted proxy).
        self.address = address
        self.host = host
        self._policy = factory.policy
        self._descriptor: Any = None
        self._deadline: Any = None
        self._closed = False

    def makeConnection(self, transport: Any) -> None:
        """Find the file descriptor under any wrappers and start the HTTP-stage deadline."""
        self._descriptor = _descriptor_of(transport)
        self._deadline = self._policy.clock.callLater(self._policy.limits.http_timeout, self._check_opened)
        super().makeConnection(transport)

    def claim(self, address: str) -> bool:
        """Count this connection (from a trusted proxy) against the client ``address`` the proxy names."""
        if self.address is not None or self._closed:
            return True
        if not self._policy.table.claim(address):
            self._policy.refusals.count("max_connections_per_peer", address)
            return False
        self.address = address
        return True

    def write(self, data: bytes) -> None:
        """Write, then close the connection if it now holds more than ``max_send_buffer`` unsent bytes."""
        if self._closed:
            return
        self._transport().write(data)
        self._check_buffer()

    def writeSequence(self, data: Any) -> None:
        """Like :meth:`write`."""
        if self._closed:
            return
        self._transport().writeSequence(data)
        self._check_buffer()

    def _check_buffer(self) -> None:
        descriptor = self._descriptor
        limit = self._policy.limits.max_send_buffer
        if descriptor is None or unsent_bytes(descriptor) <= limit:
            return
        # Twisted hands buffered bytes to the kernel only at the socket's next write event, so a burst
        # written within one reactor turn sits here even for a client that reads fast: first give the
        # kernel what it takes now, and judge what is left.
        if descriptor.connected and not descriptor.disconnecting:
            lost = descriptor.doWrite()
            if lost is None and unsent_bytes(descriptor) <= limit:
                return
        self._abort("slow_consumer")

    def _check_opened(self) -> None:
        self._deadline = None
        if self._closed:
            return
        if not _handshake_done(self.wrappedProtocol):
            self._abort("http_timeout")
        elif not _joined(self.wrappedProtocol):
            limits = self._policy.limits
            wait = max(0.0, limits.join_timeout - limits.http_timeout)
            self._deadline = self._policy.clock.callLater(wait, self._check_joined)

    def _check_joined(self) -> None:
        self._deadline = None
        if not self._closed and not _joined(self.wrappedProtocol):
            self._abort("join_timeout")

    def _abort(self, reason: str) -> None:
        self._closed = True
        self._policy.refusals.count(SLOW_CONSUMER if reason == "slow_consumer" else reason, self.address or self.host)
        self._transport().abortConnection()

    def _transport(self) -> Any:
        return self.transport

    def connectionLost(self, reason: Any = None) -> None:
        """Forget the connection and its deadline."""
        self._closed = True
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        self._policy.table.release(self.address)
        super().connectionLost(reason)


class GuardFactory(WrappingFactory):
    """Wraps a public listener's factory: refuses connections over the caps, guards the others."""

    protocol = Guard

    def __init__(self, wrappedFactory: Any, policy: GuardPolicy) -> None:
        super().__init__(wrappedFactory)
        self.policy = policy

    def buildProtocol(self, addr: IAddress | None) -> Any:
        """A :class:`Guard` around the wrapped factory's protocol, or a refused connection."""
        host = str(getattr(addr, "host", "") or "")[:MAX_ADDRESS_LENGTH]
        address = self.policy.counted_address(host)
        refused = self.policy.table.admit(address)
        if refused is not None:
            self.policy.refusals.count(refused, host)
            return _Refused()
        wrapped = self.wrappedFactory.buildProtocol(addr)
        if wrapped is None:
            self.policy.table.release(address)
            return None
        return Guard(self, wrapped, address, host)

    def registerProtocol(self, p: Any) -> None:
        """Connections are counted in the policy's table, not here."""

    def unregisterProtocol(self, p: Any) -> None:
        """See :meth:`registerProtocol`."""


def _whole_files(context: Any, tls: dict[str, Any]) -> None:
    """Crossbar reads one certificate per file: the chain after the certificate, and every CA but the first,
    would be left out (clients of a public CA's certificate then fail to verify it). Give ``context`` (a
    ``CertificateOptions`` that has not built its SSL context yet) all of them. Paths are absolute
    (``router.compile``)."""
    from OpenSSL import crypto

    from router.tls import pem_certificates

    def certificates(path: str) -> list[Any]:
        return [crypto.X509.from_cryptography(c) for c in pem_certificates(Path(path))]

    chain = certificates(tls["certificate"])[1:]
    if chain:
        context.extraCertChain = chain
    if tls.get("ca_certificates"):
        from twisted.internet._sslverify import OpenSSLCertificateAuthorities

        authorities = [cert for path in tls["ca_certificates"] for cert in certificates(path)]
        context.caCerts = authorities
        context.trustRoot = OpenSSLCertificateAuthorities(authorities)


def _descriptor_of(transport: Any) -> Any:
    """The Twisted file descriptor under ``transport`` (through TLS and other wrappers), or None."""
    for _ in range(8):
        if transport is None or isinstance(transport, abstract.FileDescriptor):
            return transport
        transport = getattr(transport, "transport", None)
    return None


def _max_total(limits: Limits) -> int:
    """``max_connections``, kept :data:`FD_MARGIN` below the worker's file-descriptor limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits.max_connections
    return max(1, min(limits.max_connections, soft - FD_MARGIN))


_installed: dict[str, Any] = {}


def install(limits: Limits, trusted_proxies: tuple[str, ...], reactor: Any = None) -> None:
    """Guard every public listener opened from now on in this process (idempotent: the first call wins)."""
    if _installed:
        return
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    from crossbar.router.protocol import WampWebSocketServerProtocol
    from crossbar.worker import transport as crossbar_transport

    policy = GuardPolicy(limits, networks(trusted_proxies), reactor, _max_total(limits))
    _installed["policy"] = policy
    listen = getattr(crossbar_transport, "create_listening_port_from_config")  # noqa: B009 (not exported)

    def create_listening_port_from_config(config: Any, cbdir: Any, factory: Any, *args: Any, **kwargs: Any) -> Any:
        if config.get("type") == "tcp":
            if "tls" in config:
                # TLS inside the guard, not around it: a refused connection costs no TLS handshake, and the
                # protocols above see the TLS transport itself (autobahn reads its channel id from it).
                context = _create_tls_server_context(config["tls"], cbdir, _log)
                _whole_files(context, config["tls"])
                factory = TLSMemoryBIOFactory(context, False, factory)
                config = {key: value for key, value in config.items() if key != "tls"}
            factory = GuardFactory(factory, policy)
        return listen(config, cbdir, factory, *args, **kwargs)

    setattr(crossbar_transport, "create_listening_port_from_config", create_listening_port_from_config)  # noqa: B010

    if policy.trusted:
        on_connect = WampWebSocketServerProtocol.onConnect

        def onConnect(self: Any, request: Any) -> Any:
            guard = self.transport
            if isinstance(guard, TLSMemoryBIOProtocol):
                guard = guard.transport
            if isinstance(guard, Guard) and guard.address is None:
                address = client_address(request.peer, request.headers, policy.trusted)
                if address is not None and address != guard.host and not guard.claim(address):
                    raise ConnectionDeny(503, "too many connections from this address")
            return on_connect(self, request)

        WampWebSocketServerProtocol.onConnect = onConnect  # type: ignore[method-assign]
