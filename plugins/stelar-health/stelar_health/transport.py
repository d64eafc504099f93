"""The ``http`` transport: the hub's HTTP routes on a port of their own (``health_port``), for
servers without a WebSocket port to mount them on. HTTP/1.1 (``PlainHttpExchange``), one request
per connection; it carries no stelar sessions."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import cast

from stelar_core.plugin_api import (
    HttpRequest,
    HttpResponse,
    HubPort,
    Listener,
    PlainHttpExchange,
    ServerTLS,
    Timer,
    serve_route,
    socket_url,
)

PROTOCOL = "http"
# Probes and scrapers are few; past this many open connections new ones are dropped at once.
MAX_OPEN_CONNECTIONS = 256


class HttpConnection(asyncio.Protocol):
    def __init__(self, owner: HttpTransport) -> None:
        self._owner = owner
        self._exchange: PlainHttpExchange | None = None
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self._deadline: Timer | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's implement the interface without subclassing it.
        self._transport = transport = cast(asyncio.Transport, transport)
        if len(self._owner.connections) >= MAX_OPEN_CONNECTIONS:
            transport.abort()
            return
        self._owner.connections.add(self)
        peer = transport.get_extra_info("peername")
        config = self._owner.hub.config
        self._exchange = PlainHttpExchange(str(peer[0]) if peer else "", config.max_frame_size)
        # A client that trickles its request is dropped, as on the WebSocket port.
        self._deadline = self._owner.hub.clock.call_later(config.connect_timeout, transport.abort)

    def data_received(self, data: bytes) -> None:
        if self._exchange is None or self._task is not None:
            return  # answering already: the rest of the stream is not read
        received = self._exchange.receive(data)
        if isinstance(received, HttpRequest):
            self._task = asyncio.ensure_future(self._answer(received))
        elif received is not None:
            self._send(received)

    async def _answer(self, request: HttpRequest) -> None:
        self._send(await serve_route(self._owner.hub.http_routes, request, self._owner.log))

    def _send(self, response: HttpResponse) -> None:
        if self._transport is None or self._transport.is_closing() or self._exchange is None:
            return
        answer = self._exchange.respond(response)
        if answer is None:
            self._owner.log.error("could not answer an HTTP request: %r", response)
        else:
            self._transport.write(answer)
        self.close()

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._owner.connections.discard(self)
        if not self.lost.done():
            self.lost.set_result(None)


class HttpTransport:
    """Listens on ``host``:``port`` of its options (``health_port``); serves only HTTP routes,
    over TLS (``https://``) when the server's TLS serves this transport."""

    name = PROTOCOL

    def __init__(self, hub: HubPort, port: int, tls: ServerTLS | None = None) -> None:
        self.hub = hub
        self.port = port
        self.log = hub.logger("stelar.health")
        self.connections: set[HttpConnection] = set()
        self._listener = Listener(hub, PROTOCOL, tls, alpn=("http/1.1",))
        self._listening = False
        self._scheme = "https" if self._listener.secure else "http"

    @property
    def addresses(self) -> list[str]:
        return [socket_url(self._scheme, name) for name in self._listener.socknames()]

    def stats(self) -> Mapping[str, int]:
        return {"connections": len(self.connections)}

    async def start(self) -> None:
        await self._listener.start(lambda: HttpConnection(self), self.port)
        self._listening = True

    async def stop_accepting(self) -> None:
        """Keeps serving: readiness must be readable (503) while the server drains."""

    async def stop(self) -> None:
        if not self._listening:
            return
        self._listening = False
        self._listener.close()
        await self._listener.wait_closed()
        await self._listener.abort_handshakes()
        open_connections = tuple(self.connections)
        for connection in open_connections:
            connection.close()
        if open_connections:
            await asyncio.wait([connection.lost for connection in open_connections], timeout=5.0)
