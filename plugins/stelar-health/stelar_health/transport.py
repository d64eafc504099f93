"""The ``http`` transport: the hub's HTTP routes on a port of their own (``health_port``), for
servers without a WebSocket port to mount them on. HTTP/1.1 through h11, one request per
connection; it carries no stelar sessions."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import cast

import h11

from stelar_core.plugin_api import (
    HttpRequest,
    HttpResponse,
    HubPort,
    Listener,
    ServerTLS,
    Timer,
    serve_route,
    socket_url,
    text,
)

PROTOCOL = "http"
MAX_REQUEST_HEAD = 16 * 1024
# Probes and scrapers are few; past this many open connections new ones are dropped at once.
MAX_OPEN_CONNECTIONS = 256


class HttpConnection(asyncio.Protocol):
    def __init__(self, owner: HttpTransport) -> None:
        self._owner = owner
        self._http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        self._transport: asyncio.Transport | None = None
        self._peer = ""
        self._request: h11.Request | None = None
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
        self._peer = str(peer[0]) if peer else ""
        # A client that trickles its request is dropped, as on the WebSocket port.
        timeout = self._owner.hub.config.connect_timeout
        self._deadline = self._owner.hub.clock.call_later(timeout, transport.abort)

    def data_received(self, data: bytes) -> None:
        try:
            self._http.receive_data(data)
            while True:
                event = self._http.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return
                if isinstance(event, h11.Request):
                    self._request = event
                elif isinstance(event, h11.EndOfMessage) and self._request is not None:
                    request, self._request = self._request, None
                    self._task = asyncio.ensure_future(self._answer(request))
                    return
                elif isinstance(event, h11.ConnectionClosed):
                    self.close()
                    return
        except h11.RemoteProtocolError as exc:
            self._send(text(exc.error_status_hint, f"bad request: {exc}"))

    async def _answer(self, event: h11.Request) -> None:
        target = event.target.decode("latin-1")
        path, _, query = target.partition("?")
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers}
        request = HttpRequest(event.method.decode("ascii"), path, query, headers, self._peer)
        self._send(await serve_route(self._owner.hub.http_routes, request, self._owner.log))

    def _send(self, response: HttpResponse) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        headers = [(name, value) for name, value in response.headers.items()]
        headers += [("Content-Length", str(len(response.body))), ("Connection", "close")]
        try:
            out = self._http.send(h11.Response(status_code=response.status, headers=headers))
            out += self._http.send(h11.Data(data=response.body)) if response.body else b""
            out += self._http.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            self._owner.log.exception("could not answer an HTTP request")
            self.close()
            return
        self._transport.write(out)
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
