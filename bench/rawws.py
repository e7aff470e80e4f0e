"""
A blocking, byte-exact WebSocket client for the attack scripts: they must send what no library would.

Frames are masked with a zero key (the payload goes out as it is, which a server must accept: the key is
the client's choice). Handshake headers are read byte by byte, so nothing of the first frame is consumed
with them.
"""

from __future__ import annotations

import base64
import os
import socket
import struct

__all__ = ["connect", "frame", "read_frame", "recv_exact", "upgrade_request"]


def upgrade_request(port: int, path: str = "ws", subprotocol: str = "wamp.2.json") -> bytes:
    """The HTTP upgrade request for ``/<path>`` offering ``subprotocol``."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
    ).encode()


def connect(
    port: int,
    path: str = "ws",
    subprotocol: str = "wamp.2.json",
    *,
    source: str | None = None,
    rcvbuf: int | None = None,
    timeout: float = 30.0,
) -> socket.socket:
    """A connection to 127.0.0.1:``port`` (from ``source``) that has finished the opening handshake."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sock.sendall(upgrade_request(port, path, subprotocol))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    except BaseException:
        sock.close()
        raise
    return sock


def frame(payload: bytes, opcode: int = 1) -> bytes:
    """One client frame: FIN, ``opcode`` (1 text, 2 binary), masked with a zero key."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + b"\x00\x00\x00\x00" + payload


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly ``n`` bytes, or ConnectionError if the connection ends first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """The next server frame (server frames are not masked): ``(opcode, payload)``."""
    b0, b1 = recv_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", recv_exact(sock, 2))
    elif n == 127:
        (n,) = struct.unpack("!Q", recv_exact(sock, 8))
    return b0 & 0x0F, recv_exact(sock, n)
