"""The broker conformance suite (stelar_core.testing.broker_conformance) on stelar-nats: nodes in
this process sharing a real nats-server; the fault tests kill it and start it again, and pause it."""

from __future__ import annotations

import pytest
from nats_nodes import start_nodes

from stelar_core.testing.broker_conformance import BrokerConformance

pytestmark = pytest.mark.one_loop


class NatsBackend:
    def __init__(self, nats_server) -> None:
        self._nats = nats_server

    def stop(self) -> None:
        self._nats.kill()

    def start(self) -> None:
        self._nats.start()

    def pause(self) -> None:
        self._nats.pause()

    def resume(self) -> None:
        self._nats.resume()


class TestNatsBroker(BrokerConformance):
    @pytest.fixture
    async def cluster(self, nats_server):
        servers = []

        async def make(count, **options):
            made = await start_nodes(nats_server.url, count, transports=["memory"], **options)
            servers.extend(made)
            return made

        yield make
        for server in reversed(servers):
            await server.stop()

    @pytest.fixture
    def backend(self, nats_server):
        return NatsBackend(nats_server)
