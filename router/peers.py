"""
Who a client is, by address: the peer of its connection, or the client a trusted reverse proxy names.

Behind a reverse proxy every connection comes from the proxy, so the login throttle, the per-address
connection cap and the logs would see one address for everyone. The proxy names the real client in
``X-Forwarded-For`` (each proxy appends the address it got the request from) or ``X-Real-IP``. Those headers
are written by whoever sends the request, so they are believed only for a connection *from* a configured
trusted proxy, and ``X-Forwarded-For`` is read from the right: the first address that is not itself a
trusted proxy is the client (what a client wrote to the left of it is ignored).

Pure functions: no sockets, no Crossbar.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MAX_ADDRESS_LENGTH", "Networks", "client_address", "networks", "peer_host"]

#: Longest address text kept (an IPv6 address with zone is well below): bounds anything keyed by it.
MAX_ADDRESS_LENGTH = 64

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def networks(entries: Iterable[str]) -> Networks:
    """Parse ``trusted_proxies`` entries (addresses or CIDR networks); raises ValueError for a bad one."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def peer_host(peer: object) -> str | None:
    """The address part of a Crossbar/Twisted peer string (``tcp4:1.2.3.4:5678`` -> ``1.2.3.4``).

    Unix-socket and other peers are returned whole (truncated to :data:`MAX_ADDRESS_LENGTH`).
    """
    if not isinstance(peer, str):
        return None
    kind, _, rest = peer.partition(":")
    if kind in ("tcp4", "tcp6"):
        host, _, _port = rest.rpartition(":")
        return host[:MAX_ADDRESS_LENGTH] or None
    return peer[:MAX_ADDRESS_LENGTH]


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address: str, trusted: Networks) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in network for network in trusted)


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name:
            if isinstance(value, list | tuple):
                value = ",".join(str(v) for v in value)
            return value if isinstance(value, str) else None
    return None


def client_address(peer: object, headers: Mapping[str, Any] | None, trusted: Networks) -> str | None:
    """The client's address: the peer's, or (only when the peer is a trusted proxy) the one it names.

    ``headers`` are the HTTP headers of the WebSocket upgrade request (any case; values may be lists).
    A trusted proxy that names no valid address leaves the proxy's own address.
    """
    host = peer_host(peer)
    if host is None or not trusted or not headers or not _trusted(host, trusted):
        return host
    forwarded = _header(headers, "x-forwarded-for")
    if forwarded:
        # Bounded: a header is at most a few KiB (Twisted's limit), and only its addresses are looked at.
        for candidate in reversed(forwarded.split(",")[-32:]):
            ip = _ip(candidate)
            if ip is None:
                return host  # garbage where an address should be: do not guess
            if not any(ip in network for network in trusted):
                return str(ip)
        return host
    real = _header(headers, "x-real-ip")
    ip = _ip(real) if real else None
    return str(ip) if ip is not None else host
