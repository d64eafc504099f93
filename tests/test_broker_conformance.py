"""The broker conformance suite (stelar_core.testing.broker_conformance) on stelar's own
in-process bus: hubs of one process acting as one server (``MemoryBus``)."""

from __future__ import annotations

import pytest

from stelar_core import StelarServer
from stelar_core.builtins.brokers import MemoryBus
from stelar_core.testing.broker_conformance import BrokerConformance


class TestMemoryBus(BrokerConformance):
    @pytest.fixture
    async def cluster(self):
        bus = MemoryBus()
        servers: list[StelarServer] = []

        async def make(count, **options):
            for _ in range(count):
                server = StelarServer(transports=["memory"], broker=bus.broker(), **options)
                await server.start()
                servers.append(server)
            return servers[-count:]

        yield make
        for server in reversed(servers):
            await server.stop()
