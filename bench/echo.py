"""
The ceiling: a plain autobahn WebSocket echo server and a RawSocket-framed echo server, no WAMP.

    .venv/bin/python bench/echo.py

Listens on 127.0.0.1, ports chosen by the kernel, and prints one JSON line
``{"websocket": port, "rawsocket": port}`` once both listen. The RawSocket side answers the 4-byte
RawSocket handshake like a router would, then echoes every frame (4-byte header + payload), so the same
load generator drives it. It uses the same reactor and the same autobahn WebSocket code as Crossbar:
what a router costs on top of this is what WAMP routing costs.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import defer, endpoints, protocol, task


class WebSocketEcho(WebSocketServerProtocol):
    def onConnect(self, request: Any) -> str | None:
        # Accept the WAMP subprotocol the client offers, as a router would (the load generator asks for it).
        return request.protocols[0] if request.protocols else None

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(payload, isBinary)


class RawSocketEcho(protocol.Protocol):
    """RawSocket framing only: answer the handshake with the client's own serializer, echo each frame."""

    def connectionMade(self) -> None:
        self._buffer = b""
        self._handshaken = False

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        if not self._handshaken:
            if len(self._buffer) < 4:
                return
            hello, self._buffer = self._buffer[:4], self._buffer[4:]
            self.transport.write(bytes([0x7F, hello[1], 0, 0]))
            self._handshaken = True
        end = 0
        while len(self._buffer) - end >= 4:
            length = int.from_bytes(self._buffer[end + 1 : end + 4], "big")
            if len(self._buffer) - end - 4 < length:
                break
            end += 4 + length
        if end:
            self.transport.write(self._buffer[:end])
            self._buffer = self._buffer[end:]


async def main(reactor: Any) -> None:
    ws = WebSocketServerFactory()
    ws.protocol = WebSocketEcho
    ws.setProtocolOptions(maxMessagePayloadSize=1024 * 1024, openHandshakeTimeout=2.5)
    ws_port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(ws)
    raw_port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        protocol.Factory.forProtocol(RawSocketEcho)
    )
    print(json.dumps({"websocket": ws_port.getHost().port, "rawsocket": raw_port.getHost().port}), flush=True)
    await defer.Deferred()  # until killed


if __name__ == "__main__":
    sys.exit(task.react(lambda reactor: defer.ensureDeferred(main(reactor))))
