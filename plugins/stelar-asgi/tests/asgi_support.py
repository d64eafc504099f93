"""Real ASGI servers (uvicorn, hypercorn) for the stelar-asgi tests, in the test's event loop,
on a socket bound to port 0 before they start (so the port is known and never raced for)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

from stelar_asgi import AsgiEndpoint
from stelar_core import hookimpl
from stelar_core.plugin_api import Register, TransportContext, TransportProvider
from stelar_ws import connect_ws

SERVERS = ("uvicorn", "hypercorn")


class ReadyUvicorn(uvicorn.Server):
    """``ready`` is set once uvicorn listens (uvicorn itself offers only a flag to poll)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def running(app: Any, kind: str, *, lifespan: bool = False) -> AsyncIterator[int]:
    """Serve ``app`` with the ASGI server ``kind`` until the block ends; yields the port."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    if kind == "uvicorn":
        config = uvicorn.Config(
            app, lifespan="on" if lifespan else "off", log_level="warning", ws="websockets-sansio"
        )
        server = ReadyUvicorn(config)
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        await asyncio.wait_for(server.ready.wait(), 10)
        try:
            yield port
        finally:
            server.should_exit = True
            await task
            sock.close()
        return
    config = HypercornConfig()
    config.bind = [f"fd://{sock.fileno()}"]
    config.loglevel = "WARNING"
    stop = asyncio.Event()
    started = asyncio.Event()
    app = _observed(app, started) if lifespan else _without_lifespan(app, started)
    task = asyncio.ensure_future(hypercorn_serve(app, config, shutdown_trigger=stop.wait))
    try:
        # Hypercorn serves while the lifespan starts; the tests begin once the app has started.
        await asyncio.wait_for(started.wait(), 10)
        yield port
    finally:
        stop.set()
        await task
        sock.detach()  # hypercorn took the descriptor over and closed it


def _observed(app: Any, started: asyncio.Event) -> Any:
    """``app``, setting ``started`` when its lifespan startup completes."""

    async def wrapped(scope, receive, send):
        async def observed_send(message):
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                started.set()

        await app(scope, receive, observed_send if scope["type"] == "lifespan" else send)

    return wrapped


def _without_lifespan(app: Any, started: asyncio.Event) -> Any:
    """``app`` with a lifespan that does nothing: its stelar server is started by the test."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
                started.set()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await app(scope, receive, send)

    return wrapped


class AsgiServerTransport:
    """A transport named ``asgi`` for the conformance suite: the server's hub behind a real
    uvicorn or hypercorn, reached with the WebSocket client."""

    name = "asgi"

    def __init__(self, context: TransportContext, kind: str) -> None:
        self.endpoint = AsgiEndpoint(context.hub)
        self.kind = kind
        self.port: int | None = None
        self._serving: contextlib.AbstractAsyncContextManager[int] | None = None

    async def start(self) -> None:
        self._serving = running(self.endpoint, self.kind)
        self.port = await self._serving.__aenter__()

    async def stop_accepting(self) -> None:
        """The ASGI server stops accepting when it stops."""

    async def stop(self) -> None:
        if self._serving is not None:
            await self._serving.__aexit__(None, None, None)
            self._serving = None
        self.port = None

    @property
    def addresses(self) -> list[str]:
        return [] if self.port is None else [f"ws://127.0.0.1:{self.port}/"]

    def stats(self) -> dict[str, int]:
        return {}


class AsgiTransportPlugin:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    @hookimpl
    def stelar_register_transports(self, register: Register[TransportProvider]) -> None:
        register(
            "asgi",
            TransportProvider(lambda context: AsgiServerTransport(context, self.kind), connect_ws, ("ws",)),
        )
