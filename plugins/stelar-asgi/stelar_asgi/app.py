"""``stelar_asgi(server)``: a stelar server as an ASGI application.

* ``websocket`` scope: a stelar session, as on the native WebSocket transport: the ``stelar.v1``
  subprotocol, stelar-ws's origin policy (``allowed_origins``), admission (connection limits),
  then frames both ways with the hub's backpressure (``connection.py``).
* ``http`` scope: the HTTP routes plugins register (``/health``, ``/metrics``, ``/stelar.js``).
* ``lifespan`` scope: the server starts and stops with the application. Mounted inside another
  application (``app.mount(...)``), which does not pass lifespan events on, use the
  application's own lifespan instead: ``FastAPI(lifespan=realtime.lifespan)``.

Paths are relative to where the application is mounted (``root_path``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from stelar_asgi.connection import PROTOCOL, AsgiConnection
from stelar_core.plugin_api import (
    ConnectionRefused,
    DisconnectCode,
    ErrorCode,
    HttpRequest,
    HttpResponse,
    HubPort,
    StelarServer,
    serve_route,
    text,
)
from stelar_ws import SUBPROTOCOL, client_address, origin_refusal, refusal_response

Scope = MutableMapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def to_request(scope: Scope, hub: HubPort, body: bytes = b"") -> HttpRequest:
    """stelar's view of an ASGI request: headers lower-cased (repeats joined), the path under
    the mount point, the client's address per stelar-ws's ``trusted_proxies``."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    path, root = scope.get("path", "/"), scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    client = scope.get("client") or ("", 0)
    trusted = hub.config.plugin("ws").trusted_proxies
    query = scope.get("query_string", b"").decode("latin-1")
    address = client_address(client[0], headers, trusted)
    return HttpRequest(scope.get("method", "GET"), path, query, headers, address, scope, body)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request's body, or None once it passes ``limit`` bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # http.disconnect: the client left; nobody reads the answer
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class AsgiEndpoint:
    """The ASGI application of one hub: WebSockets and HTTP routes (no lifespan)."""

    def __init__(self, hub: HubPort) -> None:
        self.hub = hub
        self.log = hub.logger("stelar.asgi")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.hub.config.max_frame_size
        body = await read_body(receive, limit)
        if body is None:
            response = text(413, f"request body too large: at most {limit} bytes")
        else:
            response = await serve_route(self.hub.http_routes, to_request(scope, self.hub, body), self.log)
        await respond(send, response, "http.response")

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        request = to_request(scope, self.hub)
        refusal = self.refusal(scope, request)
        if refusal is not None:
            await deny(scope, send, refusal)
            return
        try:
            admission = await self.hub.admit(request.remote_address, PROTOCOL)
        except ConnectionRefused as refused:
            await deny(scope, send, refusal_response(refused))
            return
        connection = AsgiConnection(self.hub, send, request)
        try:
            await send({"type": "websocket.accept", "subprotocol": SUBPROTOCOL})
        except BaseException:
            admission.release()  # the peer left during the handshake: give its place back
            raise
        session = connection.session = self.hub.open_session(connection, admission)
        writer = asyncio.ensure_future(connection.write())
        try:
            await self.receive_frames(receive, connection)
        finally:
            if not writer.done():
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            session.connection_lost(DisconnectCode.ABNORMAL, "connection lost")

    def refusal(self, scope: Scope, request: HttpRequest) -> HttpResponse | None:
        if SUBPROTOCOL not in scope.get("subprotocols", ()):
            return text(400, f"a stelar client offers the subprotocol {SUBPROTOCOL}")
        reason = origin_refusal(request.headers, self.hub.config.plugin("ws"))
        return None if reason is None else text(403, reason)

    async def receive_frames(self, receive: Receive, connection: AsgiConnection) -> None:
        session = connection.session
        assert session is not None
        max_frame = self.hub.config.max_frame_size
        while not connection.closed:
            await connection.reading.wait()  # the hub's inbox for this client is full
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                session.connection_lost(
                    message.get("code", DisconnectCode.ABNORMAL), message.get("reason") or ""
                )
                return
            if kind != "websocket.receive":
                continue
            data = message.get("bytes")
            if data is None:
                session.fail(
                    ErrorCode.INVALID_FRAME,
                    "a text message: stelar.v1 frames are binary messages",
                    DisconnectCode.PROTOCOL_ERROR,
                )
            elif len(data) > max_frame:
                session.fail(
                    ErrorCode.FRAME_TOO_LARGE,
                    f"frame is {len(data)} bytes, at most {max_frame}",
                    DisconnectCode.MESSAGE_TOO_BIG,
                )
            else:
                session.receive(data)


async def respond(send: Send, response: HttpResponse, prefix: str) -> None:
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers.items()
    ]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": f"{prefix}.start", "status": response.status, "headers": headers})
    await send({"type": f"{prefix}.body", "body": response.body})


async def deny(scope: Scope, send: Send, response: HttpResponse) -> None:
    """Refuse a WebSocket before accepting it: with the response itself where the ASGI server
    offers the denial extension (uvicorn, hypercorn), else a close (the server answers 403)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await respond(send, response, "websocket.http.response")
    else:
        await send({"type": "websocket.close", "code": DisconnectCode.POLICY_VIOLATION})


class StelarASGI(AsgiEndpoint):
    """``stelar_asgi(server)``: the endpoint of ``server``, plus its lifespan."""

    def __init__(self, server: StelarServer) -> None:
        super().__init__(server.hub)
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.run_lifespan(receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def run_lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.server.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": f"stelar: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.server.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """For the host application's lifespan: ``FastAPI(lifespan=realtime.lifespan)``."""
        async with self.server:
            yield


def stelar_asgi(server: StelarServer) -> StelarASGI:
    """``server`` as an ASGI application, to mount (``app.mount("/realtime", stelar_asgi(s))``)
    or to serve alone (``uvicorn module:app``, which also drives its lifespan)."""
    return StelarASGI(server)
