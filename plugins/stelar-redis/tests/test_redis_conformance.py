"""The broker conformance suite (stelar_core.testing.broker_conformance) on stelar-redis: nodes
in this process sharing a real redis-server, as the in-process bus does in the core's suite;
the fault tests kill that redis-server and start it again, empty."""

from __future__ import annotations

import pytest
from cluster_nodes import FAST, start_in_process

from stelar_core.testing.broker_conformance import BrokerConformance, ProcessBackend

pytestmark = pytest.mark.one_loop


class TestRedisBroker(BrokerConformance):
    @pytest.fixture
    async def cluster(self, redis_server):
        servers = []

        async def make(count, **options):
            made = await start_in_process(
                redis_server.url, count, transports=["memory"], redis=FAST, **options
            )
            servers.extend(made)
            return made

        yield make
        for server in reversed(servers):
            await server.stop()

    @pytest.fixture
    def backend(self, redis_server):
        return ProcessBackend(redis_server)
