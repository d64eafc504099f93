"""The broker conformance suite (stelar_core.testing.broker_conformance) on stelar-nats: nodes in
this process sharing a real nats-server; the fault tests kill it and start it again, and pause it."""

from __future__ import annotations

import pytest
from nats_nodes import start_nodes

from stelar_core.testing.broker_conformance import BrokerConformance, ProcessBackend

pytestmark = pytest.mark.one_loop


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
        return ProcessBackend(nats_server)
