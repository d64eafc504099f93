"""uvicorn for the benchmark's ASGI servers: bound to a port the system picks, printed once
uvicorn has started (``PORT <n>``), until SIGTERM (which uvicorn handles itself)."""

import asyncio
import socket

import uvicorn


class ReadyServer(uvicorn.Server):
    """``ready`` is set once uvicorn listens (uvicorn itself offers only a flag to poll)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets=None):
        await super().startup(sockets=sockets)
        self.ready.set()


async def serve(app, **options) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = ReadyServer(
        uvicorn.Config(app, log_level="warning", ws="websockets-sansio", backlog=4096, **options)
    )
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    await server.ready.wait()
    print("PORT", sock.getsockname()[1], flush=True)
    await serving
