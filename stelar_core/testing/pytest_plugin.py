"""pytest fixtures for testing stelar servers, transports and plugins (needs pytest-asyncio).

Opt in with ``pytest_plugins = ["stelar_core.testing.pytest_plugin"]``. Fixtures:

* ``stelar_transport``: the transport name servers and clients use (``"memory"``); override it,
  or parametrize it indirectly, to run the same tests over ``"ws"``, ``"tcp"`` or your own.
* ``stelar_server_factory``: ``await make(**options)`` starts a server (stopped after the test).
* ``stelar_server``: one started server with default options.
* ``stelar_client_factory``: ``await make(server, **connect_options)`` opens a ``TestClient``.
* ``stelar_client``: one client connected to ``stelar_server``.
* ``stelar_hook_recorder``: ``record(server)`` returns a ``HookRecorder`` of that server.
* ``raw_tcp``: ``await raw_tcp(server)`` opens a ``RawTcpPeer`` on its ``tcp`` transport, for
  bytes no client would send.
* ``gated_tracker``: a ``GatedTracker`` (an IP tracker that admits only once the test opens it).

``stelar_core.testing.loops`` runs async tests on asyncio's loop and uvloop, and
``stelar_core.testing.eventually`` waits for state another process holds.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import attrs
import pytest
import pytest_asyncio

from stelar_core.plugins.manager import build_plugin_manager
from stelar_core.plugins.registry import all_registries
from stelar_core.providers import TransportProvider
from stelar_core.server import StelarServer
from stelar_core.server.assembly import collect_options
from stelar_core.testing.client import TestClient, connect_client
from stelar_core.testing.raw_tcp import raw_tcp
from stelar_core.testing.recorder import HookRecorder
from stelar_core.testing.trackers import GatedTracker

__all__ = [
    "gated_tracker",
    "raw_tcp",
    "stelar_client",
    "stelar_client_factory",
    "stelar_hook_recorder",
    "stelar_server",
    "stelar_server_factory",
    "stelar_transport",
]

ServerFactory = Callable[..., Awaitable[StelarServer]]
ClientFactory = Callable[..., Awaitable[TestClient]]


@attrs.frozen
class _Listener:
    """Where an installed transport listens: ``section.option``, and its short forms."""

    section: str
    option: str
    names: frozenset[str]  # its short forms (``port``, ``tcp_port``)

    def given(self, options: Mapping[str, Any]) -> bool:
        section = options.get(self.section)
        in_section = isinstance(section, Mapping) and self.option in section
        return in_section or any(name in options for name in self.names)


@functools.cache
def _port_listeners() -> tuple[_Listener, ...]:
    """The installed transports that listen on a port and start by default (read once)."""
    pm = build_plugin_manager()
    table = collect_options(pm)
    found = []
    for provider in all_registries(pm)["transport"].providers():
        transport = provider.factory
        if not isinstance(transport, TransportProvider) or transport.serve_default is None:
            continue
        spec = table.sections.get(provider.section, {}).get(str(transport.listen_option))
        if spec is not None and spec.type is int:
            shorts = frozenset({spec.short} if spec.short else set())
            found.append(_Listener(provider.section, spec.name, shorts))
    return tuple(found)


@pytest.fixture
def stelar_transport(request: pytest.FixtureRequest) -> str:
    """``"memory"``, or the value given by ``@pytest.mark.parametrize(..., indirect=True)``."""
    name: str = getattr(request, "param", "memory")
    return name


@pytest_asyncio.fixture
async def stelar_server_factory(stelar_transport: str) -> AsyncIterator[ServerFactory]:
    servers: list[StelarServer] = []

    async def make(**options: Any) -> StelarServer:
        listeners = _port_listeners()
        if "transports" not in options and not any(listener.given(options) for listener in listeners):
            options["transports"] = [stelar_transport]
        # Tests never take fixed ports: 0 lets the kernel pick a free one for each listener.
        for listener in listeners:
            if not listener.given(options):
                options[listener.section] = {listener.option: 0, **options.get(listener.section, {})}
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


@pytest.fixture
def gated_tracker() -> GatedTracker:
    return GatedTracker()
