"""pytest fixtures for testing stelar servers, transports and plugins (needs pytest-asyncio).

Opt in with ``pytest_plugins = ["stelar_core.testing.pytest_plugin"]``. Fixtures:

* ``stelar_transport``: the transport name servers and clients use (``"memory"``); override it,
  or parametrize it indirectly, to run the same tests over ``"ws"``, ``"tcp"`` or your own.
* ``stelar_server_factory``: ``await make(**options)`` starts a server (stopped after the test).
* ``stelar_server``: one started server with default options.
* ``stelar_client_factory``: ``await make(server, **connect_options)`` opens a ``TestClient``.
* ``stelar_client``: one client connected to ``stelar_server``.
* ``stelar_hook_recorder``: ``record(server)`` returns a ``HookRecorder`` of that server.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from stelar_core.plugins.manager import build_plugin_manager
from stelar_core.server import StelarServer
from stelar_core.server.assembly import collect_options
from stelar_core.testing.client import TestClient, connect_client
from stelar_core.testing.recorder import HookRecorder

ServerFactory = Callable[..., Awaitable[StelarServer]]
ClientFactory = Callable[..., Awaitable[TestClient]]


@functools.cache
def known_shorts() -> frozenset[str]:
    """The short forms the installed plugins declare (read once per test session)."""
    return frozenset(collect_options(build_plugin_manager()).shorts)


@pytest.fixture
def stelar_transport(request: pytest.FixtureRequest) -> str:
    """``"memory"``, or the value given by ``@pytest.mark.parametrize(..., indirect=True)``."""
    name: str = getattr(request, "param", "memory")
    return name


@pytest_asyncio.fixture
async def stelar_server_factory(stelar_transport: str) -> AsyncIterator[ServerFactory]:
    servers: list[StelarServer] = []

    async def make(**options: Any) -> StelarServer:
        if "transports" not in options and "port" not in options and "tcp_port" not in options:
            options["transports"] = [stelar_transport]
        # Tests never take fixed ports: 0 lets the kernel pick a free one for each listener.
        for short in ("port", "tcp_port"):
            if short in known_shorts():
                options.setdefault(short, 0)
        options.setdefault("host", "127.0.0.1")
        server = StelarServer(**options)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in reversed(servers):
        await server.stop()


@pytest_asyncio.fixture
async def stelar_server(stelar_server_factory: ServerFactory) -> StelarServer:
    return await stelar_server_factory()


@pytest_asyncio.fixture
async def stelar_client_factory() -> AsyncIterator[ClientFactory]:
    clients: list[TestClient] = []

    async def make(server: StelarServer, transport: str | None = None, **options: Any) -> TestClient:
        client = await connect_client(server, transport, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest_asyncio.fixture
async def stelar_client(stelar_server: StelarServer, stelar_client_factory: ClientFactory) -> TestClient:
    return await stelar_client_factory(stelar_server)


@pytest.fixture
def stelar_hook_recorder() -> Iterator[Callable[[StelarServer], HookRecorder]]:
    recorders: list[HookRecorder] = []

    def record(server: StelarServer) -> HookRecorder:
        recorder = HookRecorder(server.plugin_manager)
        recorders.append(recorder)
        return recorder

    yield record
    for recorder in recorders:
        recorder.close()
